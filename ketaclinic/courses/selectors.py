"""Reads of courses and appointments: course pages, the day board and the chart panel.

Every function runs a fixed number of queries whatever the number of patients, courses or
appointments (the day board asks the screening app for its alerts in bulk).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic
from ketaclinic.clinical import PROTOCOLS, TREATMENTS
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_DATETIME_END,
    PLACEHOLDER_ID,
    CompiledModelQuery,
    objects_together,
)
from ketaclinic.courses import gates, scheduling
from ketaclinic.courses.choices import (
    BOOKED_STATUSES,
    OPEN_COURSE_STATUSES,
    AppointmentStatus,
    CourseStatus,
)
from ketaclinic.courses.missed_dose import MissedDoseAdvice, missed_dose_advice
from ketaclinic.courses.models import Appointment, Chair, TreatmentCourse
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors as screening
from ketaclinic.screening.errors import BlockReason
from ketaclinic.screening.models import (
    BaselineMeasure,
    EligibilityDecision,
    EligibilityOverride,
    SignedConsent,
)


def _scoped_pk(object_id: Any) -> int:
    try:
        return int(object_id)
    except (TypeError, ValueError):
        raise Http404 from None


def get_course(user: Any, course_id: Any, permission: str = "course.view") -> TreatmentCourse:
    """A course of the user's clinics, or 404 (missing and forbidden look alike)."""
    access.require(user, permission)
    course = (
        TreatmentCourse.objects.filter(
            pk=_scoped_pk(course_id), clinic_id__in=access.clinic_ids_for(user, permission)
        )
        .select_related("patient", "patient__clinic", "clinic", "prescriber")
        .first()
    )
    if course is None:
        raise Http404
    return course


def get_appointment(
    user: Any, appointment_id: Any, permission: str = "schedule.view"
) -> Appointment:
    access.require(user, permission)
    appointment = (
        Appointment.objects.filter(
            pk=_scoped_pk(appointment_id), clinic_id__in=access.clinic_ids_for(user, permission)
        )
        .select_related(
            "course",
            "course__clinic",
            "course__patient",
            "patient",
            "patient__clinic",
            "clinic",
            "chair",
        )
        .first()
    )
    if appointment is None:
        raise Http404
    return appointment


def courses_for(user: Any, *, status: str = "open") -> QuerySet[TreatmentCourse]:
    qs = TreatmentCourse.objects.filter(
        clinic_id__in=access.clinic_ids_for(user, "course.view")
    ).select_related("patient", "clinic")
    if status == "open":
        qs = qs.filter(status__in=OPEN_COURSE_STATUSES)
    elif status in CourseStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-start_date", "-id")


def chairs_for(clinic: Clinic, *, active_only: bool = True) -> list[Chair]:
    qs = Chair.objects.filter(clinic_id=clinic.pk)
    if active_only:
        qs = qs.filter(is_active=True)
    return list(qs.order_by("name", "id"))


@dataclass
class CourseDetail:
    course: TreatmentCourse
    appointments: list[Appointment]
    goals: list[Any]
    blockers: list[BlockReason]
    eligibility: screening.EligibilityView
    protocol_title: str
    treatment_title: str
    missed_advice: dict[int, MissedDoseAdvice] = field(default_factory=dict)

    @property
    def upcoming(self) -> list[Appointment]:
        now = clock.now()
        return [
            a
            for a in self.appointments
            if a.status == AppointmentStatus.SCHEDULED and a.ends_at >= now
        ]

    @property
    def given(self) -> int:
        return sum(1 for a in self.appointments if a.status == AppointmentStatus.COMPLETED)

    @property
    def booked(self) -> int:
        return sum(1 for a in self.appointments if a.status in BOOKED_STATUSES)


