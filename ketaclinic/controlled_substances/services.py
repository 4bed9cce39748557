"""The one write path for controlled substances: permission, DEA rule, signatures, write, audit.

Every function here checks the actor's permission at the clinic, validates the input (bad input
raises ValidationError keyed by field and writes nothing), verifies second signers *before* the
transaction (so failed witness attempts stay audited), then posts ledger entries through
`ledger.post` in one transaction together with their audit events.

Other features call `administration_record` to draw a dose and record the waste of the remainder
in one transaction; it can run inside the caller's own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import diff, record_event
from ketaclinic.controlled_substances import dea_clocks, ledger
from ketaclinic.controlled_substances.choices import (
    INVENTORY_PURPOSES,
    REPORTABLE_KINDS,
    BusinessTime,
    CountPurpose,
    DisposalMethod,
    EntryKind,
    InvestigationKind,
    InvestigationStatus,
    LocationKind,
    ProductForm,
    SignatureMeaning,
    Substance,
)
from ketaclinic.controlled_substances.models import (
    Balance,
    Count,
    CountLine,
    Investigation,
    LedgerEntry,
    LedgerHead,
    Lot,
    Product,
    StorageLocation,
)
from ketaclinic.controlled_substances.quantities import (
    MAX_ENTRY_MG,
    ZERO,
    fmt_mg,
    ml_from_mg,
    q3,
    text,
)
from ketaclinic.controlled_substances.signatures import Signature, WitnessAttestation, witness_sign
from ketaclinic.core import clock

# A late entry (documented after the fact) may be dated back this far, never into the future.
LATE_ENTRY_WINDOW = timedelta(hours=24)
FUTURE_SKEW = timedelta(minutes=2)
_NDC = re.compile(r"^(\d{4}-\d{4}-\d{2}|\d{5}-\d{3}-\d{2}|\d{5}-\d{4}-\d{1,2})$")
_DEA = re.compile(r"^[A-Z][A-Z9]\d{7}$")


# --- validation helpers ---------------------------------------------------------------------


def _require(actor: Any, permission: str, clinic_id: int) -> None:
    if not access.has_permission(actor, permission, clinic_id):
        raise PermissionDenied


def _text(value: Any, field: str, *, max_length: int, required: bool = False) -> str:
    cleaned = "" if value is None else str(value).strip()
    if "\x00" in cleaned:
        raise ValidationError({field: ["Remove the null character from this field."]})
    if required and not cleaned:
        raise ValidationError({field: ["This field is required."]})
    if len(cleaned) > max_length:
        raise ValidationError({field: [f"Use at most {max_length} characters."]})
    return cleaned


def _amount(value: Any, field: str, *, allow_zero: bool = False, signed: bool = False) -> Decimal:
    try:
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({field: ["Enter a number of mg."]}) from None
    amount = q3(amount)
    if abs(amount) > MAX_ENTRY_MG:
        raise ValidationError({field: [f"Check this amount: more than {MAX_ENTRY_MG:,} mg."]})
    if amount == 0 and not allow_zero:
        raise ValidationError({field: ["Enter an amount more than 0 mg."]})
    if amount < 0 and not signed:
        raise ValidationError({field: ["Enter a positive amount."]})
    return amount


def dea_number_is_valid(number: str) -> bool:
    """DEA registration number: 2 letters and 7 digits, the last a check digit."""
    if not _DEA.match(number):
        return False
    d = [int(c) for c in number[2:]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


def _dea_number(value: Any, field: str) -> str:
    number = _text(value, field, max_length=9, required=True).upper().replace(" ", "")
    if not dea_number_is_valid(number):
        raise ValidationError(
            {field: ["Enter a valid DEA number: 2 letters and 7 digits (check digit included)."]}
        )
    return number


def _clinic_today(clinic: Clinic) -> date:
    return clock.today_in(clinic.timezone)


def _check_location(location: StorageLocation, clinic: Clinic, field: str = "location") -> None:
    if location.clinic_id != clinic.pk:
        raise ValidationError({field: ["Choose a storage location of this clinic."]})
    if not location.is_active:
        raise ValidationError({field: [f"{location.name} is no longer in use."]})


def _check_not_expired(lot: Lot, clinic: Clinic, field: str = "lot") -> None:
    if lot.expires_on < _clinic_today(clinic):
        raise ValidationError(
            {
                field: [
                    f"Lot {lot.lot_number} expired on {lot.expires_on:%Y-%m-%d}. Dispose of "
                    "expired stock instead of using it."
                ]
            }
        )


def _occurred_at(value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None:
        raise ValidationError({"occurred_at": ["Give the time with its time zone."]})
    if value > now + FUTURE_SKEW:
        raise ValidationError({"occurred_at": ["The time cannot be in the future."]})
    if value < now - LATE_ENTRY_WINDOW:
        raise ValidationError(
            {
                "occurred_at": [
                    "Entries can be dated back at most 24 hours; record older events "
                    "as an adjustment with the reason."
                ]
            }
        )
    return value


def _derived(product: Product, quantity_mg: Decimal) -> tuple[Decimal | None, int | None]:
    """(mL, whole containers) for a signed mg amount, where they are meaningful."""
    volume = ml_from_mg(quantity_mg, product.mg_per_ml) if product.mg_per_ml else None
    containers = quantity_mg / product.mg_per_container
    units = int(containers) if containers == containers.to_integral_value() else None
    return volume, units


def _check_whole_devices(product: Product, quantity: Decimal, field: str) -> None:
    """Nasal spray devices are single-use: they move, are given and are counted whole."""
    if not product.is_vial and quantity % product.mg_per_container:
        raise ValidationError(
            {
                field: [
                    f"Nasal spray devices are whole: use multiples of "
                    f"{fmt_mg(product.mg_per_container)} mg."
                ]
            }
        )


def _sign_entry(entry: LedgerEntry, signature: Signature | None, *, second: bool = False) -> None:
    if signature is None:
        return
    prefix = "second_witness" if second else "witness"
    setattr(entry, prefix, signature.user)
    setattr(entry, f"{prefix}_name", signature.name)
    setattr(entry, f"{prefix}_signed_at", signature.signed_at)
    setattr(entry, f"{prefix}_meaning", signature.meaning)


def _draft(
    *,
    kind: str,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    lot: Lot,
    quantity_mg: Decimal,
    occurred_at: datetime | None = None,
    **fields: Any,
) -> LedgerEntry:
    volume, units = _derived(lot.product, quantity_mg)
    entry = LedgerEntry(
        kind=kind,
        actor=actor,
        actor_name=actor.signature_name,
        clinic=clinic,
        location=location,
        lot=lot,
        quantity_mg=quantity_mg,
        volume_ml=volume,
        units=units,
    )
    if occurred_at is not None:
        entry.occurred_at = occurred_at
    for name, value in fields.items():
        setattr(entry, name, value)
    return entry


def patient_address(patient: Any) -> str:
    parts = [patient.address_line1, patient.address_line2]
    place = " ".join(p for p in (patient.state, patient.postal_code) if p)
    parts.append(", ".join(p for p in (patient.city, place) if p))
    return ", ".join(p.strip() for p in parts if p and p.strip())


def clinic_address(clinic: Clinic) -> str:
    return patient_address(clinic)


# --- catalogue ------------------------------------------------------------------------------


def product_create(
    *,
    actor: Any,
    ndc: str,
    name: str,
    substance: str,
    form: str,
    mg_per_ml: Any = None,
    ml_per_container: Any = None,
    mg_per_container: Any = None,
    containers_per_package: int = 1,
) -> Product:
    """Add a product to the installation's catalogue (clinic administrators)."""
    if not access.has_permission(actor, "cs.manage"):
        raise PermissionDenied
    ndc = _text(ndc, "ndc", max_length=13, required=True)
    if not _NDC.match(ndc):
        raise ValidationError({"ndc": ["Enter the NDC with dashes, e.g. 12345-678-90."]})
    if Product.objects.filter(ndc=ndc).exists():
        raise ValidationError({"ndc": ["A product with this NDC is already in the catalogue."]})
    name = _text(name, "name", max_length=200, required=True)
    if substance not in Substance.values:
        raise ValidationError({"substance": ["Choose ketamine or esketamine."]})
    if form not in ProductForm.values:
        raise ValidationError({"form": ["Choose vial or nasal spray device."]})
    if not isinstance(containers_per_package, int) or not 1 <= containers_per_package <= 1000:
        raise ValidationError({"containers_per_package": ["Enter a whole number from 1 to 1000."]})
    product = Product(
        ndc=ndc,
        name=name,
        substance=substance,
        form=form,
        containers_per_package=containers_per_package,
    )
    if form == ProductForm.VIAL:
        product.mg_per_ml = _amount(mg_per_ml, "mg_per_ml")
        product.ml_per_container = _amount(ml_per_container, "ml_per_container")
        product.mg_per_container = q3(product.mg_per_ml * product.ml_per_container)
    else:
        product.mg_per_container = _amount(mg_per_container, "mg_per_container")
    with transaction.atomic():
        product.save(force_insert=True)
        record_event(
            action=Action.CREATE,
            user=actor,
            obj=product,
            changes={
                "ndc": ndc,
                "name": name,
                "form": form,
                "mg_per_container": text(product.mg_per_container),
            },
        )
    return product


