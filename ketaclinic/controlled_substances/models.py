"""Products, lots, storage locations, the append-only ledger, counts and investigations.

The ledger (`LedgerEntry`) is the record of every mg received, administered, wasted, moved,
disposed of, adjusted or lost (21 CFR 1304.22(c)). Rows are never updated or deleted: a mistake
gets a reversing entry that points at it. Each row carries a gap-free installation-wide `seq` and
`entry_hash = SHA-256(prev_hash || canonical JSON of the row)`; `LedgerHead` holds the newest
sequence and hash, is locked by every writer and makes deleting the newest rows detectable, as
`AuditChainHead` does for the audit trail. On PostgreSQL a trigger rejects UPDATE and DELETE on the
ledger, count and count-line tables (migration 0002).

`Balance` caches the on-hand amount per (location, lot). It is a projection of the ledger, kept in
the same transaction as each entry under a row lock, and checked against the entries by
`ketaclinic verify-ledger`. `LedgerDayTotal` is another projection, kept the same way: the count
and sum of the entries per clinic, UTC day and kind, so a report's count and total over years of
entries read a few hundred small rows instead of every entry.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from ketaclinic.audit.chain import GENESIS_HASH
from ketaclinic.controlled_substances.choices import (
    BusinessTime,
    CountPurpose,
    DisposalMethod,
    EntryKind,
    InvestigationKind,
    InvestigationStatus,
    LocationKind,
    ProductForm,
    Schedule,
    SignatureMeaning,
    Substance,
)
from ketaclinic.controlled_substances.quantities import fmt_mg


class Product(models.Model):
    """A finished form of a controlled substance, as bought: one NDC."""

    ndc = models.CharField("NDC", max_length=13, unique=True)
    name = models.CharField(max_length=200, help_text="As on the label, e.g. Ketalar.")
    substance = models.CharField(max_length=20, choices=Substance.choices)
    form = models.CharField(max_length=20, choices=ProductForm.choices)
    schedule = models.CharField(max_length=4, choices=Schedule.choices, default=Schedule.CIII)
    # Vials: concentration and fill volume. Devices: mg per device only.
    mg_per_ml = models.DecimalField(
        "mg per mL", null=True, blank=True, max_digits=12, decimal_places=3
    )
    ml_per_container = models.DecimalField(
        "mL per vial", null=True, blank=True, max_digits=12, decimal_places=3
    )
    mg_per_container = models.DecimalField("mg per vial or device", max_digits=12, decimal_places=3)
    containers_per_package = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["substance", "name", "mg_per_container", "ndc"]

    def __str__(self) -> str:
        return f"{self.name} — {self.finished_form}"

    @property
    def is_vial(self) -> bool:
        return self.form == ProductForm.VIAL

    @property
    def container_word(self) -> str:
        return "vial" if self.is_vial else "device"

    @property
    def finished_form(self) -> str:
        """1304.22(c)(1): the finished form and the units per container."""
        if self.is_vial and self.mg_per_ml is not None and self.ml_per_container is not None:
            return (
                f"injection {fmt_mg(self.mg_per_ml)} mg/mL, {fmt_mg(self.ml_per_container)} mL "
                f"vial ({fmt_mg(self.mg_per_container)} mg)"
            )
        return f"nasal spray, {fmt_mg(self.mg_per_container)} mg per device"

    @property
    def units_per_container(self) -> str:
        if self.is_vial and self.ml_per_container is not None:
            return f"{fmt_mg(self.ml_per_container)} mL"
        return "1 device"


class Lot(models.Model):
    """A manufacturer's lot of one product; created when the first delivery of it is received."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=40)
    expires_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "lot_number"], name="lot_unique_per_product")
        ]
        ordering = ["expires_on", "lot_number"]

    def __str__(self) -> str:
        return f"{self.product.name} lot {self.lot_number} (exp {self.expires_on:%Y-%m-%d})"


class StorageLocation(models.Model):
    """A secured place at one clinic where stock is held and counted: a safe or a cart."""

    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.PROTECT, related_name="storage_locations"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=LocationKind.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="location_name_per_clinic")
        ]
        ordering = ["clinic", "name"]

    def __str__(self) -> str:
        return self.name


class LedgerHead(models.Model):
    """The newest ledger sequence number and hash; one row (pk=1), locked by every writer."""

    seq = models.PositiveBigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"ledger head #{self.seq}"