def _interval_weeks_before(appointment: Appointment, appointments: list[Appointment]) -> int:
    """1 or 2: the spacing of the maintenance schedule the missed session belonged to."""
    earlier = [
        a
        for a in appointments
        if a.starts_at < appointment.starts_at and a.status in BOOKED_STATUSES
    ]
    if not earlier:
        return 1
    gap = (appointment.starts_at - earlier[-1].starts_at).days
    return 2 if gap >= 10 else 1


def missed_advice_for(
    course: TreatmentCourse, appointment: Appointment, appointments: list[Appointment]
) -> MissedDoseAdvice | None:
    if appointment.status != AppointmentStatus.MISSED:
        return None
    return missed_dose_advice(
        course.treatment,
        appointment.phase,
        maintenance_interval_weeks=_interval_weeks_before(appointment, appointments),
    )


def course_detail(course: TreatmentCourse) -> CourseDetail:
    appointments = list(
        Appointment.objects.filter(course_id=course.pk)
        .select_related("chair", "replaces")
        .order_by("starts_at", "id")
    )
    detail = CourseDetail(
        course=course,
        appointments=appointments,
        goals=list(course.goals.all()),
        blockers=gates.start_blockers(course),
        eligibility=screening.eligibility_for(course.patient, course.treatment),
        protocol_title=PROTOCOLS[course.protocol].title if course.protocol in PROTOCOLS else "",
        treatment_title=TREATMENTS[course.treatment].title,
    )
    for appointment in appointments:
        advice = missed_advice_for(course, appointment, appointments)
        if advice is not None:
            detail.missed_advice[appointment.pk] = advice
    return detail


# --- Day board ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardAlert:
    code: str
    text: str
    level: str  # "danger", "warning" or "info"


@dataclass
class BoardRow:
    appointment: Appointment
    alerts: list[BoardAlert]


@dataclass
class BoardColumn:
    chair: Chair
    rows: list[BoardRow] = field(default_factory=list)


@dataclass
class DayBoard:
    clinic: Clinic
    day: date
    columns: list[BoardColumn]

    @property
    def count(self) -> int:
        return sum(1 for c in self.columns for r in c.rows)

    @property
    def previous_day(self) -> date:
        return self.day - timedelta(days=1)

    @property
    def next_day(self) -> date:
        return self.day + timedelta(days=1)


@dataclass(frozen=True)
class PatientFacts:
    """What the board's alerts need to know of its patients, read once: eligibility states by
    (patient, treatment), consent kinds in force and suicide-risk texts by patient."""

    states: dict[tuple[int, str], screening.EligibilityState]
    consents: dict[int, set[str]]
    risk: dict[int, str]


def board_alerts(
    appointments: list[Appointment], clinic: Clinic, facts: PatientFacts | None = None
) -> dict[int, list[BoardAlert]]:
    """Alerts for each appointment, from a fixed number of bulk queries (none when the
    patients' facts were read already)."""
    if facts is None:
        patient_ids = {a.patient_id for a in appointments}
        facts = PatientFacts(
            screening.eligibility_states(
                {(a.patient_id, a.course.treatment) for a in appointments}
            ),
            screening.consents_in_force(patient_ids),
            screening.suicide_risk_at_last_check(patient_ids),
        )
    states, consents, risk = facts.states, facts.consents, facts.risk
    # REMS enrolment and the ride home come with the patient (select_related in day_board).
    enrolled = {a.patient_id for a in appointments if hasattr(a.patient, "rems_enrolment")}
    rides = {a.patient_id for a in appointments if hasattr(a.patient, "transport_plan")}
    alerts: dict[int, list[BoardAlert]] = {}
    for appointment in appointments:
        treatment = appointment.course.treatment
        found: list[BoardAlert] = []
        if appointment.patient_id in risk:
            found.append(BoardAlert("suicide_risk", risk[appointment.patient_id], "danger"))
        state = states[(appointment.patient_id, treatment)]
        if state.override is not None:
            found.append(
                BoardAlert(
                    "eligibility_override",
                    f"Needs-review override by {state.override.signature}: {state.override.reason}",
                    "warning",
                )
            )
        block = gates.eligibility_block(state.status, state.override is not None)
        if block is not None:
            found.append(BoardAlert(block.code, block.message, "danger"))
        consent = gates.consent_missing(treatment, consents.get(appointment.patient_id, set()))
        if consent is not None:
            found.append(BoardAlert(consent.code, consent.message, "danger"))
        for reason in gates.rems_missing(
            treatment,
            enrolled=appointment.patient_id in enrolled,
            clinic_certified=clinic.rems_certified,
        ):
            found.append(BoardAlert(reason.code, reason.message, "danger"))
        if appointment.patient_id not in rides:
            found.append(BoardAlert("no_transport_plan", "No ride home recorded", "warning"))
        if appointment.course.status == CourseStatus.PAUSED:
            found.append(BoardAlert("course_paused", "Course is paused", "warning"))
        if appointment.phase == "booster" and appointment.booster_reason:
            found.append(BoardAlert("booster", f"Booster: {appointment.booster_reason}", "info"))
        alerts[appointment.pk] = found
    return alerts