def location_create(*, actor: Any, clinic: Clinic, name: str, kind: str) -> StorageLocation:
    _require(actor, "cs.manage", clinic.pk)
    name = _text(name, "name", max_length=100, required=True)
    if kind not in LocationKind.values:
        raise ValidationError({"kind": ["Choose safe or medication cart."]})
    if StorageLocation.objects.filter(clinic=clinic, name__iexact=name).exists():
        raise ValidationError({"name": ["This clinic already has a location with this name."]})
    with transaction.atomic():
        location = StorageLocation.objects.create(clinic=clinic, name=name, kind=kind)
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic=clinic,
            obj=location,
            changes={"name": name, "kind": kind},
        )
    return location


# --- receive --------------------------------------------------------------------------------


def receipt_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    product: Product,
    lot_number: str,
    expires_on: date,
    containers: int,
    supplier_name: str,
    supplier_address: str,
    supplier_dea_number: str,
    invoice_number: str,
    invoice_date: date | None = None,
    witness: WitnessAttestation | None = None,
    note: str = "",
) -> LedgerEntry:
    """Receive sealed containers on the supplier's invoice (CIII: no Form 222, 1304.22(c)(2))."""
    _require(actor, "cs.stock", clinic.pk)
    _check_location(location, clinic)
    if not product.is_active:
        raise ValidationError({"product": ["This product is no longer in the catalogue."]})
    lot_number = _text(lot_number, "lot_number", max_length=40, required=True).upper()
    if not isinstance(expires_on, date):
        raise ValidationError({"expires_on": ["Enter the expiry date."]})
    if expires_on < _clinic_today(clinic):
        raise ValidationError({"expires_on": ["This lot has already expired; do not receive it."]})
    if (
        not isinstance(containers, int)
        or isinstance(containers, bool)
        or not 1 <= containers <= 10000
    ):
        raise ValidationError(
            {"containers": ["Enter the number of vials or devices (1 to 10000)."]}
        )
    fields: dict[str, Any] = {
        "counterparty_name": _text(supplier_name, "supplier_name", max_length=200, required=True),
        "counterparty_address": _text(
            supplier_address, "supplier_address", max_length=500, required=True
        ),
        "counterparty_dea_number": _dea_number(supplier_dea_number, "supplier_dea_number"),
        "document_number": _text(invoice_number, "invoice_number", max_length=60, required=True),
        "document_date": invoice_date,
        "reason": _text(note, "note", max_length=500),
    }
    if invoice_date is not None and invoice_date > _clinic_today(clinic):
        raise ValidationError({"invoice_date": ["The invoice date cannot be in the future."]})
    existing = Lot.objects.filter(product=product, lot_number=lot_number).first()
    if existing is not None and existing.expires_on != expires_on:
        raise ValidationError(
            {
                "expires_on": [
                    f"Lot {lot_number} is already recorded with expiry "
                    f"{existing.expires_on:%Y-%m-%d}. Check the label."
                ]
            }
        )
    signature = None
    if witness is not None:
        signature = witness_sign(
            witness, actor=actor, clinic_id=clinic.pk, meaning=SignatureMeaning.WITNESSED_RECEIPT
        )
    now = clock.now()
    with transaction.atomic():
        lot, _ = Lot.objects.get_or_create(
            product=product, lot_number=lot_number, defaults={"expires_on": expires_on}
        )
        entry = _draft(
            kind=EntryKind.RECEIVE,
            actor=actor,
            clinic=clinic,
            location=location,
            lot=lot,
            quantity_mg=q3(containers * product.mg_per_container),
            **fields,
        )
        _sign_entry(entry, signature)
        ledger.post([entry], at=now)
    return entry


