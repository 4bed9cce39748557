from django import forms

from ketaclinic.audit.choices import Action
from ketaclinic.audit.selectors import REPORT_SORT_KEYS

SORT_CHOICES = [(k, k) for k in REPORT_SORT_KEYS] + [(f"-{k}", f"-{k}") for k in REPORT_SORT_KEYS]


class AuditReportForm(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.CharField(required=False, max_length=150, label="Username")
    patient = forms.IntegerField(required=False, min_value=1, label="Patient id")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *Action.choices])
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
