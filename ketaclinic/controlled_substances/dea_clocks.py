"""DEA deadlines after a theft or significant loss (21 CFR 1301.76(b); 88 FR 40707).

Pure functions with the dates passed in. Written notice to the DEA Field Division is due within
one business day of discovery; DEA Form 106 within 45 calendar days. Business days skip weekends
and US federal holidays (the Field Division is a federal office), plus any extra closure dates a
clinic configures in KETACLINIC_CS_EXTRA_HOLIDAYS.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache

NOTICE_BUSINESS_DAYS = 1  # 1301.76(b): "within one business day of discovery"
FORM_106_DAYS = 45  # 1301.76(b) as amended 24 Jul 2023 (88 FR 40707)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    # 5 U.S.C. 6103(b): a Saturday holiday is observed on Friday, a Sunday one on Monday.
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def federal_holidays(year: int) -> frozenset[date]:
    """The eleven US federal holidays of 5 U.S.C. 6103(a), as observed."""
    mon, thu = 0, 3
    return frozenset(
        {
            _observed(date(year, 1, 1)),
            _nth_weekday(year, 1, mon, 3),  # Martin Luther King Jr. Day
            _nth_weekday(year, 2, mon, 3),  # Washington's Birthday
            _last_weekday(year, 5, mon),  # Memorial Day
            _observed(date(year, 6, 19)),  # Juneteenth
            _observed(date(year, 7, 4)),
            _nth_weekday(year, 9, mon, 1),  # Labor Day
            _nth_weekday(year, 10, mon, 2),  # Columbus Day
            _observed(date(year, 11, 11)),
            _nth_weekday(year, 11, thu, 4),  # Thanksgiving
            _observed(date(year, 12, 25)),
            # New Year's Day of the next year can be observed on 31 December of this one.
            *({date(year, 12, 31)} if date(year + 1, 1, 1).weekday() == 5 else set()),
        }
    )


def is_business_day(day: date, extra_holidays: Iterable[date] = ()) -> bool:
    return (
        day.weekday() < 5
        and day not in federal_holidays(day.year)
        and day not in set(extra_holidays)
    )


def add_business_days(start: date, days: int, extra_holidays: Iterable[date] = ()) -> date:
    extra = frozenset(extra_holidays)
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day, extra):
            remaining -= 1
    return day


def notice_due_on(discovered_on: date, extra_holidays: Iterable[date] = ()) -> date:
    """The last day for the written notice: the first business day after the day of discovery."""
    return add_business_days(discovered_on, NOTICE_BUSINESS_DAYS, extra_holidays)


def form_106_due_on(discovered_on: date) -> date:
    return discovered_on + timedelta(days=FORM_106_DAYS)
