"""Numbers on session pages as a nurse reads them: 36.30 mg shows as 36.3 mg; clock times
written without the date filter's machinery."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django import template
from django.template.defaultfilters import date as date_filter

register = template.Library()


@register.filter
def plain(value: Any) -> str:
    """A Decimal without trailing zeros (36.30 → 36.3, 40.00 → 40); anything else as is."""
    if isinstance(value, Decimal) and value.is_finite():
        return f"{value.normalize():f}"
    return "" if value is None else str(value)


# The numeric formats session pages use, as strftime patterns (same digits, zero-padded).
_STRFTIME = {"H:i": "%H:%M", "Y-m-d H:i": "%Y-%m-%d %H:%M", "Y-m-d": "%Y-%m-%d"}


@register.filter(expects_localtime=True, is_safe=False)
def clock_time(value: Any, arg: str) -> str:
    """`|date:arg` for the numeric formats above, in the current time zone like the date
    filter: the workspace shows two dozen times, and the date filter took ~25 µs each. Any
    other format or value is handed to the date filter."""
    pattern = _STRFTIME.get(arg)
    if pattern is None or not isinstance(value, datetime) or value.year < 1000:
        return date_filter(value, arg)
    return value.strftime(pattern)
