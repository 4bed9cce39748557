"""The DEA record reports: one definition per report, shared by the page, the print and the CSV.

Each report lists ledger entries of one kind (and the reversals of such entries, as signed
correction rows), so its rows and total are exactly the ledger's for the same filter. The
administration log carries the elements of 21 CFR 1304.22(c): substance, finished form, units
per container, date, quantity, patient name and address, and who administered.
"""

from __future__ import annotations

import functools
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
from ketaclinic.controlled_substances.choices import (
    DisposalMethod,
    EntryKind,
    SignatureMeaning,
)
from ketaclinic.controlled_substances.models import Count, LedgerEntry, Product
from ketaclinic.controlled_substances.quantities import fmt_mg

# The entry reports and the ledger export read plain rows (`.values()` dicts): a report page,
# print or CSV shows a few columns of each entry, and building an entry, its lot, product and
# location as model instances per row cost more than the rest of the page. Each column names
# the fields it reads; "product" holds the entry's product descriptions (the Product model's
# own, worked out once per product); "reverses_seq" and "related_entry_seq" are the
# sequence numbers of the linked entries, read for the rows that have links in one query.
Row = dict[str, Any]
Cell = Callable[[Any, ZoneInfo], Any]

PRODUCT = "product"
PRODUCT_FIELDS = {
    "lot__product_id": "id",
    "lot__product__name": "name",
    "lot__product__ndc": "ndc",
    "lot__product__substance": "substance",
    "lot__product__form": "form",
    "lot__product__mg_per_ml": "mg_per_ml",
    "lot__product__ml_per_container": "ml_per_container",
    "lot__product__mg_per_container": "mg_per_container",
}
# Link field -> the key its sequence number is put under.
LINKS = {"reverses_id": "reverses_seq", "related_entry_id": "related_entry_seq"}


@dataclass(frozen=True, slots=True)
class ProductCells:
    """What the columns show of a row's product, worked out once per product and page."""

    name: str
    ndc: str
    substance: str
    finished_form: str
    units_per_container: str


@dataclass(frozen=True)
class Column:
    header: str
    value: Cell
    numeric: bool = False
    fields: tuple[str, ...] = ()
    # The value is a number, a date or a time, or empty: its text never needs escaping.
    plain: bool = False


def _labels(choices: Any) -> dict[str, str]:
    return {value: str(label) for value, label in choices.choices}


_KIND_LABELS = _labels(EntryKind)
_DISPOSAL_LABELS = _labels(DisposalMethod)
_MEANING_LABELS = _labels(SignatureMeaning)


def _display(labels: dict[str, str], value: Any) -> str:
    """As Model.get_FOO_display(): the label, or the value itself when it has none."""
    return labels.get(value, value)


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def _amount(value: Any) -> str:
    return "" if value is None else format(value, "f")


def _correction(r: Row) -> str:
    seq = r.get("reverses_seq")
    return f"Reversal of #{seq}: {r['reason']}" if r["reverses_id"] and seq is not None else ""


def _signatures(r: Row) -> list[tuple[str, Any, str]]:
    """LedgerEntry.signatures of a row: (name, signed at, meaning) of every second signer."""
    found = []
    if r["witness_id"]:
        found.append(
            (
                r["witness_name"],
                r["witness_signed_at"],
                _display(_MEANING_LABELS, r["witness_meaning"]),
            )
        )
    if r["second_witness_id"]:
        found.append(
            (
                r["second_witness_name"],
                r["second_witness_signed_at"],
                _display(_MEANING_LABELS, r["second_witness_meaning"]),
            )
        )
    return found


def _witnesses(r: Row) -> str:
    return "; ".join(
        f"{name} ({signed.strftime('%Y-%m-%d %H:%M') if signed else ''}: {meaning})"
        for name, signed, meaning in _signatures(r)
    )


_SIGNATURE_FIELDS = tuple(
    f"{prefix}_{name}"
    for prefix in ("witness", "second_witness")
    for name in ("id", "name", "signed_at", "meaning")
)


def _col(
    header: str, value: Cell, *fields: str, numeric: bool = False, plain: bool = False
) -> Column:
    return Column(header, value, numeric, fields, plain)


_SEQ = _col("Entry", lambda r, tz: r["seq"], "seq", numeric=True, plain=True)
_DATE = _col("Date", lambda r, tz: _local(r["occurred_at"], tz), "occurred_at", plain=True)
_SUBSTANCE = _col("Substance", lambda r, tz: r[PRODUCT].substance, PRODUCT)
_PRODUCT = _col("Product", lambda r, tz: r[PRODUCT].name, PRODUCT)
_NDC = _col("NDC", lambda r, tz: r[PRODUCT].ndc, PRODUCT)
_FORM = _col("Finished form", lambda r, tz: r[PRODUCT].finished_form, PRODUCT)
_PER_CONTAINER = _col("Units per container", lambda r, tz: r[PRODUCT].units_per_container, PRODUCT)
_LOT = _col("Lot", lambda r, tz: r["lot__lot_number"], "lot__lot_number")
_LOCATION = _col("Location", lambda r, tz: r["location__name"], "location__name")
_MG = _col(
    "Quantity (mg)",
    lambda r, tz: _amount(-r["quantity_mg"]),
    "quantity_mg",
    numeric=True,
    plain=True,
)
_ML = _col(
    "Volume (mL)",
    lambda r, tz: _amount(-r["volume_ml"] if r["volume_ml"] is not None else None),
    "volume_ml",
    numeric=True,
    plain=True,
)
_UNITS_OUT = _col(
    "Containers",
    lambda r, tz: -r["units"] if r["units"] is not None else "",
    "units",
    numeric=True,
    plain=True,
)
_ACTOR = _col("Recorded by", lambda r, tz: r["actor_name"], "actor_name")
_SIGNERS = _col("Witnesses", lambda r, tz: _witnesses(r), *_SIGNATURE_FIELDS)
_CORRECTION = _col("Correction", lambda r, tz: _correction(r), "reverses_id", "reason")


