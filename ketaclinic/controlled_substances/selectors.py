"""Reads of the ledger: balances, entries, counts, investigations, witnesses and verification.

Callers scope by clinic ids they obtained from `accounts.access`; these functions own the
select_related so list pages run a fixed number of queries whatever the number of rows.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Count as RowCount
from django.db.models import Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate

from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.audit.chain import ChainEntry, verify_chain
from ketaclinic.controlled_substances import ledger
from ketaclinic.controlled_substances.choices import (
    INVENTORY_PURPOSES,
    REPORTABLE_KINDS,
    EntryKind,
    InvestigationStatus,
)
from ketaclinic.controlled_substances.models import (
    Balance,
    Count,
    Investigation,
    LedgerDayTotal,
    LedgerEntry,
    LedgerHead,
    Lot,
    Product,
    StorageLocation,
)
from ketaclinic.controlled_substances.quantities import ZERO, fmt_mg, whole_containers
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_ID,
    CompiledModelQuery,
    CompiledValuesQuery,
    Read,
    read_together,
    run_prepared,
)

# Lists join what every row shows; the links a few rows have (the entry a reversal cancels, the
# dose a waste belongs to) are fetched in one extra query instead of two self-joins per row,
# which cost more to plan than to run at 50,000 entries.
ENTRY_RELATED = ("lot__product", "location")
ENTRY_LINKS = ("reverses", "related_entry")


# --- balances -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BalanceRow:
    balance: Balance
    full_containers: int
    partial_mg: Decimal
    expired: bool

    @property
    def on_hand_ml(self) -> Decimal | None:
        product = self.balance.lot.product
        if product.mg_per_ml:
            return (self.balance.quantity_mg / product.mg_per_ml).quantize(Decimal("0.001"))
        return None


_BALANCE_ORDER = ("location__name", "lot__product__name", "lot__expires_on", "lot_id")
_BALANCES_ON_HAND = CompiledModelQuery(
    lambda clinic_id: (
        Balance.objects.filter(clinic_id=clinic_id, quantity_mg__gt=0)
        .select_related("location", "lot__product")
        .order_by(*_BALANCE_ORDER)
    ),
    clinic_id=PLACEHOLDER_ID,
)


def balances(
    clinic: Clinic, *, location_id: int | None = None, include_empty: bool = False
) -> list[BalanceRow]:
    """On hand per location and lot (one query whatever the stock; compiled once for the
    balances page's shape: every location, nothing empty)."""
    found: Iterable[Balance]
    if location_id is None and not include_empty:
        found = _BALANCES_ON_HAND.objects(clinic_id=clinic.pk)
    else:
        qs = Balance.objects.filter(clinic=clinic).select_related("location", "lot__product")
        if location_id:
            qs = qs.filter(location_id=location_id)
        if not include_empty:
            qs = qs.filter(quantity_mg__gt=0)
        found = qs.order_by(*_BALANCE_ORDER)
    today = clock.today_in(clinic.timezone)
    rows = []
    for balance in found:
        full, partial = whole_containers(balance.quantity_mg, balance.lot.product.mg_per_container)
        rows.append(BalanceRow(balance, full, partial, balance.lot.expires_on < today))
    return rows


def product_totals(rows: list[BalanceRow]) -> list[tuple[Product, Decimal]]:
    totals: dict[int, tuple[Product, Decimal]] = {}
    for row in rows:
        product = row.balance.lot.product
        _, total = totals.get(product.pk, (product, ZERO))
        totals[product.pk] = (product, total + row.balance.quantity_mg)
    return sorted(totals.values(), key=lambda pair: (pair[0].name, pair[0].mg_per_container))


def stock_choices(clinic: Clinic) -> list[Balance]:
    """Lots with stock at the clinic's active locations, for pickers (soonest expiry first)."""
    return list(
        Balance.objects.filter(clinic=clinic, quantity_mg__gt=0, location__is_active=True)
        .select_related("location", "lot__product")
        .order_by("location__name", "lot__expires_on", "lot__product__name", "lot_id")
    )


def stock_label(balance: Balance) -> str:
    lot = balance.lot
    return (
        f"{balance.location.name} · {lot.product.name} {lot.product.finished_form} · lot "
        f"{lot.lot_number} (exp {lot.expires_on:%Y-%m-%d}) · {fmt_mg(balance.quantity_mg)} mg"
    )


def locations(clinic: Clinic, *, active_only: bool = True) -> QuerySet[StorageLocation]:
    qs = StorageLocation.objects.filter(clinic=clinic)
    return qs.filter(is_active=True) if active_only else qs


def transfer_destinations(clinic_ids: list[int]) -> QuerySet[StorageLocation]:
    return (
        StorageLocation.objects.filter(clinic_id__in=clinic_ids, is_active=True)
        .select_related("clinic")
        .order_by("clinic__name", "name")
    )


def products(*, active_only: bool = True) -> QuerySet[Product]:
    qs = Product.objects.all()
    return qs.filter(is_active=True) if active_only else qs


# The filter forms above the ledger and every report: their choices, compiled once.
_LOCATION_CHOICES = CompiledValuesQuery(
    lambda clinic_id: StorageLocation.objects.filter(clinic_id=clinic_id).values("pk", "name"),
    clinic_id=PLACEHOLDER_ID,
)
_PRODUCT_CHOICES = CompiledValuesQuery(
    lambda: Product.objects.values(
        "pk", "name", "form", "mg_per_ml", "ml_per_container", "mg_per_container"
    )
)


def location_choices(clinic_id: int) -> list[tuple[int, str]]:
    """(id, name) of every location of the clinic, active or not."""
    return _location_choices(_LOCATION_CHOICES.rows(clinic_id=clinic_id))


def product_choices() -> list[tuple[int, str]]:
    """(id, "name finished form") of every product, active or not."""
    return _product_choices(_PRODUCT_CHOICES.rows())


def _location_choices(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(row["pk"], row["name"]) for row in rows]


def _product_choices(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    found = []
    for row in rows:
        product = Product(**row)
        found.append((product.pk, f"{product.name} {product.finished_form}"))
    return found


def filter_choices_reads(clinic_id: int) -> list[Read]:
    """location_choices(clinic_id) and product_choices() as reads, for a page that reads them
    together with others in one round trip (compiled_query.read_together)."""
    return [
        _mapped(_LOCATION_CHOICES.read(clinic_id=clinic_id), _location_choices),
        _mapped(_PRODUCT_CHOICES.read(), _product_choices),
    ]


def _mapped(read: Read, then: Any) -> Read:
    """The read with `then` applied to its result."""
    return Read(read.sql, read.params, lambda fetched: then(read.result(fetched)))


def lots_of_clinic(clinic: Clinic) -> QuerySet[Lot]:
    """Lots this clinic has ever held (for report filters and counts)."""
    return (
        Lot.objects.filter(balances__clinic=clinic)
        .select_related("product")
        .distinct()
        .order_by("product__name", "expires_on", "lot_number")
    )


# --- entries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFilter:
    date_from: date | None = None
    date_to: date | None = None
    kind: str = ""
    location_id: int | None = None
    product_id: int | None = None
    lot_id: int | None = None
    lot_number: str = ""
    patient_id: int | None = None

    def describe(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.__dict__.items() if v)[:400]


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def filter_entries(qs: QuerySet[LedgerEntry], clinic: Clinic, f: EntryFilter) -> QuerySet[Any]:
    tz = ZoneInfo(clinic.timezone)
    if f.date_from:
        qs = qs.filter(occurred_at__gte=_day_start(f.date_from, tz))
    if f.date_to:
        qs = qs.filter(occurred_at__lt=_day_start(f.date_to + timedelta(days=1), tz))
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.location_id:
        qs = qs.filter(location_id=f.location_id)
    if f.product_id:
        qs = qs.filter(lot__product_id=f.product_id)
    if f.lot_id:
        qs = qs.filter(lot_id=f.lot_id)
    if f.lot_number:
        qs = qs.filter(lot__lot_number__iexact=f.lot_number.strip())
    if f.patient_id:
        qs = qs.filter(patient_id=f.patient_id)
    return qs


def entries(clinic: Clinic, f: EntryFilter | None = None) -> QuerySet[LedgerEntry]:
    """The clinic's ledger, newest first."""
    qs = (
        LedgerEntry.objects.filter(clinic=clinic)
        .select_related(*ENTRY_RELATED)
        .prefetch_related(*ENTRY_LINKS)
    )
    return filter_entries(qs, clinic, f or EntryFilter()).order_by("-seq")


_PLACEHOLDER_KIND = "placeholder-kind-5c1e"
_PLACEHOLDER_END = PLACEHOLDER_DATETIME + timedelta(days=1)

# The reversals of one kind's entries (a report's correction rows), compiled once: the
# report pages run it on every request.
_REVERSALS_OF_KIND = CompiledValuesQuery(
    lambda clinic_id, kind: LedgerEntry.objects.filter(
        clinic_id=clinic_id, kind=EntryKind.REVERSAL, reverses__kind=kind
    ).values("pk"),
    clinic_id=PLACEHOLDER_ID,
    kind=_PLACEHOLDER_KIND,
)


def reversals_of_kind(clinic_id: int, kind: str) -> list[int]:
    """Ids of the clinic's reversals of entries of this kind."""
    return _ids(_REVERSALS_OF_KIND.rows(clinic_id=clinic_id, kind=kind))


def reversals_of_kind_read(clinic_id: int, kind: str) -> Read:
    """reversals_of_kind() as a read (compiled_query.read_together)."""
    return _mapped(_REVERSALS_OF_KIND.read(clinic_id=clinic_id, kind=kind), _ids)


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["pk"] for row in rows]


def entries_of_kind(
    clinic: Clinic, kind: str, f: EntryFilter, reversal_ids: list[int] | None = None
) -> QuerySet[LedgerEntry]:
    """Entries of one kind plus the reversals of such entries, oldest first (a report's rows).

    Reversals are few: their ids are looked up first (or passed in, from reversals_of_kind), so
    the report itself stays a range scan of the (clinic, kind, occurred_at) index instead of
    joining the ledger to itself. Nothing related is joined: reports read the fields they show
    with `.values()`.
    """
    if reversal_ids is None:
        reversal_ids = reversals_of_kind(clinic.pk, kind)
    match = Q(kind=kind) | Q(pk__in=reversal_ids) if reversal_ids else Q(kind=kind)
    qs = filter_entries(LedgerEntry.objects.filter(clinic=clinic).filter(match), clinic, f)
    return qs.order_by("occurred_at", "seq")


# A report page opened as it usually is (all dates or a date range, no reversal of its kind, the
# first page) reads its count, total and rows through SQL compiled once per shape of filter:
# the same queries entries_of_kind() builds, without Django compiling them on every request.


def _kind_in_range(
    clinic_id: int, kind: str, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[LedgerEntry]:
    """entries_of_kind() for a dates-only filter and no reversals, unordered."""
    qs = LedgerEntry.objects.filter(clinic_id=clinic_id).filter(Q(kind=kind))
    if start is not None:
        qs = qs.filter(occurred_at__gte=start)
    if end is not None:
        qs = qs.filter(occurred_at__lt=end)
    return qs


_COMPILED_KIND_QUERIES: dict[tuple[Any, ...], CompiledValuesQuery] = {}


def _compiled_kind_query(
    key: tuple[Any, ...], values: dict[str, Any], build: Any
) -> CompiledValuesQuery:
    query = _COMPILED_KIND_QUERIES.get(key)
    if query is None:
        placeholders: dict[str, Any] = {"clinic_id": PLACEHOLDER_ID, "kind": _PLACEHOLDER_KIND}
        if "start" in values:
            placeholders["start"] = PLACEHOLDER_DATETIME
        if "end" in values:
            placeholders["end"] = _PLACEHOLDER_END
        query = _COMPILED_KIND_QUERIES.setdefault(key, CompiledValuesQuery(build, **placeholders))
    return query


def _range_values(clinic: Clinic, f: EntryFilter, reversal_ids: list[int]) -> dict[str, Any] | None:
    """The compiled queries' values, or None when the filter is more than dates (or the kind
    has reversals): those go through entries_of_kind()."""
    if reversal_ids or replace(f, date_from=None, date_to=None) != EntryFilter():
        return None
    tz = ZoneInfo(clinic.timezone)
    values: dict[str, Any] = {"clinic_id": clinic.pk}
    if f.date_from:
        values["start"] = _day_start(f.date_from, tz)
    if f.date_to:
        values["end"] = _day_start(f.date_to + timedelta(days=1), tz)
    return values


def kind_totals(clinic: Clinic, kind: str, f: EntryFilter, reversal_ids: list[int]) -> Totals:
    """totals(entries_of_kind(clinic, kind, f, reversal_ids)); for a filter of dates only, read
    from the day totals (see `_day_totals_sql`)."""
    read = kind_totals_read(clinic, kind, f, reversal_ids)
    if read is None:
        return totals(entries_of_kind(clinic, kind, f, reversal_ids))
    found: Totals = read.result(run_prepared(read.sql, read.params))
    return found


def kind_totals_read(
    clinic: Clinic, kind: str, f: EntryFilter, reversal_ids: list[int]
) -> Read | None:
    """kind_totals() as a read from the day totals; None for a filter of more than dates."""
    if replace(f, date_from=None, date_to=None) != EntryFilter():
        return None
    # The kind's entries and the reversals of them: in the day totals by (kind, reversed kind),
    # in the ledger as entries_of_kind() matches them.
    totals_match = "((kind = %s AND reversed_kind = '') OR (kind = %s AND reversed_kind = %s))"
    entries_match = "kind = %s"
    if reversal_ids:
        entries_match = f"(kind = %s OR id IN ({', '.join(['%s'] * len(reversal_ids))}))"
    return _day_totals_read(
        clinic,
        f,
        (totals_match, [kind, EntryKind.REVERSAL, kind]),
        (entries_match, [kind, *reversal_ids]),
    )


def entry_count(clinic: Clinic, f: EntryFilter) -> int | None:
    """entries(clinic, f).count() read from the day totals when the filter is dates and kind
    only (the ledger page as usually opened); None for other filters."""
    read = entry_count_read(clinic, f)
    if read is None:
        return None
    found: int = read.result(run_prepared(read.sql, read.params))
    return found


def entry_count_read(clinic: Clinic, f: EntryFilter) -> Read | None:
    """entry_count() as a read (compiled_query.read_together); None for other filters."""
    if replace(f, date_from=None, date_to=None, kind="") != EntryFilter():
        return None
    match: tuple[str, list[Any]] = ("kind = %s", [f.kind]) if f.kind else ("1 = 1", [])
    return _mapped(_day_totals_read(clinic, f, match, match), lambda found: found.rows)


Match = tuple[str, list[Any]]  # an SQL condition and its parameters


def _day_totals_read(
    clinic: Clinic, f: EntryFilter, totals_match: Match, entries_match: Match
) -> Read:
    """The statement of `_day_totals_sql` for the filter's dates, read as Totals. Its text is
    fixed for a shape of filter, so it is prepared like a compiled query (run_prepared)."""
    tz = ZoneInfo(clinic.timezone)
    start = _day_start(f.date_from, tz) if f.date_from else None
    end = _day_start(f.date_to + timedelta(days=1), tz) if f.date_to else None
    sql, params = _day_totals_sql(clinic.pk, start, end, totals_match, entries_match)
    return Read(sql, params, _totals_of_parts)


def _totals_of_parts(parts: list[Any]) -> Totals:
    return Totals(sum(int(n or 0) for n, _ in parts), sum((_decimal(mg) for _, mg in parts), ZERO))


_LEDGER = LedgerEntry._meta.db_table
_DAY_TOTALS = LedgerDayTotal._meta.db_table
_MG = Decimal("0.001")
_FLOAT_CONTEXT = decimal.Context(prec=15)  # as Django reads SQLite's decimal sums


def _decimal(value: Any) -> Decimal:
    """A SUM as the database returns it (Decimal on PostgreSQL, int or float on SQLite)."""
    if value is None:
        return ZERO
    if isinstance(value, float):
        return _FLOAT_CONTEXT.create_decimal_from_float(value).quantize(_MG)
    return Decimal(value)


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _day_totals_sql(
    clinic_id: int,
    start: datetime | None,
    end: datetime | None,
    totals_match: Match,
    entries_match: Match,
) -> tuple[str, list[Any]]:
    """One statement giving (count, mg) parts that add up to the count and total of the
    clinic's entries in [start, end) that match.

    The whole UTC days inside the range come from LedgerDayTotal rows matching `totals_match`
    (at most a few rows per day); the partial days at the ends, if any, from the ledger's
    (clinic, kind, occurred_at) index, entries matching `entries_match`: two conditions that
    must select the same entries. With no bound on a side, every day on that side comes from
    the totals.
    """
    ops = connection.ops
    first_day = last_day = None  # the whole UTC days: first_day <= day < last_day
    if start is not None:
        s = start.astimezone(UTC)
        first_day = s.date() if s.time() == time.min else s.date() + timedelta(days=1)
    if end is not None:
        last_day = end.astimezone(UTC).date()
    edges: list[tuple[datetime, datetime]] = []
    if first_day is not None and last_day is not None and first_day >= last_day:
        edges.append((start, end))  # type: ignore[arg-type]
        first_day = last_day = None
        whole_days = False
    else:
        whole_days = True
        if start is not None and first_day is not None and start < _utc_midnight(first_day):
            edges.append((start, _utc_midnight(first_day)))
        if end is not None and last_day is not None and _utc_midnight(last_day) < end:
            edges.append((_utc_midnight(last_day), end))
    parts: list[str] = []
    params: list[Any] = []
    if whole_days:
        sql = (
            f"SELECT SUM(entries), SUM(quantity_mg) FROM {_DAY_TOTALS} "  # noqa: S608 (model's table)
            f"WHERE clinic_id = %s AND {totals_match[0]}"
        )
        params += [clinic_id, *totals_match[1]]
        if first_day is not None:
            sql += " AND day >= %s"
            params.append(ops.adapt_datefield_value(first_day))
        if last_day is not None:
            sql += " AND day < %s"
            params.append(ops.adapt_datefield_value(last_day))
        parts.append(sql)
    for low, high in edges:
        parts.append(
            f"SELECT COUNT(*), SUM(quantity_mg) FROM {_LEDGER} "  # noqa: S608 (model's table)
            f"WHERE clinic_id = %s AND {entries_match[0]} AND occurred_at >= %s "
            "AND occurred_at < %s"
        )
        params += [clinic_id, *entries_match[1]]
        params += [ops.adapt_datetimefield_value(low), ops.adapt_datetimefield_value(high)]
    return " UNION ALL ".join(parts), params


def day_totals_from_ledger() -> dict[tuple[int, str, str, date], tuple[int, Decimal]]:
    """What every LedgerDayTotal row should hold, worked out from the entries themselves."""
    rows = (
        LedgerEntry.objects.order_by()
        .values("clinic_id", "kind", "reverses__kind", day=TruncDate("occurred_at", tzinfo=UTC))
        .annotate(n=RowCount("*"), mg=Sum("quantity_mg"))
    )
    return {
        (r["clinic_id"], r["kind"], r["reverses__kind"] or "", r["day"]): (r["n"], r["mg"])
        for r in rows
    }


def kind_first_rows(
    clinic: Clinic,
    kind: str,
    f: EntryFilter,
    reversal_ids: list[int],
    fields: tuple[str, ...],
    size: int,
) -> list[dict[str, Any]] | None:
    """entries_of_kind(...).values(*fields)[:size] compiled for date ranges; None otherwise."""
    read = kind_first_rows_read(clinic, kind, f, reversal_ids, fields, size)
    if read is None:
        return None
    found: list[dict[str, Any]] = read.result(run_prepared(read.sql, read.params))
    return found


def kind_first_rows_read(
    clinic: Clinic,
    kind: str,
    f: EntryFilter,
    reversal_ids: list[int],
    fields: tuple[str, ...],
    size: int,
) -> Read | None:
    """kind_first_rows() as a read (compiled_query.read_together); None where it gives None."""
    values = _range_values(clinic, f, reversal_ids)
    if values is None:
        return None
    query = _compiled_kind_query(
        ("rows", fields, size, *values),
        values,
        lambda **p: _kind_in_range(**p).order_by("occurred_at", "seq").values(*fields)[:size],
    )
    return query.read(kind=kind, **values)


def kind_page(
    clinic: Clinic,
    kind: str,
    f: EntryFilter,
    reversal_ids: list[int],
    fields: tuple[str, ...],
    size: int,
    *,
    first_page: bool,
) -> tuple[Totals, list[dict[str, Any]] | None]:
    """kind_totals() and, for the first page, kind_first_rows(): in one round trip when both
    are compiled (a report page as usually opened); the rows are None when not read."""
    rows_read = kind_first_rows_read(clinic, kind, f, reversal_ids, fields, size)
    totals_read = kind_totals_read(clinic, kind, f, reversal_ids)
    if not first_page or rows_read is None or totals_read is None:
        return kind_totals(clinic, kind, f, reversal_ids), None
    found, rows = read_together([totals_read, rows_read])
    return found, rows


def newest_page(
    clinic: Clinic, f: EntryFilter, fields: tuple[str, ...], size: int, *, first_page: bool
) -> tuple[int | None, list[dict[str, Any]] | None]:
    """entry_count() and, for the first page, newest_entry_rows(): in one round trip when
    both are compiled (the ledger page as usually opened); the rows are None when not read."""
    count_read = entry_count_read(clinic, f)
    rows_read = newest_entry_rows_read(clinic, f, fields, size)
    if not first_page or rows_read is None or count_read is None:
        return entry_count(clinic, f), None
    count, rows = read_together([count_read, rows_read])
    return count, rows


_NEWEST_ROWS: dict[tuple[Any, ...], CompiledValuesQuery] = {}


def newest_entry_rows(
    clinic: Clinic, f: EntryFilter, fields: tuple[str, ...], size: int
) -> list[dict[str, Any]] | None:
    """entries(clinic, f).values(*fields)[:size] compiled once, for the ledger page as usually
    opened (no filter, or a kind only); None for other filters."""
    read = newest_entry_rows_read(clinic, f, fields, size)
    if read is None:
        return None
    found: list[dict[str, Any]] = read.result(run_prepared(read.sql, read.params))
    return found


def newest_entry_rows_read(
    clinic: Clinic, f: EntryFilter, fields: tuple[str, ...], size: int
) -> Read | None:
    """newest_entry_rows() as a read (compiled_query.read_together); None for other filters."""
    if replace(f, kind="") != EntryFilter():
        return None
    key = (bool(f.kind), fields, size)
    query = _NEWEST_ROWS.get(key)
    if query is None:
        if f.kind:
            query = CompiledValuesQuery(
                lambda clinic_id, kind: (
                    LedgerEntry.objects.filter(clinic_id=clinic_id, kind=kind)
                    .order_by("-seq")
                    .values(*fields)[:size]
                ),
                clinic_id=PLACEHOLDER_ID,
                kind=_PLACEHOLDER_KIND,
            )
        else:
            query = CompiledValuesQuery(
                lambda clinic_id: (
                    LedgerEntry.objects.filter(clinic_id=clinic_id)
                    .order_by("-seq")
                    .values(*fields)[:size]
                ),
                clinic_id=PLACEHOLDER_ID,
            )
        query = _NEWEST_ROWS.setdefault(key, query)
    if f.kind:
        return query.read(clinic_id=clinic.pk, kind=f.kind)
    return query.read(clinic_id=clinic.pk)


def entry_seqs(ids: Iterable[int]) -> dict[int, int]:
    """Sequence numbers of these entries by id (the entries a page's rows link to)."""
    return dict(LedgerEntry.objects.filter(pk__in=list(ids)).values_list("pk", "seq"))


@dataclass(frozen=True)
class Totals:
    rows: int
    quantity_mg: Decimal


def totals(qs: QuerySet[LedgerEntry]) -> Totals:
    """Row count and summed mg in one aggregate query."""
    result = qs.order_by().aggregate(rows=RowCount("*"), total=Sum("quantity_mg"))
    return Totals(result["rows"], result["total"] or ZERO)


def total_mg(qs: QuerySet[LedgerEntry]) -> Decimal:
    return qs.order_by().aggregate(total=Sum("quantity_mg"))["total"] or ZERO


def entry_for(clinic: Clinic, seq: int) -> LedgerEntry | None:
    return (
        LedgerEntry.objects.filter(clinic=clinic, seq=seq)
        .select_related(*ENTRY_RELATED, *ENTRY_LINKS, "count", "investigation", "patient")
        .first()
    )


def reversal_of(entry: LedgerEntry) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(reverses=entry).first()


def patient_entries(patient_id: int, clinic_id: int) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(patient_id=patient_id, clinic_id=clinic_id)
        .select_related("lot__product", "location")
        .order_by("-occurred_at", "-seq")
    )


def patient_recent_entries(patient_id: int, clinic_id: int, limit: int) -> QuerySet[LedgerEntry]:
    """The patient's latest `limit` entries, newest first. The ids come from a subquery on the
    (patient, occurred_at) index: joined to lot and product directly, PostgreSQL chose a merge
    join that scanned the clinic's whole ledger through the lot index (36 ms, not 1 ms, at
    50,000 entries)."""
    latest = (
        LedgerEntry.objects.filter(patient_id=patient_id, clinic_id=clinic_id)
        .order_by("-occurred_at", "-seq")
        .values("pk")[:limit]
    )
    return (
        LedgerEntry.objects.filter(pk__in=Subquery(latest))
        .select_related("lot__product", "location")
        .order_by("-occurred_at", "-seq")
    )


# The columns the chart's ledger panel shows (controlled_substances.views.chart_panel_rows).
CHART_ENTRY_FIELDS = (
    "seq",
    "occurred_at",
    "kind",
    "quantity_mg",
    "actor_name",
    "witness_name",
    "lot__lot_number",
    "lot__product__name",
    "lot__product__form",
    "lot__product__mg_per_ml",
    "lot__product__ml_per_container",
    "lot__product__mg_per_container",
)


def patient_recent_entries_shown(
    patient_id: int, clinic_id: int, limit: int
) -> QuerySet[LedgerEntry]:
    """`patient_recent_entries` with only the columns the chart shows (CHART_ENTRY_FIELDS):
    nine of the entry's forty-odd columns, and no storage location."""
    return (
        patient_recent_entries(patient_id, clinic_id, limit)
        .select_related(None)
        .select_related("lot__product")
        .only(*CHART_ENTRY_FIELDS)
    )


# --- counts and investigations --------------------------------------------------------------


def counts(clinic: Clinic) -> QuerySet[Count]:
    return Count.objects.filter(clinic=clinic).select_related("location").order_by("-counted_at")


def count_for(clinic: Clinic, count_id: int) -> Count | None:
    return (
        Count.objects.filter(clinic=clinic, pk=count_id)
        .select_related("location")
        .prefetch_related("lines__lot__product", "investigations")
        .first()
    )


def inventories(clinic: Clinic, f: EntryFilter) -> QuerySet[Count]:
    tz = ZoneInfo(clinic.timezone)
    qs = Count.objects.filter(clinic=clinic, purpose__in=INVENTORY_PURPOSES)
    if f.date_from:
        qs = qs.filter(counted_at__gte=_day_start(f.date_from, tz))
    if f.date_to:
        qs = qs.filter(counted_at__lt=_day_start(f.date_to + timedelta(days=1), tz))
    if f.location_id:
        qs = qs.filter(location_id=f.location_id)
    return (
        qs.select_related("location")
        .prefetch_related("lines__lot__product")
        .order_by("counted_at", "location__name")
    )


@dataclass(frozen=True)
class InventoryDue:
    last_taken_on: date | None
    due_on: date | None  # None: no initial inventory yet, it is due now
    overdue: bool


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    for last_day in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last_day))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


