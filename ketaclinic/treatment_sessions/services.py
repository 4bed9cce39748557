"""The write paths of treatment sessions (ARCHITECTURE rule 1).

Every function checks the permission, locks the session row, checks the state machine and the
clinical rule, writes, and records the audit event in one transaction. A refusal raises
`ValidationError` (bad input or a forbidden move), `PermissionDenied` or `Blocked` and writes
nothing.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import BigIntegerField, CharField, OuterRef, Subquery
from django.db.models.expressions import RawSQL

from ketaclinic.accounts import access
from ketaclinic.accounts.choices import Role
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import (
    JoinedWrite,
    append_joined,
    chain_head_exists_sql,
    new_event,
    record_event,
)
from ketaclinic.clinical import (
    TREATMENTS,
    InvalidInput,
    UnsafeOrder,
    VitalsReading,
    discharge_check,
    esketamine_administration,
    get_treatment,
    iv_infusion,
    pre_dose_check,
    vitals_alerts,
    vitals_due,
)
from ketaclinic.controlled_substances.services import AdministrationRecord, administration_record
from ketaclinic.controlled_substances.signatures import WitnessAttestation, witness_sign
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import PLACEHOLDER_ID, CompiledModelQuery
from ketaclinic.courses.models import Appointment
from ketaclinic.patients.models import Patient
from ketaclinic.screening.selectors import rems_enrolled
from ketaclinic.treatment_sessions.choices import (
    ACTIVE_STATUSES,
    ENTERED_AT_FIELD,
    INTERVENTION_DETAIL_REQUIRED,
    INTERVENTION_STATUSES,
    MONITORING_STATUSES,
    PRESCRIBER_ONLY,
    REASON_REQUIRED,
    SESSION_TRANSITIONS,
    AdverseEventCode,
    EventOutcome,
    GateStatus,
    InterventionKind,
    PregnancyStatus,
    SessionStatus,
    Severity,
    SubmissionMethod,
    VitalsSource,
)
from ketaclinic.treatment_sessions.models import (
    AdverseEvent,
    DischargeAssessment,
    DissociationScore,
    EsketamineDevice,
    InfusionOrder,
    Intervention,
    NoteAmendment,
    NoteSignature,
    PreDoseCheck,
    RemsSubmission,
    SessionTransition,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)
from ketaclinic.treatment_sessions.note import note_text, sha256_of

if TYPE_CHECKING:
    from ketaclinic.treatment_sessions.selectors import SessionRows

MAX_REASON_CHARS = 500

# Clinical checks a move must pass, by target state: each returns the reasons it is refused
# (empty when it may go ahead). The gates of later steps (pre-dose gate, discharge criteria,
# REMS form completeness) register here so no caller can skip them. A guard reads what it needs
# from the database, or from `rows` when the caller (the workspace) has read the session's
# tables already: the same rule either way. Transitions pass no rows: they check under the lock.


class Guard(Protocol):
    def __call__(self, session: TreatmentSession, rows: SessionRows | None = None) -> list[str]: ...


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


# Both on every step and reading: compiled to SQL once (core.compiled_query).
_LOCKED = CompiledModelQuery(
    lambda session_id: (
        TreatmentSession.objects.select_for_update(of=("self",))
        .select_related("patient", "clinic")
        .filter(pk=session_id)
    ),
    session_id=PLACEHOLDER_ID,
)
_LATEST_CHECK = CompiledModelQuery(
    lambda session_id: PreDoseCheck.objects.filter(session_id=session_id).order_by(
        "-recorded_at", "-id"
    )[:1],
    session_id=PLACEHOLDER_ID,
)


def locked(session: TreatmentSession) -> TreatmentSession:
    """The session row, locked for the rest of the transaction, with what the rules need."""
    found = _LOCKED.objects(session_id=session.pk)
    if not found:
        raise TreatmentSession.DoesNotExist("The session no longer exists.")
    return found[0]


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


def latest_check(session: TreatmentSession, rows: SessionRows | None = None) -> PreDoseCheck | None:
    if rows is not None:
        return rows.latest_check
    found = _LATEST_CHECK.objects(session_id=session.pk)
    return found[0] if found else None


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


def gate_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """What stands between a checked-in patient and the dose, in plain words (empty: none)."""
    check = latest_check(session, rows)
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


# --- Dosing (clinical.md §1, §3) ------------------------------------------------------------------


def latest_order(
    session: TreatmentSession, rows: SessionRows | None = None
) -> InfusionOrder | None:
    if rows is not None:
        return rows.latest_order
    return session.infusion_orders.order_by("-ordered_at", "-id").first()


def session_order_infusion(
    *,
    actor: Any,
    session: TreatmentSession,
    dose_mg_per_kg: Any,
    minutes: Any,
    concentration_mg_per_ml: Any,
) -> InfusionOrder:
    """Compute the IV infusion from today's weight (mg, mL, mL/h, VTBI) and record the order."""
    _require(actor, "session.record", session.clinic_id)
    with transaction.atomic():
        row = locked(session)
        if get_treatment(row.treatment).route != "iv":
            raise ValidationError({"dose_mg_per_kg": ["This session is not an IV infusion."]})
        if row.status != SessionStatus.GATE_PASSED:
            raise ValidationError({"status": ["Order the infusion once the gate is passed."]})
        check = latest_check(row)
        if check is None:
            raise ValidationError({"weight_kg": ["Record today's weight first."]})
        try:
            infusion = iv_infusion(
                weight_kg=check.weight_kg,
                dose_mg_per_kg=_plain_number(dose_mg_per_kg, "dose_mg_per_kg"),
                minutes=_plain_number(minutes, "minutes"),
                concentration_mg_per_ml=_plain_number(
                    concentration_mg_per_ml, "concentration_mg_per_ml"
                ),
            )
        except (UnsafeOrder, InvalidInput) as exc:
            raise ValidationError({"dose_mg_per_kg": [str(exc)]}) from None
        whole_minutes = int(Decimal(str(minutes)))
        if Decimal(str(minutes)) != whole_minutes or not 1 <= whole_minutes <= 240:
            raise ValidationError({"minutes": ["Give whole minutes between 1 and 240."]})
        order = InfusionOrder.objects.create(
            session=row,
            weight_kg=check.weight_kg,
            dose_mg_per_kg=Decimal(str(dose_mg_per_kg)),
            minutes=whole_minutes,
            concentration_mg_per_ml=Decimal(str(concentration_mg_per_ml)),
            dose_mg=infusion.dose_mg,
            volume_ml=infusion.volume_ml,
            rate_ml_per_h=infusion.rate_ml_per_h,
            vtbi_ml=infusion.vtbi_ml,
            ordered_by=actor,
            ordered_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=order,
            changes={
                "session": row.pk,
                "dose_mg": order.dose_mg,
                "rate_ml_per_h": order.rate_ml_per_h,
                "vtbi_ml": order.vtbi_ml,
            },
            detail="IV infusion ordered",
        )
    return order