# --- administer and waste -------------------------------------------------------------------


@dataclass(frozen=True)
class AdministrationRecord:
    """What one dose drew from stock: the administration and, when any was left, its waste."""

    administration: LedgerEntry
    waste: LedgerEntry | None

    @property
    def dispensed_mg(self) -> Decimal:
        """dispensed = administered + wasted (clinical.md §8)."""
        wasted = -self.waste.quantity_mg if self.waste else ZERO
        return -self.administration.quantity_mg + wasted


def _check_patient(patient: Any, clinic: Clinic) -> tuple[str, str]:
    if patient is None or patient.clinic_id != clinic.pk:
        raise ValidationError({"patient": ["Choose a patient of this clinic."]})
    address = patient_address(patient)
    if not patient.address_line1 or not patient.city:
        raise ValidationError(
            {
                "patient": [
                    f"Record {patient.full_name}'s address first: the DEA administration "
                    "record needs the patient's name and address (21 CFR 1304.22(c))."
                ]
            }
        )
    return patient.full_name, address


def administration_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    lot: Lot,
    patient: Any,
    dose_mg: Any,
    waste_mg: Any = ZERO,
    witness: WitnessAttestation | None = None,
    session_id: int | None = None,
    occurred_at: datetime | None = None,
    note: str = "",
) -> AdministrationRecord:
    """Draw a dose for a patient and waste what is left, in one transaction.

    The actor is the person administering (1304.22(c)). A waste needs a witness who signs here.
    Refuses, writing nothing, when dose + waste is more than is on hand at the location and lot.
    """
    _require(actor, "cs.record", clinic.pk)
    _check_location(location, clinic)
    _check_not_expired(lot, clinic)
    name, address = _check_patient(patient, clinic)
    dose = _amount(dose_mg, "dose_mg")
    waste = _amount(waste_mg, "waste_mg", allow_zero=True)
    product = lot.product
    _check_whole_devices(product, dose, "dose_mg")
    _check_whole_devices(product, waste, "waste_mg")
    if session_id is not None and (not isinstance(session_id, int) or session_id < 1):
        raise ValidationError({"session_id": ["Not a session id."]})
    note = _text(note, "note", max_length=500)
    now = clock.now()
    when = _occurred_at(occurred_at, now)
    signature = None
    if waste > 0:
        signature = witness_sign(
            witness, actor=actor, clinic_id=clinic.pk, meaning=SignatureMeaning.WITNESSED_WASTE
        )
    patient_fields = {
        "patient": patient,
        "patient_name": name,
        "patient_address": address,
        "treatment_session_id": session_id,
    }
    administration = _draft(
        kind=EntryKind.ADMINISTER,
        actor=actor,
        clinic=clinic,
        location=location,
        lot=lot,
        quantity_mg=-dose,
        occurred_at=when,
        reason=note,
        **patient_fields,
    )
    drafts = [administration]
    waste_entry = None
    if waste > 0:
        waste_entry = _draft(
            kind=EntryKind.WASTE,
            actor=actor,
            clinic=clinic,
            location=location,
            lot=lot,
            quantity_mg=-waste,
            occurred_at=when,
            related_entry=administration,
            reason="Remainder after administration",
            **patient_fields,
        )
        _sign_entry(waste_entry, signature)
        drafts.append(waste_entry)
    ledger.post(drafts, at=now, shortage_field="dose_mg")
    return AdministrationRecord(administration, waste_entry)


