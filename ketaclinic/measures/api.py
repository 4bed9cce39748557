"""/api/v1/measures: assignments, responses, scores, check-ins and alerts.

The same scoping, services and audit as the pages: staff reach the patients of their clinics
with `measures.view`; a patient reaches only their own record (security R2); alerts are for
staff only. Another patient's id answers 404, exactly like a missing one.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.measures import selectors, services
from ketaclinic.measures.choices import ResponseSource
from ketaclinic.measures.models import Assignment, CheckIn, Response, SafetyAlert
from ketaclinic.measures.schemas import (
    AlertAcknowledge,
    AlertFilters,
    AlertOut,
    AssignmentCreate,
    AssignmentFilters,
    AssignmentOut,
    CheckInCreate,
    CheckInFilters,
    CheckInOut,
    CrisisResources,
    ResponseFilters,
    ResponseOut,
    ResponseSubmit,
    ResponseSubmitted,
    ScoresFilters,
    ScoresOut,
)

router = Router()


def _require_reader(user: Any) -> None:
    """Staff with measures.view or a patient with a portal login; 403 for anyone else."""
    if not (
        access.has_permission(user, "measures.view") or access.has_permission(user, "portal.own")
    ):
        access.require(user, "measures.view")


def _list_event(
    request: HttpRequest, object_type: str, patient_id: int | None, detail: str
) -> None:
    record_event(
        action=Action.LIST,
        user=request.user,
        patient_id=patient_id,
        object_type=object_type,
        detail=f"api {detail}",
    )


def _read_event(request: HttpRequest, obj: Any) -> None:
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=obj.clinic_id,
        patient_id=obj.patient_id,
        obj=obj,
        detail="api",
    )


# --- Assignments -----------------------------------------------------------------------------


@router.get("/assignments", response=list[AssignmentOut], summary="List questionnaire assignments")
@paginate(LimitOffsetPagination)
def list_assignments(request: HttpRequest, filters: Query[AssignmentFilters]):  # type: ignore[no-untyped-def]
    _require_reader(request.user)
    if filters.patient_id is not None:
        selectors.patient_for(request.user, filters.patient_id)
    _list_event(request, "measures.assignment", filters.patient_id, "assignments")
    return selectors.assignments_for(
        request.user, patient_id=filters.patient_id, status=filters.status
    )


@router.get("/assignments/{assignment_id}", response=AssignmentOut, summary="Get an assignment")
def get_assignment(request: HttpRequest, assignment_id: int) -> Assignment:
    _require_reader(request.user)
    assignment = (
        selectors.assignments_for(request.user, patient_id=None, status=None)
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None:
        raise Http404
    _read_event(request, assignment)
    return assignment


@router.post(
    "/assignments", response={201: AssignmentOut}, summary="Ask a patient for a questionnaire now"
)
def create_assignment(request: HttpRequest, payload: AssignmentCreate) -> Status[Assignment]:
    access.require(request.user, "measures.manage")
    patient = access.get_patient(request.user, payload.patient_id, "measures.manage")
    assignment = services.assignment_create(
        actor=request.user,  # type: ignore[arg-type]
        patient=patient,
        instrument=payload.instrument,
        respondent=payload.respondent,
        open_hours=payload.open_hours,
    )
    return Status(201, assignment)


# --- Responses and scores --------------------------------------------------------------------


@router.get("/responses", response=list[ResponseOut], summary="List scored questionnaires")
@paginate(LimitOffsetPagination)
def list_responses(request: HttpRequest, filters: Query[ResponseFilters]):  # type: ignore[no-untyped-def]
    _require_reader(request.user)
    qs = Response.objects.filter(patient__in=selectors.readable_patients(request.user))
    if filters.patient_id is not None:
        selectors.patient_for(request.user, filters.patient_id)
        qs = qs.filter(patient_id=filters.patient_id)
    if filters.instrument:
        qs = qs.filter(instrument=filters.instrument)
    _list_event(request, "measures.response", filters.patient_id, "responses")
    return qs.order_by("-completed_at", "-pk")


@router.get("/responses/{response_id}", response=ResponseOut, summary="Get a scored questionnaire")
def get_response(request: HttpRequest, response_id: int) -> Response:
    _require_reader(request.user)
    response = selectors.response_for(request.user, response_id)
    _read_event(request, response)
    return response


@router.post(
    "/responses",
    response={201: ResponseSubmitted},
    summary="Submit a questionnaire (patient: own assignment; clinician: score entry)",
)
def submit_response(request: HttpRequest, payload: ResponseSubmit) -> Status[dict[str, Any]]:
    _require_reader(request.user)
    assignment = None
    patient = None
    if payload.assignment_id is not None:
        assignment = (
            selectors.assignments_for(request.user, patient_id=None, status=None)
            .filter(pk=payload.assignment_id)
            .first()
        )
        if assignment is None:
            raise Http404
    elif payload.patient_id is not None:
        patient = access.get_patient(request.user, payload.patient_id, "measures.manage")
    else:
        raise ValidationError(
            {"assignment_id": "Give the assignment, or a patient and instrument."}
        )
    response = services.response_submit(
        actor=request.user,
        answers=payload.answers,
        source=ResponseSource.API,
        assignment=assignment,
        patient=patient,
        instrument=payload.instrument,
    )
    crisis = None
    if response.has_suicidal_ideation:
        line = settings.KETACLINIC_CRISIS_LINE
        crisis = CrisisResources(
            call_or_text=line,
            emergency="911",
            message=f"If you are thinking about harming yourself, call or text {line} now; in "
            "an emergency call 911. Your care team has been alerted, but this service is not "
            "monitored around the clock.",
        )
    body = ResponseOut.from_orm(response).model_dump()
    return Status(201, {**body, "crisis_resources": crisis})


@router.get(
    "/patients/{patient_id}/scores",
    response=ScoresOut,
    summary="Score trajectories with baseline, status, relapse and late-response labels",
)
def patient_scores(
    request: HttpRequest, patient_id: int, filters: Query[ScoresFilters]
) -> dict[str, Any]:
    _require_reader(request.user)
    patient = selectors.patient_for(request.user, patient_id)
    outcomes = selectors.patient_outcomes(patient)
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="measures.scores",
        object_id=patient.pk,
        detail="api score trajectories",
    )
    items = [
        t
        for t in outcomes.trajectories
        if not filters.instrument or t.instrument == filters.instrument
    ]
    timeline = outcomes.timeline
    return {
        "patient_id": patient.pk,
        "sessions_planned": len(timeline.sessions) if timeline else 0,
        "first_session_on": timeline.first_session_on if timeline else None,
        "trajectories": [
            {
                "instrument": t.instrument,
                "title": t.title,
                "baseline": t.baseline.total if t.baseline else None,
                "baseline_date": t.baseline.day if t.baseline else None,
                "latest": t.latest.total if t.latest else None,
                "status": t.status,
                "change_pct": t.change_pct,
                "relapse_on": t.relapse_on,
                "first_response_after_sessions": t.first_response_after_sessions,
                "late_responder": t.late_responder,
                "end_of_induction_status": t.end_of_induction_status,
                "points": [
                    {
                        "date": p.day,
                        "total": p.total,
                        "severity": p.severity,
                        "suicidal_ideation": p.suicidal_ideation,
                    }
                    for p in t.points
                ],
            }
            for t in items
        ],
    }


# --- Check-ins -------------------------------------------------------------------------------


@router.get("/checkins", response=list[CheckInOut], summary="List mood check-ins")
@paginate(LimitOffsetPagination)
def list_checkins(request: HttpRequest, filters: Query[CheckInFilters]):  # type: ignore[no-untyped-def]
    _require_reader(request.user)
    qs = CheckIn.objects.filter(patient__in=selectors.readable_patients(request.user))
    if filters.patient_id is not None:
        selectors.patient_for(request.user, filters.patient_id)
        qs = qs.filter(patient_id=filters.patient_id)
    _list_event(request, "measures.checkin", filters.patient_id, "check-ins")
    return qs.order_by("-recorded_at", "-pk")


@router.post("/checkins", response={201: CheckInOut}, summary="Record my mood check-in (patients)")
def create_checkin(request: HttpRequest, payload: CheckInCreate) -> Status[CheckIn]:
    access.require(request.user, "portal.own")
    patient = selectors.portal_patient(request.user)
    checkin = services.checkin_record(
        actor=request.user,  # type: ignore[arg-type]
        patient=patient,
        mood_0_to_10=payload.mood_0_to_10,
        note=payload.note,
        urgent=payload.urgent,
        source="api",
    )
    return Status(201, checkin)


# --- Alerts (staff) --------------------------------------------------------------------------


@router.get("/alerts", response=list[AlertOut], summary="The alert inbox (staff)")
@paginate(LimitOffsetPagination)
def list_alerts(request: HttpRequest, filters: Query[AlertFilters]):  # type: ignore[no-untyped-def]
    access.require(request.user, "measures.view")
    qs = selectors.alert_inbox(
        request.user, selectors.AlertFilter(status=filters.status, mine=filters.mine)
    )
    if filters.patient_id is not None:
        access.get_patient(request.user, filters.patient_id, "measures.view")
        qs = qs.filter(patient_id=filters.patient_id)
    _list_event(request, "measures.safetyalert", filters.patient_id, f"alerts {filters.status}")
    return qs


@router.get("/alerts/{alert_id}", response=AlertOut, summary="Get an alert (staff)")
def get_alert(request: HttpRequest, alert_id: int) -> SafetyAlert:
    access.require(request.user, "measures.view")
    alert = selectors.alert_for(request.user, alert_id)
    _read_event(request, alert)
    return alert


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response=AlertOut,
    summary="Acknowledge an alert with the action taken",
)
def acknowledge_alert(
    request: HttpRequest, alert_id: int, payload: AlertAcknowledge
) -> SafetyAlert:
    access.require(request.user, "alerts.acknowledge")
    alert = selectors.alert_for(request.user, alert_id)
    return services.alert_acknowledge(
        actor=request.user,  # type: ignore[arg-type]
        alert=alert,
        action=payload.action,
        note=payload.note,
    )
