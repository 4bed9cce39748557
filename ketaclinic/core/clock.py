"""One place that tells the time, so tests can control it and rules get it passed in."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone


def now() -> datetime:
    """The current aware UTC datetime."""
    return timezone.now()


def today_in(tz_name: str) -> date:
    """Today's date in a clinic's own timezone."""
    from zoneinfo import ZoneInfo

    return timezone.now().astimezone(ZoneInfo(tz_name)).date()
