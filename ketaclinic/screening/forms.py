"""Forms of the intake pages. They only shape input; every rule is checked by the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models

from ketaclinic.accounts.models import Clinic
from ketaclinic.clinical import INSTRUMENTS, TREATMENTS
from ketaclinic.core import clock
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services
from ketaclinic.screening.choices import (
    KNOWN_MEDICATIONS,
    ConsentKind,
    IntakeStatus,
)
from ketaclinic.screening.models import (
    BaselineVitals,
    Intake,
    MedicalHistory,
    PdmpCheck,
    PsychiatricHistory,
    RemsEnrolment,
    SignedConsent,
    TransportPlan,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TREATMENT_OPTIONS = [("", "Not decided yet")] + [(c, t.title) for c, t in TREATMENTS.items()]


class ServiceModelForm(forms.ModelForm):
    """Model validation and uniqueness run in the service, inside its transaction."""

    def _post_clean(self) -> None:
        pass

    def data_for_service(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}  # type: ignore[attr-defined]


def _dates(fields: tuple[str, ...]) -> dict[str, forms.Widget]:
    return {name: DATE for name in fields}


class IntakeForm(ServiceModelForm):
    intended_treatment = forms.ChoiceField(
        choices=TREATMENT_OPTIONS, required=False, label="Treatment to screen for"
    )

    def clean_referred_on(self) -> Any:
        # Also checked by the service against the clinic's own date; here (against the UTC
        # date, which is never behind a clinic's) so it shows with the patient's errors.
        value = self.cleaned_data.get("referred_on")
        if value and value > clock.now().date():
            raise forms.ValidationError("This date is in the future.")
        return value

    class Meta:
        model = Intake
        fields = list(services.INTAKE_FIELDS)
        widgets = {
            **_dates(("referred_on",)),
            "reason_for_referral": forms.Textarea(attrs={"rows": 3}),
            "referring_clinician_phone": forms.TextInput(attrs={"type": "tel"}),
        }


class NewPatientReferralForm(forms.ModelForm):
    """A new patient's identity plus the referral, on one page for the front desk."""

    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), empty_label=None)

    class Meta:
        model = Patient
        fields = [
            "first_name",
            "last_name",
            "date_of_birth",
            "sex_at_birth",
            "phone",
            "email",
            "emergency_contact_name",
            "emergency_contact_phone",
        ]
        widgets = {
            "date_of_birth": DATE,
            "phone": forms.TextInput(attrs={"type": "tel"}),
            "emergency_contact_phone": forms.TextInput(attrs={"type": "tel"}),
        }

    def __init__(self, *args: Any, clinics: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        self.order_fields(["clinic", *self.Meta.fields])

    def _post_clean(self) -> None:
        pass

    def patient_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class IntakeStatusForm(forms.Form):
    status = forms.ChoiceField(choices=IntakeStatus.choices)
    reason = forms.CharField(required=False, max_length=300)


class PsychiatricHistoryForm(ServiceModelForm):
    class Meta:
        model = PsychiatricHistory
        fields = list(services.PSYCHIATRIC_FIELDS)
        widgets = {
            **_dates(("current_episode_began_on",)),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }


class MedicalHistoryForm(ServiceModelForm):
    class Meta:
        model = MedicalHistory
        fields = list(services.MEDICAL_FIELDS)
        widgets = {
            **_dates(("pregnancy_status_checked_on",)),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }


def item_form_class(kind: str) -> type[ServiceModelForm]:
    """A model form for one history list (diagnoses, trials, medications, ...)."""
    spec = services.ITEM_KINDS[kind]
    date_fields = tuple(
        f for f in spec.fields if isinstance(spec.model._meta.get_field(f), models.DateField)
    )
    widgets: dict[str, forms.Widget] = dict(_dates(date_fields))
    if kind == "medication":
        widgets["name"] = forms.TextInput(
            attrs={"list": "known-medications", "autocomplete": "off"}
        )
    meta = type("Meta", (), {"model": spec.model, "fields": list(spec.fields), "widgets": widgets})
    return type(f"{spec.model.__name__}Form", (ServiceModelForm,), {"Meta": meta})


KNOWN_MEDICATION_NAMES = sorted(KNOWN_MEDICATIONS)


class RemoveForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Why is this record wrong?")


class PdmpForm(ServiceModelForm):
    class Meta:
        model = PdmpCheck
        fields = list(services.PDMP_FIELDS)
        widgets = _dates(("checked_on",))


class VitalsForm(ServiceModelForm):
    class Meta:
        model = BaselineVitals
        fields = list(services.VITALS_FIELDS)
        widgets = _dates(("measured_on",))


class TransportForm(ServiceModelForm):
    class Meta:
        model = TransportPlan
        fields = list(services.TRANSPORT_FIELDS)
        widgets = {"escort_phone": forms.TextInput(attrs={"type": "tel"})}


class RemsForm(ServiceModelForm):
    class Meta:
        model = RemsEnrolment
        fields = list(services.REMS_FIELDS)
        widgets = _dates(("enrolled_on",))


class ConsentForm(ServiceModelForm):
    confirm = forms.BooleanField(
        label="The patient read this version, had their questions answered and signed it; "
        "I countersign as the clinician."
    )

    class Meta:
        model = SignedConsent
        fields = list(services.CONSENT_FIELDS)
        widgets = _dates(("patient_signed_on",))

    def data_for_service(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in services.CONSENT_FIELDS}


class ConsentWithdrawForm(forms.Form):
    reason = forms.CharField(max_length=300)


class ConsentTextForm(forms.Form):
    kind = forms.ChoiceField(choices=ConsentKind.choices)
    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 16}), max_length=20000)


