"""Treatment protocols as data, and ``plan_course`` to lay out a course's session dates.

Scheduling rules (issue 3):

* week n is the 7-day window starting ``7 * (n - 1)`` days after ``start``;
* a course starting on a non-clinic day begins on the next clinic day;
* sessions fall only on clinic days, consecutive sessions at least 2 calendar days apart;
* a phase with k sessions per week holds exactly k sessions in each of its weeks; an
  every-2-weeks phase holds exactly one session in each complete 2-week block;
* ``weeks`` is the length of the whole plan (an open-ended last phase fills it).

Within those rules sessions are spread evenly: each week repeats the weekday pattern of the
first session (twice weekly: first day and 3 days later, e.g. Mon/Thu; three times weekly:
days 0, 2 and 4, e.g. Mon/Wed/Fri), moved to the nearest clinic day that keeps the whole plan
feasible. If the clinic days cannot hold the protocol at all, ``InvalidInput`` says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from ketaclinic.clinical.errors import InvalidInput
from ketaclinic.clinical.treatments import Route, get_treatment
from ketaclinic.clinical.validation import require_date, require_int

__all__ = [
    "MAX_PLAN_WEEKS",
    "MIN_DAYS_BETWEEN_SESSIONS",
    "PROTOCOLS",
    "Phase",
    "PlannedSession",
    "Protocol",
    "get_protocol",
    "plan_course",
]

# Consecutive sessions at least 2 calendar days apart (issue 3; Mon/Wed/Fri in Murrough 2013).
MIN_DAYS_BETWEEN_SESSIONS = 2
# A guard against runaway plans; maintenance beyond 3 years is planned again, not extended.
MAX_PLAN_WEEKS = 156

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Phase:
    """A run of weeks with one cadence and one dose rule.

    ``sessions_per_block`` sessions fall in each block of ``block_weeks`` weeks (twice weekly:
    2 per 1 week; every 2 weeks: 1 per 2 weeks). ``last_week`` None means the phase runs to the
    end of the plan.
    """

    name: str
    first_week: int
    last_week: int | None
    sessions_per_block: int
    block_weeks: int = 1
    dose_mg: int | None = None
    dose_mg_per_kg: Decimal | None = None
    minutes: int | None = None

    def __post_init__(self) -> None:
        require_int(self.first_week, f"phase {self.name} first_week", minimum=1)
        if self.last_week is not None:
            require_int(self.last_week, f"phase {self.name} last_week", minimum=self.first_week)
        require_int(self.block_weeks, f"phase {self.name} block_weeks", minimum=1)
        require_int(
            self.sessions_per_block,
            f"phase {self.name} sessions_per_block",
            minimum=1,
            maximum=(7 * self.block_weeks) // MIN_DAYS_BETWEEN_SESSIONS,
        )


@dataclass(frozen=True)
class Protocol:
    """A treatment protocol: route, phases (cadence and dose), default length and source.

    ``clinic_defined`` marks protocols that are clinic conventions rather than a label or a
    trial regimen. ``review_after_course`` asks for a prescriber review once the last planned
    session is done (it is a flag on the plan, not a session).
    """

    code: str
    title: str
    treatment: str
    route: Route
    phases: tuple[Phase, ...]
    default_weeks: int
    source: str
    clinic_defined: bool = False
    review_after_course: bool = False
    allowed_doses_mg: tuple[int, ...] = ()
    dose_note: str = ""

    def __post_init__(self) -> None:
        get_treatment(self.treatment)
        if not self.phases:
            raise InvalidInput(f"protocol {self.code} needs at least one phase")
        expected_first = 1
        for index, phase in enumerate(self.phases):
            if phase.first_week != expected_first:
                raise InvalidInput(f"protocol {self.code}: phases must follow on week by week")
            if phase.last_week is None:
                if index != len(self.phases) - 1:
                    raise InvalidInput(f"protocol {self.code}: only the last phase is open-ended")
                break
            expected_first = phase.last_week + 1
        maximum = self.fixed_weeks or MAX_PLAN_WEEKS
        require_int(
            self.default_weeks, f"protocol {self.code} default_weeks", minimum=1, maximum=maximum
        )

    @property
    def fixed_weeks(self) -> int | None:
        """The protocol's length in weeks, or None when the last phase is open-ended."""
        return self.phases[-1].last_week


@dataclass(frozen=True)
class PlannedSession:
    """One planned session of a course."""

    number: int
    date: dt.date
    phase: str
    route: Route
    dose_mg: int | None
    dose_mg_per_kg: Decimal | None
    minutes: int | None


