from django import forms
from django.conf import settings


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
