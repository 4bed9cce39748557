"""/api/v1/sessions: treatment sessions for nurses and prescribers, with role checks and audit.

The same services as the pages: every write goes through `treatment_sessions.services`, which
checks the role, the state table and the clinical rule, writes, and audits in one transaction.

Answers: a session of another clinic, or a missing one, is 404; a role that may not do the
action at any clinic is 403; bad input is 422 with field errors; a safety rule or the state
machine stopping the action (pre-dose gate, REMS enrolment, second-person check, device spacing,
discharge criteria, a move the table does not allow) is 409 with the reasons in plain words.
Nothing is written when the answer is not 2xx.
"""

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import InvalidInput, UnsafeOrder, esketamine_administration, get_treatment
from ketaclinic.controlled_substances.models import LedgerEntry, Lot, StorageLocation
from ketaclinic.controlled_substances.signatures import WitnessAttestation
from ketaclinic.core import clock
from ketaclinic.core.validation import error_map
from ketaclinic.courses.models import Appointment
from ketaclinic.treatment_sessions import rems, selectors, services
from ketaclinic.treatment_sessions import schemas as s
from ketaclinic.treatment_sessions.choices import (
    MONITORING_STATUSES,
    SessionStatus,
)
from ketaclinic.treatment_sessions.models import RemsSubmission, TreatmentSession, VitalAlert
from ketaclinic.treatment_sessions.note import note_text

router = Router()

S = SessionStatus

# Errors under these keys are a rule or the state machine saying no (409), not bad input (422):
# "status" carries the state table and every guard (pre-dose gate, second-person check, dose
# drawn, discharge criteria with the 120-minute clock, REMS form); "device" the 5-minute
# spacing; "rems_enrolment_verified" a REMS enrolment that is not on file; "session" a REMS form
# that is incomplete, already submitted or not yet due.
BLOCKING_FIELDS = frozenset({"status", "device", "rems_enrolment_verified", "session"})

# The next step on the usual path, whose blockers the session read lists.
NEXT_STEP: dict[str, str] = {
    S.SCHEDULED: S.CHECKED_IN,
    S.CHECKED_IN: S.GATE_PASSED,
    S.GATE_PASSED: S.DOSING,
    S.DOSING: S.OBSERVING,
    S.OBSERVING: S.READY_FOR_DISCHARGE,
    S.READY_FOR_DISCHARGE: S.DISCHARGED,
    S.DISCHARGED: S.SIGNED,
    S.STOPPED_EARLY: S.SIGNED,
}


def _is_blocked(exc: ValidationError) -> bool:
    return hasattr(exc, "error_dict") and bool(BLOCKING_FIELDS & set(exc.error_dict))


def blocked_response(exc: ValidationError) -> Status[Any]:
    errors = error_map(exc)
    reasons = [
        m for field in BLOCKING_FIELDS if field in exc.error_dict for m in exc.message_dict[field]
    ]
    return Status(
        409,
        {"detail": reasons[0] if len(reasons) == 1 else "This step is blocked.", "errors": errors,
         "reasons": reasons},
    )  # fmt: skip


