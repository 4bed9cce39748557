"""API shapes for the ledger. Amounts are decimal strings in JSON, never floats."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

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


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


class WitnessIn(_In):
    """The witness types their own password (and TOTP code, if enrolled) into this request."""

    user_id: int
    password: str = Field(..., max_length=200)
    otp: str = Field("", max_length=10)


class ProductOut(Schema):
    id: int
    ndc: str
    name: str
    substance: Substance
    form: ProductForm
    schedule: str
    mg_per_ml: Decimal | None
    ml_per_container: Decimal | None
    mg_per_container: Decimal
    containers_per_package: int
    finished_form: str
    is_active: bool


class ProductIn(_In):
    ndc: str = Field(..., max_length=13)
    name: str = Field(..., max_length=200)
    substance: Substance
    form: ProductForm
    mg_per_ml: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=3)
    ml_per_container: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=3)
    mg_per_container: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=3)
    containers_per_package: int = Field(1, ge=1, le=1000)


class LocationOut(Schema):
    id: int
    clinic_id: int
    name: str
    kind: LocationKind
    is_active: bool


class LocationIn(_In):
    name: str = Field(..., max_length=100)
    kind: LocationKind


class LotOut(Schema):
    id: int
    product_id: int
    lot_number: str
    expires_on: date


class BalanceOut(Schema):
    location_id: int
    location: str
    lot_id: int
    lot_number: str
    expires_on: date
    product_id: int
    ndc: str
    product: str
    quantity_mg: Decimal
    full_containers: int
    last_seq: int


class SignatureOut(Schema):
    user_id: int
    name: str
    signed_at: datetime
    meaning: str


class EntryOut(Schema):
    seq: int
    kind: EntryKind
    occurred_at: datetime
    recorded_at: datetime
    clinic_id: int
    location_id: int
    lot_id: int
    quantity_mg: Decimal
    volume_ml: Decimal | None
    units: int | None
    balance_after_mg: Decimal
    actor_id: int
    actor_name: str
    witnesses: list[SignatureOut]
    patient_id: int | None
    patient_name: str
    patient_address: str
    treatment_session_id: int | None
    counterparty_name: str
    counterparty_address: str
    counterparty_dea_number: str
    document_number: str
    document_date: date | None
    disposal_method: str
    destruction_method: str
    reason: str
    reverses_seq: int | None
    related_entry_seq: int | None
    count_id: int | None
    investigation_id: int | None
    prev_hash: str
    entry_hash: str

    @staticmethod
    def resolve_witnesses(obj: Any) -> list[dict[str, Any]]:
        rows = []
        for prefix in ("witness", "second_witness"):
            if getattr(obj, f"{prefix}_id"):
                rows.append(
                    {
                        "user_id": getattr(obj, f"{prefix}_id"),
                        "name": getattr(obj, f"{prefix}_name"),
                        "signed_at": getattr(obj, f"{prefix}_signed_at"),
                        "meaning": getattr(obj, f"{prefix}_meaning"),
                    }
                )
        return rows

    @staticmethod
    def resolve_reverses_seq(obj: Any) -> int | None:
        return obj.reverses.seq if obj.reverses_id else None

    @staticmethod
    def resolve_related_entry_seq(obj: Any) -> int | None:
        return obj.related_entry.seq if obj.related_entry_id else None


class EntryFilters(Schema):
    date_from: date | None = None
    date_to: date | None = None
    kind: EntryKind | None = None
    location_id: int | None = None
    product_id: int | None = None
    lot_id: int | None = None
    patient_id: int | None = None


class ReceiptIn(_In):
    location_id: int
    product_id: int
    lot_number: str = Field(..., max_length=40)
    expires_on: date
    containers: int = Field(..., ge=1, le=10000)
    supplier_name: str = Field(..., max_length=200)
    supplier_address: str = Field(..., max_length=500)
    supplier_dea_number: str = Field(..., max_length=12)
    invoice_number: str = Field(..., max_length=60)
    invoice_date: date | None = None
    note: str = Field("", max_length=500)
    witness: WitnessIn | None = None


class AdministrationIn(_In):
    location_id: int
    lot_id: int
    patient_id: int
    dose_mg: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    waste_mg: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=3)
    witness: WitnessIn | None = None
    session_id: int | None = Field(None, ge=1)
    occurred_at: datetime | None = None
    note: str = Field("", max_length=500)


class AdministrationOut(Schema):
    administration: EntryOut
    waste: EntryOut | None
    dispensed_mg: Decimal


class WasteIn(_In):
    location_id: int
    lot_id: int
    waste_mg: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    reason: str = Field(..., max_length=500)
    witness: WitnessIn | None = None


class TransferIn(_In):
    from_location_id: int
    to_location_id: int
    lot_id: int
    quantity_mg: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    reason: str = Field("", max_length=500)
    witness: WitnessIn | None = None


class TransferOut(Schema):
    transfer_out: EntryOut
    transfer_in: EntryOut


class DisposalIn(_In):
    location_id: int
    lot_id: int
    quantity_mg: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    method: DisposalMethod
    witness: WitnessIn | None = None
    second_witness: WitnessIn | None = None
    reverse_distributor_name: str = Field("", max_length=200)
    reverse_distributor_address: str = Field("", max_length=500)
    reverse_distributor_dea_number: str = Field("", max_length=12)
    document_number: str = Field("", max_length=60)
    destruction_method: str = Field("", max_length=200)
    reason: str = Field("", max_length=500)


class AdjustmentIn(_In):
    location_id: int
    lot_id: int
    quantity_mg: Decimal = Field(
        ..., description="Signed: + adds to the balance, − removes", max_digits=12, decimal_places=3
    )
    reason: str = Field(..., max_length=500)
    witness: WitnessIn | None = None
    count_id: int | None = None
    investigation_id: int | None = None


class LossIn(_In):
    location_id: int
    lot_id: int
    quantity_mg: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    kind: Literal["theft", "significant_loss", "minor"]
    reason: str = Field(..., max_length=500)
    witness: WitnessIn | None = None
    investigation_id: int | None = None


class ReversalIn(_In):
    reason: str = Field(..., max_length=500)
    witness: WitnessIn | None = None


class CountLineIn(_In):
    lot_id: int
    full_containers: int = Field(..., ge=0, le=100000)
    open_ml: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=3)
    open_is_estimate: bool = False


class CountIn(_In):
    location_id: int
    purpose: CountPurpose
    business_time: BusinessTime | Literal[""] = ""
    lines: list[CountLineIn] = Field(default_factory=list, max_length=500)
    second_counter: WitnessIn | None = None
    note: str = Field("", max_length=500)


class CountLineOut(Schema):
    lot_id: int
    lot_number: str
    expected_mg: Decimal
    counted_mg: Decimal
    full_containers: int
    open_ml: Decimal
    open_is_estimate: bool


class CountOut(Schema):
    id: int
    clinic_id: int
    location_id: int
    purpose: CountPurpose
    business_time: str
    counted_at: datetime
    ledger_seq: int
    counted_by_name: str
    second_counter_name: str
    second_signed_at: datetime
    has_discrepancy: bool
    note: str
    content_hash: str
    lines: list[CountLineOut]
    investigation_ids: list[int]

    @staticmethod
    def resolve_lines(obj: Any) -> list[dict[str, Any]]:
        return [
            {
                "lot_id": line.lot_id,
                "lot_number": line.lot.lot_number,
                "expected_mg": line.expected_mg,
                "counted_mg": line.counted_mg,
                "full_containers": line.full_containers,
                "open_ml": line.open_ml,
                "open_is_estimate": line.open_is_estimate,
            }
            for line in obj.lines.all()
        ]

    @staticmethod
    def resolve_investigation_ids(obj: Any) -> list[int]:
        return [inv.pk for inv in obj.investigations.all()]


class InvestigationOut(Schema):
    id: int
    clinic_id: int
    count_id: int | None
    kind: InvestigationKind
    status: str
    discovered_at: datetime
    discrepancy_mg: Decimal
    description: str
    dea_notice_due_on: date | None
    dea_notice_sent_at: datetime | None
    form_106_due_on: date | None
    form_106_filed_at: datetime | None
    form_106_reference: str
    closed_at: datetime | None
    resolution: str


class InvestigationIn(_In):
    kind: InvestigationKind
    description: str = Field(..., max_length=5000)
    discovered_at: datetime | None = None


class ClassifyIn(_In):
    kind: Literal["theft", "significant_loss", "minor"]
    note: str = Field("", max_length=1000)


class NoticeIn(_In):
    sent_at: datetime | None = None


class Form106In(_In):
    reference: str = Field(..., max_length=60)
    filed_at: datetime | None = None


class CloseIn(_In):
    resolution: str = Field(..., max_length=5000)


class DeadlineOut(Schema):
    investigation_id: int
    what: str
    due_on: date
    overdue: bool
    days_left: int


class ReportOut(Schema):
    report: str
    title: str
    columns: list[str]
    rows: list[list[str | int | None]]
    count: int
    total_mg: Decimal | None
