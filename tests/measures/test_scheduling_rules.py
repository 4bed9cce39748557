"""Pure scheduling rules: timelines per protocol and when each plan item falls due per phase."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketaclinic.measures.choices import Cadence, Phase
from ketaclinic.measures.scheduling import (
    ItemRule,
    add_months,
    occurrences,
    reminder_times,
)
from ketaclinic.measures.timeline import build_timeline

BOSTON = ZoneInfo("America/New_York")
MONDAY = date(2026, 6, 1)


def rule(cadence: str, phase: str = Phase.ANY, *, interval: int | None = None, window: int = 72):
    return ItemRule(1, "phq9", phase, cadence, interval, window)


def local(moment: datetime) -> tuple[date, int]:
    here = moment.astimezone(BOSTON)
    return here.date(), here.hour


def test_iv_induction_timeline_has_six_sessions_then_maintenance():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    assert len(timeline.sessions) == 6
    assert all(s.phase == "induction" for s in timeline.sessions)
    assert timeline.sessions[0].on == MONDAY
    last = timeline.sessions[-1].on
    assert (last - MONDAY).days < 21  # 6 infusions within 21 days (reference §1a)
    induction, maintenance = timeline.phases
    assert (induction.phase, induction.start, induction.end) == ("induction", MONDAY, last)
    assert (maintenance.phase, maintenance.start, maintenance.end) == (
        "maintenance",
        last + timedelta(days=1),
        None,
    )
    assert timeline.phase_on(MONDAY - timedelta(days=1)) is None  # before the course
    assert timeline.sessions_before(last) == 5
    assert timeline.sessions[0].dose_label == "IV 0.5 mg/kg"
    assert timeline.treatment == "iv_ketamine"


def test_esketamine_timeline_switches_to_maintenance_in_week_five():
    timeline = build_timeline("esketamine_trd", MONDAY, weeks=12)
    induction = [s for s in timeline.sessions if s.phase == "induction"]
    maintenance = [s for s in timeline.sessions if s.phase == "maintenance"]
    assert len(induction) == 8  # twice weekly weeks 1-4 (Spravato PI)
    assert maintenance[0].on >= MONDAY + timedelta(days=28)
    assert timeline.phase_on(maintenance[0].on) == "maintenance"
    assert timeline.sessions[0].dose_label == "intranasal 56 mg"


def test_ended_enrolment_cuts_the_timeline():
    timeline = build_timeline("iv_ketamine_induction", MONDAY, ends_on=MONDAY + timedelta(days=5))
    assert [s.on <= MONDAY + timedelta(days=5) for s in timeline.sessions] == [True] * len(
        timeline.sessions
    )
    assert timeline.phases[-1].end == MONDAY + timedelta(days=5)


def test_before_each_session_in_induction_opens_window_hours_before_and_closes_that_evening():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    found = occurrences(
        rule(Cadence.BEFORE_EACH_SESSION, Phase.INDUCTION, window=48),
        timeline,
        enrolled_on=MONDAY - timedelta(days=7),
        ended_on=None,
        tz=BOSTON,
        until=datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert [o.key for o in found] == ["s1", "s2", "s3", "s4", "s5", "s6"]
    first = found[0]
    assert local(first.due_at) == (MONDAY, 9)
    assert first.available_at == first.due_at - timedelta(hours=48)
    assert local(first.expires_at) == (MONDAY, 18)
    assert first.session_number == 1
    assert first.phase == "induction"


def test_before_each_session_in_maintenance_only_counts_maintenance_sessions():
    timeline = build_timeline("esketamine_trd", MONDAY, weeks=12)
    found = occurrences(
        rule(Cadence.BEFORE_EACH_SESSION, Phase.MAINTENANCE, window=24),
        timeline,
        enrolled_on=MONDAY,
        ended_on=None,
        tz=BOSTON,
        until=datetime(2027, 1, 1, tzinfo=UTC),
    )
    numbers = [o.session_number for o in found]
    assert numbers and min(numbers) == 9  # sessions 1-8 are induction
    assert {o.phase for o in found} == {"maintenance"}


def test_baseline_is_asked_once_before_the_first_session():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    found = occurrences(
        rule(Cadence.AT_BASELINE, window=168),
        timeline,
        enrolled_on=MONDAY - timedelta(days=10),
        ended_on=None,
        tz=BOSTON,
        until=datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert [o.key for o in found] == ["baseline"]
    assert local(found[0].available_at) == (MONDAY - timedelta(days=7), 9)


def test_end_of_induction_opens_the_morning_after_the_last_induction_session():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    last = timeline.sessions[-1].on
    found = occurrences(
        rule(Cadence.END_OF_INDUCTION, window=168),
        timeline,
        enrolled_on=MONDAY,
        ended_on=None,
        tz=BOSTON,
        until=datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert [o.key for o in found] == ["end_of_induction"]
    assert local(found[0].available_at) == (last + timedelta(days=1), 9)
    assert found[0].expires_at - found[0].available_at == timedelta(hours=168)
    assert found[0].due_at - found[0].available_at == timedelta(hours=24)


def test_weekly_in_maintenance_starts_the_day_after_induction_and_stops_at_until():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    start = timeline.sessions[-1].on + timedelta(days=1)
    until = datetime.combine(start + timedelta(days=15), datetime.min.time(), tzinfo=BOSTON)
    found = occurrences(
        rule(Cadence.WEEKLY, Phase.MAINTENANCE),
        timeline,
        enrolled_on=MONDAY,
        ended_on=None,
        tz=BOSTON,
        until=until,
    )
    assert [o.key for o in found] == [
        start.isoformat(),
        (start + timedelta(days=7)).isoformat(),
        (start + timedelta(days=14)).isoformat(),
    ]
    assert {o.phase for o in found} == {"maintenance"}


def test_weekly_in_induction_never_falls_in_maintenance():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    found = occurrences(
        rule(Cadence.WEEKLY, Phase.INDUCTION),
        timeline,
        enrolled_on=MONDAY,
        ended_on=None,
        tz=BOSTON,
        until=datetime(2026, 12, 31, tzinfo=UTC),
    )
    last = timeline.sessions[-1].on
    assert found and all(MONDAY <= date.fromisoformat(o.key) <= last for o in found)


def test_every_n_days_counts_from_enrolment_for_the_whole_course():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    enrolled = MONDAY - timedelta(days=3)
    found = occurrences(
        rule(Cadence.EVERY_N_DAYS, interval=14),
        timeline,
        enrolled_on=enrolled,
        ended_on=None,
        tz=BOSTON,
        until=datetime.combine(enrolled + timedelta(days=30), datetime.min.time(), tzinfo=BOSTON),
    )
    assert [o.key for o in found] == [
        enrolled.isoformat(),
        (enrolled + timedelta(days=14)).isoformat(),
        (enrolled + timedelta(days=28)).isoformat(),
    ]


def test_monthly_follows_calendar_months():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    timeline = build_timeline("iv_ketamine_induction", date(2026, 1, 5))
    found = occurrences(
        rule(Cadence.MONTHLY),
        timeline,
        enrolled_on=date(2026, 1, 31),
        ended_on=date(2026, 5, 15),
        tz=BOSTON,
        until=datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert [o.key for o in found] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]


def test_nothing_opens_after_until():
    timeline = build_timeline("iv_ketamine_induction", MONDAY)
    found = occurrences(
        rule(Cadence.BEFORE_EACH_SESSION, window=48),
        timeline,
        enrolled_on=MONDAY,
        ended_on=None,
        tz=BOSTON,
        until=datetime(2026, 5, 30, 12, 0, tzinfo=BOSTON),  # Saturday noon
    )
    assert [o.key for o in found] == ["s1"]  # opened Saturday 09:00, 48 h before Monday 09:00


@pytest.mark.parametrize("count", [0, 1, 2])
def test_reminders_spread_evenly_and_all_before_the_questionnaire_closes(count):
    opens = datetime(2026, 6, 1, 13, tzinfo=UTC)
    closes = opens + timedelta(hours=72)
    times = reminder_times(opens, closes, count)
    assert len(times) == count
    assert all(opens < t < closes for t in times)
    if count == 2:
        assert times == [opens + timedelta(hours=24), opens + timedelta(hours=48)]
