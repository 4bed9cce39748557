"""Forms of the course and scheduling pages. They shape input; the services check every rule."""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.clinical import INSTRUMENTS, PROTOCOLS
from ketaclinic.courses.choices import (
    CourseStatus,
    MaintenanceCadence,
    PriceKind,
)
from ketaclinic.courses.models import Chair, ClinicSchedule

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME = forms.TimeInput(attrs={"type": "time", "step": 300}, format="%H:%M")
PROTOCOL_CHOICES = [(code, p.title) for code, p in PROTOCOLS.items()]
GOAL_INSTRUMENTS = [("", "—")] + [
    (code, i.title)
    for code, i in INSTRUMENTS.items()
    if code in {"phq9", "gad7", "madrs", "qids_sr16", "pcl5", "ybocs", "pain_nrs"}
]


class ChairChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} (holds {obj.capacity})" if obj.capacity > 1 else obj.name


def _chair_field(chairs: Any) -> ChairChoiceField:
    return ChairChoiceField(
        queryset=chairs, required=False, empty_label="Any free chair", label="Chair"
    )


class CourseForm(forms.Form):
    protocol = forms.ChoiceField(choices=PROTOCOL_CHOICES)
    start_date = forms.DateField(widget=DATE, label="First session on or after")
    weeks = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=156,
        help_text="Length of the whole plan; blank for the protocol's default.",
    )
    session_time = forms.TimeField(widget=TIME, label="Session time")
    dose_mg = forms.TypedChoiceField(
        choices=[("", "As planned"), ("56", "56 mg"), ("84", "84 mg")],
        coerce=int,
        empty_value=None,
        required=False,
        label="Esketamine dose after session 1",
        help_text="Session 1 is the protocol's starting dose (TRD: 56 mg).",
    )
    dose_mg_per_kg = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=4,
        decimal_places=2,
        label="IV/IM dose (mg/kg)",
        help_text="Blank: the protocol's dose (0.5 mg/kg).",
    )
    goals_note = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}), label="Goals"
    )
    target_instrument = forms.ChoiceField(
        choices=GOAL_INSTRUMENTS, required=False, label="Target score on"
    )
    target_total = forms.IntegerField(required=False, min_value=0, label="Target total (at most)")
    personal_goal = forms.CharField(
        required=False, max_length=500, label="Personal goal, in the patient's words"
    )

    def __init__(self, *args: Any, chairs: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["chair"] = _chair_field(chairs if chairs is not None else Chair.objects.none())
        self.order_fields(["protocol", "start_date", "weeks", "session_time", "chair"])

    def goals(self) -> list[dict[str, Any]]:
        data, goals = self.cleaned_data, []
        if data.get("target_instrument"):
            goals.append(
                {
                    "kind": "target_score",
                    "instrument": data["target_instrument"],
                    "target_total": data.get("target_total"),
                }
            )
        if data.get("personal_goal"):
            goals.append({"kind": "personal", "text": data["personal_goal"]})
        return goals


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=CourseStatus.choices)
    reason = forms.CharField(required=False, max_length=500)