def waste_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    lot: Lot,
    waste_mg: Any,
    reason: str,
    witness: WitnessAttestation | None,
) -> LedgerEntry:
    """Waste not tied to a dose: a drawn-up dose not given, a broken vial (witnessed breakage)."""
    _require(actor, "cs.record", clinic.pk)
    _check_location(location, clinic)
    waste = _amount(waste_mg, "waste_mg")
    _check_whole_devices(lot.product, waste, "waste_mg")
    reason = _text(reason, "reason", max_length=500, required=True)
    signature = witness_sign(
        witness, actor=actor, clinic_id=clinic.pk, meaning=SignatureMeaning.WITNESSED_WASTE
    )
    now = clock.now()
    entry = _draft(
        kind=EntryKind.WASTE,
        actor=actor,
        clinic=clinic,
        location=location,
        lot=lot,
        quantity_mg=-waste,
        reason=reason,
    )
    _sign_entry(entry, signature)
    ledger.post([entry], at=now, shortage_field="waste_mg")
    return entry


# --- transfer, dispose, adjust, loss --------------------------------------------------------


def transfer_record(
    *,
    actor: Any,
    clinic: Clinic,
    from_location: StorageLocation,
    to_location: StorageLocation,
    lot: Lot,
    quantity_mg: Any,
    reason: str = "",
    witness: WitnessAttestation | None = None,
) -> tuple[LedgerEntry, LedgerEntry]:
    """Move stock between locations; both sides are recorded in one transaction.

    Within a clinic any stock handler may move it (safe ↔ cart). Between clinics (two DEA
    registrations) only someone who manages both may, and each side names the other registrant.
    """
    _check_location(from_location, clinic, "from_location")
    to_clinic = to_location.clinic
    cross_clinic = to_clinic.pk != clinic.pk
    if cross_clinic:
        _require(actor, "cs.manage", clinic.pk)
        if not access.has_permission(actor, "cs.manage", to_clinic.pk):
            raise ValidationError({"to_location": ["You can only transfer to clinics you manage."]})
    else:
        _require(actor, "cs.stock", clinic.pk)
    if not to_location.is_active:
        raise ValidationError({"to_location": [f"{to_location.name} is no longer in use."]})
    if to_location.pk == from_location.pk:
        raise ValidationError({"to_location": ["Choose a different location to move stock to."]})
    quantity = _amount(quantity_mg, "quantity_mg")
    _check_whole_devices(lot.product, quantity, "quantity_mg")
    reason = _text(reason, "reason", max_length=500)
    signature = None
    if witness is not None:
        signature = witness_sign(
            witness, actor=actor, clinic_id=clinic.pk, meaning=SignatureMeaning.WITNESSED_TRANSFER
        )
    now = clock.now()
    out_fields: dict[str, Any] = {"reason": reason}
    in_fields: dict[str, Any] = {"reason": reason}
    if cross_clinic:
        out_fields |= _registrant_fields(to_clinic)
        in_fields |= _registrant_fields(clinic)
    out = _draft(
        kind=EntryKind.TRANSFER_OUT,
        actor=actor,
        clinic=clinic,
        location=from_location,
        lot=lot,
        quantity_mg=-quantity,
        **out_fields,
    )
    _sign_entry(out, signature)
    incoming = _draft(
        kind=EntryKind.TRANSFER_IN,
        actor=actor,
        clinic=to_clinic,
        location=to_location,
        lot=lot,
        quantity_mg=quantity,
        related_entry=out,
        **in_fields,
    )
    _sign_entry(incoming, signature)
    ledger.post([out, incoming], at=now, shortage_field="quantity_mg")
    return out, incoming


def _registrant_fields(clinic: Clinic) -> dict[str, Any]:
    return {
        "counterparty_name": clinic.name,
        "counterparty_address": clinic_address(clinic),
        "counterparty_dea_number": clinic.dea_registration_number,
    }


def disposal_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    lot: Lot,
    quantity_mg: Any,
    method: str,
    witness: WitnessAttestation | None,
    second_witness: WitnessAttestation | None = None,
    reverse_distributor_name: str = "",
    reverse_distributor_address: str = "",
    reverse_distributor_dea_number: str = "",
    document_number: str = "",
    destruction_method: str = "",
    reason: str = "",
) -> LedgerEntry:
    """Dispose of expired or unwanted stock (21 CFR 1317; clinical.md §10 rule 23).

    Only two ways: hand it to a reverse distributor (one witness to the handover), or destroy it
    on site, recorded on DEA Form 41 with two witnesses. Waste after administration is never a
    disposal: it does not go on Form 41.
    """
    _require(actor, "cs.manage", clinic.pk)
    _check_location(location, clinic)
    quantity = _amount(quantity_mg, "quantity_mg")
    _check_whole_devices(lot.product, quantity, "quantity_mg")
    reason = _text(reason, "reason", max_length=500)
    document_number = _text(document_number, "document_number", max_length=60)
    fields: dict[str, Any] = {"reason": reason, "document_number": document_number}
    if method == DisposalMethod.REVERSE_DISTRIBUTOR:
        fields |= {
            "counterparty_name": _text(
                reverse_distributor_name, "reverse_distributor_name", max_length=200, required=True
            ),
            "counterparty_address": _text(
                reverse_distributor_address,
                "reverse_distributor_address",
                max_length=500,
                required=True,
            ),
            "counterparty_dea_number": _dea_number(
                reverse_distributor_dea_number, "reverse_distributor_dea_number"
            ),
        }
        meaning = SignatureMeaning.WITNESSED_HANDOVER
    elif method == DisposalMethod.ONSITE_DESTRUCTION:
        fields["destruction_method"] = _text(
            destruction_method, "destruction_method", max_length=200, required=True
        )
        meaning = SignatureMeaning.WITNESSED_DESTRUCTION
    else:
        raise ValidationError({"method": ["Choose reverse distributor or on-site destruction."]})
    first = witness_sign(witness, actor=actor, clinic_id=clinic.pk, meaning=meaning)
    second = None
    if method == DisposalMethod.ONSITE_DESTRUCTION:
        second = witness_sign(
            second_witness,
            actor=actor,
            clinic_id=clinic.pk,
            meaning=meaning,
            prefix="second_witness",
            not_same_as=(first.user,),
        )
    now = clock.now()
    entry = _draft(
        kind=EntryKind.DISPOSE,
        actor=actor,
        clinic=clinic,
        location=location,
        lot=lot,
        quantity_mg=-quantity,
        disposal_method=method,
        **fields,
    )
    _sign_entry(entry, first)
    _sign_entry(entry, second, second=True)
    ledger.post([entry], at=now, shortage_field="quantity_mg")
    return entry


