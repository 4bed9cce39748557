"""The workspace's clock_time filter writes what the date filter writes for its formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import engines
from django.utils import timezone

VALUES = [
    datetime(2026, 3, 2, 17, 5, 9, tzinfo=UTC),
    datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # Boston's clocks go forward that morning
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # and back
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC) + timedelta(microseconds=999_999),
    datetime(2026, 3, 2, 9, 0),  # naive
    date(2026, 3, 2),
    None,
    "",
    "not a date",
]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "UTC"])
@pytest.mark.parametrize("fmt", ["H:i", "Y-m-d H:i", "Y-m-d", "D Y-m-d H:i"])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_clock_time_is_the_date_filter(zone, fmt, value):
    django_engine = engines["django"]
    ours = django_engine.from_string(
        "{% load session_numbers %}{{ value|clock_time:fmt }}|{% for v in values %}"
        "{{ v|clock_time:fmt }}{% endfor %}"
    )
    theirs = django_engine.from_string(
        "{{ value|date:fmt }}|{% for v in values %}{{ v|date:fmt }}{% endfor %}"
    )
    context = {"value": value, "fmt": fmt, "values": [value, value]}
    with timezone.override(ZoneInfo(zone)):
        assert outcome(ours, context) == outcome(theirs, context)


def outcome(template, context) -> str:
    """The HTML, or the error (the date filter refuses a time format for a date)."""
    try:
        return template.render(context)
    except TypeError as exc:
        return f"TypeError: {exc}"
