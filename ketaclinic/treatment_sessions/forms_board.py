"""The REMS monitoring form submission (date, method, confirmation), entered on the worklist."""

from __future__ import annotations

from django import forms

from ketaclinic.treatment_sessions.choices import SubmissionMethod


class RemsSubmissionForm(forms.Form):
    submitted_on = forms.DateField(
        label="Submitted on", widget=forms.DateInput(attrs={"type": "date"})
    )
    method = forms.ChoiceField(label="How", choices=SubmissionMethod.choices)
    confirmation = forms.CharField(
        label="Confirmation number", max_length=100,
        help_text="The number the REMS online portal, fax or phone call gave.",
    )  # fmt: skip