def _check_investigation(investigation: Investigation | None, clinic: Clinic) -> None:
    if investigation is None:
        return
    if investigation.clinic_id != clinic.pk:
        raise ValidationError({"investigation": ["Choose an investigation of this clinic."]})
    if investigation.status != InvestigationStatus.OPEN:
        raise ValidationError({"investigation": ["This investigation is closed."]})


def adjustment_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    lot: Lot,
    quantity_mg: Any,
    reason: str,
    witness: WitnessAttestation | None,
    count: Count | None = None,
    investigation: Investigation | None = None,
) -> LedgerEntry:
    """Correct the balance to what is physically there (+ or −), with the reason and a witness."""
    _require(actor, "cs.manage", clinic.pk)
    _check_location(location, clinic)
    quantity = _amount(quantity_mg, "quantity_mg", signed=True)
    _check_whole_devices(lot.product, quantity, "quantity_mg")
    reason = _text(reason, "reason", max_length=500, required=True)
    if count is not None and (count.clinic_id != clinic.pk or count.location_id != location.pk):
        raise ValidationError({"count": ["Choose a count of this location."]})
    _check_investigation(investigation, clinic)
    signature = witness_sign(
        witness, actor=actor, clinic_id=clinic.pk, meaning=SignatureMeaning.WITNESSED_ADJUSTMENT
    )
    now = clock.now()
    entry = _draft(
        kind=EntryKind.ADJUST,
        actor=actor,
        clinic=clinic,
        location=location,
        lot=lot,
        quantity_mg=quantity,
        reason=reason,
        count=count,
        investigation=investigation,
    )
    _sign_entry(entry, signature)
    ledger.post([entry], at=now, shortage_field="quantity_mg")
    return entry


def loss_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    lot: Lot,
    quantity_mg: Any,
    kind: str,
    reason: str,
    witness: WitnessAttestation | None,
    investigation: Investigation | None = None,
    discovered_at: datetime | None = None,
) -> LedgerEntry:
    """Write off stock lost or stolen. Without an open investigation, one is opened (DEA clocks)."""
    _require(actor, "cs.manage", clinic.pk)
    _check_location(location, clinic)
    quantity = _amount(quantity_mg, "quantity_mg")
    _check_whole_devices(lot.product, quantity, "quantity_mg")
    reason = _text(reason, "reason", max_length=500, required=True)
    if kind not in {
        InvestigationKind.THEFT,
        InvestigationKind.SIGNIFICANT_LOSS,
        InvestigationKind.MINOR,
    }:
        raise ValidationError({"kind": ["Choose theft, significant loss or minor discrepancy."]})
    _check_investigation(investigation, clinic)
    now = clock.now()
    discovered = _occurred_at(discovered_at, now) if discovered_at else now
    signature = witness_sign(
        witness, actor=actor, clinic_id=clinic.pk, meaning=SignatureMeaning.WITNESSED_LOSS
    )
    with transaction.atomic():
        if investigation is None:
            investigation = _investigation_create(
                actor=actor,
                clinic=clinic,
                kind=kind,
                discovered_at=discovered,
                description=reason,
                discrepancy_mg=-quantity,
                now=now,
            )
        entry = _draft(
            kind=EntryKind.LOSS,
            actor=actor,
            clinic=clinic,
            location=location,
            lot=lot,
            quantity_mg=-quantity,
            reason=reason,
            investigation=investigation,
        )
        _sign_entry(entry, signature)
        ledger.post([entry], at=now, shortage_field="quantity_mg")
    return entry


# --- corrections ----------------------------------------------------------------------------


def _transfer_pair(entry: LedgerEntry) -> list[LedgerEntry]:
    if entry.kind == EntryKind.TRANSFER_IN and entry.related_entry_id:
        return [
            entry,
            LedgerEntry.objects.select_related("lot__product", "location", "clinic").get(
                pk=entry.related_entry_id
            ),
        ]
    if entry.kind == EntryKind.TRANSFER_OUT:
        incoming = (
            LedgerEntry.objects.select_related("lot__product", "location", "clinic")
            .filter(kind=EntryKind.TRANSFER_IN, related_entry=entry)
            .first()
        )
        return [incoming, entry] if incoming else [entry]
    return [entry]