PROTOCOLS: MappingProxyType[str, Protocol] = MappingProxyType(
    {
        "iv_ketamine_induction": Protocol(
            code="iv_ketamine_induction",
            title="IV ketamine induction, twice weekly for 3 weeks",
            treatment="iv_ketamine",
            route="iv",
            phases=(Phase("induction", 1, 3, 2, dose_mg_per_kg=Decimal("0.5"), minutes=40),),
            default_weeks=3,
            source="ELEKT-D 2023 (NEJM): 0.5 mg/kg over 40 min twice weekly for 3 weeks; "
            "6 infusions within 21 days (Oliver 2022) (reference §1a) [V]",
            dose_note="0.5 mg/kg actual body weight over 40 min; may be escalated for response "
            "(ASKP) [V]",
        ),
        "iv_ketamine_induction_3x_weekly": Protocol(
            code="iv_ketamine_induction_3x_weekly",
            title="IV ketamine induction, three times weekly for 2 weeks",
            treatment="iv_ketamine",
            route="iv",
            phases=(Phase("induction", 1, 2, 3, dose_mg_per_kg=Decimal("0.5"), minutes=40),),
            default_weeks=2,
            source="Murrough 2013 (Biol Psychiatry): 6 infusions in 12 days; Singh 2016: 2x "
            "and 3x weekly similar (reference §1a) [V]",
            dose_note="0.5 mg/kg actual body weight over 40 min [V]",
        ),
        "esketamine_trd": Protocol(
            code="esketamine_trd",
            title="Esketamine (Spravato) for treatment-resistant depression, label schedule",
            treatment="esketamine_trd",
            route="intranasal",
            phases=(
                Phase("induction", 1, 4, 2, dose_mg=56),
                Phase("maintenance_weekly", 5, 8, 1, dose_mg=56),
                Phase("maintenance_every_2_weeks", 9, None, 1, block_weeks=2, dose_mg=56),
            ),
            default_weeks=8,
            source="Spravato PI §2 TRD dosing: twice weekly weeks 1-4, weekly weeks 5-8, then "
            "every 2 weeks or weekly (reference §1b, §10 rule 7) [V]",
            allowed_doses_mg=(56, 84),
            dose_note="Day 1 is 56 mg; later doses 56 or 84 mg (84 mg only after the 56 mg "
            "start). Planned as 56 mg until the prescriber changes it. From week 9 use the "
            "least frequent schedule that keeps response (planned every 2 weeks) [V]",
        ),
        "esketamine_mdsi": Protocol(
            code="esketamine_mdsi",
            title="Esketamine (Spravato) for depression with acute suicidal ideation",
            treatment="esketamine_mdsi",
            route="intranasal",
            phases=(Phase("acute", 1, 4, 2, dose_mg=84),),
            default_weeks=4,
            source="Spravato PI §2 MDSI dosing: 84 mg twice weekly for 4 weeks "
            "(reference §1b, §10 rule 7) [V]",
            review_after_course=True,
            allowed_doses_mg=(56, 84),
            dose_note="84 mg twice weekly; may drop to 56 mg if not tolerated. Use beyond "
            "4 weeks has not been studied: review after the 8 sessions [V]",
        ),
        "im_ketamine": Protocol(
            code="im_ketamine",
            title="IM ketamine course, twice weekly for 3 weeks (clinic-defined default)",
            treatment="im_ketamine",
            route="im",
            phases=(Phase("induction", 1, 3, 2, dose_mg_per_kg=Decimal("0.5")),),
            default_weeks=3,
            source="Clinic convention mirroring the IV induction; IM commonly 0.5-1 mg/kg "
            "(reference §1c) [U]",
            clinic_defined=True,
            dose_note="0.5 mg/kg IM by default; commonly 0.5-1 mg/kg [U]",
        ),
        "oral_ketamine": Protocol(
            code="oral_ketamine",
            title="Oral ketamine, weekly supervised dose for 4 weeks (clinic-defined default)",
            treatment="oral_ketamine",
            route="oral",
            phases=(Phase("treatment", 1, 4, 1),),
            default_weeks=4,
            source="Clinic convention; oral bioavailability ~20-25%, published doses 0.25-7 "
            "mg/kg (Andrade 2019; reference §1c) [U]",
            clinic_defined=True,
            dose_note="Dose set by the prescriber; ~2-2.5 mg/kg oral is about 0.5 mg/kg IV [V]",
        ),
    }
)


