"""Page forms of one treatment session. They parse what the nurse typed; the services decide.

Ranges here only stop typing slips early (a 4-digit blood pressure); the clinical rules and the
authoritative ranges live in `services` and `clinical`, whose errors the views put on the form.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from ketaclinic.accounts.choices import Role
from ketaclinic.accounts.models import User
from ketaclinic.controlled_substances.forms import (
    StockChoiceField,
    add_witness_fields,
    attestation,
)
from ketaclinic.controlled_substances.models import Balance
from ketaclinic.controlled_substances.quantities import remainder_mg
from ketaclinic.controlled_substances.signatures import WitnessAttestation
from ketaclinic.core import python_widgets as w
from ketaclinic.treatment_sessions.choices import (
    AdverseEventCode,
    EventOutcome,
    InterventionKind,
    PregnancyStatus,
    Severity,
)

# The widgets and labels write their HTML in Python (core.python_widgets): the workspace shows
# a dozen fields per step and rendered a widget template and a label template for each.
NUMERIC = {"inputmode": "numeric"}
DECIMAL = {"inputmode": "decimal", "step": "any"}


def _int(label: str, low: int, high: int, *, required: bool = False) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=required,
        min_value=low,
        max_value=high,
        widget=w.NumberInput(attrs=NUMERIC),
    )


def _decimal(label: str, low: str, high: str, *, places: int = 2) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        min_value=Decimal(low),
        max_value=Decimal(high),
        max_digits=8,
        decimal_places=places,
        widget=w.NumberInput(attrs=DECIMAL),
    )


def _reason(label: str, *, required: bool = True, rows: int = 2) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=500,
        widget=w.Textarea(attrs={"rows": rows}),
    )


class PrescriberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.signature_name


class PreDoseForm(w.PythonLabels, forms.Form):
    """Same-day weight, pre-dose vital signs and the check-in confirmations."""

    weight_kg = _decimal("Weight today (kg)", "20", "350", places=1)
    systolic_mmhg = _int("Systolic BP (mmHg)", 50, 300, required=True)
    diastolic_mmhg = _int("Diastolic BP (mmHg)", 20, 200, required=True)
    heart_rate_bpm = _int("Heart rate (/min)", 20, 250)
    spo2_pct = _int("SpO₂ (%)", 50, 100)
    respiratory_rate_per_min = _int("Respiratory rate (/min)", 4, 60)
    fasting_confirmed = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Fasting as instructed"
    )
    ride_home_confirmed = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Ride home arranged (no driving today)"
    )
    pregnancy_status = forms.ChoiceField(
        widget=w.Select,
        choices=PregnancyStatus.choices,
        initial=PregnancyStatus.NOT_APPLICABLE,
        label="Pregnancy",
    )
    medications_changed = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Medications changed since the last session"
    )
    medication_changes = _reason("What changed", required=False)
    rems_enrolment_verified = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="REMS enrolment verified (esketamine)"
    )
    prescriber_on_site = PrescriberChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Prescriber on site (esketamine)",
        empty_label="— choose —",
    )

    def __init__(self, *args: Any, clinic_id: int, esketamine: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if esketamine:
            self.fields["prescriber_on_site"].queryset = (  # type: ignore[attr-defined]
                User.objects.filter(
                    memberships__clinic_id=clinic_id,
                    memberships__role=Role.PRESCRIBER,
                    memberships__is_active=True,
                    is_active=True,
                )
                .distinct()
                .order_by("last_name", "first_name", "pk")
            )
        else:
            del self.fields["rems_enrolment_verified"]
            del self.fields["prescriber_on_site"]

    def service_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        on_site = data.get("prescriber_on_site")
        data["prescriber_on_site"] = on_site.pk if on_site is not None else None
        return data


class ReasonForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    reason = _reason("Reason")


class InfusionOrderForm(w.PythonLabels, forms.Form):
    """The IV order; the dose, volume, rate and VTBI are computed from today's weight."""

    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    dose_mg_per_kg = _decimal("Dose (mg/kg)", "0.01", "2.00")
    minutes = _int("Infusion time (minutes)", 1, 240, required=True)
    concentration_mg_per_ml = _decimal("Concentration (mg/mL)", "0.1", "100")


