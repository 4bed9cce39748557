"""Staff forms of measurement-based care. Validation of clinical meaning stays in the services
(and in `ketaclinic.clinical`); forms only parse what was typed."""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.accounts.models import User
from ketaclinic.clinical import INSTRUMENTS, PROTOCOLS, Instrument
from ketaclinic.courses.models import TreatmentCourse
from ketaclinic.measures import questionnaire
from ketaclinic.measures.choices import (
    AlertAction,
    BoosterResolution,
    Cadence,
    Phase,
    Respondent,
)
from ketaclinic.measures.models import ClinicMeasurePolicy, MeasurementPlan


def _choices(field: forms.Field, choices: list[tuple[Any, str]]) -> None:
    field.choices = choices  # type: ignore[attr-defined]


def instrument_choices(*, patient_only: bool = False) -> list[tuple[str, str]]:
    return [
        (code, INSTRUMENTS[code].title)
        for code in questionnaire.PLAN_INSTRUMENTS
        if not patient_only or questionnaire.patient_can_answer(code)
    ]


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("open", "Waiting"), ("acknowledged", "Acknowledged"), ("all", "All")],
        required=False,
    )
    mine = forms.BooleanField(required=False, label="Assigned to me")
    clinic = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, clinics: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(
            self.fields["clinic"], [("", "All my clinics"), *((c.pk, c.name) for c in clinics)]
        )


class AlertAcknowledgeForm(forms.Form):
    action = forms.ChoiceField(
        choices=AlertAction.choices, widget=forms.RadioSelect, label="Action taken"
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000
    )


class DutyForm(forms.Form):
    clinic = forms.TypedChoiceField(coerce=int)
    hours = forms.IntegerField(min_value=1, max_value=24, initial=12, required=False)
    end = forms.BooleanField(required=False)

    def __init__(self, *args: Any, clinics: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["clinic"], [(c.pk, c.name) for c in clinics])


class BoosterResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=BoosterResolution.choices, widget=forms.RadioSelect)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000
    )


class EnrolForm(forms.Form):
    plan: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=MeasurementPlan.objects.none(), empty_label=None
    )
    course: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=TreatmentCourse.objects.none(),
        required=False,
        empty_label="No course on file: use a protocol",
        label="Treatment course",
        help_text="Its appointments give the session days, times and phases.",
    )
    protocol = forms.ChoiceField(
        choices=[("", "—"), *((code, p.title) for code, p in PROTOCOLS.items())],
        required=False,
        help_text="Only without a course: lays out the session days and phases.",
    )
    first_session_on = forms.DateField(
        label="First session",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only without a course.",
    )
    prescriber: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        help_text="Receives this patient's safety alerts and booster recommendations.",
    )
    plan_weeks = forms.IntegerField(
        min_value=1, max_value=156, required=False, label="Plan length (weeks)",
        help_text="Only for protocols with open-ended maintenance (esketamine from week 9).",
    )  # fmt: skip
    notify_by_email = forms.BooleanField(required=False, initial=True, label="Send by email")
    notify_by_sms = forms.BooleanField(required=False, label="Send by text message")

    def __init__(
        self, *args: Any, plans: Any, prescribers: Any, courses: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["course"].queryset = courses  # type: ignore[attr-defined]
        self.fields["plan"].queryset = plans  # type: ignore[attr-defined]  # (ModelChoiceField)
        self.fields["prescriber"].queryset = prescribers  # type: ignore[attr-defined]


class EnrolmentEndForm(forms.Form):
    reason = forms.CharField(max_length=200)


class AssignForm(forms.Form):
    instrument = forms.ChoiceField(label="Questionnaire")
    open_hours = forms.IntegerField(
        min_value=4, max_value=720, initial=72, label="Open for (hours)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["instrument"], list(instrument_choices(patient_only=True)))


class ScoreEntryForm(forms.Form):
    """One field per item. Licensed scales show item numbers and score ranges only."""

    def __init__(self, *args: Any, instrument: Instrument, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        for number, item in enumerate(instrument.items, start=1):
            label = f"{number}. {item.wording}" if item.wording else f"Item {number}"
            if item.kind == "yes_no":
                choices = [("", "Not asked"), ("0", "No"), ("1", "Yes")]
                self.fields[item.id] = forms.ChoiceField(
                    label=label, choices=choices, required=False
                )
                continue
            choices = [
                (str(o.value), f"{o.value} – {o.label}" if o.label else str(o.value))
                for o in item.options
            ]
            self.fields[item.id] = forms.ChoiceField(
                label=label, choices=[("", "—"), *choices], required=True
            )

    def answers(self) -> dict[str, int]:
        return {key: int(value) for key, value in self.cleaned_data.items() if value != ""}


class PlanForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    is_default = forms.BooleanField(required=False, label="Default plan for new enrolments")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")


class PlanCreateForm(forms.Form):
    clinic = forms.TypedChoiceField(coerce=int)
    name = forms.CharField(max_length=120)
    starter = forms.BooleanField(
        required=False, initial=True, label="Start from the standard ketamine plan"
    )
    ptsd = forms.BooleanField(required=False, label="Include PCL-5 every 2 weeks (PTSD)")

    def __init__(self, *args: Any, clinics: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["clinic"], [(c.pk, c.name) for c in clinics])


class PlanItemForm(forms.Form):
    instrument = forms.ChoiceField()
    phase = forms.ChoiceField(choices=Phase.choices)
    cadence = forms.ChoiceField(choices=Cadence.choices)
    interval_days = forms.IntegerField(min_value=2, max_value=365, required=False)
    respondent = forms.ChoiceField(choices=Respondent.choices)
    window_hours = forms.IntegerField(min_value=4, max_value=720, initial=72)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["instrument"], list(instrument_choices()))


class PolicyForm(forms.ModelForm):
    class Meta:
        model = ClinicMeasurePolicy
        fields = ["escalate_after_minutes", "max_reminders", "madrs_remission_max"]
        labels = {
            "escalate_after_minutes": "Escalate unacknowledged alerts after (minutes)",
            "max_reminders": "Reminders per questionnaire (0–2)",
            "madrs_remission_max": "MADRS remission",
        }
