"""The ledger's day totals (LedgerDayTotal) are exactly the ledger's entries added up by clinic,
kind (and kind reversed) and UTC day, after every kind of entry, after the migration's backfill
and under concurrent appends; and a report's count and total read from them equal the ledger's
for every date range, in any clinic time zone."""

from __future__ import annotations

import importlib
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import close_old_connections, connections

from ketaclinic.controlled_substances import reports, selectors, services
from ketaclinic.controlled_substances.choices import EntryKind
from ketaclinic.controlled_substances.models import LedgerDayTotal, LedgerEntry
from tests.controlled_substances.conftest import Ledger, attest
from tests.controlled_substances.test_concurrency import _begin_waiting
from tests.controlled_substances.test_reports import month  # noqa: F401 (a fixture)

D = Decimal
BOSTON = ZoneInfo("America/New_York")


def kept() -> dict[tuple[Any, ...], tuple[int, Decimal]]:
    return {
        (t.clinic_id, t.kind, t.reversed_kind, t.day): (t.entries, t.quantity_mg)
        for t in LedgerDayTotal.objects.all()
    }


def added_up_in_python() -> dict[tuple[Any, ...], tuple[int, Decimal]]:
    """The totals worked out entry by entry, independently of the SQL that verify-ledger uses."""
    found: dict[tuple[Any, ...], tuple[int, Decimal]] = {}
    for e in LedgerEntry.objects.select_related("reverses"):
        key = (
            e.clinic_id,
            e.kind,
            e.reverses.kind if e.reverses else "",
            e.occurred_at.astimezone(UTC).date(),
        )
        n, mg = found.get(key, (0, D(0)))
        found[key] = (n + 1, mg + e.quantity_mg)
    return found


def _late_doses_and_a_transfer(lg: Ledger, time_machine: Any) -> None:
    """Doses either side of midnight UTC (18:30 and 19:30 in Boston), a transfer and the
    reversal of a transfer and of a waste: the day totals' awkward cases."""
    nurse, prescriber, admin = lg.user("nurse"), lg.user("prescriber"), lg.user("clinic_admin")
    lot = lg.receive(containers=4, lot_number="LATE")
    for hour, minute in ((18, 30), (19, 30), (23, 59)):
        time_machine.move_to(datetime(2026, 3, 5, hour, minute, tzinfo=BOSTON))
        services.administration_record(
            actor=nurse,
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            patient=lg.patient,
            dose_mg=D("35.5"),
            waste_mg=D("464.5"),
            witness=attest(prescriber),
        )
    out, _ = services.transfer_record(
        actor=nurse,
        clinic=lg.clinic,
        from_location=lg.safe,
        to_location=lg.cart,
        lot=lot,
        quantity_mg=D("500"),
    )
    time_machine.move_to(datetime(2026, 3, 6, 0, 30, tzinfo=BOSTON))
    services.entry_reverse(actor=admin, entry=out, reason="Wrong cart", witness=attest(nurse))
    waste = LedgerEntry.objects.filter(kind=EntryKind.WASTE, lot=lot).last()
    services.entry_reverse(actor=admin, entry=waste, reason="Typo", witness=attest(nurse))


def test_day_totals_are_the_ledger_added_up_after_every_kind_of_entry(
    month: Ledger,  # noqa: F811
    time_machine: Any,
) -> None:
    _late_doses_and_a_transfer(month, time_machine)
    kinds = {key[1:3] for key in kept()}
    assert {("transfer_out", ""), ("transfer_in", ""), ("dispose", "")} <= kinds
    assert {("reversal", "administer"), ("reversal", "waste"), ("reversal", "transfer_out")} <= (
        kinds
    )
    assert len({key[3] for key in kept()}) >= 5  # the late doses land on the next UTC day
    assert kept() == added_up_in_python() == selectors.day_totals_from_ledger()
    verdict = selectors.verify_ledger()
    assert verdict.ok, verdict.reason