class Investigation(models.Model):
    """A discrepancy, theft or loss being looked into, with the DEA clocks it starts."""

    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.PROTECT, related_name="cs_investigations"
    )
    count = models.ForeignKey(
        "Count", null=True, blank=True, on_delete=models.PROTECT, related_name="investigations"
    )
    kind = models.CharField(max_length=20, choices=InvestigationKind.choices)
    status = models.CharField(
        max_length=10, choices=InvestigationStatus.choices, default=InvestigationStatus.OPEN
    )
    discovered_at = models.DateTimeField()
    # Counted minus expected, summed over the count's lines (negative: stock is missing).
    discrepancy_mg = models.DecimalField(default=Decimal("0"), max_digits=12, decimal_places=3)
    description = models.TextField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    dea_notice_due_on = models.DateField("DEA notice due", null=True, blank=True)
    dea_notice_sent_at = models.DateTimeField("DEA notice sent", null=True, blank=True)
    dea_notice_sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    form_106_due_on = models.DateField("Form 106 due", null=True, blank=True)
    form_106_filed_at = models.DateTimeField("Form 106 filed", null=True, blank=True)
    form_106_reference = models.CharField("Form 106 reference", max_length=60, blank=True)
    form_106_filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-discovered_at", "-id"]
        indexes = [models.Index(fields=["clinic", "status", "discovered_at"])]

    def __str__(self) -> str:
        return f"Investigation {self.pk} ({self.get_kind_display()})"

    @property
    def is_reportable(self) -> bool:
        from ketaclinic.controlled_substances.choices import REPORTABLE_KINDS

        return self.kind in REPORTABLE_KINDS


class Count(models.Model):
    """A physical count of one location by two people, reconciled against the ledger.

    Initial, biennial and annual counts are the DEA inventories of 21 CFR 1304.11. Counts are
    append-only like the ledger; `content_hash` binds the lines and both signatures (R24).
    """

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="counts")
    purpose = models.CharField(max_length=10, choices=CountPurpose.choices)
    business_time = models.CharField(max_length=10, choices=BusinessTime.choices, blank=True)
    counted_at = models.DateTimeField()
    # The ledger position the count was reconciled against: entries up to this seq are included.
    ledger_seq = models.PositiveBigIntegerField()
    counted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    counted_by_name = models.CharField(max_length=200)
    second_counter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    second_counter_name = models.CharField(max_length=200)
    second_signed_at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True)
    has_discrepancy = models.BooleanField(default=False)
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-counted_at", "-id"]
        indexes = [models.Index(fields=["clinic", "purpose", "counted_at"])]

    def __str__(self) -> str:
        return (
            f"{self.get_purpose_display()} of {self.location} at {self.counted_at:%Y-%m-%d %H:%M}"
        )


class CountLine(models.Model):
    """One lot at the counted location: what the ledger expected and what was found."""

    count = models.ForeignKey(Count, on_delete=models.PROTECT, related_name="lines")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    expected_mg = models.DecimalField(max_digits=12, decimal_places=3)
    counted_mg = models.DecimalField(max_digits=12, decimal_places=3)
    full_containers = models.PositiveIntegerField(default=0)
    # The open container's contents, in mL (vials); 1304.11(e)(3)(iii) allows an estimate.
    open_ml = models.DecimalField(
        "open vial contents (mL)", default=Decimal("0"), max_digits=12, decimal_places=3
    )
    open_is_estimate = models.BooleanField(default=False)

    class Meta:
        ordering = ["count", "lot__expires_on", "lot_id"]
        constraints = [
            models.UniqueConstraint(fields=["count", "lot"], name="one_line_per_lot_per_count")
        ]

    def __str__(self) -> str:
        return f"{self.lot}: expected {self.expected_mg} mg, counted {self.counted_mg} mg"

    @property
    def difference_mg(self) -> Decimal:
        return self.counted_mg - self.expected_mg