def get_protocol(code: object) -> Protocol:
    """Return the protocol for ``code`` or raise ``InvalidInput`` naming the known codes."""
    if isinstance(code, Protocol):
        return code
    if not isinstance(code, str) or code not in PROTOCOLS:
        raise InvalidInput(f"unknown protocol {code!r}; expected one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[code]


@dataclass(frozen=True)
class _Slot:
    first_day: dt.date
    last_day: dt.date
    offset_days: int
    phase: Phase


def _clinic_day_set(clinic_days: object) -> frozenset[int]:
    if isinstance(clinic_days, str | bytes) or not isinstance(clinic_days, Iterable):
        raise InvalidInput("clinic_days must be weekday numbers 0 (Monday) to 6 (Sunday)")
    days = frozenset(
        require_int(day, "clinic day (0 = Monday .. 6 = Sunday)", minimum=0, maximum=6)
        for day in clinic_days
    )
    if not days:
        raise InvalidInput("clinic_days must name at least one weekday")
    return days


def _slots(protocol: Protocol, start: dt.date, weeks: int) -> list[_Slot]:
    slots: list[_Slot] = []
    for phase in protocol.phases:
        phase_end = weeks if phase.last_week is None else min(phase.last_week, weeks)
        week = phase.first_week
        block_days = 7 * phase.block_weeks
        # Only complete blocks are planned, so every block holds its full count.
        while week + phase.block_weeks - 1 <= phase_end:
            block_offset = 7 * (week - 1)
            first = start + dt.timedelta(days=block_offset)
            last = first + dt.timedelta(days=block_days - 1)
            for index in range(phase.sessions_per_block):
                spread = (index * block_days) // phase.sessions_per_block
                slots.append(_Slot(first, last, block_offset + spread, phase))
            week += phase.block_weeks
    return slots


def _days(first: dt.date, last: dt.date, clinic: frozenset[int]) -> list[dt.date]:
    count = (last - first).days + 1
    candidates = (first + dt.timedelta(days=n) for n in range(max(count, 0)))
    return [day for day in candidates if day.weekday() in clinic]


def _latest_feasible(
    slots: list[_Slot], clinic: frozenset[int], protocol: Protocol
) -> list[dt.date]:
    """Latest date each slot can take so that every later slot still fits (backward pass)."""
    gap = dt.timedelta(days=MIN_DAYS_BETWEEN_SESSIONS)
    latest: list[dt.date] = []
    bound: dt.date | None = None
    for slot in reversed(slots):
        last_day = slot.last_day if bound is None else min(slot.last_day, bound - gap)
        days = _days(slot.first_day, last_day, clinic)
        if not days:
            names = ", ".join(_WEEKDAYS[day] for day in sorted(clinic))
            week = (slot.first_day - slots[0].first_day).days // 7 + 1
            raise InvalidInput(
                f"clinic days {names} cannot hold protocol {protocol.code}: "
                f"{slot.phase.sessions_per_block} session(s) per {7 * slot.phase.block_weeks} "
                f"days at least {MIN_DAYS_BETWEEN_SESSIONS} days apart (fails in week {week})"
            )
        bound = days[-1]
        latest.append(bound)
    latest.reverse()
    return latest


def plan_course(
    protocol: str | Protocol,
    start: dt.date,
    *,
    weeks: int | None = None,
    clinic_days: Iterable[int] = (0, 1, 2, 3, 4),
) -> list[PlannedSession]:
    """Plan the sessions of ``protocol`` from ``start`` (see the module docstring).

    ``protocol`` is a code from ``PROTOCOLS`` (or a ``Protocol`` a clinic defined). ``weeks``
    defaults to the protocol's ``default_weeks``; a protocol without an open-ended phase
    cannot be planned longer than its length. ``clinic_days`` are weekday numbers, 0 = Monday.
    Raises ``InvalidInput`` for an unknown protocol, bad arguments, or clinic days on which the
    protocol cannot be scheduled.
    """
    chosen = get_protocol(protocol)
    first_day = require_date(start, "start")
    clinic = _clinic_day_set(clinic_days)
    if weeks is None:
        plan_weeks = chosen.default_weeks
    else:
        maximum = chosen.fixed_weeks or MAX_PLAN_WEEKS
        plan_weeks = require_int(weeks, f"weeks for {chosen.code}", minimum=1, maximum=maximum)

    slots = _slots(chosen, first_day, plan_weeks)
    if not slots:
        return []
    latest = _latest_feasible(slots, clinic, chosen)
    anchor = _days(first_day, slots[0].last_day, clinic)[0]
    gap = dt.timedelta(days=MIN_DAYS_BETWEEN_SESSIONS)

    sessions: list[PlannedSession] = []
    previous: dt.date | None = None
    for number, (slot, latest_day) in enumerate(zip(slots, latest, strict=True), start=1):
        earliest = slot.first_day if previous is None else max(slot.first_day, previous + gap)
        candidates = _days(earliest, latest_day, clinic)
        if previous is None:
            chosen_day = anchor
        else:
            target = anchor + dt.timedelta(days=slot.offset_days)
            chosen_day = min(candidates, key=lambda day: (abs((day - target).days), day))
        sessions.append(
            PlannedSession(
                number=number,
                date=chosen_day,
                phase=slot.phase.name,
                route=chosen.route,
                dose_mg=slot.phase.dose_mg,
                dose_mg_per_kg=slot.phase.dose_mg_per_kg,
                minutes=slot.phase.minutes,
            )
        )
        previous = chosen_day
    return sessions
