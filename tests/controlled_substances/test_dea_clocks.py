"""DEA clocks after a theft or significant loss (R22): 1 business day for the written notice,
45 days for Form 106; overdue ones are listed for clinic administrators (frozen-clock tests)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ketaclinic.controlled_substances import dea_clocks, selectors, services
from ketaclinic.controlled_substances.choices import InvestigationKind
from tests.controlled_substances.conftest import Ledger, attest


def test_federal_holidays_of_2026_as_observed() -> None:
    assert sorted(dea_clocks.federal_holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 1, 19),
        date(2026, 2, 16),
        date(2026, 5, 25),
        date(2026, 6, 19),
        date(2026, 7, 3),  # 4 July is a Saturday
        date(2026, 9, 7),
        date(2026, 10, 12),
        date(2026, 11, 11),
        date(2026, 11, 26),
        date(2026, 12, 25),
    ]
    # 1 January 2028 is a Saturday: observed on Friday 31 December 2027.
    assert date(2027, 12, 31) in dea_clocks.federal_holidays(2027)


@pytest.mark.parametrize(
    ("discovered", "due"),
    [
        (date(2026, 3, 11), date(2026, 3, 12)),  # Wednesday → Thursday
        (date(2026, 3, 13), date(2026, 3, 16)),  # Friday → Monday
        (date(2026, 3, 14), date(2026, 3, 16)),  # Saturday → Monday
        (date(2026, 1, 16), date(2026, 1, 20)),  # Friday before MLK Day → Tuesday
        (date(2026, 11, 25), date(2026, 11, 27)),  # the day before Thanksgiving → Friday
        (date(2026, 12, 24), date(2026, 12, 28)),  # Christmas Eve → Monday
    ],
)
def test_the_notice_is_due_the_next_business_day(discovered: date, due: date) -> None:
    assert dea_clocks.notice_due_on(discovered) == due


def test_clinic_closure_days_are_not_business_days() -> None:
    assert dea_clocks.notice_due_on(date(2026, 3, 11), [date(2026, 3, 12)]) == date(2026, 3, 13)


def test_form_106_is_due_45_days_after_discovery() -> None:
    assert dea_clocks.form_106_due_on(date(2026, 3, 13)) == date(2026, 4, 27)


def _loss(lg: Ledger, kind: str = InvestigationKind.THEFT):
    lot = lg.receive(containers=1)
    return services.loss_record(
        actor=lg.user("clinic_admin"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        quantity_mg=Decimal("500"),
        kind=kind,
        reason="Vial missing",
        witness=attest(lg.user("nurse")),
    ).investigation


BOSTON = ZoneInfo("America/New_York")


def test_overdue_notices_and_forms_are_all_detected(lg: Ledger, time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 13, 16, 0, tzinfo=BOSTON))  # Friday afternoon
    inv = _loss(lg)
    minor = _loss(lg, InvestigationKind.MINOR)
    assert minor.dea_notice_due_on is None
    time_machine.move_to(datetime(2026, 3, 16, 23, 30, tzinfo=BOSTON))  # Monday, late
    (due,) = selectors.deadlines([lg.clinic.pk])
    assert (due.what, due.due_on, due.overdue, due.days_left) == (
        "DEA written notice",
        date(2026, 3, 16),
        False,
        0,
    )
    time_machine.move_to(datetime(2026, 3, 17, 0, 30, tzinfo=BOSTON))  # Tuesday: one day late
    (late,) = selectors.deadlines([lg.clinic.pk])
    assert late.overdue and late.investigation == inv
    services.investigation_notice_sent(actor=lg.user("clinic_admin"), investigation=inv)
    assert selectors.deadlines([lg.clinic.pk]) == []  # Form 106 is weeks away
    time_machine.move_to(datetime(2026, 4, 21, 9, 0, tzinfo=BOSTON))
    (form,) = selectors.deadlines([lg.clinic.pk])
    assert (form.what, form.due_on, form.overdue, form.days_left) == (
        "DEA Form 106",
        date(2026, 4, 27),
        False,
        6,
    )
    time_machine.move_to(datetime(2026, 4, 28, 9, 0, tzinfo=BOSTON))
    assert [d.overdue for d in selectors.deadlines([lg.clinic.pk])] == [True]
    assert selectors.deadlines([lg.world.clinic_b.pk]) == []


def test_the_clinic_date_decides_the_business_day(lg: Ledger, time_machine) -> None:
    # 22:30 on Friday in Boston is already Saturday in UTC: discovery is still Friday.
    time_machine.move_to(datetime(2026, 3, 13, 22, 30, tzinfo=BOSTON))
    assert _loss(lg).dea_notice_due_on == date(2026, 3, 16)


def test_extra_holidays_come_from_settings(lg: Ledger, settings, time_machine) -> None:
    settings.KETACLINIC_CS_EXTRA_HOLIDAYS = ["2026-03-16"]
    time_machine.move_to(datetime(2026, 3, 13, 12, 0, tzinfo=BOSTON))
    assert _loss(lg).dea_notice_due_on == date(2026, 3, 17)
