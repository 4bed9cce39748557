"""The write paths of treatment sessions (ARCHITECTURE rule 1).

Every function checks the permission, locks the session row, checks the state machine and the
clinical rule, writes, and records the audit event in one transaction. A refusal raises
`ValidationError` (bad input or a forbidden move), `PermissionDenied` or `Blocked` and writes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ketaclinic.accounts import access
from ketaclinic.accounts.choices import Role
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import TREATMENTS, InvalidInput, get_treatment, pre_dose_check
from ketaclinic.core import clock
from ketaclinic.courses.models import Appointment
from ketaclinic.patients.models import Patient
from ketaclinic.screening.selectors import rems_enrolled
from ketaclinic.treatment_sessions.choices import (
    ACTIVE_STATUSES,
    ENTERED_AT_FIELD,
    PRESCRIBER_ONLY,
    REASON_REQUIRED,
    SESSION_TRANSITIONS,
    GateStatus,
    PregnancyStatus,
    SessionStatus,
)
from ketaclinic.treatment_sessions.models import PreDoseCheck, SessionTransition, TreatmentSession

MAX_REASON_CHARS = 500

# Clinical checks a move must pass, by target state: each returns the reasons it is refused
# (empty when it may go ahead). The gates of later steps (pre-dose gate, discharge criteria,
# REMS form completeness) register here so no caller can skip them.
Guard = Callable[[TreatmentSession], list[str]]
GUARDS: dict[str, list[Guard]] = {}


def _require(actor: Any, permission: str, clinic_id: int) -> None:
    if not access.has_permission(actor, permission, clinic_id):
        raise PermissionDenied


def clean_reason(value: str | None, *, required: bool, field: str = "reason") -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: ["Give the reason."]})
    if len(text) > MAX_REASON_CHARS:
        raise ValidationError({field: [f"Keep it under {MAX_REASON_CHARS} characters."]})
    if "\x00" in text:
        raise ValidationError({field: ["Remove the null character."]})
    return text


def _audit(
    actor: Any,
    session: TreatmentSession,
    action: Action,
    *,
    changes: dict[str, Any] | None = None,
    detail: str = "",
) -> None:
    record_event(
        action=action,
        user=actor,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        obj=session,
        changes=changes,
        detail=detail[:500],
    )


def locked(session: TreatmentSession) -> TreatmentSession:
    """The session row, locked for the rest of the transaction, with what the rules need."""
    return (
        TreatmentSession.objects.select_for_update(of=("self",))
        .select_related("patient", "clinic")
        .get(pk=session.pk)
    )


def session_create(
    *,
    actor: Any,
    appointment: Appointment | None = None,
    patient: Patient | None = None,
    treatment: str = "",
    scheduled_at: datetime | None = None,
    planned_dose_mg: Decimal | int | None = None,
) -> TreatmentSession:
    """Open the session record for a booked appointment, or for a patient and a treatment."""
    if appointment is not None:
        _require(actor, "session.record", appointment.clinic_id)
        with transaction.atomic():
            booked = (
                Appointment.objects.select_for_update(of=("self",))
                .select_related("course")
                .get(pk=appointment.pk)
            )
            if booked.status != "scheduled":
                raise ValidationError(
                    {"appointment": [f"The appointment is {booked.get_status_display().lower()}."]}
                )
            if TreatmentSession.objects.filter(appointment=booked).exists():
                raise ValidationError({"appointment": ["This appointment already has a session."]})
            session = TreatmentSession.objects.create(
                patient_id=booked.patient_id,
                clinic_id=booked.clinic_id,
                appointment=booked,
                course=booked.course,
                chair_id=booked.chair_id,
                treatment=booked.course.treatment,
                planned_dose_mg=booked.dose_mg,
                scheduled_at=booked.starts_at,
                created_by=actor,
            )
            _audit(actor, session, Action.CREATE, changes=_created(session))
        return session
    if patient is None:
        raise ValidationError({"patient": ["Choose the patient or the appointment."]})
    _require(actor, "session.record", patient.clinic_id)
    if treatment not in TREATMENTS:
        raise ValidationError({"treatment": [f"Choose one of: {', '.join(TREATMENTS)}."]})
    if planned_dose_mg is not None and not (0 < Decimal(planned_dose_mg) < 1000):
        raise ValidationError({"planned_dose_mg": ["Give a dose between 0 and 1000 mg."]})
    with transaction.atomic():
        session = TreatmentSession.objects.create(
            patient=patient,
            clinic_id=patient.clinic_id,
            treatment=treatment,
            planned_dose_mg=planned_dose_mg,
            scheduled_at=scheduled_at or clock.now(),
            created_by=actor,
        )
        _audit(actor, session, Action.CREATE, changes=_created(session))
    return session


def _created(session: TreatmentSession) -> dict[str, Any]:
    return {
        "status": session.status,
        "treatment": session.treatment,
        "appointment": session.appointment_id,
        "scheduled_at": session.scheduled_at.isoformat(),
    }


def check_transition(session: TreatmentSession, to: str) -> None:
    """Refuse a move the state table does not allow, saying where the session stands."""
    if to not in SessionStatus.values:
        raise ValidationError({"status": [f"Unknown state {to!r}."]})
    if to not in SESSION_TRANSITIONS[session.status]:
        current = session.get_status_display().lower()
        target = SessionStatus(to).label.lower()
        raise ValidationError({"status": [f"A session that is {current} cannot become {target}."]})


def apply_transition(
    actor: Any,
    session: TreatmentSession,
    to: str,
    *,
    reason: str = "",
    changes: dict[str, Any] | None = None,
) -> TreatmentSession:
    """Move a locked session (inside the caller's transaction): state, timestamp, history, audit.

    For services of this app that have already checked the permission and their own rule.
    """
    check_transition(session, to)
    if to in ACTIVE_STATUSES or to == SessionStatus.CHECKED_IN:
        other = (
            TreatmentSession.objects.filter(
                patient_id=session.patient_id, status__in=ACTIVE_STATUSES
            )
            .exclude(pk=session.pk)
            .exists()
        )
        if other:
            raise ValidationError({"status": ["The patient is already in another session."]})
    for guard in GUARDS.get(to, ()):
        problems = guard(session)
        if problems:
            raise ValidationError({"status": problems})
    now = clock.now()
    old = session.status
    session.status = to
    if reason:
        session.status_reason = reason
    setattr(session, ENTERED_AT_FIELD[to], now)
    if to == SessionStatus.SIGNED:
        session.signed_by = actor
    session.save()
    SessionTransition.objects.create(
        session=session, from_status=old, to_status=to, reason=reason, actor=actor, at=now
    )
    _audit(
        actor,
        session,
        Action.UPDATE,
        changes={"status": {"old": old, "new": to}, "reason": reason, **(changes or {})},
        detail=f"session {SessionStatus(old).label.lower()} → {SessionStatus(to).label.lower()}",
    )
    return session


def session_transition(
    *, actor: Any, session: TreatmentSession, to: str, reason: str = ""
) -> TreatmentSession:
    """Move the session to `to` along the state table; cancelling and stopping need a reason and
    only a prescriber signs."""
    _require(actor, "session.record", session.clinic_id)
    if to in PRESCRIBER_ONLY:
        _require(actor, "session.sign", session.clinic_id)
    text = clean_reason(reason, required=to in REASON_REQUIRED)
    with transaction.atomic():
        row = locked(session)
        return apply_transition(actor, row, to, reason=text)


def session_check_in(*, actor: Any, session: TreatmentSession) -> TreatmentSession:
    """The patient has arrived and is in the chair."""
    return session_transition(actor=actor, session=session, to=SessionStatus.CHECKED_IN)


def session_cancel(*, actor: Any, session: TreatmentSession, reason: str) -> TreatmentSession:
    """The session will not take place (before any dose)."""
    return session_transition(
        actor=actor, session=session, to=SessionStatus.CANCELLED, reason=reason
    )


def session_stop_early(*, actor: Any, session: TreatmentSession, reason: str) -> TreatmentSession:
    """The session ends before its course (patient request, adverse event, failed gate)."""
    return session_transition(
        actor=actor, session=session, to=SessionStatus.STOPPED_EARLY, reason=reason
    )


# --- Check-in and the pre-dose gate (clinical.md §3, §10) ----------------------------------------


def _is_esketamine(session: TreatmentSession) -> bool:
    return get_treatment(session.treatment).is_esketamine


def _number(
    data: dict[str, Any], field: str, low: float, high: float, *, required: bool = False
) -> Decimal | None:
    value = data.get(field)
    if value in (None, ""):
        if required:
            raise ValidationError({field: ["Enter this measurement."]})
        return None
    try:
        number = Decimal(str(value))
    except (ArithmeticError, ValueError):
        raise ValidationError({field: ["Enter a number."]}) from None
    if not number.is_finite() or not (low <= number <= high):
        raise ValidationError({field: [f"Enter a value between {low:g} and {high:g}."]})
    return number


def latest_check(session: TreatmentSession) -> PreDoseCheck | None:
    return session.pre_dose_checks.order_by("-recorded_at", "-id").first()


def session_record_pre_dose(
    *, actor: Any, session: TreatmentSession, data: dict[str, Any]
) -> PreDoseCheck:
    """Record same-day weight, pre-dose vitals and the check-in confirmations, and the
    `pre_dose_check` result (with its reasons) they give. Re-measuring adds a new row."""
    _require(actor, "session.record", session.clinic_id)
    weight = _number(data, "weight_kg", 20, 350, required=True) or Decimal(0)
    systolic = _number(data, "systolic_mmhg", 50, 300, required=True) or Decimal(0)
    diastolic = _number(data, "diastolic_mmhg", 20, 200, required=True) or Decimal(0)
    heart_rate = _number(data, "heart_rate_bpm", 20, 250)
    spo2 = _number(data, "spo2_pct", 50, 100)
    respiratory = _number(data, "respiratory_rate_per_min", 4, 60)
    pregnancy = data.get("pregnancy_status") or PregnancyStatus.NOT_APPLICABLE
    if pregnancy not in PregnancyStatus.values:
        raise ValidationError({"pregnancy_status": ["Choose one of the listed answers."]})
    changed = bool(data.get("medications_changed"))
    changes = clean_reason(
        data.get("medication_changes"), required=changed, field="medication_changes"
    )
    try:
        gate = pre_dose_check(
            treatment=session.treatment,
            systolic_mmhg=float(systolic),
            diastolic_mmhg=float(diastolic),
            heart_rate_bpm=float(heart_rate) if heart_rate is not None else None,
            spo2_pct=float(spo2) if spo2 is not None else None,
        )
    except InvalidInput as exc:
        raise ValidationError({"systolic_mmhg": [str(exc)]}) from None
    rems_verified = bool(data.get("rems_enrolment_verified"))
    on_site = None
    with transaction.atomic():
        row = locked(session)
        if row.status != SessionStatus.CHECKED_IN:
            raise ValidationError(
                {"status": ["Check the patient in first; the gate is recorded at check-in."]}
            )
        if _is_esketamine(row):
            if rems_verified and row.patient_id not in rems_enrolled([row.patient_id]):
                raise ValidationError(
                    {"rems_enrolment_verified": ["The patient has no REMS enrolment on file."]}
                )
            on_site_id = data.get("prescriber_on_site")
            if on_site_id not in (None, ""):
                on_site = _prescriber_at(row.clinic_id, on_site_id)
        check = PreDoseCheck.objects.create(
            session=row,
            weight_kg=weight,
            systolic_mmhg=int(systolic),
            diastolic_mmhg=int(diastolic),
            heart_rate_bpm=int(heart_rate) if heart_rate is not None else None,
            spo2_pct=int(spo2) if spo2 is not None else None,
            respiratory_rate_per_min=int(respiratory) if respiratory is not None else None,
            fasting_confirmed=bool(data.get("fasting_confirmed")),
            ride_home_confirmed=bool(data.get("ride_home_confirmed")),
            pregnancy_status=pregnancy,
            medications_changed=changed,
            medication_changes=changes,
            rems_enrolment_verified=rems_verified,
            prescriber_on_site=on_site,
            gate_status=gate.status,
            gate_reasons=[
                {"code": r.code, "message": r.message, "source": r.source, "severity": r.severity}
                for r in gate.reasons
            ],
            recorded_by=actor,
            recorded_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=check,
            changes={
                "session": row.pk,
                "gate_status": gate.status,
                "reasons": list(gate.codes),
                "weight_kg": weight,
                "bp_mmhg": f"{int(systolic)}/{int(diastolic)}",
            },
            detail=f"pre-dose check: {gate.status}",
        )
    return check


def _prescriber_at(clinic_id: int, user_id: Any) -> Any:
    from ketaclinic.accounts.models import Membership

    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        raise ValidationError({"prescriber_on_site": ["Choose a prescriber."]}) from None
    member = (
        Membership.objects.select_related("user")
        .filter(user_id=pk, clinic_id=clinic_id, role=Role.PRESCRIBER, is_active=True)
        .first()
    )
    if member is None:
        raise ValidationError({"prescriber_on_site": ["Choose a prescriber of this clinic."]})
    return member.user


def session_acknowledge_gate(*, actor: Any, session: TreatmentSession, reason: str) -> PreDoseCheck:
    """A prescriber answers a `review` (acknowledgement) or a `hold` (override), with a reason."""
    _require(actor, "session.sign", session.clinic_id)
    text = clean_reason(reason, required=True)
    with transaction.atomic():
        row = locked(session)
        if row.status != SessionStatus.CHECKED_IN:
            raise ValidationError({"status": ["The pre-dose gate is answered at check-in."]})
        check = latest_check(row)
        if check is None or check.gate_status == GateStatus.PROCEED:
            raise ValidationError({"reason": ["There is no review or hold to answer."]})
        if check.acknowledged_by_id is not None:
            raise ValidationError({"reason": ["This check has already been answered."]})
        check.acknowledged_by = actor
        check.acknowledged_at = clock.now()
        check.acknowledgement_reason = text
        check.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement_reason"])
        kind = "hold overridden" if check.gate_status == GateStatus.HOLD else "review acknowledged"
        record_event(
            action=Action.UPDATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=check,
            changes={"gate_status": check.gate_status, "answer": kind, "reason": text},
            detail=f"pre-dose {kind}",
        )
    return check


def gate_blockers(session: TreatmentSession) -> list[str]:
    """What stands between a checked-in patient and the dose, in plain words (empty: none)."""
    check = latest_check(session)
    if check is None:
        return ["Record the same-day weight and pre-dose vital signs."]
    problems: list[str] = []
    tz = session.clinic.timezone
    recorded_on = check.recorded_at.astimezone(clock_zone(tz)).date()
    if recorded_on != clock.today_in(tz):
        problems.append("The weight and vital signs are not from today; measure again.")
    if check.gate_status == GateStatus.REVIEW and not check.acknowledged_by_id:
        problems.append("The pre-dose check needs a prescriber's acknowledgement with a reason.")
    if check.gate_status == GateStatus.HOLD and not check.acknowledged_by_id:
        problems.append("The pre-dose check says hold: only a prescriber's override continues.")
    if not check.fasting_confirmed:
        problems.append("Confirm fasting.")
    if not check.ride_home_confirmed:
        problems.append("Confirm the ride home.")
    if check.pregnancy_status == PregnancyStatus.PREGNANT:
        problems.append("The patient is pregnant: do not dose.")
    if check.medications_changed and not check.medication_changes:
        problems.append("Describe the medication changes.")
    if _is_esketamine(session):
        if not check.rems_enrolment_verified:
            problems.append("Verify the patient's REMS enrolment.")
        if check.prescriber_on_site_id is None:
            problems.append("Mark the prescriber on site (REMS).")
    return problems


def clock_zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


GUARDS.setdefault(SessionStatus.GATE_PASSED, []).append(gate_blockers)


def session_pass_gate(*, actor: Any, session: TreatmentSession) -> TreatmentSession:
    """The pre-dose gate is passed: every confirmation given and any review or hold answered."""
    return session_transition(actor=actor, session=session, to=SessionStatus.GATE_PASSED)