class SecondCheckForm(w.PythonLabels, forms.Form):
    """A second clinician re-enters their password (and code) on this screen."""

    def __init__(self, *args: Any, clinic: Any, actor_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_witness_fields(
            self,
            clinic=clinic,
            actor_id=actor_id,
            prefix="checker",
            label="Second checker",
            help_text="A nurse or prescriber who did not write the order checks it independently.",
        )

    def attestation(self) -> WitnessAttestation | None:
        return attestation(self, "checker")


class DrawForm(w.PythonLabels, forms.Form):
    """The dose drawn from a lot and the remainder of the opened vial wasted, witnessed."""

    dose_mg = _decimal("Dose drawn (mg)", "0.01", "1000")
    waste_remainder = forms.BooleanField(
        widget=w.CheckboxInput,
        required=False,
        initial=True,
        label="Waste the rest of the opened vial(s)",
        help_text="Computed from the vial size; untick to enter the waste yourself.",
    )
    waste_mg = forms.DecimalField(
        label="Waste (mg)",
        required=False,
        min_value=Decimal(0),
        max_digits=9,
        decimal_places=3,
        widget=w.NumberInput(attrs=DECIMAL),
    )

    def __init__(self, *args: Any, clinic: Any, actor_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stock"] = StockChoiceField(
            queryset=Balance.objects.filter(
                clinic=clinic, location__is_active=True, quantity_mg__gt=0
            )
            .select_related("location", "lot__product")
            .order_by("location__name", "lot__expires_on", "lot_id"),
            label="Stock (location · product · lot)",
            empty_label="— choose —",
        )
        self.order_fields(["stock", "dose_mg", "waste_remainder", "waste_mg"])
        add_witness_fields(
            self, clinic=clinic, actor_id=actor_id, help_text="Needed when anything is wasted."
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        stock, dose = data.get("stock"), data.get("dose_mg")
        if stock is not None and dose is not None:
            product = stock.lot.product
            if data.get("waste_remainder") and product.is_vial:
                data["waste_mg"] = remainder_mg(dose, product.mg_per_container)
            elif data.get("waste_mg") is None:
                data["waste_mg"] = Decimal(0)
        return data

    def witness(self) -> WitnessAttestation | None:
        return attestation(self)


class VitalsForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    systolic_mmhg = _int("Systolic (mmHg)", 40, 300)
    diastolic_mmhg = _int("Diastolic (mmHg)", 20, 200)
    heart_rate_bpm = _int("HR (/min)", 20, 250)
    spo2_pct = _int("SpO₂ (%)", 50, 100)
    respiratory_rate_per_min = _int("RR (/min)", 2, 60)
    moaas = _int("MOAA/S (0-5)", 0, 5)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and all(data.get(name) is None for name in self.fields):
            raise forms.ValidationError("Enter at least one measurement.")
        return data


class AlertAckForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    action = _reason("Action taken")


class CadssForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    total = _int("CADSS total (0-92)", 0, 92, required=True)


class AdverseEventForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    code = forms.ChoiceField(
        widget=w.Select, choices=[("", "— choose —"), *AdverseEventCode.choices], label="Event"
    )
    other_text = forms.CharField(
        widget=w.TextInput, required=False, max_length=200, label="Describe (for “Other”)"
    )
    severity = forms.ChoiceField(widget=w.Select, choices=[("", "— choose —"), *Severity.choices])
    outcome = forms.ChoiceField(
        widget=w.Select, choices=[("", "— choose —"), *EventOutcome.choices]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            data.get("code") == AdverseEventCode.OTHER
            and not (data.get("other_text") or "").strip()
        ):
            self.add_error("other_text", "Describe the event.")
        return data


class InterventionForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    kind = forms.ChoiceField(
        widget=w.Select,
        choices=[("", "— choose —"), *InterventionKind.choices],
        label="Intervention",
    )
    detail = forms.CharField(
        widget=w.TextInput,
        required=False,
        max_length=500,
        label="Detail (drug, dose, what was done)",
        help_text="Needed for a drug given, oxygen or other.",
    )


class DischargeForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    sedation_resolved = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Sedation resolved"
    )
    dissociation_resolved = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Dissociation resolved"
    )
    respiratory_depression_resolved = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="No respiratory depression (RR and SpO₂ fine)"
    )
    vitals_acceptable = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Vital signs acceptable"
    )
    escort_present = forms.BooleanField(
        widget=w.CheckboxInput, required=False, label="Escort present"
    )
    escort_name = forms.CharField(
        widget=w.TextInput, required=False, max_length=200, label="Escort's name"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("escort_present") and not (data.get("escort_name") or "").strip():
            self.add_error("escort_name", "Write the escort's name.")
        return data


class SignForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    meaning = forms.CharField(
        widget=w.TextInput,
        max_length=200,
        initial="Reviewed and approved",
        label="Meaning of your signature",
        help_text="Stored with your name, the time and the SHA-256 of the note text.",
    )


class AmendForm(w.PythonLabels, forms.Form):
    static_html = True  # the same empty form on every page (python_widgets.fields_html)

    text = forms.CharField(max_length=4000, label="Amendment", widget=w.Textarea(attrs={"rows": 3}))
