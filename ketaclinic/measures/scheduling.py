"""When a plan item falls due: pure rules from a plan item, a care timeline and the clock.

Times are local to the clinic. A booked appointment has its time; a session planned from a
protocol (no course on file) has only a day and is taken to start at SESSION_HOUR_LOCAL.

* before every session: opens `window_hours` before the session and is due when it starts; it
  closes AFTER_START_HOURS after a booked start (the waiting room and chair still count), or at
  SESSION_DAY_CLOSE_HOUR_LOCAL on a planned session's day;
* at baseline: the same, for the first session only (the baseline is the last score before the
  first dose, reference §10 rule 16);
* end of induction: opens the morning after the last induction session;
* weekly, every N days, monthly: open at PERIODIC_HOUR_LOCAL on the first day of each of the
  item's phase spans and then every 7 / N days / calendar month within the span.

Periodic and end-of-induction questionnaires are due DUE_AFTER_HOURS after they open and close
`window_hours` after they open.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ketaclinic.measures.choices import Cadence, Phase
from ketaclinic.measures.timeline import CareTimeline, PhaseSpan, SessionMark

SESSION_HOUR_LOCAL = 9
SESSION_DAY_CLOSE_HOUR_LOCAL = 18
PERIODIC_HOUR_LOCAL = 9
DUE_AFTER_HOURS = 24
AFTER_START_HOURS = 1


@dataclass(frozen=True)
class ItemRule:
    """What the scheduler needs of a plan item."""

    item_id: int
    instrument: str
    phase: str
    cadence: str
    interval_days: int | None
    window_hours: int


@dataclass(frozen=True)
class Occurrence:
    """One time a plan item falls due. `key` is unique per item within an enrolment."""

    item_id: int
    instrument: str
    key: str
    available_at: datetime
    due_at: datetime
    expires_at: datetime
    phase: str
    session_number: int | None
    appointment_id: int | None = None


def at_local(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz)


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, clipped to the end of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def reminder_times(available_at: datetime, expires_at: datetime, count: int) -> list[datetime]:
    """`count` reminders spread evenly through the open window, the last before it closes."""
    step = (expires_at - available_at) / (count + 1)
    return [available_at + step * k for k in range(1, count + 1)]


def _session_occurrence(
    rule: ItemRule, session: SessionMark, key: str, timeline: CareTimeline, tz: ZoneInfo
) -> Occurrence:
    if session.starts_at is not None:
        due = session.starts_at
        closes = due + timedelta(hours=AFTER_START_HOURS)
    else:
        due = at_local(session.on, SESSION_HOUR_LOCAL, tz)
        closes = at_local(session.on, SESSION_DAY_CLOSE_HOUR_LOCAL, tz)
    return Occurrence(
        item_id=rule.item_id,
        instrument=rule.instrument,
        key=key,
        available_at=due - timedelta(hours=rule.window_hours),
        due_at=due,
        expires_at=closes,
        phase=timeline.phase_on(session.on) or "",
        session_number=session.number,
        appointment_id=session.appointment_id,
    )


def _day_occurrence(
    rule: ItemRule, day: date, key: str, timeline: CareTimeline, tz: ZoneInfo
) -> Occurrence:
    opens = at_local(day, PERIODIC_HOUR_LOCAL, tz)
    closes = opens + timedelta(hours=rule.window_hours)
    return Occurrence(
        item_id=rule.item_id,
        instrument=rule.instrument,
        key=key,
        available_at=opens,
        due_at=min(opens + timedelta(hours=DUE_AFTER_HOURS), closes),
        expires_at=closes,
        phase=timeline.phase_on(day) or "",
        session_number=None,
    )


def _spans(
    rule: ItemRule, timeline: CareTimeline, enrolled_on: date, ended_on: date | None
) -> list[PhaseSpan]:
    if rule.phase == Phase.ANY:
        return [PhaseSpan(Phase.ANY, enrolled_on, ended_on)]
    spans = []
    for span in timeline.spans_of(rule.phase):
        end = span.end
        if ended_on is not None and (end is None or end > ended_on):
            end = ended_on
        if end is None or end >= span.start:
            spans.append(PhaseSpan(span.phase, span.start, end))
    return spans


def _periodic_days(rule: ItemRule, span: PhaseSpan, last_day: date) -> list[date]:
    stop = last_day if span.end is None else min(span.end, last_day)
    days: list[date] = []
    k = 0
    while True:
        if rule.cadence == Cadence.MONTHLY:
            day = add_months(span.start, k)
        else:
            step = 7 if rule.cadence == Cadence.WEEKLY else int(rule.interval_days or 7)
            day = span.start + timedelta(days=step * k)
        if day > stop:
            return days
        days.append(day)
        k += 1


def occurrences(
    rule: ItemRule,
    timeline: CareTimeline,
    *,
    enrolled_on: date,
    ended_on: date | None,
    tz: ZoneInfo,
    until: datetime,
) -> list[Occurrence]:
    """Every occurrence of `rule` that opens at or before `until`, oldest first."""
    found: list[Occurrence] = []
    if rule.cadence in (Cadence.BEFORE_EACH_SESSION, Cadence.AT_BASELINE):
        sessions = timeline.sessions
        if rule.cadence == Cadence.AT_BASELINE:
            sessions = sessions[:1]
        elif rule.phase != Phase.ANY:
            sessions = tuple(s for s in sessions if s.phase == rule.phase)
        for session in sessions:
            if ended_on is not None and session.on > ended_on:
                break
            key = "baseline" if rule.cadence == Cadence.AT_BASELINE else f"s{session.number}"
            found.append(_session_occurrence(rule, session, key, timeline, tz))
    elif rule.cadence == Cadence.END_OF_INDUCTION:
        last = timeline.last_induction_session
        if last is not None and (ended_on is None or last.on < ended_on):
            day = last.on + timedelta(days=1)
            found.append(_day_occurrence(rule, day, "end_of_induction", timeline, tz))
    else:
        last_day = until.astimezone(tz).date()
        for span in _spans(rule, timeline, enrolled_on, ended_on):
            for day in _periodic_days(rule, span, last_day):
                found.append(_day_occurrence(rule, day, day.isoformat(), timeline, tz))
    return [o for o in found if o.available_at <= until]