_LAST_INVENTORY = CompiledValuesQuery(
    lambda clinic_id: (
        Count.objects.filter(clinic_id=clinic_id, purpose__in=INVENTORY_PURPOSES)
        .order_by("-counted_at")
        .values("counted_at")[:1]
    ),
    clinic_id=PLACEHOLDER_ID,
)


def inventory_due(clinic: Clinic) -> InventoryDue:
    """The next DEA inventory: within the configured months (24: biennial) of the last one."""
    found = _LAST_INVENTORY.tuples(clinic_id=clinic.pk)
    last = found[0][0] if found else None
    today = clock.today_in(clinic.timezone)
    if last is None:
        return InventoryDue(None, None, True)
    taken = last.astimezone(ZoneInfo(clinic.timezone)).date()
    due = _add_months(taken, settings.KETACLINIC_CS_INVENTORY_MONTHS)
    return InventoryDue(taken, due, today > due)


def investigations(clinic: Clinic, *, status: str = "", kind: str = "") -> QuerySet[Investigation]:
    qs = Investigation.objects.filter(clinic=clinic).select_related("count__location")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("status", "-discovered_at", "-id")


def investigation_for(clinic: Clinic, investigation_id: int) -> Investigation | None:
    return (
        Investigation.objects.filter(clinic=clinic, pk=investigation_id)
        .select_related(
            "count__location", "opened_by", "closed_by", "dea_notice_sent_by", "form_106_filed_by"
        )
        .first()
    )


