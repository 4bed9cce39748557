"""Chair time, clinic hours and the double-booking check.

Booking always runs inside the caller's transaction after `lock_for_booking` has locked the
patient row and then the candidate chair rows, in id order (so two bookings never deadlock).
On PostgreSQL a second request for the same chair or patient waits for the first to commit and
then sees its appointment; on SQLite the IMMEDIATE transaction mode serialises writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Q

from ketaclinic.accounts.models import Clinic
from ketaclinic.clinical import (
    DEFAULT_SETTINGS,
    PROTOCOLS,
    TREATMENTS,
    esketamine_administration,
)
from ketaclinic.clinical.dosing import ESKETAMINE_DOSES_MG
from ketaclinic.clinical.protocols import MIN_DAYS_BETWEEN_SESSIONS
from ketaclinic.core import clock
from ketaclinic.courses.choices import BOOKED_STATUSES, WEEKDAY_NAMES
from ketaclinic.courses.models import Appointment, Chair, ClinicSchedule
from ketaclinic.patients.models import Patient

# Minutes before the first esketamine device for the blood-pressure check and nasal
# preparation; a scheduling convention of this project [U].
PRE_DOSE_CHECK_MINUTES = 5

CHAIR_MINUTE_FIELDS = {
    "esketamine_trd": "esketamine_chair_minutes",
    "esketamine_mdsi": "esketamine_chair_minutes",
    "iv_ketamine": "iv_chair_minutes",
    "im_ketamine": "im_chair_minutes",
    "oral_ketamine": "oral_chair_minutes",
}


def chair_minutes_floor(treatment: str) -> int:
    """The shortest chair time the clinical rules allow for a treatment.

    Esketamine: the label's minimum observation from the first device, plus the time to give
    the largest dose (devices 5 min apart) and the pre-dose check: 120 + 10 + 5 = 135 min.
    Racemic: the longest protocol infusion plus the minimum observation after it.
    """
    if TREATMENTS[treatment].is_esketamine:
        devices = esketamine_administration(max(ESKETAMINE_DOSES_MG)).minimum_minutes
        return (
            DEFAULT_SETTINGS.esketamine_min_observation_minutes + devices + PRE_DOSE_CHECK_MINUTES
        )
    infusion = max(
        (phase.minutes or 0)
        for protocol in PROTOCOLS.values()
        if protocol.treatment == treatment
        for phase in protocol.phases
    )
    return infusion + DEFAULT_SETTINGS.racemic_min_observation_minutes


def schedule_for(clinic: Clinic) -> ClinicSchedule:
    """The clinic's scheduling settings (defaults until an administrator changes them)."""
    schedule = ClinicSchedule.objects.filter(clinic_id=clinic.pk).first()
    return schedule or ClinicSchedule(clinic=clinic)


def chair_minutes(schedule: ClinicSchedule, treatment: str) -> int:
    return max(
        int(getattr(schedule, CHAIR_MINUTE_FIELDS[treatment])), chair_minutes_floor(treatment)
    )


def clinic_zone(clinic: Clinic) -> ZoneInfo:
    return ZoneInfo(clinic.timezone)


def local_datetime(clinic: Clinic, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=clinic_zone(clinic))


def local_date(clinic: Clinic, moment: datetime) -> date:
    return moment.astimezone(clinic_zone(clinic)).date()


def weekday_list(days: Iterable[int]) -> str:
    return ", ".join(WEEKDAY_NAMES[d] for d in sorted(days))


def check_opening(
    schedule: ClinicSchedule, clinic: Clinic, starts_at: datetime, ends_at: datetime
) -> list[str]:
    """Problems with the time itself: past, closed day, outside opening hours."""
    problems = []
    zone = clinic_zone(clinic)
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    if starts_at <= clock.now():
        problems.append("That time has already passed.")
    if start.weekday() not in schedule.weekdays:
        problems.append(
            f"The clinic is closed on {WEEKDAY_NAMES[start.weekday()]} "
            f"(clinic days: {weekday_list(schedule.weekdays)})."
        )
    if (
        start.time() < schedule.opens_at
        or end.date() != start.date()
        or (end.time() > schedule.closes_at)
    ):
        problems.append(
            f"The session ({start:%H:%M}-{end:%H:%M}) must fit in opening hours "
            f"{schedule.opens_at:%H:%M}-{schedule.closes_at:%H:%M}."
        )
    return problems