def guarded(view: Callable[..., Any]) -> Callable[..., Any]:
    """A blocking rule's refusal answers 409 with its reasons; other ValidationErrors stay 422."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ValidationError as exc:
            if _is_blocked(exc):
                return blocked_response(exc)
            raise

    return wrapper


def _session(request: HttpRequest, session_id: int, permission: str) -> TreatmentSession:
    return selectors.get_session(request.user, session_id, permission)


def _read(request: HttpRequest, session: TreatmentSession, detail: str) -> None:
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        obj=session,
        detail=f"api {detail}",
    )


def _signer(payload: s.SignerIn | None, field: str) -> WitnessAttestation | None:
    if payload is None:
        return None
    users = User.objects.all()
    user = (
        users.filter(pk=payload.user_id).first()
        if payload.user_id is not None
        else users.filter(username=payload.username).first()
    )
    if user is None:
        raise ValidationError({field: ["This person cannot sign for this clinic."]})
    return WitnessAttestation(user=user, password=payload.password, otp=payload.otp)


# --- Output builders ------------------------------------------------------------------------


def _ledger_line(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "occurred_at": entry.occurred_at,
        "lot_id": entry.lot_id,
        "lot_number": entry.lot.lot_number,
        "location_id": entry.location_id,
        "quantity_mg": abs(entry.quantity_mg),
        "actor_name": entry.actor_name,
        "witness_name": entry.witness_name,
    }


def _signature(session: TreatmentSession) -> Any:
    return getattr(session, "signature", None) if session.signed_at else None


def next_step(session: TreatmentSession) -> dict[str, Any]:
    """The next state on the usual path and what stands in its way (the guards' own words)."""
    to = NEXT_STEP.get(session.status)
    if to is None:
        return {"to": None, "blockers": []}
    blockers: list[str] = []
    for guard in services.GUARDS.get(to, ()):
        try:
            blockers.extend(guard(session))
        except ValidationError as exc:
            blockers.extend(exc.messages)
        except InvalidInput as exc:  # data a forced or half-made session lacks
            blockers.append(str(exc))
    return {"to": to, "blockers": blockers}


def _next_device_at(session: TreatmentSession, devices: list[Any]) -> datetime | None:
    if session.status != S.DOSING or not get_treatment(session.treatment).is_esketamine:
        return None
    try:
        plan = esketamine_administration(int(session.planned_dose_mg or 0))
    except UnsafeOrder:
        return None
    if len(devices) >= plan.devices:
        return None
    if not devices:
        return clock.now()
    return devices[-1].administered_at + timedelta(minutes=plan.minutes_between_devices)  # type: ignore[no-any-return]


def _minutes_since_first_dose(session: TreatmentSession, devices: list[Any]) -> int | None:
    first = devices[0].administered_at if devices else session.dosing_started_at
    if first is None:
        return None
    end = session.discharged_at or session.ended_at or clock.now()
    return max(0, int((end - first).total_seconds() // 60))


def session_out(session: TreatmentSession) -> dict[str, Any]:
    """The whole session for the chair-side screen (one query per kind of row)."""
    session = (
        TreatmentSession.objects.select_related("patient", "clinic", "chair")
        .prefetch_related("alerts")
        .get(pk=session.pk)
    )
    devices = list(session.esketamine_devices.all())
    alerts = list(session.alerts.all())
    now = clock.now()
    due = None
    if session.status in MONITORING_STATUSES and session.dosing_started_at:
        try:
            due = services.next_vitals_due(session, now)
        except InvalidInput:  # an IV session without its order: no schedule to follow
            due = None
    return {
        "id": session.pk,
        "patient_id": session.patient_id,
        "patient_name": session.patient.full_name,
        "clinic_id": session.clinic_id,
        "appointment_id": session.appointment_id,
        "course_id": session.course_id,
        "chair": str(session.chair) if session.chair_id else None,
        "treatment": session.treatment,
        "route": get_treatment(session.treatment).route,
        "planned_dose_mg": session.planned_dose_mg,
        "status": session.status,
        "status_reason": session.status_reason,
        **{
            name: getattr(session, name)
            for name in (
                "scheduled_at",
                "checked_in_at",
                "gate_passed_at",
                "dosing_started_at",
                "observing_started_at",
                "ready_at",
                "discharged_at",
                "signed_at",
                "ended_at",
            )
        },  # fmt: skip
        "pre_dose_check": services.latest_check(session),
        "infusion_order": services.latest_order(session),
        "devices": devices,
        "next_device_at": _next_device_at(session, devices),
        "administrations": [
            _ledger_line(e)
            for e in LedgerEntry.objects.filter(treatment_session_id=session.pk)
            .select_related("lot")
            .order_by("seq")
        ],
        "vitals": list(session.vitals.all()),
        "alerts": alerts,
        "open_alerts": sum(1 for a in alerts if a.acknowledged_by_id is None),
        "cadss": list(session.cadss_scores.all()),
        "adverse_events": list(session.adverse_events.all()),
        "interventions": list(session.interventions.all()),
        "discharge_assessment": services.latest_discharge(session),
        "next_step": next_step(session),
        "next_vitals_due_at": due,
        "minutes_since_first_dose": _minutes_since_first_dose(session, devices),
        "signature": _signature(session),
        "amendments": list(session.amendments.all()),
        "transitions": list(session.transitions.all()),
    }


# --- Reading --------------------------------------------------------------------------------


def _day_filter(qs: QuerySet[TreatmentSession], day: Any, clinic_ids: list[int]) -> Any:
    """Scheduled on `day` in each clinic's own time zone."""
    condition = Q(pk__in=[])
    for clinic in Clinic.objects.filter(pk__in=clinic_ids):
        tz = ZoneInfo(clinic.timezone)
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        condition |= Q(clinic_id=clinic.pk, scheduled_at__gte=start,
                       scheduled_at__lt=start + timedelta(days=1))  # fmt: skip
    return qs.filter(condition)


@router.get("", response=list[s.SessionSummaryOut], summary="List sessions")
@paginate(LimitOffsetPagination)
def list_sessions(request: HttpRequest, filters: Query[s.SessionFilters]) -> Any:
    access.require(request.user, "course.view")
    clinic_ids = access.clinic_ids_for(request.user, "course.view")
    if filters.clinic_id is not None:
        if filters.clinic_id not in clinic_ids:
            raise Http404
        clinic_ids = [filters.clinic_id]
    qs = selectors.sessions_for(request.user).filter(clinic_id__in=clinic_ids)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    if filters.date is not None:
        qs = _day_filter(qs, filters.date, clinic_ids)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=filters.clinic_id,
        object_type="treatment_sessions.treatmentsession",
        detail=f"api sessions; date={filters.date or '-'} status={filters.status or '-'}",
    )
    return qs.order_by("scheduled_at", "id")


@router.get("/rems-worklist", response=s.WorklistOut, summary="REMS forms due, overdue, submitted")
def rems_worklist(request: HttpRequest, filters: Query[s.WorklistFilters]) -> Any:
    access.require(request.user, "session.record")
    if filters.clinic_id is not None:
        access.require_clinic(request.user, "session.record", filters.clinic_id)
    worklist = selectors.rems_worklist(request.user, clinic_id=filters.clinic_id)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=filters.clinic_id,
        object_type="treatment_sessions.remssubmission",
        detail="api REMS worklist",
    )

    def row(session: Any) -> dict[str, Any]:
        return {
            "session_id": session.pk,
            "patient_id": session.patient_id,
            "patient_name": session.patient.full_name,
            "clinic_id": session.clinic_id,
            "status": session.status,
            "due_on": session.due_on,
            "days_left": session.days_left,
            "submission": _submission(session.submission) if session.submission else None,
        }

    return {
        "overdue": [row(x) for x in worklist.overdue],
        "due": [row(x) for x in worklist.due],
        "submitted": [row(x) for x in worklist.submitted],
    }


@router.get("/{session_id}", response=s.SessionOut, summary="One session, everything on it")
def get_session(request: HttpRequest, session_id: int) -> Any:
    session = _session(request, session_id, "course.view")
    _read(request, session, "session")
    return session_out(session)


@router.get("/{session_id}/note", response=s.NoteOut, summary="The note as clinical text")
def get_note(request: HttpRequest, session_id: int) -> Any:
    session = _session(request, session_id, "course.view")
    _read(request, session, "note")
    signature = _signature(session)
    return {
        "session_id": session.pk,
        "text": signature.content if signature else note_text(session),
        "signed": signature is not None,
        "signature": signature,
        "signature_verifies": services.verify_signature(session) if signature else False,
        "amendments": list(session.amendments.all()),
    }


@router.get("/{session_id}/rems-form", response=s.RemsFormOut, summary="REMS monitoring form")
def get_rems_form(request: HttpRequest, session_id: int) -> Any:
    session = _session(request, session_id, "course.view")
    _read(request, session, "REMS form")
    form = rems.rems_form(session)
    missing = rems.rems_missing(session)
    submission = RemsSubmission.objects.filter(session=session).first()
    return {
        "session_id": session.pk,
        "form_version": rems.FORM_VERSION,
        "applies": get_treatment(session.treatment).is_esketamine,
        "form": form,
        "missing": missing,
        "complete": not missing,
        "due_on": selectors.rems_due_on(session) if session.dosing_started_at else None,
        "submission": _submission(submission) if submission else None,
    }


# --- Writing --------------------------------------------------------------------------------


@router.post("", response={201: s.SessionOut, 409: s.BlockedOut}, summary="Open a session")
@guarded
def create_session(request: HttpRequest, payload: s.SessionCreateIn) -> Any:
    access.require(request.user, "session.record")
    if payload.appointment_id is not None:
        appointment = (
            Appointment.objects.filter(
                pk=payload.appointment_id,
                clinic_id__in=access.clinic_ids_for(request.user, "session.record"),
            )
            .select_related("course")
            .first()
        )
        if appointment is None:
            raise ValidationError(
                {"appointment_id": ["No appointment of your clinics has this id."]}
            )
        session = services.session_create(actor=request.user, appointment=appointment)
    else:
        patient = (
            access.patients_for(request.user, "session.record")
            .filter(pk=payload.patient_id or 0)
            .first()
        )
        if patient is None:
            raise ValidationError({"patient_id": ["No patient of your clinics has this id."]})
        session = services.session_create(
            actor=request.user,
            patient=patient,
            treatment=payload.treatment,
            scheduled_at=payload.scheduled_at,
            planned_dose_mg=payload.planned_dose_mg,
        )
    return Status(201, session_out(session))


@router.post(
    "/{session_id}/transitions",
    response={200: s.SessionOut, 409: s.BlockedOut},
    summary="Move the session: check in, pass the gate, start dosing, observe, ready, "
    "discharge, cancel or stop early (with a reason)",
)
@guarded
def transition(request: HttpRequest, session_id: int, payload: s.TransitionIn) -> Any:
    session = _session(request, session_id, "session.record")
    services.session_transition(
        actor=request.user, session=session, to=payload.to, reason=payload.reason
    )
    return Status(200, session_out(session))


@router.post(
    "/{session_id}/pre-dose",
    response={201: s.PreDoseOut, 409: s.BlockedOut},
    summary="Record same-day weight, pre-dose vitals and confirmations (gate result and reasons)",
)
@guarded
def record_pre_dose(request: HttpRequest, session_id: int, payload: s.PreDoseIn) -> Any:
    session = _session(request, session_id, "session.record")
    check = services.session_record_pre_dose(
        actor=request.user, session=session, data=payload.model_dump()
    )
    return Status(201, check)


@router.post(
    "/{session_id}/pre-dose/acknowledge",
    response={200: s.PreDoseOut, 409: s.BlockedOut},
    summary="A prescriber acknowledges a review or overrides a hold, with a reason",
)
@guarded
def acknowledge_gate(request: HttpRequest, session_id: int, payload: s.ReasonIn) -> Any:
    session = _session(request, session_id, "session.sign")
    check = services.session_acknowledge_gate(
        actor=request.user, session=session, reason=payload.reason
    )
    return Status(200, check)


@router.post(
    "/{session_id}/infusion-order",
    response={201: s.InfusionOrderOut, 409: s.BlockedOut},
    summary="Order the IV infusion (mg, mL, mL/h and VTBI from today's weight)",
)
@guarded
def order_infusion(request: HttpRequest, session_id: int, payload: s.InfusionOrderIn) -> Any:
    session = _session(request, session_id, "session.record")
    order = services.session_order_infusion(actor=request.user, session=session, **payload.dict())
    return Status(201, order)


@router.post(
    "/{session_id}/infusion-order/check",
    response={200: s.InfusionOrderOut, 409: s.BlockedOut},
    summary="Independent second-person check (the checker re-authenticates here)",
)
@guarded
def second_check(request: HttpRequest, session_id: int, payload: s.SecondCheckIn) -> Any:
    session = _session(request, session_id, "session.record")
    order = services.session_second_check(
        actor=request.user, session=session, attestation=_signer(payload.checker, "checker")
    )
    return Status(200, order)


@router.post(
    "/{session_id}/devices",
    response={201: s.DeviceOut, 409: s.BlockedOut},
    summary="Record one esketamine device now (not within 5 minutes of the last)",
)
@guarded
def record_device(request: HttpRequest, session_id: int) -> Any:
    session = _session(request, session_id, "session.record")
    return Status(201, services.session_record_device(actor=request.user, session=session))


@router.post(
    "/{session_id}/administrations",
    response={201: s.AdministrationOut, 409: s.BlockedOut},
    summary="Draw the dose from a lot and waste the remainder with a witness",
)
@guarded
def record_administration(
    request: HttpRequest, session_id: int, payload: s.AdministrationIn
) -> Any:
    session = _session(request, session_id, "session.record")
    location = StorageLocation.objects.filter(
        clinic_id=session.clinic_id, pk=payload.location_id
    ).first()
    if location is None:
        raise ValidationError({"location_id": ["No storage location of this clinic has this id."]})
    lot = Lot.objects.select_related("product").filter(pk=payload.lot_id).first()
    if lot is None:
        raise ValidationError({"lot_id": ["No lot has this id."]})
    record = services.session_record_administration(
        actor=request.user,
        session=session,
        location=location,
        lot=lot,
        dose_mg=payload.dose_mg,
        waste_mg=payload.waste_mg,
        witness=_signer(payload.witness, "witness"),
    )
    related = LedgerEntry.objects.select_related("lot")
    waste = record.waste
    return Status(
        201,
        {
            "administration": _ledger_line(related.get(pk=record.administration.pk)),
            "waste": _ledger_line(related.get(pk=waste.pk)) if waste else None,
            "dispensed_mg": record.dispensed_mg,
        },
    )


@router.post(
    "/{session_id}/vitals",
    response={201: s.VitalRecordedOut, 409: s.BlockedOut},
    summary="Record one reading (out-of-range values raise alerts)",
)
@guarded
def record_vitals(request: HttpRequest, session_id: int, payload: s.VitalsIn) -> Any:
    # The scope check reads what the reading needs too (one statement; issue 6).
    session = services.session_for_reading(request.user, session_id)
    reading, alerts = services.session_record_vitals(
        actor=request.user, session=session, data=payload.model_dump()
    )
    return Status(201, {"reading": reading, "alerts": alerts})


@router.post(
    "/{session_id}/vitals/batch",
    response={200: s.BatchResultOut, 409: s.BlockedOut},
    summary="Readings from a device, idempotent by client_id (a resent batch records nothing)",
)
@guarded
def ingest_vitals(request: HttpRequest, session_id: int, payload: s.VitalsBatchIn) -> Any:
    session = _session(request, session_id, "session.record")
    result = services.session_ingest_vitals(
        actor=request.user,
        session=session,
        readings=[r.model_dump() for r in payload.readings],
    )
    return Status(200, result)


@router.post(
    "/{session_id}/alerts/{alert_id}/acknowledge",
    response={200: s.AlertOut, 409: s.BlockedOut},
    summary="Acknowledge an alert with the action taken",
)
@guarded
def acknowledge_alert(
    request: HttpRequest, session_id: int, alert_id: int, payload: s.AlertAcknowledgeIn
) -> Any:
    session = _session(request, session_id, "session.record")
    alert = (
        VitalAlert.objects.select_related("session").filter(session=session, pk=alert_id).first()
    )
    if alert is None:
        raise Http404
    return Status(
        200,
        services.session_acknowledge_alert(actor=request.user, alert=alert, action=payload.action),
    )


@router.post(
    "/{session_id}/cadss",
    response={201: s.CadssOut, 409: s.BlockedOut},
    summary="Record the CADSS total (clinician-entered)",
)
@guarded
def record_cadss(request: HttpRequest, session_id: int, payload: s.CadssIn) -> Any:
    session = _session(request, session_id, "session.record")
    return Status(
        201, services.session_record_cadss(actor=request.user, session=session, total=payload.total)
    )


@router.post(
    "/{session_id}/adverse-events",
    response={201: s.AdverseEventOut, 409: s.BlockedOut},
    summary="Record an adverse event from the coded list",
)
@guarded
def record_adverse_event(request: HttpRequest, session_id: int, payload: s.AdverseEventIn) -> Any:
    session = _session(request, session_id, "session.record")
    event = services.session_record_adverse_event(
        actor=request.user, session=session, data=payload.model_dump()
    )
    return Status(201, event)


@router.post(
    "/{session_id}/discharge-assessments",
    response={201: s.DischargeOut, 409: s.BlockedOut},
    summary="Record the discharge criteria and the discharge check's result with its reasons",
)
@guarded
def assess_discharge(
    request: HttpRequest, session_id: int, payload: s.DischargeAssessmentIn
) -> Any:
    session = _session(request, session_id, "session.record")
    assessment = services.session_assess_discharge(
        actor=request.user, session=session, data=payload.model_dump()
    )
    return Status(201, assessment)


@router.post(
    "/{session_id}/sign",
    response={200: s.NoteOut, 409: s.BlockedOut},
    summary="The prescriber signs the note (bound to the SHA-256 of its text)",
)
@guarded
def sign(request: HttpRequest, session_id: int, payload: s.SignIn) -> Any:
    session = _session(request, session_id, "session.sign")
    signature = services.session_sign(actor=request.user, session=session, meaning=payload.meaning)
    return Status(
        200,
        {
            "session_id": session.pk,
            "text": signature.content,
            "signed": True,
            "signature": signature,
            "signature_verifies": True,
            "amendments": [],
        },
    )


@router.post(
    "/{session_id}/amendments",
    response={201: s.AmendmentOut, 409: s.BlockedOut},
    summary="Amend a signed note (the signed original is kept)",
)
@guarded
def amend(request: HttpRequest, session_id: int, payload: s.AmendmentIn) -> Any:
    session = _session(request, session_id, "session.record")
    return Status(
        201, services.session_amend(actor=request.user, session=session, text=payload.text)
    )


def _submission(row: Any) -> dict[str, Any]:
    return {
        "session_id": row.session_id,
        "submitted_on": row.submitted_on,
        "method": row.method,
        "confirmation": row.confirmation,
        "form_version": row.form_version,
        "recorded_by_id": row.recorded_by_id,
        "recorded_at": row.recorded_at,
    }


@router.post(
    "/{session_id}/interventions",
    response={201: s.InterventionOut, 409: s.BlockedOut},
    summary="Record an intervention (antiemetic, antihypertensive, infusion slowed/stopped, …)",
)
@guarded
def record_intervention(request: HttpRequest, session_id: int, payload: s.InterventionIn) -> Any:
    session = _session(request, session_id, "session.record")
    intervention = services.session_record_intervention(
        actor=request.user,
        session=session,
        kind=payload.kind,
        detail=payload.detail,
        given_at=payload.given_at,
    )
    return Status(201, intervention)


@router.post(
    "/{session_id}/rems-submission",
    response={201: s.RemsSubmissionOut, 409: s.BlockedOut},
    summary="Record the REMS monitoring form as sent (date, method, confirmation)",
)
@guarded
def record_rems_submission(
    request: HttpRequest, session_id: int, payload: s.RemsSubmissionIn
) -> Any:
    session = _session(request, session_id, "session.record")
    submission = services.rems_submission_record(
        actor=request.user,
        session=session,
        submitted_on=payload.submitted_on,
        method=payload.method,
        confirmation=payload.confirmation,
    )
    return Status(201, _submission(submission))