@dataclass(frozen=True)
class Deadline:
    investigation: Investigation
    clinic: Clinic
    what: str  # "DEA written notice" or "DEA Form 106"
    due_on: date
    overdue: bool
    days_left: int


def _open_deadlines(clinics: Q) -> QuerySet[Investigation]:
    return (
        Investigation.objects.filter(
            clinics, status=InvestigationStatus.OPEN, kind__in=REPORTABLE_KINDS
        )
        .filter(
            Q(dea_notice_sent_at__isnull=True, dea_notice_due_on__isnull=False)
            | Q(form_106_filed_at__isnull=True, form_106_due_on__isnull=False)
        )
        .select_related("clinic")
    )


_OPEN_DEADLINES = CompiledModelQuery(
    lambda clinic_id: _open_deadlines(Q(clinic_id=clinic_id)), clinic_id=PLACEHOLDER_ID
)


def deadlines(clinic_ids: list[int], *, within_days: int = 7) -> list[Deadline]:
    """Open DEA deadlines of these clinics that are overdue or due within `within_days` (R22).

    "Today" is each clinic's own date: a deadline is overdue the day after its due date.
    """
    open_: Iterable[Investigation]
    if len(clinic_ids) == 1:  # a clinic's own pages: compiled once
        open_ = _OPEN_DEADLINES.objects(clinic_id=clinic_ids[0])
    else:
        open_ = _open_deadlines(Q(clinic_id__in=clinic_ids))
    rows = []
    for inv in open_:
        today = clock.today_in(inv.clinic.timezone)
        pending = []
        if inv.dea_notice_sent_at is None and inv.dea_notice_due_on:
            pending.append(("DEA written notice", inv.dea_notice_due_on))
        if inv.form_106_filed_at is None and inv.form_106_due_on:
            pending.append(("DEA Form 106", inv.form_106_due_on))
        for what, due in pending:
            days_left = (due - today).days
            if days_left <= within_days:
                rows.append(Deadline(inv, inv.clinic, what, due, today > due, days_left))
    return sorted(rows, key=lambda d: (not d.overdue, d.due_on, d.investigation.pk))


