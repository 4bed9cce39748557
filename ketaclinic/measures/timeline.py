"""A patient's treatment timeline as measurement sees it: sessions (number, day, phase, dose,
route) and phase spans (induction, maintenance, booster).

Measurement needs the timeline to schedule questionnaires per phase and before each session, to
pick the baseline (the last score before the first dose, reference §10 rule 16), to mark
sessions on trajectory charts and to count sessions for the late-responder label.

For an enrolment without a course, the timeline is the plan of the enrolment's protocol laid
out by `clinical.plan_course`: planned sessions in the past count as
given. An enrolment linked to a treatment course reads the course's appointments instead
(real times, booster sessions, rescheduled dates); callers do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch

from ketaclinic.clinical import PROTOCOLS, TREATMENTS, plan_course
from ketaclinic.measures.choices import Phase

if TYPE_CHECKING:
    from ketaclinic.measures.models import MeasurementEnrolment

# Protocol phase names (clinical.PROTOCOLS) → the course phase codes plans are written in.
_COURSE_PHASE = {
    "induction": Phase.INDUCTION,
    "acute": Phase.INDUCTION,
    "treatment": Phase.INDUCTION,
    "maintenance_weekly": Phase.MAINTENANCE,
    "maintenance_every_2_weeks": Phase.MAINTENANCE,
    "maintenance": Phase.MAINTENANCE,
    "booster": Phase.BOOSTER,
}

_ROUTE_LABEL = {"iv": "IV", "im": "IM", "oral": "oral", "intranasal": "intranasal"}


def course_phase(protocol_phase: str) -> str:
    """The course phase code of a protocol phase name (unknown names count as maintenance)."""
    return str(_COURSE_PHASE.get(protocol_phase, Phase.MAINTENANCE))


@dataclass(frozen=True)
class SessionMark:
    """One (planned or given) treatment session."""

    number: int
    on: date
    phase: str
    route: str
    dose_mg: int | None
    dose_mg_per_kg: Decimal | None
    starts_at: datetime | None = None  # booked appointments have a time; planned ones do not
    appointment_id: int | None = None

    @property
    def dose_label(self) -> str:
        route = _ROUTE_LABEL.get(self.route, self.route)
        if self.dose_mg is not None:
            return f"{route} {self.dose_mg} mg"
        if self.dose_mg_per_kg is not None:
            return f"{route} {self.dose_mg_per_kg.normalize()} mg/kg"
        return route

    # Cached: timelines are cached (build_timeline) and every chart of the patient labels each
    # session's marker once per instrument.
    @cached_property
    def label(self) -> str:
        return f"Session {self.number} ({self.on:%Y-%m-%d}): {self.dose_label}"


@dataclass(frozen=True)
class PhaseSpan:
    """Days `start`..`end` (inclusive; `end` None = open-ended) spent in one course phase."""

    phase: str
    start: date
    end: date | None

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class CareTimeline:
    first_session_on: date | None
    sessions: tuple[SessionMark, ...]
    phases: tuple[PhaseSpan, ...]
    treatment: str = ""

    def phase_on(self, day: date) -> str | None:
        for span in self.phases:
            if span.contains(day):
                return span.phase
        return None

    def sessions_before(self, day: date) -> int:
        """How many sessions were given before `day`. A score on a session day is taken before
        that day's session (the pre-session questionnaire), so that session does not count."""
        return sum(1 for session in self.sessions if session.on < day)

    def spans_of(self, phase: str) -> tuple[PhaseSpan, ...]:
        return tuple(span for span in self.phases if span.phase == phase)

    @property
    def last_induction_session(self) -> SessionMark | None:
        induction = [s for s in self.sessions if s.phase == Phase.INDUCTION]
        return induction[-1] if induction else None


EMPTY_TIMELINE = CareTimeline(first_session_on=None, sessions=(), phases=())


# Pure and called for every enrolment by the scheduler and on every chart: cache the layouts.
@lru_cache(maxsize=4096)
def build_timeline(
    protocol: str,
    first_session_on: date,
    *,
    weeks: int | None = None,
    ends_on: date | None = None,
) -> CareTimeline:
    """Lay out a protocol's sessions and phase spans from its first session day.

    Phase spans run from a phase's first session to the day before the next phase's first
    session. After an induction-only protocol (IV ketamine: 6 infusions) the patient is in
    maintenance from the day after the last induction session, until the enrolment ends.
    """
    definition = PROTOCOLS[protocol]
    planned = plan_course(protocol, first_session_on, weeks=weeks)
    sessions = tuple(
        SessionMark(
            number=p.number,
            on=p.date,
            phase=course_phase(p.phase),
            route=p.route,
            dose_mg=p.dose_mg,
            dose_mg_per_kg=p.dose_mg_per_kg,
        )
        for p in planned
        if ends_on is None or p.date <= ends_on
    )
    return CareTimeline(
        first_session_on=sessions[0].on if sessions else first_session_on,
        sessions=sessions,
        phases=_spans(sessions, first_session_on, ends_on),
        treatment=definition.treatment,
    )