# The day board's reads, compiled to SQL once (core.compiled_query): the appointment query
# joins five tables and costs more to compile than to run. What the alerts need of the board's
# patients is read by the same (clinic, day) through a subquery of the appointments, so every
# read has a fixed shape and all go to PostgreSQL in one round trip (objects_together).
def _day_appointments(clinic_id: int, start: datetime, end: datetime) -> QuerySet[Appointment]:
    return Appointment.objects.filter(
        clinic_id=clinic_id, starts_at__gte=start, starts_at__lt=end
    ).exclude(status=AppointmentStatus.RESCHEDULED)


def _of_board_patients(rows: QuerySet[Any], clinic_id: int, start: datetime, end: datetime) -> Any:
    patients = _day_appointments(clinic_id, start, end).order_by().values("patient_id")
    return rows.filter(patient_id__in=patients)


def _board_query(build: Any) -> CompiledModelQuery:
    return CompiledModelQuery(
        build, clinic_id=PLACEHOLDER_ID, start=PLACEHOLDER_DATETIME, end=PLACEHOLDER_DATETIME_END
    )


_BOARD_CHAIRS = CompiledModelQuery(
    lambda clinic_id: Chair.objects.filter(clinic_id=clinic_id).order_by("name", "id"),
    clinic_id=PLACEHOLDER_ID,
)
_BOARD_APPOINTMENTS = _board_query(
    lambda clinic_id, start, end: (
        _day_appointments(clinic_id, start, end)
        .select_related(
            "patient", "patient__rems_enrolment", "patient__transport_plan", "course", "chair"
        )
        .order_by("starts_at", "id")
    )
)
# As screening.eligibility_states(), consents_in_force() and suicide_risk_at_last_check() read
# them (the overrides of every board patient: only those covering a needs-review decision count).
_BOARD_DECISIONS = _board_query(
    lambda **day: _of_board_patients(
        EligibilityDecision.objects.order_by("-decided_at", "-id"), **day
    )
)
_BOARD_OVERRIDES = _board_query(
    lambda **day: _of_board_patients(EligibilityOverride.objects.order_by("id"), **day)
)
_BOARD_CONSENTS = _board_query(
    lambda **day: _of_board_patients(
        SignedConsent.objects.filter(withdrawn_at__isnull=True)
        .only("patient_id", "kind")
        .order_by("id"),
        **day,
    )
)
_BOARD_MEASURES = _board_query(
    lambda **day: _of_board_patients(
        BaselineMeasure.objects.filter(instrument__in=screening.SUICIDE_RISK_INSTRUMENTS)
        .only("patient_id", "instrument", "administered_on", "flags")
        .order_by("-administered_on", "-id"),
        **day,
    )
)