# --- witnesses ------------------------------------------------------------------------------


def eligible_witnesses(clinic_id: int, *, exclude_user_id: int | None = None) -> QuerySet[User]:
    """Active people holding a witnessing role at the clinic, the signer excluded."""
    from ketaclinic.accounts.access import PERMISSIONS

    users = User.objects.filter(
        is_active=True,
        pk__in=Membership.objects.filter(
            clinic_id=clinic_id, is_active=True, role__in=PERMISSIONS["cs.witness"]
        ).values("user_id"),
    )
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    return users.order_by("last_name", "first_name", "username")


# --- verification ---------------------------------------------------------------------------


@dataclass
class LedgerVerdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    problems: list[str] = field(default_factory=list)


def _ordered_entries() -> Iterator[LedgerEntry]:
    yield from LedgerEntry.objects.order_by("seq").iterator(chunk_size=5000)


def verify_ledger() -> LedgerVerdict:
    """Walk the chain, then the running balances, the balance cache, the day totals and the
    counts' hashes.

    The first broken entry is named: a missing row shows as a gap in the sequence, an edited row
    as a hash mismatch, a moved row as a sequence or link mismatch, deleted newest rows against
    the head. Balances and counts are checked only when the chain itself is intact.
    """
    head = LedgerHead.objects.filter(pk=1).first()
    running: dict[tuple[int, int], Decimal] = {}
    first_bad_balance: LedgerEntry | None = None

    def walk() -> Iterator[ChainEntry]:
        # One pass: the chain check consumes the entries while the running balances add up.
        nonlocal first_bad_balance
        for entry in _ordered_entries():
            key = (entry.location_id, entry.lot_id)
            running[key] = running.get(key, ZERO) + entry.quantity_mg
            if first_bad_balance is None and (
                running[key] != entry.balance_after_mg or running[key] < 0
            ):
                first_bad_balance = entry
            yield ledger.chain_entry(entry)

    verdict = verify_chain(
        walk(),
        head_seq=head.seq if head else None,
        head_hash=head.entry_hash if head else None,
    )
    result = LedgerVerdict(verdict.ok, verdict.checked, verdict.first_bad_seq, verdict.reason)
    if not verdict.ok:
        return result
    if first_bad_balance is not None:
        entry = first_bad_balance
        result.ok = False
        result.first_bad_seq = entry.seq
        result.reason = (
            f"entry {entry.seq} records a balance of {entry.balance_after_mg} mg but the "
            f"entries before it do not add up to it"
        )
        return result
    cached = {(b.location_id, b.lot_id): b.quantity_mg for b in Balance.objects.all()}
    for key in sorted(set(cached) | set(running)):
        if cached.get(key, ZERO) != running.get(key, ZERO):
            result.problems.append(
                f"balance of location {key[0]} lot {key[1]}: cached {cached.get(key, ZERO)} mg, "
                f"ledger {running.get(key, ZERO)} mg"
            )
    kept = {
        (t.clinic_id, t.kind, t.reversed_kind, t.day): (t.entries, t.quantity_mg)
        for t in LedgerDayTotal.objects.all()
    }
    expected = day_totals_from_ledger()
    empty = (0, ZERO)
    for day in sorted(set(kept) | set(expected)):
        if kept.get(day, empty) != expected.get(day, empty):
            clinic_id, kind, reversed_kind, on = day
            what = f"{kind} of {reversed_kind}" if reversed_kind else kind
            (n, mg), (ledger_n, ledger_mg) = kept.get(day, empty), expected.get(day, empty)
            result.problems.append(
                f"day total of clinic {clinic_id} {what} on {on}: kept {n} entries, {mg} mg; "
                f"ledger {ledger_n} entries, {ledger_mg} mg"
            )
    for count in Count.objects.prefetch_related("lines").order_by("pk"):
        if ledger.count_hash(count, list(count.lines.all())) != count.content_hash:
            result.problems.append(f"count {count.pk} was altered (content hash mismatch)")
    if result.problems:
        result.ok = False
        result.reason = result.problems[0]
    return result