def entry_reverse(
    *, actor: Any, entry: LedgerEntry, reason: str, witness: WitnessAttestation | None
) -> list[LedgerEntry]:
    """Correct a mistaken entry with a reversing entry that points at it (never an edit).

    Clinic administrators may reverse any entry of their clinic; others only their own. Both
    sides of a transfer are reversed together, destination first.
    """
    originals = _transfer_pair(entry)
    for original in originals:
        own = original.actor_id == getattr(actor, "pk", None) and (
            access.has_permission(actor, "cs.record", original.clinic_id)
            or access.has_permission(actor, "cs.stock", original.clinic_id)
        )
        if not (own or access.has_permission(actor, "cs.manage", original.clinic_id)):
            raise PermissionDenied
        if original.kind == EntryKind.REVERSAL:
            raise ValidationError(
                {
                    "__all__": [
                        "A reversal cannot itself be reversed; record the correct entry instead."
                    ]
                }
            )
        if LedgerEntry.objects.filter(reverses=original).exists():
            raise ValidationError({"__all__": [f"Entry #{original.seq} is already reversed."]})
    reason = _text(reason, "reason", max_length=500, required=True)
    signature = witness_sign(
        witness,
        actor=actor,
        clinic_id=entry.clinic_id,
        meaning=SignatureMeaning.WITNESSED_REVERSAL,
    )
    now = clock.now()
    drafts = []
    for original in originals:
        reversal = LedgerEntry(
            kind=EntryKind.REVERSAL,
            actor=actor,
            actor_name=actor.signature_name,
            clinic=original.clinic,
            location=original.location,
            lot=original.lot,
            quantity_mg=-original.quantity_mg,
            volume_ml=-original.volume_ml if original.volume_ml is not None else None,
            units=-original.units if original.units is not None else None,
            patient_id=original.patient_id,
            patient_name=original.patient_name,
            patient_address=original.patient_address,
            treatment_session_id=original.treatment_session_id,
            reverses=original,
            reason=reason,
        )
        _sign_entry(reversal, signature)
        drafts.append(reversal)
    ledger.post(drafts, at=now, shortage_field="__all__")
    return drafts


# --- counts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountLineInput:
    """What the counters found of one lot: sealed containers, and an open vial's contents."""

    lot: Lot
    full_containers: int
    open_ml: Decimal = ZERO
    open_is_estimate: bool = False


def _counted_mg(line: CountLineInput, index: int) -> tuple[Decimal, Decimal]:
    product = line.lot.product
    field = f"lines.{index}"
    if not isinstance(line.full_containers, int) or not 0 <= line.full_containers <= 100000:
        raise ValidationError({field: ["Enter the number of sealed containers (0 or more)."]})
    open_ml = _amount(line.open_ml, field, allow_zero=True)
    if open_ml and not product.is_vial:
        raise ValidationError({field: ["Nasal spray devices are counted whole."]})
    if product.ml_per_container is not None and open_ml >= product.ml_per_container:
        raise ValidationError(
            {
                field: [
                    "An open vial holds less than a full one; count full "
                    "vials as sealed containers."
                ]
            }
        )
    counted = line.full_containers * product.mg_per_container
    if open_ml and product.mg_per_ml:
        counted += open_ml * product.mg_per_ml
    return q3(counted), open_ml