class MaintenanceForm(forms.Form):
    from_date = forms.DateField(widget=DATE, label="First maintenance day")
    cadence = forms.ChoiceField(choices=MaintenanceCadence.choices)
    weeks = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=156,
        label="Plan through course week (esketamine)",
        help_text="e.g. 16: weekly to week 8, then every 2 weeks to week 16.",
    )
    interval_weeks = forms.IntegerField(
        required=False, min_value=1, max_value=12, label="Every N weeks (racemic)"
    )
    sessions = forms.IntegerField(
        required=False, min_value=1, max_value=52, label="Number of sessions (racemic)"
    )
    session_time = forms.TimeField(widget=TIME)
    dose_mg = forms.TypedChoiceField(
        choices=[("", "As planned"), ("56", "56 mg"), ("84", "84 mg")],
        coerce=int,
        empty_value=None,
        required=False,
        label="Esketamine dose",
    )
    dose_mg_per_kg = forms.DecimalField(
        required=False, min_value=0, max_digits=4, decimal_places=2, label="Dose (mg/kg)"
    )

    def __init__(self, *args: Any, chairs: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["chair"] = _chair_field(chairs if chairs is not None else Chair.objects.none())


class BoosterForm(forms.Form):
    day = forms.DateField(widget=DATE)
    session_time = forms.TimeField(widget=TIME)
    reason = forms.CharField(max_length=500, label="Reason for the booster")
    dose_mg = forms.TypedChoiceField(
        choices=[("", "As planned"), ("56", "56 mg"), ("84", "84 mg")],
        coerce=int,
        empty_value=None,
        required=False,
        label="Esketamine dose",
    )
    dose_mg_per_kg = forms.DecimalField(
        required=False, min_value=0, max_digits=4, decimal_places=2, label="Dose (mg/kg)"
    )

    def __init__(self, *args: Any, chairs: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["chair"] = _chair_field(chairs if chairs is not None else Chair.objects.none())


class GoalForm(forms.Form):
    target_instrument = forms.ChoiceField(choices=GOAL_INSTRUMENTS, required=False)
    target_total = forms.IntegerField(required=False, min_value=0)
    personal_goal = forms.CharField(required=False, max_length=500)

    def goal(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data.get("personal_goal"):
            return {"kind": "personal", "text": data["personal_goal"]}
        return {
            "kind": "target_score",
            "instrument": data.get("target_instrument"),
            "target_total": data.get("target_total"),
        }


class RescheduleForm(forms.Form):
    day = forms.DateField(widget=DATE, label="New day")
    session_time = forms.TimeField(widget=TIME, label="New time")
    reason = forms.CharField(max_length=500)

    def __init__(self, *args: Any, chairs: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = _chair_field(chairs if chairs is not None else Chair.objects.none())
        field.empty_label = "Same chair"
        self.fields["chair"] = field


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class DoseForm(forms.Form):
    dose_mg = forms.TypedChoiceField(
        choices=[("", "—"), ("28", "28 mg"), ("56", "56 mg"), ("84", "84 mg")],
        coerce=int,
        empty_value=None,
        required=False,
        label="Dose (mg)",
    )
    dose_mg_per_kg = forms.DecimalField(
        required=False, min_value=0, max_digits=4, decimal_places=2, label="Dose (mg/kg)"
    )
    reason = forms.CharField(max_length=500)


class BoardForm(forms.Form):
    day = forms.DateField(widget=DATE, required=False)
    clinic = forms.TypedChoiceField(coerce=int, required=False, choices=())

    def __init__(self, *args: Any, clinics: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [(c.pk, c.name) for c in clinics]  # type: ignore[attr-defined]


class ScheduleForm(forms.ModelForm):
    clinic_days = forms.TypedMultipleChoiceField(
        choices=[(i, n) for i, n in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ClinicSchedule
        fields = [
            "clinic_days",
            "opens_at",
            "closes_at",
            "esketamine_chair_minutes",
            "iv_chair_minutes",
            "im_chair_minutes",
            "oral_chair_minutes",
        ]
        widgets = {"opens_at": TIME, "closes_at": TIME}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and not self.is_bound:
            self.initial["clinic_days"] = list(self.instance.weekdays)

    def _post_clean(self) -> None:
        pass

    def data_for_service(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["clinic_days"] = ",".join(str(d) for d in data["clinic_days"])
        return data


class ChairForm(forms.ModelForm):
    class Meta:
        model = Chair
        fields = ["name", "capacity", "is_active", "notes"]

    def _post_clean(self) -> None:
        pass


class PriceForm(forms.Form):
    kind = forms.ChoiceField(choices=PriceKind.choices, widget=forms.HiddenInput)
    description = forms.CharField(max_length=200)
    billing_codes = forms.CharField(max_length=100, required=False)
    unit_price = forms.DecimalField(
        min_value=0, max_digits=9, decimal_places=2, label="Price (USD)"
    )