def day_board(clinic: Clinic, day: date) -> DayBoard:
    """Appointments of one clinic day, per chair, with their alerts (one round trip on
    PostgreSQL: the chairs, the appointments and what the alerts need of their patients)."""
    start = scheduling.local_datetime(clinic, day, time.min)
    end = start + timedelta(days=1)
    day_values = {"clinic_id": clinic.pk, "start": start, "end": end}
    chairs, appointments, decisions, overrides, consents, measures = objects_together(
        [
            (_BOARD_CHAIRS, {"clinic_id": clinic.pk}),
            (_BOARD_APPOINTMENTS, day_values),
            (_BOARD_DECISIONS, day_values),
            (_BOARD_OVERRIDES, day_values),
            (_BOARD_CONSENTS, day_values),
            (_BOARD_MEASURES, day_values),
        ]
    )
    facts = PatientFacts(
        screening.eligibility_states_from(
            {(a.patient_id, a.course.treatment) for a in appointments}, decisions, overrides
        ),
        screening.consents_from((c.patient_id, c.kind) for c in consents),
        screening.suicide_risk_from(measures),
    )
    alerts = board_alerts(appointments, clinic, facts)
    columns = {chair.pk: BoardColumn(chair) for chair in chairs}
    for appointment in appointments:
        columns[appointment.chair_id].rows.append(
            BoardRow(appointment, alerts.get(appointment.pk, []))
        )
    shown = [c for c in columns.values() if c.chair.is_active or c.rows]
    return DayBoard(clinic, day, shown)


# --- Chart panel ----------------------------------------------------------------------------


@dataclass
class CourseSummary:
    course: TreatmentCourse
    next_appointments: list[Appointment]
    given: int
    booked: int
    protocol_title: str


# Both on every patient chart: compiled to SQL once (core.compiled_query).
_PATIENT_COURSES = CompiledModelQuery(
    lambda patient_id: TreatmentCourse.objects.filter(patient_id=patient_id).order_by(
        "-start_date", "-id"
    ),
    patient_id=PLACEHOLDER_ID,
)
_PATIENT_APPOINTMENTS = CompiledModelQuery(
    lambda patient_id: (
        Appointment.objects.filter(patient_id=patient_id)
        .select_related("chair")
        .order_by("starts_at", "id")
    ),
    patient_id=PLACEHOLDER_ID,
)


def patient_courses_reads(patient_id: int, reads: Any) -> tuple[Any, Any]:
    """Ask the chart's reads (patients.chart.ChartReads) for `patient_courses`' two queries, for
    a patient the chart's facts say has a course."""
    return (
        reads.add(_PATIENT_COURSES, patient_id=patient_id),
        reads.add(_PATIENT_APPOINTMENTS, patient_id=patient_id),
    )


def patient_courses(
    patient: Patient, *, upcoming: int = 3, read: tuple[Any, Any] | None = None
) -> list[CourseSummary]:
    """The patient's courses with their next appointments (two queries; none when `read` has
    the handles from `patient_courses_reads`)."""
    courses = read[0].rows() if read else _PATIENT_COURSES.objects(patient_id=patient.pk)
    by_course: dict[int, list[Appointment]] = defaultdict(list)
    if courses:  # most patients of a clinic have none: no appointment query then
        appointments = (
            read[1].rows() if read else _PATIENT_APPOINTMENTS.objects(patient_id=patient.pk)
        )
        for appointment in appointments:
            by_course[appointment.course_id].append(appointment)
    now: datetime = clock.now()
    summaries = []
    for course in courses:
        rows = by_course.get(course.pk, [])
        summaries.append(
            CourseSummary(
                course=course,
                next_appointments=[
                    a for a in rows if a.status == AppointmentStatus.SCHEDULED and a.ends_at >= now
                ][:upcoming],
                given=sum(1 for a in rows if a.status == AppointmentStatus.COMPLETED),
                booked=sum(1 for a in rows if a.status in BOOKED_STATUSES),
                protocol_title=PROTOCOLS[course.protocol].title
                if course.protocol in PROTOCOLS
                else course.protocol,
            )
        )
    return summaries
