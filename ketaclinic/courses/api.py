"""/api/v1/courses: protocols, courses planned from them, appointments, the day board, cost
estimates and chairs. The same services as the pages; a blocking rule answers 409 with every
reason and its source.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import PROTOCOLS
from ketaclinic.core import clock
from ketaclinic.courses import estimates, selectors, services
from ketaclinic.courses import schemas as s
from ketaclinic.courses.models import Appointment, Chair, TreatmentCourse
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors as screening
from ketaclinic.screening.api import blocked_response
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.schemas import BlockedOut

router = Router()


def _read(request: HttpRequest, patient: Patient, detail: str, action: str = Action.READ) -> None:
    record_event(
        action=action,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail=f"api {detail}",
    )


def _appointment(pk: int) -> Appointment:
    return Appointment.objects.select_related("chair").get(pk=pk)


@router.get("/protocols", response=list[s.ProtocolOut], summary="Treatment protocols (as data)")
def list_protocols(request: HttpRequest) -> list[Any]:
    access.require(request.user, "course.view")
    return [
        {
            **p.__dict__,
            "phases": [ph.__dict__ for ph in p.phases],
            "allowed_doses_mg": list(p.allowed_doses_mg),
        }
        for p in PROTOCOLS.values()
    ]


# --- Day board and appointments -------------------------------------------------------------


@router.get(
    "/board", response=s.BoardOut, summary="A clinic day's appointments per chair, with alerts"
)
def get_board(request: HttpRequest, query: Query[s.BoardQuery]) -> dict[str, Any]:
    access.require(request.user, "schedule.view")
    clinics = list(access.clinics_for(request.user, "schedule.view"))
    clinic = clinics[0]
    if query.clinic_id is not None:
        clinic = next((c for c in clinics if c.pk == query.clinic_id), None)  # type: ignore[assignment]
        if clinic is None:
            raise Http404
    day = query.day or clock.today_in(clinic.timezone)
    board = selectors.day_board(clinic, day)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=clinic.pk,
        object_type="courses.appointment",
        detail=f"api day board {day:%Y-%m-%d}: {board.count} appointments",
    )
    return {
        "clinic_id": clinic.pk,
        "day": day,
        "chairs": [
            {
                "chair_id": column.chair.pk,
                "chair_name": column.chair.name,
                "capacity": column.chair.capacity,
                "rows": [
                    {
                        "appointment": row.appointment,
                        "patient_name": row.appointment.patient.full_name,
                        "mrn": row.appointment.patient.mrn,
                        "treatment": row.appointment.course.treatment,
                        "alerts": row.alerts,
                    }
                    for row in column.rows
                ],
            }
            for column in board.columns
        ],
    }


@router.get(
    "/appointments/{appointment_id}", response=s.AppointmentDetailOut, summary="One appointment"
)
def get_appointment(request: HttpRequest, appointment_id: int) -> Appointment:
    appointment = selectors.get_appointment(request.user, appointment_id)
    course = appointment.course
    _read(request, appointment.patient, f"appointment {appointment.pk}")
    siblings = list(Appointment.objects.filter(course_id=course.pk).order_by("starts_at", "id"))
    advice = None
    if access.has_permission(request.user, "course.manage", appointment.clinic_id):
        found = selectors.missed_advice_for(course, appointment, siblings)
        if found is not None:
            advice = {
                "appointment_id": appointment.pk,
                "message": found.message,
                "source": found.source,
            }
    override = screening.active_override_for(appointment.patient_id, course.treatment)
    # Extra read-only attributes for the response schema.
    appointment.treatment = course.treatment  # type: ignore[attr-defined]
    appointment.missed_dose_suggestion = advice  # type: ignore[attr-defined]
    appointment.eligibility_override_reason = override.reason if override else None  # type: ignore[attr-defined]
    return appointment


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response={201: s.AppointmentOut},
    summary="Reschedule (or rebook a missed session) with a reason",
)
def reschedule(request: HttpRequest, appointment_id: int, payload: s.RescheduleIn) -> Status[Any]:
    appointment = selectors.get_appointment(request.user, appointment_id)
    new = services.appointment_reschedule(
        actor=request.user, appointment=appointment, **payload.model_dump()
    )
    return Status(201, _appointment(new.pk))


@router.post(
    "/appointments/{appointment_id}/cancel",
    response=s.AppointmentOut,
    summary="Cancel with a reason",
)
def cancel(request: HttpRequest, appointment_id: int, payload: s.ReasonIn) -> Any:
    appointment = selectors.get_appointment(request.user, appointment_id)
    services.appointment_cancel(actor=request.user, appointment=appointment, reason=payload.reason)
    return _appointment(appointment.pk)


@router.post(
    "/appointments/{appointment_id}/missed",
    response=s.AppointmentOut,
    summary="Record a no-show (esketamine: the prescriber sees the missed-dose suggestion)",
)
def missed(request: HttpRequest, appointment_id: int, payload: s.ReasonIn) -> Any:
    appointment = selectors.get_appointment(request.user, appointment_id)
    services.appointment_mark_missed(
        actor=request.user, appointment=appointment, reason=payload.reason
    )
    return _appointment(appointment.pk)


@router.post(
    "/appointments/{appointment_id}/complete",
    response={200: s.AppointmentOut, 409: BlockedOut},
    summary="Record the session as given (start gates checked)",
)
def complete(request: HttpRequest, appointment_id: int) -> Status[Any]:
    appointment = selectors.get_appointment(request.user, appointment_id)
    try:
        services.appointment_complete(actor=request.user, appointment=appointment)
    except Blocked as exc:
        return blocked_response(exc)
    return Status(200, _appointment(appointment.pk))


@router.post(
    "/appointments/{appointment_id}/dose", response=s.AppointmentOut, summary="Change a dose"
)
def change_dose(request: HttpRequest, appointment_id: int, payload: s.DoseIn) -> Any:
    appointment = selectors.get_appointment(request.user, appointment_id)
    services.appointment_set_dose(
        actor=request.user, appointment=appointment, **payload.model_dump()
    )
    return _appointment(appointment.pk)


# --- Chairs ---------------------------------------------------------------------------------


@router.get("/chairs", response=list[s.ChairOut], summary="Chairs of your clinics")
def list_chairs(request: HttpRequest) -> Any:
    access.require(request.user, "schedule.view")
    return Chair.objects.filter(
        clinic_id__in=access.clinic_ids_for(request.user, "schedule.view")
    ).order_by("clinic_id", "name")


@router.post("/chairs", response={201: s.ChairOut}, summary="Add a chair (clinic administrators)")
def create_chair(request: HttpRequest, payload: s.ChairIn) -> Status[Any]:
    access.require(request.user, "clinic.configure")
    if not access.has_permission(request.user, "clinic.configure", payload.clinic_id):
        raise ValidationError({"clinic_id": ["You cannot configure that clinic."]})
    data = payload.model_dump(exclude={"clinic_id"})
    return Status(
        201, services.chair_save(actor=request.user, clinic_id=payload.clinic_id, data=data)
    )


# --- Courses --------------------------------------------------------------------------------


@router.get("", response=list[s.CourseOut], summary="List courses")
@paginate(LimitOffsetPagination)
def list_courses(request: HttpRequest, filters: Query[s.CourseFilters]):  # type: ignore[no-untyped-def]
    access.require(request.user, "course.view")
    qs = selectors.courses_for(request.user, status=filters.status)
    if filters.patient_id is not None:
        qs = qs.filter(patient_id=filters.patient_id)
    record_event(
        action=Action.LIST,
        user=request.user,
        object_type="courses.treatmentcourse",
        detail=f"api course list; status={filters.status}"[:500],
    )
    return qs


@router.post(
    "",
    response={201: s.CourseOut, 409: BlockedOut},
    summary="Plan a course from a protocol and book its sessions (prescribers)",
)
def create_course(request: HttpRequest, payload: s.CourseIn) -> Status[Any]:
    patient = access.get_patient(request.user, payload.patient_id, "course.manage")
    try:
        course = services.course_create(
            actor=request.user,
            patient=patient,
            protocol=payload.protocol,
            start_date=payload.start_date,
            session_time=payload.session_time,
            weeks=payload.weeks,
            chair_id=payload.chair_id,
            dose_mg=payload.dose_mg,
            dose_mg_per_kg=payload.dose_mg_per_kg,
            goals_note=payload.goals_note,
            goals=[g.model_dump() for g in payload.goals],
        )
    except Blocked as exc:
        return blocked_response(exc)
    return Status(201, course)


def detail_out(course: TreatmentCourse) -> dict[str, Any]:
    detail = selectors.course_detail(course)
    override = detail.eligibility.override
    return {
        "course": course,
        "goals": detail.goals,
        "appointments": detail.appointments,
        "start_blockers": [b.as_dict() for b in detail.blockers],
        "eligibility_status": detail.eligibility.status,
        "eligibility_override_reason": override.reason if override else None,
        "missed_dose_suggestions": [
            {"appointment_id": pk, "message": advice.message, "source": advice.source}
            for pk, advice in detail.missed_advice.items()
        ],
    }


@router.get("/{course_id}", response=s.CourseDetailOut, summary="A course with its sessions")
def get_course(request: HttpRequest, course_id: int) -> dict[str, Any]:
    course = selectors.get_course(request.user, course_id)
    _read(request, course.patient, f"course {course.pk}")
    return detail_out(course)


@router.post(
    "/{course_id}/start",
    response={200: s.CourseOut, 409: BlockedOut},
    summary="Start the course: blocked until consent, eligibility and REMS pass",
)
def start_course(request: HttpRequest, course_id: int) -> Status[Any]:
    course = selectors.get_course(request.user, course_id)
    try:
        return Status(200, services.course_start(actor=request.user, course=course))
    except Blocked as exc:
        return blocked_response(exc)


@router.post(
    "/{course_id}/status",
    response={200: s.CourseOut, 409: BlockedOut},
    summary="Pause, resume, complete or stop a course",
)
def change_course_status(request: HttpRequest, course_id: int, payload: s.StatusIn) -> Status[Any]:
    course = selectors.get_course(request.user, course_id)
    try:
        changed = services.course_change_status(
            actor=request.user, course=course, status=payload.status, reason=payload.reason
        )
    except Blocked as exc:
        return blocked_response(exc)
    return Status(200, changed)


@router.post(
    "/{course_id}/maintenance",
    response=list[s.AppointmentOut],
    summary="Move an active course to maintenance",
)
def start_maintenance(request: HttpRequest, course_id: int, payload: s.MaintenanceIn) -> list[Any]:
    course = selectors.get_course(request.user, course_id, "course.manage")
    booked = services.course_start_maintenance(
        actor=request.user, course=course, **payload.model_dump()
    )
    return [_appointment(a.pk) for a in booked]


@router.post(
    "/{course_id}/boosters",
    response={201: s.AppointmentOut},
    summary="Book a booster with a reason",
)
def add_booster(request: HttpRequest, course_id: int, payload: s.BoosterIn) -> Status[Any]:
    course = selectors.get_course(request.user, course_id)
    appointment = services.booster_add(actor=request.user, course=course, **payload.model_dump())
    return Status(201, _appointment(appointment.pk))


@router.post("/{course_id}/goals", response={201: s.GoalOut}, summary="Add a goal")
def add_goal(request: HttpRequest, course_id: int, payload: s.GoalIn) -> Status[Any]:
    course = selectors.get_course(request.user, course_id)
    return Status(
        201, services.course_goal_add(actor=request.user, course=course, data=payload.model_dump())
    )


@router.get("/{course_id}/estimate", response=s.EstimateOut, summary="Cost estimate")
def get_estimate(request: HttpRequest, course_id: int) -> dict[str, Any]:
    course = selectors.get_course(request.user, course_id)
    result = estimates.course_estimate(
        course, list(Appointment.objects.filter(course_id=course.pk).order_by("starts_at"))
    )
    _read(request, course.patient, f"cost estimate for course {course.pk}", Action.EXPORT)
    return {
        "course_id": course.pk,
        "sessions": result.sessions,
        "lines": [{**line.__dict__, "total": line.total} for line in result.lines],
        "total": result.total,
        "missing_prices": [line.kind for line in result.missing_prices],
    }