def count_record(
    *,
    actor: Any,
    clinic: Clinic,
    location: StorageLocation,
    purpose: str,
    lines: Sequence[CountLineInput],
    second_counter: WitnessAttestation | None,
    business_time: str = "",
    note: str = "",
) -> Count:
    """Two people count a location; any difference from the ledger opens an investigation.

    Every lot the ledger says is there must be counted. Initial, biennial and annual inventories
    (21 CFR 1304.11) also say whether they were taken at the opening or close of business.
    """
    _require(actor, "cs.stock", clinic.pk)
    _check_location(location, clinic)
    if purpose not in CountPurpose.values:
        raise ValidationError({"purpose": ["Choose what kind of count this is."]})
    if purpose in INVENTORY_PURPOSES:
        if business_time not in BusinessTime.values:
            raise ValidationError(
                {
                    "business_time": [
                        "Say whether the inventory is taken at the opening or close "
                        "of business (21 CFR 1304.11(a))."
                    ]
                }
            )
    elif business_time and business_time not in BusinessTime.values:
        raise ValidationError({"business_time": ["Choose opening or close of business."]})
    note = _text(note, "note", max_length=500)
    seen: set[int] = set()
    counted: list[tuple[CountLineInput, Decimal, Decimal]] = []
    for index, line in enumerate(lines):
        if line.lot.pk in seen:
            raise ValidationError({f"lines.{index}": ["This lot is counted twice."]})
        seen.add(line.lot.pk)
        counted_mg, open_ml = _counted_mg(line, index)
        counted.append((line, counted_mg, open_ml))
    signature = witness_sign(
        second_counter,
        actor=actor,
        clinic_id=clinic.pk,
        meaning=SignatureMeaning.SECOND_COUNTER,
        prefix="second_counter",
    )
    now = clock.now()
    with transaction.atomic():
        # Lock the location's balances: nothing moves while the count is compared with them.
        balances = {
            b.lot_id: b
            for b in Balance.objects.select_for_update()
            .filter(location=location)
            .select_related("lot")
            .order_by("lot_id")
        }
        missing = [b.lot for b in balances.values() if b.quantity_mg > 0 and b.lot_id not in seen]
        if missing:
            names = ", ".join(lot.lot_number for lot in missing)
            raise ValidationError({"lines": [f"Count every lot on hand here; missing: {names}."]})
        head = LedgerHead.objects.filter(pk=1).first()
        count = Count(
            clinic=clinic,
            location=location,
            purpose=purpose,
            business_time=business_time,
            counted_at=now,
            ledger_seq=head.seq if head else 0,
            counted_by=actor,
            counted_by_name=actor.signature_name,
            second_counter=signature.user,
            second_counter_name=signature.name,
            second_signed_at=signature.signed_at,
            note=note,
        )
        count_lines = []
        for line, counted_mg, open_ml in counted:
            balance = balances.get(line.lot.pk)
            count_lines.append(
                CountLine(
                    lot=line.lot,
                    expected_mg=balance.quantity_mg if balance else ZERO,
                    counted_mg=counted_mg,
                    full_containers=line.full_containers,
                    open_ml=open_ml,
                    open_is_estimate=bool(line.open_is_estimate and open_ml),
                )
            )
        count.has_discrepancy = any(cl.counted_mg != cl.expected_mg for cl in count_lines)
        count.content_hash = ledger.count_hash(count, count_lines)
        count.save(force_insert=True)
        for cl in count_lines:
            cl.count = count
        CountLine.objects.bulk_create(count_lines)
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic=clinic,
            obj=count,
            changes={
                "purpose": purpose,
                "location_id": location.pk,
                "second_counter_id": signature.user.pk,
                "content_hash": count.content_hash,
                "lines": {
                    cl.lot_id: [text(cl.expected_mg), text(cl.counted_mg)] for cl in count_lines
                },
            },
        )
        if count.has_discrepancy:
            difference = sum((cl.counted_mg - cl.expected_mg for cl in count_lines), ZERO)
            details = "; ".join(
                f"lot {cl.lot.lot_number}: expected {fmt_mg(cl.expected_mg)} mg, counted "
                f"{fmt_mg(cl.counted_mg)} mg"
                for cl in count_lines
                if cl.counted_mg != cl.expected_mg
            )
            _investigation_create(
                actor=actor,
                clinic=clinic,
                kind=InvestigationKind.UNDETERMINED,
                discovered_at=now,
                count=count,
                discrepancy_mg=difference,
                now=now,
                description=f"{count.get_purpose_display()} of {location.name} does not match "
                f"the ledger: {details}.",
            )
    return count


# --- investigations -------------------------------------------------------------------------


def extra_holidays() -> list[date]:
    return [date.fromisoformat(d) for d in settings.KETACLINIC_CS_EXTRA_HOLIDAYS]


def dea_deadlines(
    kind: str, discovered_at: datetime, clinic: Clinic
) -> tuple[date | None, date | None]:
    """(written notice due, Form 106 due) for a reportable kind, counted from the clinic's date
    of discovery; (None, None) for a minor discrepancy."""
    if kind not in REPORTABLE_KINDS:
        return None, None
    discovered_on = discovered_at.astimezone(ZoneInfo(clinic.timezone)).date()
    return (
        dea_clocks.notice_due_on(discovered_on, extra_holidays()),
        dea_clocks.form_106_due_on(discovered_on),
    )


def _investigation_create(
    *,
    actor: Any,
    clinic: Clinic,
    kind: str,
    discovered_at: datetime,
    description: str,
    now: datetime,
    count: Count | None = None,
    discrepancy_mg: Decimal = ZERO,
) -> Investigation:
    notice_due, form_due = dea_deadlines(kind, discovered_at, clinic)
    investigation = Investigation.objects.create(
        clinic=clinic,
        count=count,
        kind=kind,
        discovered_at=discovered_at,
        discrepancy_mg=q3(discrepancy_mg),
        description=description[:5000],
        opened_by=actor,
        opened_at=now,
        dea_notice_due_on=notice_due,
        form_106_due_on=form_due,
    )
    record_event(
        action=Action.CREATE,
        user=actor,
        clinic=clinic,
        obj=investigation,
        changes={
            "kind": kind,
            "discrepancy_mg": text(investigation.discrepancy_mg),
            "dea_notice_due_on": notice_due,
            "form_106_due_on": form_due,
        },
    )
    return investigation


def investigation_open(
    *,
    actor: Any,
    clinic: Clinic,
    kind: str,
    description: str,
    discovered_at: datetime | None = None,
) -> Investigation:
    """Open an investigation by hand (a suspected theft reported by staff, say)."""
    _require(actor, "cs.manage", clinic.pk)
    if kind not in InvestigationKind.values:
        raise ValidationError({"kind": ["Choose the kind of discrepancy."]})
    description = _text(description, "description", max_length=5000, required=True)
    now = clock.now()
    when = now
    if discovered_at is not None:
        if discovered_at.tzinfo is None or discovered_at > now + FUTURE_SKEW:
            raise ValidationError({"discovered_at": ["Give a past time with its time zone."]})
        when = discovered_at
    with transaction.atomic():
        return _investigation_create(
            actor=actor,
            clinic=clinic,
            kind=kind,
            discovered_at=when,
            description=description,
            now=now,
        )


_INVESTIGATION_FIELDS = (
    "kind",
    "status",
    "dea_notice_due_on",
    "dea_notice_sent_at",
    "form_106_due_on",
    "form_106_filed_at",
    "form_106_reference",
    "closed_at",
    "resolution",
)