def _bounds(clinic: Any, f: selectors.EntryFilter) -> tuple[datetime | None, datetime | None]:
    tz = ZoneInfo(clinic.timezone)
    start = datetime.combine(f.date_from, datetime.min.time(), tzinfo=tz) if f.date_from else None
    end = (
        datetime.combine(f.date_to + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        if f.date_to
        else None
    )
    return start, end


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC"])
def test_report_counts_and_totals_equal_the_ledger_for_every_date_range(
    month: Ledger,  # noqa: F811
    time_machine: Any,
    zone: str,
) -> None:
    lg = month
    _late_doses_and_a_transfer(lg, time_machine)
    clinic = lg.clinic
    clinic.timezone = zone  # a clinic may change its zone: the totals are by UTC day
    days: list[date | None] = [None] + [date(2026, 3, d) for d in range(1, 8)]
    entries = list(LedgerEntry.objects.filter(clinic=clinic).select_related("reverses"))
    checked = 0
    for report in reports.ENTRY_REPORTS.values():
        reversal_ids = selectors.reversals_of_kind(clinic.pk, report.kind)
        for date_from in days:
            for date_to in days:
                f = selectors.EntryFilter(date_from=date_from, date_to=date_to)
                start, end = _bounds(clinic, f)
                mine = [
                    e
                    for e in entries
                    if (
                        e.kind == report.kind
                        or (e.reverses is not None and e.reverses.kind == report.kind)
                    )
                    and (start is None or e.occurred_at >= start)
                    and (end is None or e.occurred_at < end)
                ]
                expected = selectors.Totals(len(mine), sum((e.quantity_mg for e in mine), D(0)))
                got = selectors.kind_totals(clinic, report.kind, f, reversal_ids)
                assert got == expected, (report.slug, f)
                assert got == selectors.totals(report.rows(clinic, f, reversal_ids))
                checked += bool(mine)
    assert checked > 50


def test_verify_ledger_names_a_day_total_that_disagrees(month: Ledger) -> None:  # noqa: F811
    total = LedgerDayTotal.objects.filter(kind=EntryKind.ADMINISTER).order_by("day").first()
    LedgerDayTotal.objects.filter(pk=total.pk).update(quantity_mg=total.quantity_mg - 1)
    verdict = selectors.verify_ledger()
    assert not verdict.ok
    assert verdict.reason.startswith(f"day total of clinic {total.clinic_id} administer on ")


def test_the_migration_backfills_the_totals_from_the_ledger(month: Ledger) -> None:  # noqa: F811
    before = kept()
    LedgerDayTotal.objects.all().delete()
    migration = importlib.import_module(
        "ketaclinic.controlled_substances.migrations.0004_day_totals"
    )
    migration.backfill(apps, None)
    assert kept() == before == added_up_in_python()


def test_concurrent_appends_keep_the_day_totals_exact(transactional_db: Any, lg: Ledger) -> None:
    """Six nurses at once, each drawing from a lot of their own (so no balance lock orders them):
    they all add to the same day's row."""
    lots = [lg.receive(containers=1, lot_number=f"P{i}") for i in range(6)]
    barrier = threading.Barrier(len(lots))
    failed: list[BaseException] = []

    def nurse(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            _begin_waiting(
                lambda: services.administration_record(
                    actor=lg.user("nurse" if index % 2 == 0 else "prescriber"),
                    clinic=lg.clinic,
                    location=lg.safe,
                    lot=lots[index],
                    patient=lg.patient,
                    dose_mg=D("12.345"),
                    witness=None,
                )
            )
        except BaseException as exc:  # reported below
            failed.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=nurse, args=(i,)) for i in range(len(lots))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    assert not failed
    assert LedgerEntry.objects.filter(kind=EntryKind.ADMINISTER).count() == len(lots)
    assert kept() == added_up_in_python()
    administered = [v for k, v in kept().items() if k[1] == EntryKind.ADMINISTER]
    assert sum(n for n, _ in administered) == len(lots)
    assert sum(mg for _, mg in administered) == D("-12.345") * len(lots)
    assert selectors.verify_ledger().ok


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_the_ledger_pages_count_equals_the_ledger_for_kinds_and_dates(
    month: Ledger,  # noqa: F811
    time_machine: Any,
    zone: str,
) -> None:
    _late_doses_and_a_transfer(month, time_machine)
    clinic = month.clinic
    clinic.timezone = zone
    days: list[date | None] = [None, date(2026, 3, 2), date(2026, 3, 5), date(2026, 3, 6)]
    for kind in ["", *EntryKind.values]:
        for date_from in days:
            for date_to in days:
                f = selectors.EntryFilter(date_from=date_from, date_to=date_to, kind=kind)
                assert selectors.entry_count(clinic, f) == selectors.entries(clinic, f).count()
    assert (
        selectors.entry_count(clinic, selectors.EntryFilter())
        == LedgerEntry.objects.filter(clinic=clinic).count()
    )
    assert selectors.entry_count(clinic, selectors.EntryFilter(patient_id=month.patient.pk)) is None
