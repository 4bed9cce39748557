"""Patient-facing forms: large targets, one question per screen, plain words."""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.clinical import Item


class AnswerForm(forms.Form):
    """One questionnaire item as a set of radio buttons."""

    answer = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["answer"]
        field.choices = [  # type: ignore[attr-defined]
            (option.value, option.label or str(option.value)) for option in item.options
        ]
        field.label = item.wording or item.id
        field.error_messages["required"] = "Choose one answer to continue."
        field.error_messages["invalid_choice"] = "Choose one of the answers."


class CheckInForm(forms.Form):
    mood_0_to_10 = forms.TypedChoiceField(
        coerce=int,
        choices=[(n, str(n)) for n in range(11)],
        widget=forms.RadioSelect,
        label="How is your mood today? 0 is the worst, 10 the best.",
        error_messages={"required": "Choose a number from 0 to 10."},
    )
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Anything you want to add (optional)",
    )
    urgent = forms.BooleanField(
        required=False, label="I would like someone from my care team to contact me today"
    )


class JournalForm(forms.Form):
    body = forms.CharField(
        max_length=10000, widget=forms.Textarea(attrs={"rows": 6}), label="New entry"
    )
    share = forms.BooleanField(
        required=False,
        label="Share this entry with my care team",
        help_text="Entries are private unless you share them. You can change this later.",
    )
    urgent = forms.BooleanField(
        required=False,
        label="This is urgent: I would like someone from my care team to contact me today",
        help_text="Urgent entries are shared with your care team.",
    )