class EligibilityCheckForm(forms.Form):
    treatment = forms.ChoiceField(choices=[(c, t.title) for c, t in TREATMENTS.items()])


class OverrideForm(forms.Form):
    treatment = forms.ChoiceField(choices=[(c, t.title) for c, t in TREATMENTS.items()])
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        label="Why the benefit outweighs the risks for this patient",
        help_text="Signed with your name, kept with the decision and shown at every session.",
    )


def measure_form_class(instrument: str) -> type[forms.Form]:
    """A form with one field per item, worded where the instrument is free to reproduce."""
    definition = INSTRUMENTS[instrument]
    fields: dict[str, forms.Field] = {
        "administered_on": forms.DateField(widget=DATE, label="Completed on"),
    }
    for number, item in enumerate(definition.items, start=1):
        label = f"{number}. {item.wording}" if item.wording else f"Item {item.id} (score)"
        if item.kind == "yes_no":
            fields[item.id] = forms.TypedChoiceField(
                label=label,
                choices=[("", "Not asked"), ("yes", "Yes"), ("no", "No")],
                required=False,
                coerce=lambda v: {"yes": True, "no": False}.get(v),
                empty_value=None,
                widget=forms.RadioSelect,
            )
        elif item.wording and all(o.label for o in item.options):
            fields[item.id] = forms.TypedChoiceField(
                label=label,
                choices=[(str(o.value), f"{o.value} – {o.label}") for o in item.options],
                coerce=int,
                widget=forms.RadioSelect,
            )
        else:
            fields[item.id] = forms.IntegerField(
                label=label, min_value=item.min_value, max_value=item.max_value
            )
    return type(f"{instrument}Form", (forms.Form,), fields)


def measure_answers(instrument: str, cleaned: dict[str, Any]) -> dict[str, Any]:
    """Item answers for `score`: yes/no items not asked are left out (C-SSRS skip logic)."""
    definition = INSTRUMENTS[instrument]
    answers: dict[str, Any] = {}
    for item in definition.items:
        value = cleaned.get(item.id)
        if item.kind == "yes_no" and value is None:
            continue
        answers[item.id] = value
    return answers