def _text(header: str, field: str) -> Column:
    """A column showing one text field as stored."""
    return _col(header, lambda r, tz: r[field], field)


def fields_of(columns: Iterable[Column]) -> tuple[str, ...]:
    """The `.values()` fields the columns read (PRODUCT standing for the product's fields)."""
    wanted: dict[str, None] = {}
    for column in columns:
        for name in column.fields:
            if name == PRODUCT:
                wanted.update(dict.fromkeys(PRODUCT_FIELDS))
            else:
                wanted[name] = None
    return tuple(wanted)


def complete(rows: list[Row]) -> list[Row]:
    """Add what the row's own fields do not hold: the product (one instance per product) and
    the sequence numbers of linked entries (one query, only if some row has a link)."""
    if not rows:
        return rows
    first = rows[0]
    if "lot__product_id" in first:
        products: dict[int, ProductCells] = {}
        for r in rows:
            cells = products.get(r["lot__product_id"])
            if cells is None:
                product = Product(**{name: r[key] for key, name in PRODUCT_FIELDS.items()})
                cells = products[product.pk] = ProductCells(
                    product.name,
                    product.ndc,
                    product.get_substance_display(),
                    product.finished_form,
                    product.units_per_container,
                )
            r[PRODUCT] = cells
    links = [field for field in LINKS if field in first]
    ids = {r[field] for r in rows for field in links if r[field]}
    seqs = selectors.entry_seqs(ids) if ids else {}
    for field in links:
        key = LINKS[field]
        for r in rows:
            r[key] = seqs.get(r[field]) if r[field] else None
    return rows


def stream(rows: QuerySet[Any], chunk_size: int = 2000) -> Iterator[Row]:
    """The rows of a `.values()` queryset, completed a chunk at a time (for exports)."""
    chunk: list[Row] = []
    for r in rows.iterator(chunk_size=chunk_size):
        chunk.append(r)
        if len(chunk) == chunk_size:
            yield from complete(chunk)
            chunk = []
    yield from complete(chunk)


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    description: str
    kind: str
    columns: tuple[Column, ...]
    sign: int = -1  # the ledger sign of the report's quantities (out of stock: −1)
    with_patient: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return fields_of(self.columns)

    def rows(
        self, clinic: Clinic, f: selectors.EntryFilter, reversal_ids: list[int] | None = None
    ) -> QuerySet[LedgerEntry]:
        """The report's entries, joined to nothing: count and total them as they are."""
        return selectors.entries_of_kind(clinic, self.kind, f, reversal_ids)

    def values(self, rows: QuerySet[LedgerEntry]) -> QuerySet[Any]:
        """What the columns show of `rows`, as dicts (pass a slice of it to `complete`).
        Aggregate `rows` itself: the joins these fields need would be in the total's query."""
        return rows.values(*self.fields)

    def total_mg(self, rows: QuerySet[Any]) -> Any:
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
        _text("Patient", "patient_name"),
        _text("Patient address", "patient_address"),
        _text("Administered by", "actor_name"),
        _col(
            "Session",
            lambda r, tz: r["treatment_session_id"] or "",
            "treatment_session_id",
            plain=True,
        ),
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
        _col(
            "Expiry",
            lambda r, tz: r["lot__expires_on"].isoformat(),
            "lot__expires_on",
            plain=True,
        ),
        _col(
            "Containers",
            lambda r, tz: r["units"] if r["units"] is not None else "",
            "units",
            numeric=True,
            plain=True,
        ),
        _col(
            "Quantity (mg)",
            lambda r, tz: _amount(r["quantity_mg"]),
            "quantity_mg",
            numeric=True,
            plain=True,
        ),
        _text("Supplier", "counterparty_name"),
        _text("Supplier address", "counterparty_address"),
        _text("Supplier DEA number", "counterparty_dea_number"),
        _text("Invoice", "document_number"),
        _col(
            "Invoice date",
            lambda r, tz: r["document_date"].isoformat() if r["document_date"] else "",
            "document_date",
            plain=True,
        ),
        _text("Received by", "actor_name"),
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
        _text("Patient", "patient_name"),
        _col(
            "Of administration",
            lambda r, tz: (
                f"#{r['related_entry_seq']}"
                if r["related_entry_id"] and r["related_entry_seq"] is not None
                else ""
            ),
            "related_entry_id",
        ),
        _text("Reason", "reason"),
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
        _col(
            "Method",
            lambda r, tz: _display(_DISPOSAL_LABELS, r["disposal_method"]),
            "disposal_method",
        ),
        _text("Reverse distributor", "counterparty_name"),
        _text("Distributor address", "counterparty_address"),
        _text("Distributor DEA number", "counterparty_dea_number"),
        _text("Destruction method", "destruction_method"),
        _text("Document", "document_number"),
        _text("Reason", "reason"),
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
    _col("Recorded", lambda r, tz: _local(r["recorded_at"], tz), "recorded_at"),
    _col("Kind", lambda r, tz: _display(_KIND_LABELS, r["kind"]), "kind"),
    _SUBSTANCE,
    _PRODUCT,
    _NDC,
    _LOT,
    _LOCATION,
    _col(
        "Quantity (mg, signed)",
        lambda r, tz: _amount(r["quantity_mg"]),
        "quantity_mg",
        numeric=True,
    ),
    _col("Volume (mL, signed)", lambda r, tz: _amount(r["volume_ml"]), "volume_ml", numeric=True),
    _col(
        "Containers (signed)",
        lambda r, tz: "" if r["units"] is None else r["units"],
        "units",
        numeric=True,
    ),
    _col(
        "Balance after (mg)",
        lambda r, tz: _amount(r["balance_after_mg"]),
        "balance_after_mg",
        numeric=True,
    ),
    _ACTOR,
    _SIGNERS,
    _text("Patient", "patient_name"),
    _text("Counterparty", "counterparty_name"),
    _text("Reason", "reason"),
    _CORRECTION,
    _text("Hash", "entry_hash"),
)
LEDGER_FIELDS = fields_of(LEDGER_COLUMNS)


