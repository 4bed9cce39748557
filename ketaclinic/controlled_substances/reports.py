"""The DEA record reports: one definition per report, shared by the page, the print and the CSV.

Each report lists ledger entries of one kind (and the reversals of such entries, as signed
correction rows), so its rows and total are exactly the ledger's for the same filter. The
administration log carries the elements of 21 CFR 1304.22(c): substance, finished form, units
per container, date, quantity, patient name and address, and who administered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape  # the standard library's: Django's lazy-aware one is slower per cell
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils.safestring import SafeString, mark_safe

from ketaclinic.accounts.models import Clinic
from ketaclinic.controlled_substances import selectors
from ketaclinic.controlled_substances.choices import EntryKind
from ketaclinic.controlled_substances.models import Count, LedgerEntry
from ketaclinic.controlled_substances.quantities import fmt_mg

Cell = Callable[[Any, ZoneInfo], Any]


@dataclass(frozen=True)
class Column:
    header: str
    value: Cell
    numeric: bool = False


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def _amount(value: Any) -> str:
    return "" if value is None else format(value, "f")


def _correction(e: LedgerEntry) -> str:
    return f"Reversal of #{e.reverses.seq}: {e.reason}" if e.reverses_id and e.reverses else ""


def _witnesses(e: LedgerEntry) -> str:
    return "; ".join(
        f"{name} ({signed.strftime('%Y-%m-%d %H:%M') if signed else ''}: {meaning})"  # type: ignore[attr-defined]
        for name, signed, meaning in e.signatures
    )


_SEQ = Column("Entry", lambda e, tz: e.seq, numeric=True)
_DATE = Column("Date", lambda e, tz: _local(e.occurred_at, tz))
_SUBSTANCE = Column("Substance", lambda e, tz: e.lot.product.get_substance_display())
_PRODUCT = Column("Product", lambda e, tz: e.lot.product.name)
_NDC = Column("NDC", lambda e, tz: e.lot.product.ndc)
_FORM = Column("Finished form", lambda e, tz: e.lot.product.finished_form)
_PER_CONTAINER = Column("Units per container", lambda e, tz: e.lot.product.units_per_container)
_LOT = Column("Lot", lambda e, tz: e.lot.lot_number)
_LOCATION = Column("Location", lambda e, tz: e.location.name)
_MG = Column("Quantity (mg)", lambda e, tz: _amount(-e.quantity_mg), numeric=True)
_ML = Column(
    "Volume (mL)",
    lambda e, tz: _amount(-e.volume_ml if e.volume_ml is not None else None),
    numeric=True,
)
_UNITS_OUT = Column(
    "Containers", lambda e, tz: -e.units if e.units is not None else "", numeric=True
)
_ACTOR = Column("Recorded by", lambda e, tz: e.actor_name)
_SIGNERS = Column("Witnesses", lambda e, tz: _witnesses(e))
_CORRECTION = Column("Correction", lambda e, tz: _correction(e))


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    description: str
    kind: str
    columns: tuple[Column, ...]
    sign: int = -1  # the ledger sign of the report's quantities (out of stock: −1)
    with_patient: bool = False

    def rows(self, clinic: Clinic, f: selectors.EntryFilter) -> QuerySet[LedgerEntry]:
        return selectors.entries_of_kind(clinic, self.kind, f)

    def total_mg(self, rows: QuerySet[LedgerEntry]) -> Any:
        return self.sign * selectors.total_mg(rows)


ADMINISTRATIONS = Report(
    "administrations",
    "Dispensing and administration log",
    "Every dose given, with the record elements of 21 CFR 1304.22(c).",
    EntryKind.ADMINISTER,
    (
        _SEQ,
        _DATE,
        _SUBSTANCE,
        _PRODUCT,
        _NDC,
        _FORM,
        _PER_CONTAINER,
        _LOT,
        _MG,
        _ML,
        _UNITS_OUT,
        Column("Patient", lambda e, tz: e.patient_name),
        Column("Patient address", lambda e, tz: e.patient_address),
        Column("Administered by", lambda e, tz: e.actor_name),
        Column("Session", lambda e, tz: e.treatment_session_id or ""),
        _LOCATION,
        _CORRECTION,
    ),
    with_patient=True,
)

RECEIPTS = Report(
    "receipts",
    "Receipt log",
    "Containers received on supplier invoices (CIII: no DEA Form 222).",
    EntryKind.RECEIVE,
    (
        _SEQ,
        _DATE,
        _SUBSTANCE,
        _PRODUCT,
        _NDC,
        _FORM,
        _LOT,
        Column("Expiry", lambda e, tz: e.lot.expires_on.isoformat()),
        Column("Containers", lambda e, tz: e.units if e.units is not None else "", numeric=True),
        Column("Quantity (mg)", lambda e, tz: _amount(e.quantity_mg), numeric=True),
        Column("Supplier", lambda e, tz: e.counterparty_name),
        Column("Supplier address", lambda e, tz: e.counterparty_address),
        Column("Supplier DEA number", lambda e, tz: e.counterparty_dea_number),
        Column("Invoice", lambda e, tz: e.document_number),
        Column(
            "Invoice date", lambda e, tz: e.document_date.isoformat() if e.document_date else ""
        ),
        Column("Received by", lambda e, tz: e.actor_name),
        _LOCATION,
        _CORRECTION,
    ),
    sign=1,
)

WASTE = Report(
    "waste",
    "Waste log",
    "Drug left after administration and other witnessed waste. Never on DEA Form 41.",
    EntryKind.WASTE,
    (
        _SEQ,
        _DATE,
        _SUBSTANCE,
        _PRODUCT,
        _NDC,
        _LOT,
        _MG,
        _ML,
        Column("Patient", lambda e, tz: e.patient_name),
        Column(
            "Of administration",
            lambda e, tz: (
                f"#{e.related_entry.seq}" if e.related_entry_id and e.related_entry else ""
            ),
        ),
        Column("Reason", lambda e, tz: e.reason),
        _ACTOR,
        _SIGNERS,
        _LOCATION,
        _CORRECTION,
    ),
    with_patient=True,
)

DISPOSALS = Report(
    "disposals",
    "Disposal log",
    "Expired or unwanted stock sent to a reverse distributor or destroyed on site (Form 41).",
    EntryKind.DISPOSE,
    (
        _SEQ,
        _DATE,
        _SUBSTANCE,
        _PRODUCT,
        _NDC,
        _FORM,
        _LOT,
        _MG,
        _ML,
        _UNITS_OUT,
        Column("Method", lambda e, tz: e.get_disposal_method_display()),
        Column("Reverse distributor", lambda e, tz: e.counterparty_name),
        Column("Distributor address", lambda e, tz: e.counterparty_address),
        Column("Distributor DEA number", lambda e, tz: e.counterparty_dea_number),
        Column("Destruction method", lambda e, tz: e.destruction_method),
        Column("Document", lambda e, tz: e.document_number),
        Column("Reason", lambda e, tz: e.reason),
        _ACTOR,
        _SIGNERS,
        _LOCATION,
        _CORRECTION,
    ),
)

ENTRY_REPORTS = {r.slug: r for r in (ADMINISTRATIONS, RECEIPTS, WASTE, DISPOSALS)}
INVENTORY_SLUG = "inventory"
REPORT_TITLES = {
    **{slug: r.title for slug, r in ENTRY_REPORTS.items()},
    INVENTORY_SLUG: "Initial and biennial inventory",
}

# The whole ledger, for the ledger page's CSV export.
LEDGER_COLUMNS = (
    _SEQ,
    _DATE,
    Column("Recorded", lambda e, tz: _local(e.recorded_at, tz)),
    Column("Kind", lambda e, tz: e.get_kind_display()),
    _SUBSTANCE,
    _PRODUCT,
    _NDC,
    _LOT,
    _LOCATION,
    Column("Quantity (mg, signed)", lambda e, tz: _amount(e.quantity_mg), numeric=True),
    Column("Volume (mL, signed)", lambda e, tz: _amount(e.volume_ml), numeric=True),
    Column("Containers (signed)", lambda e, tz: "" if e.units is None else e.units, numeric=True),
    Column("Balance after (mg)", lambda e, tz: _amount(e.balance_after_mg), numeric=True),
    _ACTOR,
    _SIGNERS,
    Column("Patient", lambda e, tz: e.patient_name),
    Column("Counterparty", lambda e, tz: e.counterparty_name),
    Column("Reason", lambda e, tz: e.reason),
    _CORRECTION,
    Column("Hash", lambda e, tz: e.entry_hash),
)


def cells(columns: Iterable[Column], row: Any, tz: ZoneInfo) -> list[Any]:
    return [column.value(row, tz) for column in columns]


def html_rows(columns: Sequence[Column], rows: Iterable[Any], tz: ZoneInfo) -> SafeString:
    """The table body as HTML, every value escaped. A report page is hundreds of cells: built
    here it costs a fraction of the same loop in the template language."""
    opening = ['<td class="num">' if column.numeric else "<td>" for column in columns]
    lines = []
    for row in rows:
        values = cells(columns, row, tz)
        lines.append(
            "<tr>"
            + "".join(f"{o}{escape(str(v))}</td>" for o, v in zip(opening, values, strict=True))
            + "</tr>"
        )
    return mark_safe("\n".join(lines))  # noqa: S308 (every value passed through escape)


# --- inventory (21 CFR 1304.11) -------------------------------------------------------------

INVENTORY_COLUMNS = (
    Column("Date", lambda r, tz: _local(r[0].counted_at, tz)),
    Column("Inventory", lambda r, tz: r[0].get_purpose_display()),
    Column("Taken at", lambda r, tz: r[0].get_business_time_display()),
    Column("Location", lambda r, tz: r[0].location.name),
    Column("Substance", lambda r, tz: r[1].lot.product.get_substance_display() if r[1] else ""),
    Column("Product", lambda r, tz: r[1].lot.product.name if r[1] else "none on hand"),
    Column("NDC", lambda r, tz: r[1].lot.product.ndc if r[1] else ""),
    Column("Finished form", lambda r, tz: r[1].lot.product.finished_form if r[1] else ""),
    Column(
        "Units per container", lambda r, tz: r[1].lot.product.units_per_container if r[1] else ""
    ),
    Column("Lot", lambda r, tz: r[1].lot.lot_number if r[1] else ""),
    Column("Sealed containers", lambda r, tz: r[1].full_containers if r[1] else 0, numeric=True),
    Column(
        "Open container (mL)", lambda r, tz: _amount(r[1].open_ml) if r[1] else "", numeric=True
    ),
    Column(
        "Open count",
        lambda r, tz: (
            ("estimated" if r[1].open_is_estimate else "exact") if r[1] and r[1].open_ml else ""
        ),
    ),
    Column("Total (mg)", lambda r, tz: _amount(r[1].counted_mg) if r[1] else "0.000", numeric=True),
    Column(
        "Ledger (mg)", lambda r, tz: _amount(r[1].expected_mg) if r[1] else "0.000", numeric=True
    ),
    Column("Counted by", lambda r, tz: f"{r[0].counted_by_name}; {r[0].second_counter_name}"),
)


def inventory_rows(counts: Iterable[Count]) -> Iterator[tuple[Count, Any]]:
    """(count, line) pairs; a location with nothing on hand gives one (count, None) row, so an
    initial inventory of zero is still on the record (1304.11(b))."""
    for count in counts:
        lines = list(count.lines.all())
        if not lines:
            yield count, None
        for line in lines:
            yield count, line


def describe_total(total: Any) -> str:
    return f"{fmt_mg(total)} mg"


def ledger_rows(entries: Iterable[LedgerEntry], tz: ZoneInfo, entry_url: str) -> SafeString:
    """The ledger page's table body (`entry_url` ends with "/", the seq follows)."""
    lines = []
    for e in entries:
        kind = e.get_kind_display()
        if e.reverses_id and e.reverses:
            kind += f" of #{e.reverses.seq}"
        witnesses = "; ".join(n for n in (e.witness_name, e.second_witness_name) if n)
        values = (
            _local(e.occurred_at, tz),
            kind,
            e.location.name,
            f"{e.lot.product.name} {e.lot.lot_number}",
        )
        lines.append(
            f'<tr><td><a href="{entry_url}{e.seq}/">{e.seq}</a></td>'
            + "".join(f"<td>{escape(str(v))}</td>" for v in values)
            + f'<td class="num">{e.quantity_mg}</td><td class="num">{e.balance_after_mg}</td>'
            + "".join(f"<td>{escape(v)}</td>" for v in (e.actor_name, witnesses, e.patient_name))
            + "</tr>"
        )
    return mark_safe("\n".join(lines))  # noqa: S308 (text values escaped; numbers are Decimals)