# A booster is a short return to treatment: its phase lasts until the next session of another
# phase or, after the last booster, this many days; maintenance follows (clinic convention [U]).
BOOSTER_PHASE_DAYS = 14


def _spans(
    sessions: tuple[SessionMark, ...], course_start: date, ends_on: date | None
) -> tuple[PhaseSpan, ...]:
    """Phase spans from consecutive runs of sessions in one phase.

    The first span starts on the course's first day. Maintenance runs up to the next run of
    another phase. Induction ends with its last session, a booster BOOSTER_PHASE_DAYS after its
    last session (or at the next run); the time after either, until the next run or for good,
    is maintenance.
    """
    runs: list[list[Any]] = []  # [phase, first day, last day]
    for session in sessions:
        if runs and runs[-1][0] == session.phase:
            runs[-1][2] = session.on
        else:
            runs.append([session.phase, session.on, session.on])
    day = timedelta(days=1)
    raw: list[tuple[str, date, date | None]] = []
    for index, (phase, first, last) in enumerate(runs):
        start = min(course_start, first) if index == 0 else first
        following = runs[index + 1][1] if index + 1 < len(runs) else None
        limit = following - day if following is not None else None
        if phase == Phase.MAINTENANCE:
            raw.append((phase, start, limit))
            continue
        end = last if phase == Phase.INDUCTION else last + timedelta(days=BOOSTER_PHASE_DAYS - 1)
        if limit is not None and end > limit:
            end = limit
        raw.append((phase, start, end))
        next_phase = runs[index + 1][0] if following is not None else None
        if next_phase != Phase.MAINTENANCE and (limit is None or end < limit):
            raw.append((str(Phase.MAINTENANCE), end + day, limit))
    spans: list[PhaseSpan] = []
    for phase, start, end in raw:
        if ends_on is not None:
            if start > ends_on:
                break
            end = ends_on if end is None else min(end, ends_on)
        spans.append(PhaseSpan(str(phase), start, end))
    return tuple(spans)


def course_timeline(
    course: Any, appointments: list[Any], *, tz: ZoneInfo, ends_on: date | None = None
) -> CareTimeline:
    """The timeline of a treatment course from its booked appointments (scheduled or given;
    cancelled, missed and rescheduled ones are not sessions)."""
    route = TREATMENTS[course.treatment].route if course.treatment in TREATMENTS else ""
    booked = sorted(
        (a for a in appointments if a.status in SESSION_STATUSES), key=lambda a: a.starts_at
    )
    sessions = tuple(
        SessionMark(
            number=a.number,
            on=a.starts_at.astimezone(tz).date(),
            phase=str(a.phase),
            route=route,
            dose_mg=a.dose_mg,
            dose_mg_per_kg=a.dose_mg_per_kg,
            starts_at=a.starts_at,
            appointment_id=a.pk,
        )
        for a in booked
        if ends_on is None or a.starts_at.astimezone(tz).date() <= ends_on
    )
    return CareTimeline(
        first_session_on=sessions[0].on if sessions else course.start_date,
        sessions=sessions,
        phases=_spans(sessions, course.start_date, ends_on),
        treatment=course.treatment,
    )


# Appointment statuses that are sessions (courses.choices.BOOKED_STATUSES).
SESSION_STATUSES = frozenset({"scheduled", "completed"})


def course_appointments_prefetch(lookup: str) -> Prefetch:
    """Prefetch a course's sessions the way `course_appointments` reads them."""
    from ketaclinic.courses.models import Appointment

    return Prefetch(
        lookup,
        queryset=Appointment.objects.filter(status__in=SESSION_STATUSES).order_by(
            "starts_at", "pk"
        ),
        to_attr="timeline_appointments",
    )


def course_appointments(course: Any) -> list[Any]:
    """The course's appointments: prefetched by the scheduler (`timeline_appointments`), or one
    query here."""
    prefetched = getattr(course, "timeline_appointments", None)
    if prefetched is not None:
        return list(prefetched)
    from ketaclinic.courses.models import Appointment

    return list(
        Appointment.objects.filter(course_id=course.pk, status__in=SESSION_STATUSES).order_by(
            "starts_at", "pk"
        )
    )


def timeline_for(enrolment: MeasurementEnrolment) -> CareTimeline:
    """The timeline of one enrolment (see the module docstring)."""
    ends_on = enrolment.ended_at.date() if enrolment.ended_at else None
    if enrolment.course_id is not None:
        course = enrolment.course
        return course_timeline(
            course,
            course_appointments(course),
            tz=ZoneInfo(enrolment.clinic.timezone),
            ends_on=ends_on,
        )
    return build_timeline(
        enrolment.protocol,
        enrolment.first_session_on,
        weeks=enrolment.plan_weeks,
        ends_on=ends_on,
    )