def cells(columns: Iterable[Column], row: Any, tz: ZoneInfo) -> list[Any]:
    return [column.value(row, tz) for column in columns]


@functools.cache
def header_html(columns: tuple[Column, ...]) -> SafeString:
    """The table's header row (what _report_table.html's loop over the headers wrote), written
    once per report: seventeen headers cost a thousand template calls on every page."""
    numeric = ' class="num"'
    cells = "".join(
        f'<th scope="col"{numeric if c.numeric else ""}>{escape(c.header)}</th>' for c in columns
    )
    return mark_safe(f"<tr>{cells}</tr>")  # noqa: S308 (every header passed through escape)


def html_rows(columns: Sequence[Column], rows: Iterable[Any], tz: ZoneInfo) -> SafeString:
    """The table body as HTML, every value escaped. A report page is hundreds of cells: built
    here it costs a fraction of the same loop in the template language."""
    # (opening tag, cell function, plain) per column; a list comprehension per row, not a
    # generator and a cells() list: hundreds of cells a page. Plain values (numbers, dates)
    # have nothing to escape.
    plan = [('<td class="num">' if c.numeric else "<td>", c.value, c.plain) for c in columns]
    lines = [
        "<tr>"
        + "".join(
            [
                f"{o}{value(row, tz)}</td>" if plain else f"{o}{escape(str(value(row, tz)))}</td>"
                for o, value, plain in plan
            ]
        )
        + "</tr>"
        for row in rows
    ]
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


# What ledger_rows shows of each entry (the entries have many more columns than the page needs).
LEDGER_PAGE_FIELDS = (
    "seq",
    "kind",
    "occurred_at",
    "quantity_mg",
    "balance_after_mg",
    "actor_name",
    "witness_name",
    "second_witness_name",
    "patient_name",
    "reverses_id",
    "location__name",
    "lot__lot_number",
    "lot__product__name",
)


def ledger_rows(rows: Iterable[Row], tz: ZoneInfo, entry_url: str) -> SafeString:
    """The ledger page's table body from LEDGER_PAGE_FIELDS rows passed through `complete`
    (`entry_url` ends with "/", the seq follows)."""
    lines = []
    for r in rows:
        kind = _display(_KIND_LABELS, r["kind"])
        if r["reverses_id"] and r["reverses_seq"] is not None:
            kind += f" of #{r['reverses_seq']}"
        witnesses = "; ".join(n for n in (r["witness_name"], r["second_witness_name"]) if n)
        values = (
            _local(r["occurred_at"], tz),
            kind,
            r["location__name"],
            f"{r['lot__product__name']} {r['lot__lot_number']}",
        )
        lines.append(
            f'<tr><td><a href="{entry_url}{r["seq"]}/">{r["seq"]}</a></td>'
            + "".join(f"<td>{escape(str(v))}</td>" for v in values)
            + f'<td class="num">{r["quantity_mg"]}</td>'
            + f'<td class="num">{r["balance_after_mg"]}</td>'
            + "".join(
                f"<td>{escape(v)}</td>" for v in (r["actor_name"], witnesses, r["patient_name"])
            )
            + "</tr>"
        )
    return mark_safe("\n".join(lines))  # noqa: S308 (text values escaped; numbers are Decimals)
