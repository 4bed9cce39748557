"""Page forms. They parse and convert (mL or devices → mg); the services decide and validate."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from ketaclinic.accounts.models import Clinic
from ketaclinic.controlled_substances import selectors
from ketaclinic.controlled_substances.choices import (
    BusinessTime,
    CountPurpose,
    DisposalMethod,
    EntryKind,
    InvestigationKind,
    LocationKind,
    ProductForm,
    Substance,
)
from ketaclinic.controlled_substances.models import (
    Balance,
    Investigation,
    Product,
    StorageLocation,
)
from ketaclinic.controlled_substances.quantities import MAX_ENTRY_MG, q3
from ketaclinic.controlled_substances.signatures import WitnessAttestation
from ketaclinic.core import python_widgets
from ketaclinic.patients.models import Patient

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
UNIT_CHOICES = [("mg", "mg"), ("ml", "mL"), ("containers", "vials / devices")]


def amount_field(label: str, required: bool = True) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=Decimal("0"),
        max_value=MAX_ENTRY_MG,
        decimal_places=3,
        max_digits=12,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )


def to_mg(amount: Decimal, unit: str, product: Product) -> Decimal:
    """An amount as typed, in mg: mL × concentration, or whole containers × mg per container."""
    if unit == "ml":
        if not product.mg_per_ml:
            raise ValidationError("This product is not measured in mL; enter mg or devices.")
        return q3(amount * product.mg_per_ml)
    if unit == "containers":
        if amount != amount.to_integral_value():
            raise ValidationError(f"Enter whole {product.container_word}s.")
        return q3(amount * product.mg_per_container)
    return q3(amount)


class StockChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return selectors.stock_label(obj)


class WitnessChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.signature_name


def add_witness_fields(
    form: forms.BaseForm,
    *,
    clinic: Clinic,
    actor_id: int,
    prefix: str = "witness",
    label: str = "Witness",
    help_text: str = "",
) -> None:
    """Who signs, their password and their authenticator code, typed on this screen."""
    form.fields[prefix] = WitnessChoiceField(
        queryset=selectors.eligible_witnesses(clinic.pk, exclude_user_id=actor_id),
        required=False,
        label=label,
        empty_label="— choose —",
        help_text=help_text,
    )
    form.fields[f"{prefix}_password"] = forms.CharField(
        required=False,
        label=f"{label} password",
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    form.fields[f"{prefix}_otp"] = forms.CharField(
        required=False,
        label=f"{label} authenticator code",
        max_length=10,
        help_text="Only if they use two-step sign-in.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


def attestation(form: forms.BaseForm, prefix: str = "witness") -> WitnessAttestation | None:
    data = form.cleaned_data  # type: ignore[attr-defined]
    user = data.get(prefix)
    if user is None:
        return None
    return WitnessAttestation(
        user=user,
        password=data.get(f"{prefix}_password") or "",
        otp=data.get(f"{prefix}_otp") or "",
    )


class _ClinicForm(forms.Form):
    """A form for one clinic and one signed-in person (witness lists exclude them)."""

    def __init__(self, *args: Any, clinic: Clinic, actor_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.actor_id = actor_id

    def _stock_field(self, *, include_empty: bool = False) -> None:
        qs = Balance.objects.filter(clinic=self.clinic, location__is_active=True).select_related(
            "location", "lot__product"
        )
        if not include_empty:
            qs = qs.filter(quantity_mg__gt=0)
        self.fields["stock"] = StockChoiceField(
            queryset=qs.order_by("location__name", "lot__expires_on", "lot_id"),
            label="Stock (location · product · lot)",
            empty_label="— choose —",
        )
        self.order_fields(["stock", *[n for n in self.fields if n != "stock"]])

    def converted(self, amount_name: str, unit_name: str) -> Decimal | None:
        """The amount in mg, or None after adding a field error."""
        stock = self.cleaned_data.get("stock")
        amount = self.cleaned_data.get(amount_name)
        if stock is None or amount is None:
            return None
        try:
            return to_mg(amount, self.cleaned_data.get(unit_name) or "mg", stock.lot.product)
        except ValidationError as exc:
            self.add_error(amount_name, exc)
            return None


class ReceiveForm(_ClinicForm):
    location = forms.ModelChoiceField(
        queryset=StorageLocation.objects.none(), empty_label="— choose —"
    )  # type: ignore[arg-type]
    product = forms.ModelChoiceField(queryset=Product.objects.none(), empty_label="— choose —")  # type: ignore[arg-type]
    lot_number = forms.CharField(max_length=40)
    expires_on = forms.DateField(label="Expiry date", widget=DATE)
    containers = forms.IntegerField(label="Vials or devices received", min_value=1, max_value=10000)
    supplier_name = forms.CharField(max_length=200)
    supplier_address = forms.CharField(max_length=500)
    supplier_dea_number = forms.CharField(label="Supplier DEA number", max_length=12)
    invoice_number = forms.CharField(label="Invoice or packing slip number", max_length=60)
    invoice_date = forms.DateField(required=False, widget=DATE)
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = selectors.locations(self.clinic)  # type: ignore[attr-defined]
        self.fields["product"].queryset = selectors.products()  # type: ignore[attr-defined]
        add_witness_fields(
            self,
            clinic=self.clinic,
            actor_id=self.actor_id,
            label="Second checker",
            help_text="Optional: a colleague who checked the delivery against the invoice.",
        )


class AdministerForm(_ClinicForm):
    patient_mrn = forms.CharField(label="Patient MRN", max_length=20)
    dose = amount_field("Dose given")
    dose_unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="mg", label="Dose unit")
    waste_remainder = forms.BooleanField(
        required=False,
        initial=True,
        label="Waste the rest of the opened vial(s)",
        help_text="The remainder is computed from the vial size; untick to enter the waste.",
    )
    waste = amount_field("Waste", required=False)
    waste_unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="mg", label="Waste unit")
    session_id = forms.IntegerField(required=False, min_value=1, label="Session number")
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stock_field()
        add_witness_fields(
            self,
            clinic=self.clinic,
            actor_id=self.actor_id,
            help_text="Needed when anything is wasted.",
        )
        self.patient: Patient | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mrn = (data.get("patient_mrn") or "").strip()
        if mrn:
            self.patient = Patient.objects.filter(clinic=self.clinic, mrn__iexact=mrn).first()
            if self.patient is None:
                self.add_error("patient_mrn", "No patient of this clinic has this MRN.")
        dose = self.converted("dose", "dose_unit")
        data["dose_mg"] = dose
        stock = data.get("stock")
        if dose is not None and stock is not None:
            product = stock.lot.product
            if data.get("waste_remainder") and product.is_vial:
                from ketaclinic.controlled_substances.quantities import remainder_mg

                data["waste_mg"] = remainder_mg(dose, product.mg_per_container)
            elif data.get("waste") is not None:
                data["waste_mg"] = self.converted("waste", "waste_unit")
            else:
                data["waste_mg"] = Decimal("0")
        return data


class WasteForm(_ClinicForm):
    amount = amount_field("Amount wasted")
    unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="mg")
    reason = forms.CharField(
        max_length=500, help_text="e.g. dose drawn up but not given; vial broken (breakage)."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stock_field()
        add_witness_fields(self, clinic=self.clinic, actor_id=self.actor_id)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["quantity_mg"] = self.converted("amount", "unit")
        return data


class TransferForm(_ClinicForm):
    to_location = forms.ModelChoiceField(
        queryset=StorageLocation.objects.none(), empty_label="— choose —"
    )  # type: ignore[arg-type]
    amount = amount_field("Amount moved")
    unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="containers")
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, destination_clinic_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stock_field()
        destinations = selectors.transfer_destinations(destination_clinic_ids)
        self.fields["to_location"].queryset = destinations  # type: ignore[attr-defined]
        self.fields["to_location"].label_from_instance = (  # type: ignore[attr-defined]
            lambda loc: f"{loc.clinic.name} · {loc.name}"
        )
        add_witness_fields(
            self,
            clinic=self.clinic,
            actor_id=self.actor_id,
            help_text="Optional for moves within the clinic.",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["quantity_mg"] = self.converted("amount", "unit")
        return data


class DisposeForm(_ClinicForm):
    amount = amount_field("Amount disposed of")
    unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="containers")
    method = forms.ChoiceField(choices=DisposalMethod.choices, widget=forms.RadioSelect)
    reverse_distributor_name = forms.CharField(required=False, max_length=200)
    reverse_distributor_address = forms.CharField(required=False, max_length=500)
    reverse_distributor_dea_number = forms.CharField(required=False, max_length=12)
    document_number = forms.CharField(
        required=False, max_length=60, label="Form 41 or shipping document number"
    )
    destruction_method = forms.CharField(
        required=False,
        max_length=200,
        help_text="On-site destruction: how it was made non-retrievable (21 CFR 1317.90).",
    )
    reason = forms.CharField(required=False, max_length=500, help_text="e.g. expired.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stock_field()
        add_witness_fields(self, clinic=self.clinic, actor_id=self.actor_id, label="Witness 1")
        add_witness_fields(
            self,
            clinic=self.clinic,
            actor_id=self.actor_id,
            prefix="second_witness",
            label="Witness 2",
            help_text="On-site destruction needs two witnesses (Form 41).",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["quantity_mg"] = self.converted("amount", "unit")
        return data


class _InvestigationChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"#{obj.pk} {obj.get_kind_display()} — discovered {obj.discovered_at:%Y-%m-%d}"


class AdjustForm(_ClinicForm):
    direction = forms.ChoiceField(
        choices=[("-", "Remove from the balance"), ("+", "Add to the balance")],
        widget=forms.RadioSelect,
        initial="-",
    )
    amount = amount_field("Amount")
    unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="mg")
    reason = forms.CharField(max_length=500)
    investigation = _InvestigationChoice(
        queryset=Investigation.objects.none(),
        required=False,
        empty_label="— none —",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stock_field(include_empty=True)
        self.fields["investigation"].queryset = Investigation.objects.filter(  # type: ignore[attr-defined]
            clinic=self.clinic, status="open"
        )
        add_witness_fields(self, clinic=self.clinic, actor_id=self.actor_id)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        amount = self.converted("amount", "unit")
        if amount is not None:
            data["quantity_mg"] = amount if data.get("direction") == "+" else -amount
        return data


class LossForm(_ClinicForm):
    amount = amount_field("Amount lost")
    unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="mg")
    kind = forms.ChoiceField(
        choices=[
            (k.value, k.label) for k in InvestigationKind if k != InvestigationKind.UNDETERMINED
        ]
    )
    reason = forms.CharField(max_length=500, help_text="What was found, and how.")
    investigation = _InvestigationChoice(
        queryset=Investigation.objects.none(),
        required=False,
        empty_label="— open a new one —",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stock_field()
        self.fields["investigation"].queryset = Investigation.objects.filter(  # type: ignore[attr-defined]
            clinic=self.clinic, status="open"
        )
        add_witness_fields(self, clinic=self.clinic, actor_id=self.actor_id)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["quantity_mg"] = self.converted("amount", "unit")
        return data


class ReverseForm(_ClinicForm):
    reason = forms.CharField(max_length=500, help_text="What was wrong with the entry.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_witness_fields(self, clinic=self.clinic, actor_id=self.actor_id)


class CountHeaderForm(_ClinicForm):
    purpose = forms.ChoiceField(choices=CountPurpose.choices, initial=CountPurpose.SHIFT)
    business_time = forms.ChoiceField(
        choices=[("", "—"), *BusinessTime.choices],
        required=False,
        help_text="Required for inventories: opening or close of business.",
    )
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_witness_fields(
            self,
            clinic=self.clinic,
            actor_id=self.actor_id,
            prefix="second_counter",
            label="Second counter",
        )


class CountLineForm(forms.Form):
    lot_id = forms.IntegerField(widget=forms.HiddenInput)
    full_containers = forms.IntegerField(min_value=0, max_value=100000, label="Sealed")
    open_ml = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=3,
        label="Open vial (mL)",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    open_is_estimate = forms.BooleanField(required=False, label="Estimated")


CountLineFormSet = forms.formset_factory(CountLineForm, extra=0, max_num=500, validate_max=True)


class InvestigationOpenForm(forms.Form):
    kind = forms.ChoiceField(choices=InvestigationKind.choices)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)


class ClassifyForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (k.value, k.label) for k in InvestigationKind if k != InvestigationKind.UNDETERMINED
        ]
    )
    note = forms.CharField(
        required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )


class NoticeForm(forms.Form):
    sent_at = forms.DateTimeField(
        required=False,
        label="Sent at (leave blank for now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class Form106Form(forms.Form):
    reference = forms.CharField(max_length=60, label="Form 106 confirmation number")
    filed_at = forms.DateTimeField(
        required=False,
        label="Filed at (leave blank for now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class CloseForm(forms.Form):
    resolution = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)


class ProductCreateForm(forms.Form):
    ndc = forms.CharField(label="NDC", max_length=13)
    name = forms.CharField(max_length=200)
    substance = forms.ChoiceField(choices=Substance.choices)
    form = forms.ChoiceField(choices=ProductForm.choices)
    mg_per_ml = forms.DecimalField(
        required=False,
        label="mg per mL (vials)",
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
    )
    ml_per_container = forms.DecimalField(
        required=False,
        label="mL per vial",
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
    )
    mg_per_container = forms.DecimalField(
        required=False,
        label="mg per device (nasal spray)",
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
    )
    containers_per_package = forms.IntegerField(min_value=1, max_value=1000, initial=1)


class LocationCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=LocationKind.choices)


# The filter forms head the ledger and every report page: widgets that write their HTML in
# Python (the same markup as Django's widget templates, a fraction of the cost).
_FILTER_DATE = python_widgets.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class _FilterForm(python_widgets.PythonLabels, forms.Form):
    date_from = forms.DateField(required=False, widget=_FILTER_DATE, label="From")
    date_to = forms.DateField(required=False, widget=_FILTER_DATE, label="To")
    # Plain choices (one small query each), not ModelChoiceFields: those read their options
    # through a server-side cursor, three round trips for a handful of rows on PostgreSQL.
    location = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, widget=python_widgets.Select
    )
    product = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, widget=python_widgets.Select
    )
    lot_number = forms.CharField(
        required=False, max_length=40, label="Lot number", widget=python_widgets.TextInput
    )
    patient_mrn = forms.CharField(
        required=False, max_length=20, label="Patient MRN", widget=python_widgets.TextInput
    )

    def __init__(
        self,
        *args: Any,
        clinic: Clinic,
        with_patient: bool = True,
        choices: Sequence[list[tuple[int, str]]] | None = None,
        **kw: Any,
    ) -> None:
        """`choices`: the locations and products, when the page read them already (with
        selectors.filter_choices_reads, together with its other reads)."""
        super().__init__(*args, **kw)
        self.clinic = clinic
        locations, products = (
            choices
            if choices is not None
            else (selectors.location_choices(clinic.pk), selectors.product_choices())
        )
        self.fields["location"].choices = [("", "All"), *locations]  # type: ignore[attr-defined]
        self.fields["product"].choices = [("", "All"), *products]  # type: ignore[attr-defined]
        if not with_patient:
            del self.fields["patient_mrn"]
        self.patient: Patient | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        mrn = (data.get("patient_mrn") or "").strip()
        if mrn:
            self.patient = Patient.objects.filter(clinic=self.clinic, mrn__iexact=mrn).first()
            if self.patient is None:
                self.add_error("patient_mrn", "No patient of this clinic has this MRN.")
        return data

    def entry_filter(self, kind: str = "") -> selectors.EntryFilter:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return selectors.EntryFilter(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            kind=kind or data.get("kind") or "",
            location_id=data.get("location"),
            product_id=data.get("product"),
            lot_number=data.get("lot_number") or "",
            patient_id=self.patient.pk if self.patient else None,
        )


class LedgerFilterForm(_FilterForm):
    kind = forms.ChoiceField(
        choices=[("", "All"), *EntryKind.choices], required=False, widget=python_widgets.Select
    )


class ReportFilterForm(_FilterForm):
    pass
