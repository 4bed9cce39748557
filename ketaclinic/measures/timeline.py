"""A patient's treatment timeline as measurement sees it: sessions (number, day, phase, dose,
route) and phase spans (induction, maintenance, booster).

Measurement needs the timeline to schedule questionnaires per phase and before each session, to
pick the baseline (the last score before the first dose, reference §10 rule 16), to mark
sessions on trajectory charts and to count sessions for the late-responder label.

Until treatment courses and sessions exist in the database, the timeline is the plan of the
enrolment's protocol laid out by `clinical.plan_course`: planned sessions in the past count as
given. When the courses app lands, `timeline_for` reads its appointments instead; callers do not
change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from ketaclinic.clinical import PROTOCOLS, plan_course
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

    @property
    def dose_label(self) -> str:
        route = _ROUTE_LABEL.get(self.route, self.route)
        if self.dose_mg is not None:
            return f"{route} {self.dose_mg} mg"
        if self.dose_mg_per_kg is not None:
            return f"{route} {self.dose_mg_per_kg.normalize()} mg/kg"
        return route

    @property
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
    starts: list[tuple[str, date]] = []
    for session in sessions:
        if not starts or starts[-1][0] != session.phase:
            starts.append((session.phase, session.on))
    if sessions and sessions[-1].phase == Phase.INDUCTION:
        starts.append((Phase.MAINTENANCE, sessions[-1].on + timedelta(days=1)))
    spans: list[PhaseSpan] = []
    for index, (phase, start) in enumerate(starts):
        if index == 0:
            start = first_session_on
        end = starts[index + 1][1] - timedelta(days=1) if index + 1 < len(starts) else ends_on
        spans.append(PhaseSpan(str(phase), start, end))
    return CareTimeline(
        first_session_on=sessions[0].on if sessions else first_session_on,
        sessions=sessions,
        phases=tuple(spans),
        treatment=definition.treatment,
    )


def timeline_for(enrolment: MeasurementEnrolment) -> CareTimeline:
    """The timeline of one enrolment (see the module docstring)."""
    ends_on = enrolment.ended_at.date() if enrolment.ended_at else None
    return build_timeline(
        enrolment.protocol,
        enrolment.first_session_on,
        weeks=enrolment.plan_weeks,
        ends_on=ends_on,
    )