def lock_for_booking(patient: Patient, chairs: Sequence[Chair]) -> list[Chair]:
    """Lock the patient, then the chairs in id order; return the locked chairs."""
    Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True).get()
    ids = sorted({chair.pk for chair in chairs})
    return list(Chair.objects.select_for_update().filter(pk__in=ids).order_by("pk"))


def _peak_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals running at the same moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = running = 0
    for _, step in events:  # ends sort before starts at the same instant (-1 < 1)
        running += step
        peak = max(peak, running)
    return peak


def chair_is_free(
    chair: Chair,
    starts_at: datetime,
    ends_at: datetime,
    *,
    pending: Iterable[tuple[datetime, datetime]] = (),
) -> bool:
    """Whether the chair has room for one more patient for the whole interval.

    `pending` are intervals booked earlier in the same transaction for this chair.
    """
    overlapping = [
        (max(s, starts_at), min(e, ends_at))
        for s, e in Appointment.objects.filter(
            chair_id=chair.pk,
            status__in=BOOKED_STATUSES,
            starts_at__lt=ends_at,
            ends_at__gt=starts_at,
        ).values_list("starts_at", "ends_at")
    ]
    overlapping += [
        (max(s, starts_at), min(e, ends_at)) for s, e in pending if s < ends_at and e > starts_at
    ]
    return _peak_overlap(overlapping) < chair.capacity


def patient_clash(
    patient: Patient,
    clinic: Clinic,
    starts_at: datetime,
    ends_at: datetime,
    *,
    ignore: Iterable[int] = (),
) -> str | None:
    """Why the patient cannot be booked then: another appointment overlaps, or a session falls
    within the minimum spacing between sessions (issue 3: at least 2 calendar days apart)."""
    day = local_date(clinic, starts_at)
    window_start = local_datetime(
        clinic, day - timedelta(days=MIN_DAYS_BETWEEN_SESSIONS - 1), time.min
    )
    window_end = local_datetime(clinic, day + timedelta(days=MIN_DAYS_BETWEEN_SESSIONS), time.min)
    nearby = (
        Appointment.objects.filter(patient_id=patient.pk, status__in=BOOKED_STATUSES)
        .filter(
            Q(starts_at__lt=max(ends_at, window_end)) & Q(ends_at__gt=min(starts_at, window_start))
        )
        .exclude(pk__in=list(ignore))
        .order_by("starts_at")
    )
    for other in nearby:
        if other.starts_at < ends_at and other.ends_at > starts_at:
            return f"The patient already has a session then ({_when(clinic, other.starts_at)})."
        other_day = local_date(clinic, other.starts_at)
        if abs((other_day - day).days) < MIN_DAYS_BETWEEN_SESSIONS:
            return (
                f"Sessions must be at least {MIN_DAYS_BETWEEN_SESSIONS} calendar days apart; "
                f"the patient has one on {_when(clinic, other.starts_at)}."
            )
    return None


def _when(clinic: Clinic, moment: datetime) -> str:
    return moment.astimezone(clinic_zone(clinic)).strftime("%a %Y-%m-%d %H:%M")


@dataclass
class Slot:
    """A session to book: when, and optionally which chair (None: the first free one)."""

    starts_at: datetime
    chair: Chair | None


def pick_chair(
    chairs: Sequence[Chair],
    wanted: Chair | None,
    starts_at: datetime,
    ends_at: datetime,
    pending: dict[int, list[tuple[datetime, datetime]]],
) -> Chair | None:
    candidates = [wanted] if wanted is not None else list(chairs)
    for chair in candidates:
        if chair.is_active and chair_is_free(
            chair, starts_at, ends_at, pending=pending.get(chair.pk, [])
        ):
            return chair
    return None


def booking_error(field: str, problems: list[str]) -> ValidationError:
    return ValidationError({field: problems})