def _plain_number(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (ArithmeticError, ValueError):
        raise ValidationError({field: ["Enter a number."]}) from None
    if not number.is_finite():
        raise ValidationError({field: ["Enter a number."]})
    return number


def session_second_check(
    *, actor: Any, session: TreatmentSession, attestation: WitnessAttestation | None
) -> InfusionOrder:
    """A second clinician, re-authenticating, confirms the infusion independently."""
    _require(actor, "session.record", session.clinic_id)
    order = latest_order(session)
    if order is None:
        raise ValidationError({"checker": ["There is no infusion order to check."]})
    signature = witness_sign(
        attestation,
        actor=actor,
        clinic_id=session.clinic_id,
        meaning="independent second-person check of the IV infusion",
        prefix="checker",
        not_same_as=(order.ordered_by,),
    )
    if not access.has_permission(signature.user, "session.record", session.clinic_id):
        raise ValidationError({"checker": ["The second check is done by a nurse or prescriber."]})
    with transaction.atomic():
        row = locked(session)
        order = InfusionOrder.objects.select_for_update().get(pk=order.pk)
        if order != latest_order(row) or order.checked_by_id is not None:
            raise ValidationError({"checker": ["This order has already been checked."]})
        if row.status != SessionStatus.GATE_PASSED:
            raise ValidationError({"status": ["The infusion is checked before it starts."]})
        order.checked_by = signature.user
        order.checked_at = signature.signed_at
        order.save(update_fields=["checked_by", "checked_at"])
        record_event(
            action=Action.UPDATE,
            user=signature.user,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=order,
            changes={"checked_by": signature.user.pk, "meaning": signature.meaning},
            detail=f"second-person check by {signature.name}",
        )
    return order


def dosing_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """IV: a checked order; esketamine: a label dose (28, 56 or 84 mg)."""
    treatment = get_treatment(session.treatment)
    if treatment.route == "iv":
        order = latest_order(session, rows)
        if order is None:
            return ["Order the infusion first."]
        if order.checked_by_id is None:
            return ["A second clinician must check the infusion before it starts."]
    if treatment.is_esketamine:
        try:
            esketamine_administration(int(session.planned_dose_mg or 0))
        except UnsafeOrder as exc:
            return [str(exc)]
    return []


def observing_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """Esketamine: every device of the dose has been used."""
    if not get_treatment(session.treatment).is_esketamine:
        return []
    planned = esketamine_administration(int(session.planned_dose_mg or 0)).devices
    used = len(rows.devices) if rows is not None else session.esketamine_devices.count()
    if used < planned:
        return [f"{used} of {planned} devices recorded."]
    return []


GUARDS.setdefault(SessionStatus.DOSING, []).append(dosing_blockers)
GUARDS.setdefault(SessionStatus.OBSERVING, []).append(observing_blockers)


def session_start_dosing(*, actor: Any, session: TreatmentSession) -> TreatmentSession:
    """Start the infusion or the first device (IV needs the second-person check first)."""
    return session_transition(actor=actor, session=session, to=SessionStatus.DOSING)


def session_record_device(*, actor: Any, session: TreatmentSession) -> EsketamineDevice:
    """Record one esketamine device now; the next is refused until 5 minutes have passed."""
    _require(actor, "session.record", session.clinic_id)
    with transaction.atomic():
        row = locked(session)
        if not get_treatment(row.treatment).is_esketamine:
            raise ValidationError({"device": ["This is not an esketamine session."]})
        if row.status != SessionStatus.DOSING:
            raise ValidationError({"status": ["Start dosing first."]})
        plan = esketamine_administration(int(row.planned_dose_mg or 0))
        devices = list(row.esketamine_devices.order_by("number"))
        if len(devices) >= plan.devices:
            raise ValidationError({"device": [f"All {plan.devices} devices are recorded."]})
        now = clock.now()
        if devices:
            next_at = devices[-1].administered_at + timedelta(minutes=plan.minutes_between_devices)
            if now < next_at:
                local = next_at.astimezone(clock_zone(row.clinic.timezone))
                raise ValidationError(
                    {
                        "device": [
                            f"Wait {plan.minutes_between_devices} minutes between devices: "
                            f"the next one at {local:%H:%M}."
                        ]
                    }
                )
        device = EsketamineDevice.objects.create(
            session=row, number=len(devices) + 1, administered_at=now, recorded_by=actor
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=device,
            changes={"session": row.pk, "number": device.number, "dose_mg": device.dose_mg},
            detail=f"esketamine device {device.number} of {plan.devices}",
        )
    return device


def session_record_administration(
    *,
    actor: Any,
    session: TreatmentSession,
    location: Any,
    lot: Any,
    dose_mg: Any,
    waste_mg: Any = 0,
    witness: WitnessAttestation | None = None,
) -> AdministrationRecord:
    """Draw the session's dose from a lot and waste the remainder with a witness, in one
    transaction, through the controlled-substance ledger (which checks stock, lot and witness).

    The dose must be what was ordered: the checked IV order, or the planned esketamine dose.
    """
    _require(actor, "session.record", session.clinic_id)
    with transaction.atomic():
        row = locked(session)
        if row.status not in (SessionStatus.GATE_PASSED, SessionStatus.DOSING):
            raise ValidationError({"status": ["The dose is drawn when the gate is passed."]})
        if administrations_of(row):
            raise ValidationError({"dose_mg": ["The dose for this session is already drawn."]})
        expected: Decimal | None
        if get_treatment(row.treatment).route == "iv":
            order = latest_order(row)
            if order is None or order.checked_by_id is None:
                raise ValidationError(
                    {"dose_mg": ["Draw the dose once the infusion order is checked."]}
                )
            expected = order.dose_mg
        else:
            expected = row.planned_dose_mg
        given = _plain_number(dose_mg, "dose_mg")
        if expected is not None and given != expected:
            raise ValidationError({"dose_mg": [f"The ordered dose is {expected} mg."]})
        return administration_record(
            actor=actor,
            clinic=row.clinic,
            location=location,
            lot=lot,
            patient=row.patient,
            dose_mg=given,
            waste_mg=waste_mg,
            witness=witness,
            session_id=row.pk,
            note=f"treatment session {row.pk}",
        )


def administrations_of(session: TreatmentSession, rows: SessionRows | None = None) -> list[Any]:
    """The ledger's administration entries for this session (reversals are separate entries)."""
    if rows is not None:
        return rows.administrations
    from ketaclinic.controlled_substances.choices import EntryKind
    from ketaclinic.controlled_substances.models import LedgerEntry

    return list(
        LedgerEntry.objects.filter(
            treatment_session_id=session.pk, kind=EntryKind.ADMINISTER
        ).order_by("id")
    )


def dose_drawn_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """The dose has been drawn from the ledger before observation starts."""
    if not administrations_of(session, rows):
        return ["Record the dose drawn from a lot (controlled-substance ledger)."]
    return []


GUARDS.setdefault(SessionStatus.OBSERVING, []).append(dose_drawn_blockers)


# --- Monitoring: flowsheet, alerts, MOAA/S, CADSS, adverse events (clinical.md §3, §4) --------

MAX_BATCH = 500
_VITAL_RANGES = {
    "systolic_mmhg": (40, 300),
    "diastolic_mmhg": (20, 200),
    "heart_rate_bpm": (20, 250),
    "spo2_pct": (50, 100),
    "respiratory_rate_per_min": (2, 60),
    "moaas": (0, 5),
}


_BASELINE_FIELDS = ("systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm", "spo2_pct")


def _latest_check_value(field: str) -> Subquery:
    return Subquery(
        PreDoseCheck.objects.filter(session_id=OuterRef("pk"))
        .order_by("-recorded_at", "-id")
        .values(field)[:1]
    )


# Readings lock the session and compare with the pre-dose baseline: one round trip for both,
# compiled to SQL once (core.compiled_query).
_LOCKED_WITH_BASELINE = CompiledModelQuery(
    lambda session_id: (
        TreatmentSession.objects.select_for_update(of=("self",))
        .select_related("patient", "clinic")
        .annotate(
            baseline_check_id=_latest_check_value("id"),
            **{f"baseline_{name}": _latest_check_value(name) for name in _BASELINE_FIELDS},
        )
        .filter(pk=session_id)
    ),
    session_id=PLACEHOLDER_ID,
)


def _baseline(session: TreatmentSession) -> VitalsReading | None:
    """The latest pre-dose check's vitals (read with the lock by _monitoring, else now)."""
    if hasattr(session, "baseline_check_id"):
        if session.baseline_check_id is None:
            return None
        values = {name: getattr(session, f"baseline_{name}") for name in _BASELINE_FIELDS}
        return VitalsReading(**values)
    check = latest_check(session)
    if check is None:
        return None
    return VitalsReading(**{name: getattr(check, name) for name in _BASELINE_FIELDS})


def _clean_reading(data: dict[str, Any], *, prefix: str = "") -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    for field, (low, high) in _VITAL_RANGES.items():
        number = _number(data, field, low, high)
        if number is not None and number != int(number):
            raise ValidationError({prefix + field: ["Enter a whole number."]})
        values[field] = int(number) if number is not None else None
    if all(v is None for v in values.values()):
        raise ValidationError({prefix + "systolic_mmhg": ["Enter at least one measurement."]})
    return values


def _taken_at(value: Any, row: TreatmentSession, field: str) -> datetime:
    now = clock.now()
    if value in (None, ""):
        return now
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError({field: ["Give the time as ISO 8601 with a zone."]})
        value = parsed
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError({field: ["Give the time as ISO 8601 with a zone."]})
    start = row.checked_in_at or row.scheduled_at
    if value > now + timedelta(minutes=2) or value < start - timedelta(minutes=5):
        raise ValidationError({field: ["The time is outside this session."]})
    return value


def _write_reading(
    actor: Any,
    row: TreatmentSession,
    values: dict[str, int | None],
    *,
    taken_at: datetime,
    source: str,
    client_id: str,
) -> tuple[VitalSign, list[VitalAlert]]:
    reading = VitalSign.objects.create(
        session=row,
        taken_at=taken_at,
        source=source,
        client_id=client_id,
        recorded_by=actor,
        recorded_at=clock.now(),
        **values,
    )
    alerts = _alerts_for(row, reading, values, _baseline(row))
    VitalAlert.objects.bulk_create(alerts)
    return reading, alerts


def _alerts_for(
    row: TreatmentSession,
    reading: VitalSign,
    values: dict[str, int | None],
    baseline: VitalsReading | None,
) -> list[VitalAlert]:
    """The alerts `vitals_alerts` raises for one reading (unsaved rows)."""
    try:
        found = vitals_alerts(
            treatment=row.treatment,
            reading=VitalsReading(
                systolic_mmhg=values["systolic_mmhg"],
                diastolic_mmhg=values["diastolic_mmhg"],
                heart_rate_bpm=values["heart_rate_bpm"],
                spo2_pct=values["spo2_pct"],
                respiratory_rate=values["respiratory_rate_per_min"],
            ),
            baseline=baseline,
        )
    except InvalidInput as exc:
        raise ValidationError({"systolic_mmhg": [str(exc)]}) from None
    return [
        VitalAlert(
            session=row,
            reading=reading,
            code=a.code,
            message=a.message[:300],
            severity=a.severity,
            source=a.source[:300],
        )
        for a in found
    ]


def _monitoring(session: TreatmentSession) -> TreatmentSession:
    found = _LOCKED_WITH_BASELINE.objects(session_id=session.pk)
    if not found:
        raise TreatmentSession.DoesNotExist("The session no longer exists.")
    row = found[0]
    if row.status not in MONITORING_STATUSES:
        raise ValidationError(
            {"status": [f"Readings are not taken in a {row.get_status_display().lower()} session."]}
        )
    return row


def session_record_vitals(
    *, actor: Any, session: TreatmentSession, data: dict[str, Any]
) -> tuple[VitalSign, list[VitalAlert]]:
    """One timed reading (BP, HR, SpO2, RR, MOAA/S); out-of-range values raise alerts."""
    _require(actor, "session.record", session.clinic_id)
    values = _clean_reading(data)
    if connection.vendor == "postgresql":
        written = _reading_in_one_statement(actor, session, values, data.get("taken_at"))
        if written is not None:
            return written
    with transaction.atomic():
        row = _monitoring(session)
        taken = _taken_at(data.get("taken_at"), row, "taken_at")
        reading, alerts = _write_reading(
            actor, row, values, taken_at=taken, source=VitalsSource.MANUAL, client_id=""
        )
        _audit_reading(actor, row, [reading], alerts)
    return reading, alerts


def _reading_event(
    actor: Any, row: TreatmentSession, readings: list[VitalSign], alerts: list[VitalAlert]
) -> dict[str, Any]:
    """What the audit row of readings says (the same on every path)."""
    return {
        "action": Action.CREATE,
        "user": actor,
        "clinic_id": row.clinic_id,
        "patient_id": row.patient_id,
        "object_type": "treatment_sessions.vitalsign",
        "object_id": readings[0].pk if len(readings) == 1 else row.pk,
        "changes": {
            "session": row.pk,
            "readings": [r.pk for r in readings],
            "alerts": [a.code for a in alerts],
        },
        "detail": f"{len(readings)} vital-sign reading(s), {len(alerts)} alert(s)",
    }


def _audit_reading(
    actor: Any, row: TreatmentSession, readings: list[VitalSign], alerts: list[VitalAlert]
) -> None:
    record_event(**_reading_event(actor, row, readings, alerts))


# --- One reading in one statement (PostgreSQL; issue 6) --------------------------------------
#
# Single readings arrive one request at a time, and each waited for seven round trips (token,
# scope read, BEGIN, lock, insert, audit, COMMIT). Instead: the session is read once, without a
# lock, with the pre-dose baseline and the id the reading will have (the scope check and the
# clinical rule use that read); then one statement locks the session, checks that what the
# reading was judged on is unchanged (state, clinic, patient, treatment, times, latest pre-dose
# check), and writes the reading, its alerts and its audit row. One statement is one atomic
# (and, outside a transaction, durably committed) transaction: all of it or none. When anything
# differs, or a rule refuses, nothing is written and the general path (lock, check, write,
# audit in a transaction) decides, in its own words: the answers are the same either way.


# The session with its pre-dose baseline and the reading's id, taken now so the audit row
# (which names it) can be hashed before the write; an id taken and not used leaves a gap,
# nothing else. Compiled to SQL once (core.compiled_query).
_FOR_READING = CompiledModelQuery(
    lambda session_id: TreatmentSession.objects.annotate(
        baseline_check_id=_latest_check_value("id"),
        **{f"baseline_{name}": _latest_check_value(name) for name in _BASELINE_FIELDS},
        next_reading_id=RawSQL(
            "nextval(pg_get_serial_sequence(%s, 'id'))",
            (connection.ops.quote_name(VitalSign._meta.db_table),),
            output_field=BigIntegerField(),
        ),
    ).filter(pk=session_id),
    session_id=PLACEHOLDER_ID,
)


def session_for_reading(user: Any, session_id: Any) -> TreatmentSession:
    """The session a reading is posted to, scoped as `selectors.get_session` (403 without the
    role anywhere, 404 when missing or at another clinic); on PostgreSQL read with what the
    one-statement write needs, in the same statement."""
    from ketaclinic.treatment_sessions import selectors

    query = _FOR_READING if connection.vendor == "postgresql" else None
    return selectors.get_session(user, session_id, "session.record", query=query)


def _cast_type(field: Any) -> str:
    # Text rather than varchar(n), as the audit append does: a too long value fails loudly.
    return "text" if isinstance(field, CharField) else str(field.cast_db_type(connection))


def _row_select(fields: list[Any]) -> str:
    return ", ".join(f"CAST(%s AS {_cast_type(f)})" for f in fields)


def _columns(fields: list[Any]) -> str:
    return ", ".join(connection.ops.quote_name(f.column) for f in fields)


_READING_FIELDS = list(VitalSign._meta.concrete_fields)
_ALERT_FIELDS = [f for f in VitalAlert._meta.concrete_fields if not f.primary_key]
_MONITORING_ORDER = sorted(MONITORING_STATUSES)
_READING_WRITES: dict[int, JoinedWrite] = {}


def _reading_write(alert_count: int) -> JoinedWrite:
    """The lock, the re-check and the inserts of one reading with `alert_count` alerts."""
    joined = _READING_WRITES.get(alert_count)
    if joined is not None:
        return joined
    quote = connection.ops.quote_name

    def col(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    ts, check = TreatmentSession, PreDoseCheck
    statuses = ", ".join(["%s"] * len(_MONITORING_ORDER))
    # Identifiers come from the models' meta (quoted); every value is a query parameter.
    ctes = [
        f"locked AS (SELECT s.{col(ts, 'id')} FROM {quote(ts._meta.db_table)} s "  # noqa: S608
        f"WHERE s.{col(ts, 'id')} = %s AND s.{col(ts, 'status')} IN ({statuses}) "
        f"AND s.{col(ts, 'clinic')} = %s AND s.{col(ts, 'patient')} = %s "
        f"AND s.{col(ts, 'treatment')} = %s "
        f"AND s.{col(ts, 'checked_in_at')} IS NOT DISTINCT FROM CAST(%s AS timestamptz) "
        f"AND s.{col(ts, 'scheduled_at')} IS NOT DISTINCT FROM CAST(%s AS timestamptz) "
        f"AND (SELECT c.{col(check, 'id')} FROM {quote(check._meta.db_table)} c "
        f"WHERE c.{col(check, 'session')} = s.{col(ts, 'id')} "
        f"ORDER BY c.{col(check, 'recorded_at')} DESC, c.{col(check, 'id')} DESC "
        f"LIMIT 1) IS NOT DISTINCT FROM CAST(%s AS bigint) "
        f"AND {chain_head_exists_sql()} FOR UPDATE OF s)",
        f"reading AS (INSERT INTO {quote(VitalSign._meta.db_table)} "  # noqa: S608
        f"({_columns(_READING_FIELDS)}) SELECT {_row_select(_READING_FIELDS)} "
        f"FROM locked RETURNING {col(VitalSign, 'id')})",
    ]
    returning = ""
    if alert_count:
        rows = " UNION ALL ".join(
            [f"SELECT {_row_select(_ALERT_FIELDS)} FROM reading"] * alert_count  # noqa: S608
        )
        ctes.append(
            f"alerts AS (INSERT INTO {quote(VitalAlert._meta.db_table)} "
            f"({_columns(_ALERT_FIELDS)}) {rows} RETURNING {col(VitalAlert, 'id')})"
        )
        # Ids are given in the order the rows are inserted: the order of `alerts`.
        alert_id = col(VitalAlert, "id")
        returning = f"(SELECT array_agg({alert_id} ORDER BY {alert_id}) FROM alerts)"  # noqa: S608
    joined = JoinedWrite(
        ctes=", ".join(ctes), only_if="EXISTS (SELECT 1 FROM reading)", returning=returning
    )
    _READING_WRITES[alert_count] = joined
    return joined


def _reading_in_one_statement(
    actor: Any, session: TreatmentSession, values: dict[str, int | None], taken_value: Any
) -> tuple[VitalSign, list[VitalAlert]] | None:
    """The reading, its alerts and its audit row in one statement; None, with nothing
    written, when the general path must decide (see above)."""
    # An id is used once: popped, so a session read for one reading reads afresh for the next.
    next_id = session.__dict__.pop("next_reading_id", None)
    row = session
    if next_id is None:
        found = _FOR_READING.objects(session_id=session.pk)
        if not found:
            return None
        row = found[0]
        next_id = row.__dict__.pop("next_reading_id")
    if row.status not in MONITORING_STATUSES or row.clinic_id != session.clinic_id:
        return None
    try:
        reading = VitalSign(
            pk=next_id,
            session=row,
            taken_at=_taken_at(taken_value, row, "taken_at"),
            source=VitalsSource.MANUAL,
            client_id="",
            recorded_by=actor,
            recorded_at=clock.now(),
            **values,
        )
        alerts = _alerts_for(row, reading, values, _baseline(row))
    except ValidationError:
        return None
    event = new_event(**_reading_event(actor, row, [reading], alerts))
    params: list[Any] = [
        row.pk,
        *_MONITORING_ORDER,
        row.clinic_id,
        row.patient_id,
        row.treatment,
        row.checked_in_at,
        row.scheduled_at,
        row.__dict__["baseline_check_id"],  # annotated by _FOR_READING
        *(f.get_db_prep_save(getattr(reading, f.attname), connection) for f in _READING_FIELDS),
    ]
    for alert in alerts:
        params += [f.get_db_prep_save(getattr(alert, f.attname), connection) for f in _ALERT_FIELDS]
    returned = append_joined(event, _reading_write(len(alerts)), params)
    if returned is None:
        return None
    alert_ids = returned[0] if alerts else []
    for instance, pk in [(reading, reading.pk), *zip(alerts, alert_ids, strict=True)]:
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
    return reading, alerts


def session_ingest_vitals(
    *, actor: Any, session: TreatmentSession, readings: list[dict[str, Any]]
) -> dict[str, Any]:
    """A batch from a BP cuff or pulse oximeter. Each reading has a client-supplied `client_id`;
    one already on file is skipped, so re-sending a batch records nothing twice. All or nothing:
    one bad reading refuses the batch, naming it."""
    _require(actor, "session.record", session.clinic_id)
    if not isinstance(readings, list) or not readings:
        raise ValidationError({"readings": ["Send at least one reading."]})
    if len(readings) > MAX_BATCH:
        raise ValidationError({"readings": [f"Send at most {MAX_BATCH} readings at a time."]})
    cleaned: list[tuple[str, dict[str, int | None], Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(readings):
        prefix = f"readings.{index}."
        if not isinstance(item, dict):
            raise ValidationError({f"readings.{index}": ["Each reading is an object."]})
        client_id = str(item.get("client_id") or "").strip()
        if not client_id or len(client_id) > 80 or "\x00" in client_id:
            raise ValidationError({prefix + "client_id": ["Give an id of 1-80 characters."]})
        if client_id in seen:
            raise ValidationError({prefix + "client_id": ["This id appears twice in the batch."]})
        seen.add(client_id)
        cleaned.append((client_id, _clean_reading(item, prefix=prefix), item.get("taken_at")))
    with transaction.atomic():
        row = _monitoring(session)
        known = set(
            VitalSign.objects.filter(session=row, client_id__in=seen).values_list(
                "client_id", flat=True
            )
        )
        # Bulk work: one INSERT for the readings and one for their alerts, the baseline read
        # once, whatever the size of the batch (the device API's throughput depends on it).
        now = clock.now()
        fresh: list[tuple[VitalSign, dict[str, int | None]]] = []
        for index, (client_id, values, taken) in enumerate(cleaned):
            if client_id in known:
                continue
            when = _taken_at(taken, row, f"readings.{index}.taken_at")
            reading = VitalSign(
                session=row,
                taken_at=when,
                source=VitalsSource.DEVICE,
                client_id=client_id,
                recorded_by=actor,
                recorded_at=now,
                **values,
            )
            fresh.append((reading, values))
        created = VitalSign.objects.bulk_create([reading for reading, _ in fresh])
        baseline = _baseline(row) if created else None
        alerts: list[VitalAlert] = []
        for reading, values in fresh:
            alerts.extend(_alerts_for(row, reading, values, baseline))
        VitalAlert.objects.bulk_create(alerts)
        if created:
            _audit_reading(actor, row, created, alerts)
    return {
        "created": len(created),
        "duplicates": len(cleaned) - len(created),
        "alerts": [a.code for a in alerts],
    }


def session_acknowledge_alert(*, actor: Any, alert: VitalAlert, action: str) -> VitalAlert:
    """A nurse acknowledges an alert, saying what was done."""
    _require(actor, "session.record", alert.session.clinic_id)
    text = clean_reason(action, required=True, field="action")
    with transaction.atomic():
        row = VitalAlert.objects.select_for_update().select_related("session").get(pk=alert.pk)
        if row.acknowledged_by_id is not None:
            raise ValidationError({"action": ["This alert is already acknowledged."]})
        row.acknowledged_by = actor
        row.acknowledged_at = clock.now()
        row.action = text
        row.save(update_fields=["acknowledged_by", "acknowledged_at", "action"])
        record_event(
            action=Action.UPDATE,
            user=actor,
            clinic_id=row.session.clinic_id,
            patient_id=row.session.patient_id,
            obj=row,
            changes={"code": row.code, "action": text},
            detail=f"alert acknowledged: {row.code}",
        )
    return row


def session_record_cadss(*, actor: Any, session: TreatmentSession, total: Any) -> DissociationScore:
    """The CADSS total (0-92) at the end of the infusion or at 40 minutes."""
    _require(actor, "session.record", session.clinic_id)
    number = _number({"total": total}, "total", 0, 92, required=True) or Decimal(0)
    if number != int(number):
        raise ValidationError({"total": ["Enter a whole number."]})
    with transaction.atomic():
        row = _monitoring(session)
        score = DissociationScore.objects.create(
            session=row, total=int(number), scored_at=clock.now(), recorded_by=actor
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=score,
            changes={"session": row.pk, "cadss_total": score.total},
            detail="CADSS recorded",
        )
    return score


def session_record_adverse_event(
    *, actor: Any, session: TreatmentSession, data: dict[str, Any]
) -> AdverseEvent:
    """An adverse event from the coded list, with severity and outcome ("other" needs text)."""
    _require(actor, "session.record", session.clinic_id)
    code = data.get("code")
    if code not in AdverseEventCode.values:
        raise ValidationError({"code": ["Choose an event from the list."]})
    if data.get("severity") not in Severity.values:
        raise ValidationError({"severity": ["Choose mild, moderate or severe."]})
    if data.get("outcome") not in EventOutcome.values:
        raise ValidationError({"outcome": ["Choose the outcome."]})
    other = clean_reason(data.get("other_text"), required=code == "other", field="other_text")
    if len(other) > 200:
        raise ValidationError({"other_text": ["Keep it under 200 characters."]})
    with transaction.atomic():
        row = locked(session)
        if row.status in (SessionStatus.SCHEDULED, SessionStatus.CANCELLED, SessionStatus.SIGNED):
            raise ValidationError({"status": ["Adverse events are recorded during a session."]})
        onset = _taken_at(data.get("onset_at"), row, "onset_at")
        event = AdverseEvent.objects.create(
            session=row,
            code=code,
            other_text=other,
            severity=data["severity"],
            outcome=data["outcome"],
            onset_at=onset,
            recorded_by=actor,
            recorded_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=event,
            changes={"session": row.pk, "code": code, "severity": event.severity},
            detail=f"adverse event: {event}",
        )
    return event


def session_record_intervention(
    *, actor: Any, session: TreatmentSession, kind: Any, detail: str = "", given_at: Any = None
) -> Intervention:
    """An intervention with its time: antiemetic or antihypertensive given (drug and dose in
    `detail`), infusion slowed, stopped or resumed, oxygen, or something else in words."""
    _require(actor, "session.record", session.clinic_id)
    if kind not in InterventionKind.values:
        raise ValidationError({"kind": ["Choose an intervention from the list."]})
    text = clean_reason(detail, required=kind in INTERVENTION_DETAIL_REQUIRED, field="detail")
    with transaction.atomic():
        row = locked(session)
        if row.status not in INTERVENTION_STATUSES:
            raise ValidationError(
                {"status": ["Interventions are recorded from the start of dosing to discharge."]}
            )
        when = _taken_at(given_at, row, "given_at")
        if row.dosing_started_at is not None and when < row.dosing_started_at - timedelta(
            minutes=5
        ):
            raise ValidationError({"given_at": ["The time is before dosing started."]})
        intervention = Intervention.objects.create(
            session=row,
            kind=kind,
            detail=text,
            given_at=when,
            recorded_by=actor,
            recorded_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=intervention,
            changes={"session": row.pk, "kind": kind, "detail": text},
            detail=f"intervention: {intervention}",
        )
    return intervention


def open_alert_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """Every alert acknowledged before the patient is ready to leave."""
    if rows is not None:
        count = len(rows.open_alerts)
    else:
        count = session.alerts.filter(acknowledged_by__isnull=True).count()
    return [f"Acknowledge {count} open alert(s) first."] if count else []


GUARDS.setdefault(SessionStatus.READY_FOR_DISCHARGE, []).append(open_alert_blockers)


def next_vitals_due(
    session: TreatmentSession, now: datetime, rows: SessionRows | None = None
) -> datetime | None:
    """The next time vital signs are due (`clinical.vitals_due`) after the last reading."""
    if session.dosing_started_at is None:
        return None
    order = latest_order(session, rows)
    due = vitals_due(
        treatment=session.treatment,
        dose_started_at=session.dosing_started_at,
        infusion_minutes=order.minutes if order else None,
    )
    if rows is not None:
        last = rows.last_vitals_at
    else:
        last = session.vitals.order_by("-taken_at").values_list("taken_at", flat=True).first()
    for moment in due:
        # A reading within 2 minutes before a due time counts for it.
        if last is None or moment > last + timedelta(minutes=2):
            return moment
    return None


# --- Observation, discharge, sign-off and amendments (clinical.md §3, §10) --------------------


def latest_discharge(
    session: TreatmentSession, rows: SessionRows | None = None
) -> DischargeAssessment | None:
    if rows is not None:
        return rows.latest_discharge
    return session.discharge_assessments.order_by("-assessed_at", "-id").first()


def _discharge_gate(
    session: TreatmentSession, assessment: Any, now: datetime, rows: SessionRows | None = None
) -> Any:
    order = latest_order(session, rows)
    first = session.dosing_started_at
    if first is None:
        raise ValidationError({"status": ["No dose has been given."]})
    # In the clinic's time: the reason names the earliest discharge time, which staff read there.
    first = first.astimezone(clock_zone(session.clinic.timezone))
    if get_treatment(session.treatment).route == "iv" and order is None:
        raise ValidationError({"status": ["There is no infusion order for this session."]})
    return discharge_check(
        treatment=session.treatment,
        first_dose_at=first,
        now=now,
        sedation_resolved=assessment.sedation_resolved,
        dissociation_resolved=assessment.dissociation_resolved,
        # Respiratory depression is judged on the vital signs (RR, SpO2): both must be fine.
        vitals_acceptable=assessment.vitals_acceptable
        and assessment.respiratory_depression_resolved,
        escort_present=assessment.escort_present,
        infusion_minutes=order.minutes if order else None,
    )


def session_assess_discharge(
    *, actor: Any, session: TreatmentSession, data: dict[str, Any]
) -> DischargeAssessment:
    """Record the discharge criteria and what `discharge_check` says now (with its reasons)."""
    _require(actor, "session.record", session.clinic_id)
    escort = clean_reason(data.get("escort_name"), required=False, field="escort_name")
    with transaction.atomic():
        row = locked(session)
        if row.status not in (SessionStatus.OBSERVING, SessionStatus.READY_FOR_DISCHARGE):
            raise ValidationError({"status": ["Discharge is assessed during observation."]})
        values = {
            key: bool(data.get(key))
            for key in (
                "sedation_resolved",
                "dissociation_resolved",
                "respiratory_depression_resolved",
                "vitals_acceptable",
                "escort_present",
            )
        }
        draft = DischargeAssessment(session=row, escort_name=escort, **values)
        now = clock.now()
        gate = _discharge_gate(row, draft, now)
        draft.gate_status = gate.status
        draft.gate_reasons = [{"code": r.code, "message": r.message} for r in gate.reasons]
        draft.assessed_by = actor
        draft.assessed_at = now
        draft.save()
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=draft,
            changes={"session": row.pk, "gate_status": gate.status, "reasons": list(gate.codes)},
            detail=f"discharge assessment: {gate.status}",
        )
    return draft


def discharge_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """`discharge_check` on the newest assessment, with the clock now (esketamine: 120 min)."""
    assessment = latest_discharge(session, rows)
    if assessment is None:
        return ["Assess the discharge criteria first."]
    gate = _discharge_gate(session, assessment, clock.now(), rows)
    return [reason.message for reason in gate.reasons] if not gate.proceed else []


GUARDS.setdefault(SessionStatus.READY_FOR_DISCHARGE, []).append(discharge_blockers)


def session_sign(
    *, actor: Any, session: TreatmentSession, meaning: str = "Reviewed and approved"
) -> NoteSignature:
    """The prescriber signs the note: name, time, meaning and the SHA-256 of its exact text."""
    _require(actor, "session.sign", session.clinic_id)
    text = clean_reason(meaning, required=True, field="meaning")[:200]
    with transaction.atomic():
        row = locked(session)
        check_transition(row, SessionStatus.SIGNED)
        content = note_text(row)
        digest = sha256_of(content)
        apply_transition(actor, row, SessionStatus.SIGNED, changes={"note_sha256": digest})
        signature = NoteSignature.objects.create(
            session=row,
            content=content,
            content_sha256=digest,
            signed_by=actor,
            signer_name=getattr(actor, "signature_name", "") or actor.get_username(),
            signed_at=row.signed_at or clock.now(),
            meaning=text,
        )
    return signature


def verify_signature(session: TreatmentSession) -> bool:
    """True when the signed text still hashes to the signature and still matches the data."""
    signature = NoteSignature.objects.filter(session=session).first()
    if signature is None:
        return False
    return sha256_of(signature.content) == signature.content_sha256 and (
        note_text(session) == signature.content
    )


def session_amend(*, actor: Any, session: TreatmentSession, text: str) -> NoteAmendment:
    """Add an amendment to a signed note; the signed original stays as it was."""
    _require(actor, "session.record", session.clinic_id)
    body = (text or "").strip()
    if not body:
        raise ValidationError({"text": ["Write the amendment."]})
    if len(body) > 4000 or "\x00" in body:
        raise ValidationError({"text": ["Keep it under 4000 characters, without null characters."]})
    with transaction.atomic():
        row = locked(session)
        if row.status != SessionStatus.SIGNED:
            raise ValidationError({"text": ["Only a signed note is amended; edit it instead."]})
        amendment = NoteAmendment.objects.create(
            session=row,
            text=body,
            content_sha256=sha256_of(body),
            author=actor,
            written_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=amendment,
            changes={"session": row.pk, "sha256": amendment.content_sha256},
            detail="note amended",
        )
    return amendment


def rems_blockers(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """An esketamine note is not signed while the REMS monitoring form is incomplete."""
    from ketaclinic.treatment_sessions.rems import rems_missing

    return rems_missing(session, rows)


GUARDS.setdefault(SessionStatus.SIGNED, []).append(rems_blockers)


# --- REMS Patient Monitoring Form submission (clinical.md §4) --------------------------------

MAX_CONFIRMATION_CHARS = 100


def session_date(session: TreatmentSession) -> date:
    """The session's date in the clinic's own time zone (first dose, else scheduled time)."""
    moment = session.dosing_started_at or session.scheduled_at
    return moment.astimezone(clock_zone(session.clinic.timezone)).date()


def rems_submission_record(
    *, actor: Any, session: TreatmentSession, submitted_on: Any, method: Any, confirmation: Any
) -> RemsSubmission:
    """Record that the complete REMS Patient Monitoring Form was sent (date, method, the REMS's
    confirmation), keeping a snapshot of the form as it was sent, with its version."""
    from ketaclinic.treatment_sessions.rems import FORM_VERSION, rems_form, rems_missing

    _require(actor, "session.record", session.clinic_id)
    if isinstance(submitted_on, str):
        from django.utils.dateparse import parse_date

        try:
            submitted_on = parse_date(submitted_on.strip())
        except ValueError:
            submitted_on = None
    if not isinstance(submitted_on, date) or isinstance(submitted_on, datetime):
        raise ValidationError({"submitted_on": ["Give the date the form was sent (YYYY-MM-DD)."]})
    if method not in SubmissionMethod.values:
        raise ValidationError({"method": ["Choose online, fax or phone."]})
    text = clean_reason(
        confirmation if isinstance(confirmation, str) else None,
        required=True,
        field="confirmation",
    )
    if len(text) > MAX_CONFIRMATION_CHARS:
        raise ValidationError(
            {"confirmation": [f"Keep it under {MAX_CONFIRMATION_CHARS} characters."]}
        )
    with transaction.atomic():
        row = locked(session)
        if not _is_esketamine(row):
            raise ValidationError({"session": ["Only esketamine sessions have a REMS form."]})
        if row.status not in (SessionStatus.DISCHARGED, SessionStatus.SIGNED):
            raise ValidationError(
                {"session": ["The form is sent after the patient is discharged."]}
            )
        if RemsSubmission.objects.filter(session=row).exists():
            raise ValidationError({"session": ["This form has already been submitted."]})
        missing = rems_missing(row)
        if missing:
            raise ValidationError({"session": missing})
        today = clock.now().astimezone(clock_zone(row.clinic.timezone)).date()
        if submitted_on > today:
            raise ValidationError({"submitted_on": ["The date is in the future."]})
        if submitted_on < session_date(row):
            raise ValidationError({"submitted_on": ["The date is before the session."]})
        form = rems_form(row)
        submission = RemsSubmission.objects.create(
            session=row,
            submitted_on=submitted_on,
            method=method,
            confirmation=text,
            form=json.loads(json.dumps(form, cls=DjangoJSONEncoder)),
            form_version=FORM_VERSION,
            recorded_by=actor,
            recorded_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            obj=submission,
            changes={
                "session": row.pk,
                "submitted_on": submitted_on.isoformat(),
                "method": method,
                "confirmation": text,
                "form_version": FORM_VERSION,
            },
            detail="REMS Patient Monitoring Form submitted",
        )
    return submission