class LedgerEntry(models.Model):
    """One movement of one lot at one location. Append-only; see the module docstring."""

    HASH_VERSION = 1

    seq = models.PositiveBigIntegerField(unique=True)
    hash_version = models.PositiveSmallIntegerField(default=HASH_VERSION)
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="entries")
    # Signed: + into the location, − out of it. mg is the unit of record; the rest derive from it.
    quantity_mg = models.DecimalField(max_digits=12, decimal_places=3)
    volume_ml = models.DecimalField(null=True, blank=True, max_digits=12, decimal_places=3)
    units = models.IntegerField(null=True, blank=True, help_text="Whole vials or devices moved.")
    # On hand at this location and lot after this entry: a running balance inside the hash chain.
    balance_after_mg = models.DecimalField(max_digits=12, decimal_places=3)

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor_name = models.CharField(max_length=200)  # signature name at the time of signing
    witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    witness_name = models.CharField(max_length=200, blank=True)
    witness_signed_at = models.DateTimeField(null=True, blank=True)
    witness_meaning = models.CharField(max_length=30, choices=SignatureMeaning.choices, blank=True)
    second_witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_witness_name = models.CharField(max_length=200, blank=True)
    second_witness_signed_at = models.DateTimeField(null=True, blank=True)
    second_witness_meaning = models.CharField(
        max_length=30, choices=SignatureMeaning.choices, blank=True
    )

    # Administrations: who received the drug, as recorded at the time (1304.22(c): name, address).
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    patient_name = models.CharField(max_length=200, blank=True)
    patient_address = models.CharField(max_length=500, blank=True)
    # The treatment session an administration belongs to (the sessions app links it later).
    treatment_session_id = models.BigIntegerField(null=True, blank=True)

    # The other party: supplier (receive), reverse distributor (dispose), other clinic (transfer).
    counterparty_name = models.CharField(max_length=200, blank=True)
    counterparty_address = models.CharField(max_length=500, blank=True)
    counterparty_dea_number = models.CharField(max_length=9, blank=True)
    document_number = models.CharField(max_length=60, blank=True, help_text="Invoice or form no.")
    document_date = models.DateField(null=True, blank=True)
    disposal_method = models.CharField(max_length=30, choices=DisposalMethod.choices, blank=True)
    destruction_method = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    # Links: the entry this one reverses (at most one reversal each), the other half of a pair
    # (transfer in ↔ out, waste → its administration), and the count or investigation it settles.
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    related_entry = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    count = models.ForeignKey(
        Count, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    investigation = models.ForeignKey(
        Investigation, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )

    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=~Q(quantity_mg=0), name="ledger_quantity_not_zero"),
            models.CheckConstraint(
                condition=Q(balance_after_mg__gte=0), name="ledger_balance_never_negative"
            ),
        ]
        indexes = [
            # Reports: a range of one kind, and its count and total from the index alone.
            models.Index(
                fields=["clinic", "kind", "occurred_at", "quantity_mg"], name="ledger_kind_time_mg"
            ),
            models.Index(fields=["clinic", "occurred_at"]),
            models.Index(fields=["location", "lot", "seq"]),
            models.Index(fields=["patient", "occurred_at"]),
            models.Index(fields=["treatment_session_id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_kind_display()} {self.quantity_mg} mg"

    @property
    def signatures(self) -> list[tuple[str, Any, str]]:
        """(name, signed at, meaning) of every second signer, for display."""
        rows = []
        if self.witness_id:
            rows.append(
                (self.witness_name, self.witness_signed_at, self.get_witness_meaning_display())
            )
        if self.second_witness_id:
            rows.append(
                (
                    self.second_witness_name,
                    self.second_witness_signed_at,
                    self.get_second_witness_meaning_display(),
                )
            )
        return rows


class Balance(models.Model):
    """On hand per (location, lot): the sum of the ledger's entries there, cached and row-locked."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="balances")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="balances")
    quantity_mg = models.DecimalField(default=Decimal("0"), max_digits=12, decimal_places=3)
    last_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["location", "lot"], name="one_balance_per_location_lot"
            ),
            models.CheckConstraint(condition=Q(quantity_mg__gte=0), name="balance_never_negative"),
        ]
        indexes = [models.Index(fields=["clinic", "location"])]

    def __str__(self) -> str:
        return f"{self.location} · {self.lot}: {self.quantity_mg} mg"


class LedgerDayTotal(models.Model):
    """Count and signed sum of one clinic's entries of one kind on one UTC day (a projection).

    `reversed_kind` is the kind of the entry a reversal cancels ("" for every other entry), so a
    report of one kind can add the corrections of its entries. Days are UTC days of
    `occurred_at`: a report's local-day range reads the whole UTC days inside it from here and
    the partial days at its ends from the ledger, so the clinic's time zone (which may change)
    is not part of the projection. Kept by `ledger.post` in the append transaction, under the
    ledger head lock; checked against the entries by `ketaclinic verify-ledger`.
    """

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    reversed_kind = models.CharField(max_length=20, blank=True)
    day = models.DateField()
    entries = models.PositiveIntegerField(default=0)
    quantity_mg = models.DecimalField(default=Decimal("0"), max_digits=16, decimal_places=3)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "kind", "reversed_kind", "day"], name="one_total_per_day_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}: {self.entries} entries, {self.quantity_mg} mg"
