"""What the authorization matrix (tests/test_authz_matrix.py) needs for the controlled-substance
routes: a small ledger at both clinics, the objects the own/other/missing scopes pick, request
bodies and a snapshot of ledger state (a refused request must leave it unchanged).

Every write the matrix sends here is refused (by role, by clinic, or by the service's validation:
no witness signs), so no effects are declared; successful writes are tested in this package.
Setup writes without witness signatures, so the matrix never pays PBKDF2 for a witness password.
Nothing here imports the matrix.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ketaclinic.controlled_substances import ledger, services
from ketaclinic.controlled_substances.choices import LocationKind, ProductForm, Substance
from ketaclinic.controlled_substances.models import (
    Balance,
    Count,
    CountLine,
    Investigation,
    LedgerEntry,
    LedgerHead,
    Product,
    StorageLocation,
)

# Targets handled here, and the path parameters they fill (with clinic_id).
TARGETS = {
    "cs_entry": ("clinic_id", "seq"),
    "cs_count": ("clinic_id", "count_id"),
    "cs_investigation": ("clinic_id", "investigation_id"),
    "cs_location": ("clinic_id", "location_id"),
}
# Path parameters that are not objects.
FIXED_VALUES = {"report": "administrations"}

SUPPLIER = {
    "supplier_name": "Cardinal Health 110, LLC",
    "supplier_address": "7000 Cardinal Pl, Dublin, OH 43017",
    "supplier_dea_number": "RC0123454",
    "invoice_number": "MATRIX-1",
}


def _product() -> Product:
    product, _ = Product.objects.get_or_create(
        ndc="99999-111-10",
        defaults={
            "name": "Ketamine HCl (matrix)",
            "substance": Substance.KETAMINE,
            "form": ProductForm.VIAL,
            "mg_per_ml": Decimal("50"),
            "ml_per_container": Decimal("10"),
            "mg_per_container": Decimal("500"),
        },
    )
    return product


def _ledger_of(clinic: Any, recorder: Any) -> dict[str, Any]:
    """A safe, a receipt by the clinic's own nurse, a count and a closed investigation."""
    location, _ = StorageLocation.objects.get_or_create(
        clinic=clinic, name="Matrix safe", defaults={"kind": LocationKind.SAFE}
    )
    entry = LedgerEntry.objects.filter(clinic=clinic, kind="receive").first()
    if entry is None:
        entry = services.receipt_record(
            actor=recorder,
            clinic=clinic,
            location=location,
            product=_product(),
            lot_number=f"MATRIX-{clinic.pk}",
            expires_on=date(2099, 1, 1),
            containers=1,
            **SUPPLIER,
        )
    count = Count.objects.filter(clinic=clinic).first()
    if count is None:
        head = LedgerHead.objects.get(pk=1)
        count = Count(
            clinic=clinic,
            location=location,
            purpose="shift",
            counted_at=entry.recorded_at,
            ledger_seq=head.seq,
            counted_by=recorder,
            counted_by_name=recorder.signature_name,
            second_counter=recorder,
            second_counter_name=recorder.signature_name,
            second_signed_at=entry.recorded_at,
        )
        line = CountLine(
            lot=entry.lot,
            expected_mg=entry.quantity_mg,
            counted_mg=entry.quantity_mg,
            full_containers=1,
        )
        lines = [line]
        count.content_hash = ledger.count_hash(count, lines)
        count.save()
        lines[0].count = count
        lines[0].save()
    investigation = Investigation.objects.filter(clinic=clinic).first()
    if investigation is None:
        # Closed, so every valid request to change it is refused by the service (422).
        investigation = Investigation.objects.create(
            clinic=clinic,
            kind="minor",
            status="closed",
            discovered_at=entry.recorded_at,
            description="Matrix miscount",
            opened_by=recorder,
            opened_at=entry.recorded_at,
            closed_at=entry.recorded_at,
            closed_by=recorder,
            resolution="Recounted",
        )
    return {
        "clinic_id": clinic.pk,
        "seq": entry.seq,
        "count_id": count.pk,
        "investigation_id": investigation.pk,
        "location_id": location.pk,
    }


def fill(target: str, scope: str, persona: str, world: Any, ctx: Any) -> None:
    """Build the small ledger of both clinics and put the scope's ids in ctx.values.

    "own" is the persona's clinic (clinic B for the other clinic's nurse), "other" the other
    clinic, "missing" an id that does not exist at the persona's own clinic.
    """
    ledgers = {
        "a": _ledger_of(world.clinic_a, world.users["nurse"]),
        "b": _ledger_of(world.clinic_b, world.users["other_clinic_nurse"]),
    }
    home, away = ("b", "a") if persona == "other_clinic_nurse" else ("a", "b")
    values = dict(ledgers[away if scope == "other" else home])
    if scope == "missing":
        key = TARGETS[target][1]
        values[key] = max(ledgers["a"][key], ledgers["b"][key]) + 1000
    ctx.values.update({key: values[key] for key in TARGETS[target]})
    ctx.clinic_id = values["clinic_id"]


def bodies() -> dict[str, Any]:
    """Bodies that pass the request schema, so the role and clinic checks decide; holders then
    get the service's field errors (nothing is written)."""
    nowhere = {"location_id": 0, "lot_id": 0}
    return {
        "cs_receipt": lambda ctx: {
            "location_id": 0, "product_id": 0, "lot_number": "X", "expires_on": "2099-01-01",
            "containers": 1, **SUPPLIER,
        },
        "cs_administration": lambda ctx: {**nowhere, "patient_id": 0, "dose_mg": "40"},
        "cs_waste": lambda ctx: {**nowhere, "waste_mg": "1", "reason": "x"},
        "cs_transfer": lambda ctx: {
            "from_location_id": 0, "to_location_id": 0, "lot_id": 0, "quantity_mg": "1",
        },
        "cs_disposal": lambda ctx: {**nowhere, "quantity_mg": "1", "method": "onsite_destruction"},
        "cs_adjustment": lambda ctx: {**nowhere, "quantity_mg": "-1", "reason": "x"},
        "cs_loss": lambda ctx: {**nowhere, "quantity_mg": "1", "kind": "theft", "reason": "x"},
        "cs_reversal": lambda ctx: {"reason": ""},
        "cs_count": lambda ctx: {"location_id": 0, "purpose": "shift"},
        "cs_location": lambda ctx: {"name": "", "kind": "safe"},
        "cs_product": lambda ctx: {"ndc": "not an ndc", "name": "X", "substance": "ketamine",
                                   "form": "vial", "mg_per_ml": "50", "ml_per_container": "10"},
        "cs_investigation": lambda ctx: {"kind": "theft", "description": ""},
        "cs_classify": lambda ctx: {"kind": "minor"},
        "cs_notice": lambda ctx: {},
        "cs_form_106": lambda ctx: {"reference": "F106"},
        "cs_close": lambda ctx: {"resolution": "done"},
    }  # fmt: skip


def state() -> dict[str, Any]:
    return {
        "entries": sorted(LedgerEntry.objects.values_list("seq", "entry_hash")),
        "balances": sorted(Balance.objects.values_list("location_id", "lot_id", "quantity_mg")),
        "counts": sorted(Count.objects.values_list("pk", "content_hash")),
        "investigations": sorted(
            Investigation.objects.values_list("pk", "kind", "status", "dea_notice_sent_at")
        ),
        "locations": sorted(StorageLocation.objects.values_list("pk", "name")),
        "products": sorted(Product.objects.values_list("pk", "ndc")),
    }