def _locked_investigation(actor: Any, investigation: Investigation) -> Investigation:
    _require(actor, "cs.manage", investigation.clinic_id)
    locked = (
        Investigation.objects.select_for_update().select_related("clinic").get(pk=investigation.pk)
    )
    if locked.status == InvestigationStatus.CLOSED:
        raise ValidationError({"__all__": ["This investigation is closed."]})
    return locked


def _save_investigation(
    actor: Any, investigation: Investigation, before: Mapping[str, Any], detail: str
) -> Investigation:
    investigation.save()
    after = {name: getattr(investigation, name) for name in _INVESTIGATION_FIELDS}
    record_event(
        action=Action.UPDATE,
        user=actor,
        clinic_id=investigation.clinic_id,
        obj=investigation,
        changes=diff(before, after),
        detail=detail,
    )
    return investigation


def _past_time(value: datetime | None, field: str, now: datetime, not_before: datetime) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None or value > now + FUTURE_SKEW:
        raise ValidationError({field: ["Give a past time with its time zone."]})
    if value < not_before:
        raise ValidationError({field: ["This is before the discrepancy was discovered."]})
    return value


def investigation_classify(
    *, actor: Any, investigation: Investigation, kind: str, note: str = ""
) -> Investigation:
    """Say what the discrepancy is. Theft or significant loss keeps (or starts) the DEA clocks,
    counted from discovery, not from classification."""
    if kind not in {
        InvestigationKind.THEFT,
        InvestigationKind.SIGNIFICANT_LOSS,
        InvestigationKind.MINOR,
    }:
        raise ValidationError({"kind": ["Choose theft, significant loss or minor discrepancy."]})
    note = _text(note, "note", max_length=1000)
    with transaction.atomic():
        inv = _locked_investigation(actor, investigation)
        if inv.dea_notice_sent_at and kind == InvestigationKind.MINOR:
            raise ValidationError(
                {"kind": ["The DEA has been notified; this cannot become a minor discrepancy."]}
            )
        before = {name: getattr(inv, name) for name in _INVESTIGATION_FIELDS}
        inv.kind = kind
        inv.dea_notice_due_on, inv.form_106_due_on = dea_deadlines(
            kind, inv.discovered_at, inv.clinic
        )
        if note:
            inv.description = f"{inv.description}\n\n{note}"[:5000]
        return _save_investigation(actor, inv, before, f"classified as {kind}")


def investigation_notice_sent(
    *, actor: Any, investigation: Investigation, sent_at: datetime | None = None
) -> Investigation:
    """Record that the written notice went to the DEA Field Division (1301.76(b))."""
    now = clock.now()
    with transaction.atomic():
        inv = _locked_investigation(actor, investigation)
        if inv.kind not in REPORTABLE_KINDS:
            raise ValidationError({"__all__": ["A minor discrepancy is not reported to the DEA."]})
        if inv.dea_notice_sent_at:
            raise ValidationError({"__all__": ["The DEA notice is already recorded as sent."]})
        before = {name: getattr(inv, name) for name in _INVESTIGATION_FIELDS}
        inv.dea_notice_sent_at = _past_time(sent_at, "sent_at", now, inv.discovered_at)
        inv.dea_notice_sent_by = actor
        return _save_investigation(actor, inv, before, "DEA written notice sent")


def investigation_form_106_filed(
    *, actor: Any, investigation: Investigation, reference: str, filed_at: datetime | None = None
) -> Investigation:
    """Record that DEA Form 106 was filed electronically, with its confirmation number."""
    now = clock.now()
    reference = _text(reference, "reference", max_length=60, required=True)
    with transaction.atomic():
        inv = _locked_investigation(actor, investigation)
        if inv.kind not in {InvestigationKind.THEFT, InvestigationKind.SIGNIFICANT_LOSS}:
            raise ValidationError(
                {"__all__": ["Classify this as theft or significant loss before filing Form 106."]}
            )
        if not inv.dea_notice_sent_at:
            raise ValidationError(
                {
                    "__all__": [
                        "Record the written notice to the DEA first (it is due within one "
                        "business day; Form 106 follows)."
                    ]
                }
            )
        if inv.form_106_filed_at:
            raise ValidationError({"__all__": ["Form 106 is already recorded as filed."]})
        before = {name: getattr(inv, name) for name in _INVESTIGATION_FIELDS}
        inv.form_106_filed_at = _past_time(filed_at, "filed_at", now, inv.discovered_at)
        inv.form_106_reference = reference
        inv.form_106_filed_by = actor
        return _save_investigation(actor, inv, before, "DEA Form 106 filed")


def investigation_close(
    *, actor: Any, investigation: Investigation, resolution: str
) -> Investigation:
    """Close with what was found and done. Reportable ones need the notice and Form 106 first."""
    resolution = _text(resolution, "resolution", max_length=5000, required=True)
    now = clock.now()
    with transaction.atomic():
        inv = _locked_investigation(actor, investigation)
        if inv.kind == InvestigationKind.UNDETERMINED:
            raise ValidationError({"__all__": ["Classify the discrepancy before closing."]})
        if inv.kind in REPORTABLE_KINDS and not (inv.dea_notice_sent_at and inv.form_106_filed_at):
            raise ValidationError(
                {
                    "__all__": [
                        "A theft or significant loss closes only after the DEA notice and "
                        "Form 106 are recorded."
                    ]
                }
            )
        before = {name: getattr(inv, name) for name in _INVESTIGATION_FIELDS}
        inv.status = InvestigationStatus.CLOSED
        inv.closed_at = now
        inv.closed_by = actor
        inv.resolution = resolution
        return _save_investigation(actor, inv, before, "investigation closed")
