from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class LoginForm(AuthenticationForm):
    """Django's sign-in form, refusing an over-long username before anyone authenticates it.

    AuthenticationForm sets the username's max_length after the field is built, so only the
    widget knew it: a 10,000-character username reached the backends and django-axes' attempt
    log, which PostgreSQL refused with a 500.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        username = cast(forms.CharField, self.fields["username"])
        if username.max_length:
            username.validators.append(MaxLengthValidator(username.max_length))


class TotpCodeForm(forms.Form):
    code = forms.CharField(
        label="6-digit code from your authenticator app",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9]{6}"}
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError("Enter the 6 digits shown in your authenticator app.")
        return code


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name")
    days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=settings.KETACLINIC_TOKEN_MAX_DAYS,
        initial=30,
    )
