"""The write paths of courses and scheduling (ARCHITECTURE rule 1).

Permission, the clinical gate, the booking checks, the writes and the audit rows happen in one
transaction; when any session of a plan cannot be booked nothing is written and every problem
is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import diff, record_event
from ketaclinic.clinical import (
    DEFAULT_SETTINGS,
    INSTRUMENTS,
    PROTOCOLS,
    TREATMENTS,
    InvalidInput,
    PlannedSession,
    esketamine_administration,
    plan_course,
)
from ketaclinic.core import clock
from ketaclinic.courses import scheduling
from ketaclinic.courses.choices import (
    APPOINTMENT_TRANSITIONS,
    COURSE_TRANSITIONS,
    OPEN_COURSE_STATUSES,
    PLAN_PHASES,
    REASON_REQUIRED,
    AppointmentStatus,
    CoursePhase,
    CourseStatus,
    GoalKind,
    MaintenanceCadence,
    PriceKind,
)
from ketaclinic.courses.gates import start_blockers
from ketaclinic.courses.models import (
    Appointment,
    Chair,
    ClinicSchedule,
    CourseGoal,
    PriceItem,
    TreatmentCourse,
)
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services as screening
from ketaclinic.screening.errors import Blocked

MAX_REASON_CHARS = 500
MAX_MAINTENANCE_SESSIONS = 52


def _require(actor: Any, permission: str, clinic_id: int) -> None:
    if not access.has_permission(actor, permission, clinic_id):
        raise PermissionDenied


def _reason(value: str | None, *, required: bool, field: str = "reason") -> str:
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
    obj: Any,
    action: Action,
    *,
    patient_id: int,
    clinic_id: int,
    changes: Mapping[str, Any] | None = None,
    detail: str = "",
) -> None:
    record_event(
        action=action,
        user=actor,
        clinic_id=clinic_id,
        patient_id=patient_id,
        obj=obj,
        changes=changes,
        detail=detail[:500],
    )


def _today(clinic: Clinic) -> date:
    return clock.today_in(clinic.timezone)


def _chair(clinic: Clinic, chair_id: Any) -> Chair | None:
    if chair_id in (None, ""):
        return None
    try:
        pk = int(chair_id)
    except (TypeError, ValueError):
        raise ValidationError({"chair": ["Choose a chair."]}) from None
    chair = Chair.objects.filter(pk=pk, clinic_id=clinic.pk, is_active=True).first()
    if chair is None:
        raise ValidationError({"chair": ["Choose one of this clinic's chairs."]})
    return chair


def _check_time(value: Any, field: str = "session_time") -> time:
    if not isinstance(value, time):
        raise ValidationError({field: ["Enter a time, e.g. 09:00."]})
    return value


# --- Doses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dose:
    dose_mg: int | None
    dose_mg_per_kg: Decimal | None


def _dose_error(message: str, field: str) -> ValidationError:
    return ValidationError({field: [message]})


def check_dose(
    course_protocol: str, *, number: int, dose_mg: Any, dose_mg_per_kg: Any, planned: Dose
) -> Dose:
    """Validate a prescriber's dose for one session against the clinical rules.

    Esketamine: a labelled device dose (28/56/84 mg, `esketamine_administration`) that the
    protocol allows; session 1 keeps the protocol's starting dose (TRD day 1 = 56 mg, 84 mg
    only after it). IV/IM: mg/kg above 0 and not above the clinical settings' IV maximum.
    """
    protocol = PROTOCOLS[course_protocol]
    treatment = TREATMENTS[protocol.treatment]
    if treatment.is_esketamine:
        if dose_mg in (None, ""):
            return planned
        if isinstance(dose_mg, bool) or not isinstance(dose_mg, int):
            raise _dose_error("Enter the dose in mg.", "dose_mg")
        try:
            esketamine_administration(dose_mg)
        except InvalidInput as exc:
            raise _dose_error(str(exc), "dose_mg") from None
        if protocol.allowed_doses_mg and dose_mg not in protocol.allowed_doses_mg:
            allowed = " or ".join(f"{d} mg" for d in protocol.allowed_doses_mg)
            raise _dose_error(f"This protocol allows {allowed}.", "dose_mg")
        if number == 1 and planned.dose_mg is not None and dose_mg != planned.dose_mg:
            raise _dose_error(
                f"Session 1 is {planned.dose_mg} mg by the protocol ({protocol.dose_note})",
                "dose_mg",
            )
        return Dose(dose_mg, None)
    if treatment.route in ("iv", "im"):
        if dose_mg_per_kg in (None, ""):
            return planned
        try:
            per_kg = Decimal(str(dose_mg_per_kg))
        except (InvalidOperation, ValueError):
            raise _dose_error("Enter the dose in mg/kg.", "dose_mg_per_kg") from None
        if not per_kg.is_finite() or per_kg <= 0:
            raise _dose_error("The dose must be above 0 mg/kg.", "dose_mg_per_kg")
        limit = DEFAULT_SETTINGS.iv_max_dose_mg_per_kg
        if per_kg > limit:
            raise _dose_error(
                f"{per_kg} mg/kg is above the limit of {limit} mg/kg "
                f"({DEFAULT_SETTINGS.source_of('iv_max_dose_mg_per_kg')}).",
                "dose_mg_per_kg",
            )
        if per_kg != per_kg.quantize(Decimal("0.01")):
            raise _dose_error("Use at most two decimals.", "dose_mg_per_kg")
        return Dose(None, per_kg)
    # Oral: the prescriber sets a fixed mg dose (protocol marks it clinic-defined).
    if dose_mg in (None, ""):
        return planned
    if isinstance(dose_mg, bool) or not isinstance(dose_mg, int) or dose_mg <= 0:
        raise _dose_error("Enter the dose in whole mg.", "dose_mg")
    return Dose(dose_mg, None)


# --- Booking --------------------------------------------------------------------------------


@dataclass
class Booking:
    """One appointment to create."""

    starts_at: datetime
    number: int
    phase: str
    dose: Dose
    infusion_minutes: int | None
    chair: Chair | None
    booster_reason: str = ""
    replaces: Appointment | None = None


def _book(
    *,
    actor: Any,
    course: TreatmentCourse,
    bookings: Sequence[Booking],
    field: str = "__all__",
    ignore: Iterable[int] = (),
) -> list[Appointment]:
    """Create the appointments or raise one ValidationError naming every session that fails.

    The caller's transaction must be open; the patient and the candidate chairs are locked here.
    """
    clinic, patient = course.clinic, course.patient
    schedule = scheduling.schedule_for(clinic)
    minutes = scheduling.chair_minutes(schedule, course.treatment)
    wanted = {b.chair.pk: b.chair for b in bookings if b.chair is not None}
    if any(b.chair is None for b in bookings):
        candidates = list(Chair.objects.filter(clinic_id=clinic.pk, is_active=True))
    else:
        candidates = list(wanted.values())
    if not candidates:
        raise ValidationError({"chair": ["This clinic has no active chairs: add one first."]})
    locked = {c.pk: c for c in scheduling.lock_for_booking(patient, candidates)}
    ordered = [locked[pk] for pk in sorted(locked)]
    problems: list[str] = []
    created: list[Appointment] = []
    for booking in bookings:
        ends_at = booking.starts_at + timedelta(minutes=minutes)
        label = (
            f"Session {booking.number} "
            f"({booking.starts_at.astimezone(scheduling.clinic_zone(clinic)):%a %Y-%m-%d %H:%M})"
        )
        issues = scheduling.check_opening(schedule, clinic, booking.starts_at, ends_at)
        clash = scheduling.patient_clash(patient, clinic, booking.starts_at, ends_at, ignore=ignore)
        if clash:
            issues.append(clash)
        chair = None
        if not issues:
            wanted_chair = locked.get(booking.chair.pk) if booking.chair else None
            chair = scheduling.pick_chair(ordered, wanted_chair, booking.starts_at, ends_at, {})
            if chair is None:
                issues.append(
                    f"{booking.chair.name} is fully booked then."
                    if booking.chair
                    else "No chair is free then."
                )
        if issues:
            problems += [f"{label}: {issue}" for issue in issues]
            continue
        assert chair is not None
        appointment = Appointment.objects.create(
            course=course,
            patient=patient,
            clinic=clinic,
            chair=chair,
            starts_at=booking.starts_at,
            ends_at=ends_at,
            number=booking.number,
            phase=booking.phase,
            dose_mg=booking.dose.dose_mg,
            dose_mg_per_kg=booking.dose.dose_mg_per_kg,
            infusion_minutes=booking.infusion_minutes,
            booster_reason=booking.booster_reason,
            replaces=booking.replaces,
            created_by=actor,
        )
        created.append(appointment)
    if problems:
        raise ValidationError({field: problems})
    return created


def _snapshot(appointment: Appointment) -> dict[str, Any]:
    return {
        "number": appointment.number,
        "phase": appointment.phase,
        "starts_at": appointment.starts_at,
        "ends_at": appointment.ends_at,
        "chair": appointment.chair_id,
        "dose_mg": appointment.dose_mg,
        "dose_mg_per_kg": appointment.dose_mg_per_kg,
        "status": appointment.status,
    }


def _planned_dose(session: PlannedSession) -> Dose:
    return Dose(session.dose_mg, session.dose_mg_per_kg)


def preview_plan(
    *,
    clinic: Clinic,
    protocol: str,
    start_date: date,
    weeks: int | None = None,
) -> list[PlannedSession]:
    """The protocol's session dates on this clinic's days (ValidationError when impossible)."""
    if protocol not in PROTOCOLS:
        raise ValidationError({"protocol": ["Choose a protocol from the list."]})
    schedule = scheduling.schedule_for(clinic)
    try:
        return plan_course(protocol, start_date, weeks=weeks, clinic_days=schedule.weekdays)
    except InvalidInput as exc:
        field = "weeks" if "weeks" in str(exc) else "start_date"
        raise ValidationError({field: [str(exc)]}) from None


def course_create(
    *,
    actor: Any,
    patient: Patient,
    protocol: str,
    start_date: date,
    session_time: time,
    weeks: int | None = None,
    chair_id: Any = None,
    dose_mg: Any = None,
    dose_mg_per_kg: Any = None,
    goals_note: str = "",
    goals: Sequence[Mapping[str, Any]] = (),
) -> TreatmentCourse:
    """Plan a course from a protocol and book its sessions.

    Blocked (with every reason) when the patient is ineligible, needs review without a signed
    override, or screening is incomplete. Doses: session 1 as the protocol plans; `dose_mg` /
    `dose_mg_per_kg` set the later sessions.
    """
    _require(actor, "course.manage", patient.clinic_id)
    if protocol not in PROTOCOLS:
        raise ValidationError({"protocol": ["Choose a protocol from the list."]})
    if not isinstance(start_date, date):
        raise ValidationError({"start_date": ["Enter the first day of the course."]})
    _check_time(session_time)
    clinic = patient.clinic
    if start_date < _today(clinic):
        raise ValidationError({"start_date": ["The course cannot start in the past."]})
    goals_note = _reason(goals_note, required=False, field="goals_note")
    treatment = PROTOCOLS[protocol].treatment
    chair = _chair(clinic, chair_id)
    plan = preview_plan(clinic=clinic, protocol=protocol, start_date=start_date, weeks=weeks)
    if not plan:
        raise ValidationError({"weeks": ["The plan has no sessions; choose more weeks."]})
    doses = [
        check_dose(
            protocol,
            number=s.number,
            dose_mg=dose_mg if s.number > 1 else None,
            dose_mg_per_kg=dose_mg_per_kg,
            planned=_planned_dose(s),
        )
        for s in plan
    ]
    goal_rows = [_goal(g) for g in goals]
    with transaction.atomic():
        patient = (
            Patient.objects.select_for_update(of=("self",))
            .select_related("clinic")
            .get(pk=patient.pk)
        )
        existing = TreatmentCourse.objects.filter(
            patient_id=patient.pk, status__in=OPEN_COURSE_STATUSES
        ).first()
        if existing is not None:
            raise ValidationError(
                {
                    "protocol": [
                        f"This patient already has an open course (#{existing.pk}, "
                        f"{existing.get_status_display().lower()}); complete or stop it first."
                    ]
                }
            )
        decision, override, effects = screening.eligibility_gate(
            actor=actor, patient=patient, treatment=treatment
        )
        course = TreatmentCourse.objects.create(
            patient=patient,
            clinic=clinic,
            treatment=treatment,
            protocol=protocol,
            start_date=plan[0].date,
            planned_weeks=weeks or PROTOCOLS[protocol].default_weeks,
            goals_note=goals_note,
            eligibility_decision=decision,
            eligibility_override=override,
            prescriber=actor,
        )
        for goal in goal_rows:
            goal.course, goal.created_by = course, actor
            goal.save(force_insert=True)
        bookings = [
            Booking(
                starts_at=scheduling.local_datetime(clinic, s.date, session_time),
                number=s.number,
                phase=PLAN_PHASES.get(s.phase, CoursePhase.INDUCTION),
                dose=dose,
                infusion_minutes=s.minutes,
                chair=chair,
            )
            for s, dose in zip(plan, doses, strict=True)
        ]
        appointments = _book(actor=actor, course=course, bookings=bookings)
        effects.update(screening.intake_accept_for_course(patient=patient))
        _audit(
            actor,
            course,
            Action.CREATE,
            patient_id=patient.pk,
            clinic_id=clinic.pk,
            changes={
                "protocol": protocol,
                "treatment": treatment,
                "start_date": course.start_date,
                "sessions": len(appointments),
                "eligibility": decision.status,
                "override": override.pk if override else None,
                "goals": [str(g) for g in goal_rows],
                "appointments": [a.pk for a in appointments],
                **effects,
            },
            detail=f"treatment course planned: {len(appointments)} sessions",
        )
    return course


def _goal(data: Mapping[str, Any]) -> CourseGoal:
    kind = data.get("kind")
    goal = CourseGoal(kind=kind or "")
    if kind == GoalKind.TARGET_SCORE:
        instrument, target = data.get("instrument"), data.get("target_total")
        if not isinstance(instrument, str) or instrument not in INSTRUMENTS:
            raise ValidationError({"goals": ["Choose the questionnaire for a target score."]})
        low, high = INSTRUMENTS[instrument].score_range
        if isinstance(target, bool) or not isinstance(target, int) or not low <= target <= high:
            raise ValidationError(
                {"goals": [f"A {INSTRUMENTS[instrument].title} target is {low}-{high}."]}
            )
        goal.instrument, goal.target_total = instrument, target
    elif kind == GoalKind.PERSONAL:
        text = _reason(data.get("text"), required=True, field="goals")
        goal.text = text
    else:
        raise ValidationError({"goals": ["A goal is a target score or a personal goal."]})
    return goal


def course_goal_add(*, actor: Any, course: TreatmentCourse, data: Mapping[str, Any]) -> CourseGoal:
    _require(actor, "course.manage", course.clinic_id)
    goal = _goal(data)
    with transaction.atomic():
        goal.course, goal.created_by = course, actor
        goal.save(force_insert=True)
        _audit(
            actor,
            goal,
            Action.CREATE,
            patient_id=course.patient_id,
            clinic_id=course.clinic_id,
            changes={"goal": str(goal)},
            detail="course goal added",
        )
    return goal


# --- Course status --------------------------------------------------------------------------


def _locked_course(course: TreatmentCourse) -> TreatmentCourse:
    return (
        TreatmentCourse.objects.select_for_update(of=("self",))
        .select_related("patient", "patient__clinic", "clinic")
        .get(pk=course.pk)
    )


def _start(course: TreatmentCourse) -> dict[str, Any]:
    """planned -> active, only when nothing blocks the first session (inside a transaction).
    Returns the change for the caller's audit row."""
    reasons = start_blockers(course)
    if reasons:
        raise Blocked("The first session cannot start yet.", reasons)
    course.status, course.started_at = CourseStatus.ACTIVE, clock.now()
    course.save(update_fields=["status", "started_at", "updated_at"])
    return {"course_status": {"old": CourseStatus.PLANNED, "new": CourseStatus.ACTIVE}}


def course_start(*, actor: Any, course: TreatmentCourse) -> TreatmentCourse:
    """Start the course (first session): blocked until every start gate passes."""
    _require(actor, "session.record", course.clinic_id)
    with transaction.atomic():
        locked = _locked_course(course)
        if locked.status != CourseStatus.PLANNED:
            raise ValidationError({"status": [f"The course is already {locked.status}."]})
        changes = _start(locked)
        _audit(
            actor,
            locked,
            Action.UPDATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes=changes,
            detail="course started: consent, eligibility and REMS checks passed",
        )
    return locked


def _cancel_future(
    course: TreatmentCourse,
    reason: str,
    *,
    from_day: date | None = None,
    keep_boosters: bool = False,
) -> list[int]:
    """Cancel the course's sessions still scheduled (from a day, or from now); their ids go
    into the caller's audit row."""
    qs = Appointment.objects.select_for_update().filter(
        course_id=course.pk, status=AppointmentStatus.SCHEDULED
    )
    if from_day is not None:
        qs = qs.filter(starts_at__gte=scheduling.local_datetime(course.clinic, from_day, time.min))
    else:
        qs = qs.filter(starts_at__gt=clock.now())
    if keep_boosters:
        qs = qs.exclude(phase=CoursePhase.BOOSTER)
    cancelled = list(qs)
    for appointment in cancelled:
        appointment.status, appointment.status_reason = AppointmentStatus.CANCELLED, reason
        appointment.save(update_fields=["status", "status_reason", "updated_at"])
    return [a.pk for a in cancelled]


def course_change_status(
    *, actor: Any, course: TreatmentCourse, status: str, reason: str = ""
) -> TreatmentCourse:
    """Pause, resume, complete or stop a course (the state table in choices). Completing or
    stopping cancels the sessions still scheduled; pausing and stopping need a reason."""
    _require(actor, "course.manage", course.clinic_id)
    reason = _reason(reason, required=status in REASON_REQUIRED)
    with transaction.atomic():
        locked = _locked_course(course)
        if status not in COURSE_TRANSITIONS.get(locked.status, frozenset()):
            raise ValidationError(
                {
                    "status": [
                        f"A {locked.get_status_display().lower()} course cannot become {status}."
                    ]
                }
            )
        if status == CourseStatus.ACTIVE and locked.status == CourseStatus.COMPLETED:
            raise ValidationError({"status": ["Add a booster to continue a completed course."]})
        if status == CourseStatus.ACTIVE and locked.status == CourseStatus.PLANNED:
            _audit(
                actor,
                locked,
                Action.UPDATE,
                patient_id=locked.patient_id,
                clinic_id=locked.clinic_id,
                changes=_start(locked),
                detail="course started",
            )
            return locked
        before = {"status": locked.status, "status_reason": locked.status_reason}
        cancelled: list[int] = []
        if status in (CourseStatus.COMPLETED, CourseStatus.STOPPED):
            label = "completed" if status == CourseStatus.COMPLETED else f"stopped: {reason}"
            cancelled = _cancel_future(locked, f"Course {label}"[:MAX_REASON_CHARS])
            locked.ended_at = clock.now()
        locked.status, locked.status_reason = status, reason
        locked.save()
        changes: dict[str, Any] = diff(before, {"status": status, "status_reason": reason})
        if cancelled:
            changes["cancelled_appointments"] = cancelled
        _audit(
            actor,
            locked,
            Action.UPDATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes=changes,
            detail=f"course {status}"
            + (f"; {len(cancelled)} sessions cancelled" if cancelled else ""),
        )
    return locked


# --- Maintenance and boosters ---------------------------------------------------------------


def _next_clinic_day(day: date, weekdays: Sequence[int]) -> date:
    for offset in range(7):
        candidate = day + timedelta(days=offset)
        if candidate.weekday() in weekdays:
            return candidate
    raise ValidationError({"from_date": ["The clinic has no clinic days."]})


def _every(first: date, interval_days: int, count: int, weekdays: Sequence[int]) -> list[date]:
    """`count` dates from `first`, `interval_days` apart, each moved to the next clinic day."""
    days, anchor = [], first
    for _ in range(count):
        day = _next_clinic_day(anchor, weekdays)
        days.append(day)
        anchor = anchor + timedelta(days=interval_days)
    return days


def maintenance_dates(
    course: TreatmentCourse,
    *,
    from_date: date,
    cadence: str,
    weeks: int | None = None,
    interval_weeks: int | None = None,
    sessions: int | None = None,
) -> list[tuple[date, Dose]]:
    """The maintenance session dates (and planned doses) for a course.

    Esketamine TRD: the label schedule from `plan_course` (weekly weeks 5-8, then every 2
    weeks) up to `weeks` after the course start, or weekly throughout. Racemic ketamine:
    every `interval_weeks` for `sessions` sessions (no standard regimen; reference §1a).
    """
    protocol = PROTOCOLS[course.protocol]
    treatment = TREATMENTS[course.treatment]
    weekdays = scheduling.schedule_for(course.clinic).weekdays
    maintenance_phases = [
        p for p in protocol.phases if PLAN_PHASES.get(p.name) == CoursePhase.MAINTENANCE
    ]
    if treatment.is_esketamine:
        if not maintenance_phases:
            raise ValidationError(
                {
                    "cadence": [
                        f"{protocol.title} has no maintenance phase: review the patient after "
                        "the last session instead."
                    ]
                }
            )
        if cadence not in (MaintenanceCadence.LABEL, MaintenanceCadence.WEEKLY):
            raise ValidationError({"cadence": ["Choose the label schedule or weekly."]})
        first_week = maintenance_phases[0].first_week
        if weeks is None or isinstance(weeks, bool) or not first_week <= weeks <= 156:
            raise ValidationError(
                {"weeks": [f"Plan through a week from {first_week} to 156 of the course."]}
            )
        plan = plan_course(protocol.code, course.start_date, weeks=weeks, clinic_days=weekdays)
        later = [
            s
            for s in plan
            if PLAN_PHASES.get(s.phase) == CoursePhase.MAINTENANCE and s.date >= from_date
        ]
        if cadence == MaintenanceCadence.LABEL:
            return [(s.date, _planned_dose(s)) for s in later]
        end = course.start_date + timedelta(weeks=weeks)
        start = max(from_date, course.start_date + timedelta(weeks=first_week - 1))
        count = max(0, (end - start).days + 6) // 7
        phase = maintenance_phases[0]
        planned = Dose(phase.dose_mg, phase.dose_mg_per_kg)
        return [(d, planned) for d in _every(start, 7, count, weekdays) if d < end]
    if cadence != MaintenanceCadence.EVERY_N_WEEKS:
        raise ValidationError({"cadence": ["Choose every N weeks for racemic ketamine."]})
    if interval_weeks is None or isinstance(interval_weeks, bool) or not 1 <= interval_weeks <= 12:
        raise ValidationError({"interval_weeks": ["Choose an interval of 1 to 12 weeks."]})
    if (
        sessions is None
        or isinstance(sessions, bool)
        or not 1 <= sessions <= MAX_MAINTENANCE_SESSIONS
    ):
        raise ValidationError(
            {"sessions": [f"Choose 1 to {MAX_MAINTENANCE_SESSIONS} maintenance sessions."]}
        )
    first_phase = protocol.phases[0]
    planned = Dose(first_phase.dose_mg, first_phase.dose_mg_per_kg)
    return [(d, planned) for d in _every(from_date, 7 * interval_weeks, sessions, weekdays)]


def course_start_maintenance(
    *,
    actor: Any,
    course: TreatmentCourse,
    from_date: date,
    cadence: str,
    session_time: time,
    weeks: int | None = None,
    interval_weeks: int | None = None,
    sessions: int | None = None,
    chair_id: Any = None,
    dose_mg: Any = None,
    dose_mg_per_kg: Any = None,
) -> list[Appointment]:
    """Move an active course into maintenance: the sessions still scheduled from `from_date`
    (boosters kept) are replaced by the maintenance schedule."""
    _require(actor, "course.manage", course.clinic_id)
    _check_time(session_time)
    if not isinstance(from_date, date):
        raise ValidationError({"from_date": ["Enter the first maintenance day."]})
    if from_date <= _today(course.clinic):
        raise ValidationError({"from_date": ["Maintenance starts on a future day."]})
    chair = _chair(course.clinic, chair_id)
    with transaction.atomic():
        locked = _locked_course(course)
        if locked.status != CourseStatus.ACTIVE:
            raise ValidationError(
                {"status": ["Only an active course can move to maintenance (start it first)."]}
            )
        dates = maintenance_dates(
            locked,
            from_date=from_date,
            cadence=cadence,
            weeks=weeks,
            interval_weeks=interval_weeks,
            sessions=sessions,
        )
        if not dates:
            raise ValidationError({"weeks": ["No maintenance session falls in that range."]})
        cancelled = _cancel_future(
            locked,
            f"Replaced by the maintenance plan from {from_date:%Y-%m-%d}",
            from_day=from_date,
            keep_boosters=True,
        )
        number = _next_number(locked)
        bookings = []
        for offset, (day, planned) in enumerate(dates):
            dose = check_dose(
                locked.protocol,
                number=number + offset,
                dose_mg=dose_mg,
                dose_mg_per_kg=dose_mg_per_kg,
                planned=planned,
            )
            bookings.append(
                Booking(
                    starts_at=scheduling.local_datetime(locked.clinic, day, session_time),
                    number=number + offset,
                    phase=CoursePhase.MAINTENANCE,
                    dose=dose,
                    infusion_minutes=_infusion_minutes(locked),
                    chair=chair,
                )
            )
        appointments = _book(actor=actor, course=locked, bookings=bookings)
        before = {
            "phase": locked.phase,
            "maintenance_cadence": locked.maintenance_cadence,
            "maintenance_interval_weeks": locked.maintenance_interval_weeks,
        }
        locked.phase = CoursePhase.MAINTENANCE
        locked.maintenance_cadence = cadence
        locked.maintenance_interval_weeks = (
            interval_weeks
            if cadence == MaintenanceCadence.EVERY_N_WEEKS
            else 1
            if cadence == MaintenanceCadence.WEEKLY
            else 2
        )
        locked.maintenance_started_on = from_date
        if weeks:
            locked.planned_weeks = max(locked.planned_weeks, weeks)
        locked.save()
        _audit(
            actor,
            locked,
            Action.UPDATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes={
                **diff(
                    before,
                    {
                        "phase": locked.phase,
                        "maintenance_cadence": cadence,
                        "maintenance_interval_weeks": locked.maintenance_interval_weeks,
                    },
                ),
                "booked_appointments": [a.pk for a in appointments],
                "cancelled_appointments": cancelled,
            },
            detail=f"maintenance from {from_date:%Y-%m-%d}: {len(appointments)} sessions booked, "
            f"{len(cancelled)} replaced",
        )
    return appointments


def _next_number(course: TreatmentCourse) -> int:
    last = (
        Appointment.objects.filter(course_id=course.pk)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return (last or 0) + 1


def _infusion_minutes(course: TreatmentCourse) -> int | None:
    return PROTOCOLS[course.protocol].phases[0].minutes


def booster_add(
    *,
    actor: Any,
    course: TreatmentCourse,
    day: date,
    session_time: time,
    reason: str,
    chair_id: Any = None,
    dose_mg: Any = None,
    dose_mg_per_kg: Any = None,
) -> Appointment:
    """Book one booster session with a reason, at any time in an open or completed course."""
    _require(actor, "course.manage", course.clinic_id)
    reason = _reason(reason, required=True)
    _check_time(session_time)
    if not isinstance(day, date):
        raise ValidationError({"day": ["Enter the day of the booster."]})
    chair = _chair(course.clinic, chair_id)
    with transaction.atomic():
        locked = _locked_course(course)
        if locked.status == CourseStatus.STOPPED:
            raise ValidationError({"status": ["The course was stopped; plan a new course."]})
        number = _next_number(locked)
        first_phase = PROTOCOLS[locked.protocol].phases[0]
        planned = Dose(first_phase.dose_mg, first_phase.dose_mg_per_kg)
        dose = check_dose(
            locked.protocol,
            number=number,
            dose_mg=dose_mg,
            dose_mg_per_kg=dose_mg_per_kg,
            planned=planned,
        )
        (appointment,) = _book(
            actor=actor,
            course=locked,
            bookings=[
                Booking(
                    starts_at=scheduling.local_datetime(locked.clinic, day, session_time),
                    number=number,
                    phase=CoursePhase.BOOSTER,
                    dose=dose,
                    infusion_minutes=_infusion_minutes(locked),
                    chair=chair,
                    booster_reason=reason,
                )
            ],
        )
        changes: dict[str, Any] = {**diff({}, _snapshot(appointment)), "reason": reason}
        if locked.status == CourseStatus.COMPLETED:
            locked.status, locked.ended_at = CourseStatus.ACTIVE, None
            locked.save(update_fields=["status", "ended_at", "updated_at"])
            changes["course_status"] = {"old": "completed", "new": "active"}
        _audit(
            actor,
            appointment,
            Action.CREATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes=changes,
            detail="booster session booked",
        )
    return appointment


# --- Appointments ---------------------------------------------------------------------------


def _locked_appointment(appointment: Appointment) -> Appointment:
    return (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("course", "course__clinic", "course__patient", "chair", "clinic", "patient")
        .get(pk=appointment.pk)
    )


def _transition(appointment: Appointment, status: str) -> None:
    if status not in APPOINTMENT_TRANSITIONS.get(appointment.status, frozenset()):
        raise ValidationError(
            {
                "status": [
                    f"A {appointment.get_status_display().lower()} appointment cannot be {status}."
                ]
            }
        )


def appointment_reschedule(
    *,
    actor: Any,
    appointment: Appointment,
    day: date,
    session_time: time,
    reason: str,
    chair_id: Any = None,
) -> Appointment:
    """Book the session at a new time (same number, phase and dose); the old row is kept as
    rescheduled (or stays missed) and points to the new one."""
    _require(actor, "schedule.manage", appointment.clinic_id)
    reason = _reason(reason, required=True)
    _check_time(session_time)
    if not isinstance(day, date):
        raise ValidationError({"day": ["Enter the new day."]})
    with transaction.atomic():
        old = _locked_appointment(appointment)
        if old.status == AppointmentStatus.MISSED:
            if Appointment.objects.filter(replaces_id=old.pk).exists():
                raise ValidationError({"status": ["This missed session was already rebooked."]})
        else:
            _transition(old, AppointmentStatus.RESCHEDULED)
        if old.course.status in (CourseStatus.COMPLETED, CourseStatus.STOPPED):
            raise ValidationError({"status": ["The course has ended."]})
        chair = _chair(old.clinic, chair_id) if chair_id not in (None, "") else old.chair
        if old.status == AppointmentStatus.SCHEDULED:
            old.status, old.status_reason = AppointmentStatus.RESCHEDULED, reason
            old.save(update_fields=["status", "status_reason", "updated_at"])
        (new,) = _book(
            actor=actor,
            course=old.course,
            bookings=[
                Booking(
                    starts_at=scheduling.local_datetime(old.clinic, day, session_time),
                    number=old.number,
                    phase=old.phase,
                    dose=Dose(old.dose_mg, old.dose_mg_per_kg),
                    infusion_minutes=old.infusion_minutes,
                    chair=chair,
                    booster_reason=old.booster_reason,
                    replaces=old,
                )
            ],
            ignore=[old.pk],
        )
        _audit(
            actor,
            new,
            Action.CREATE,
            patient_id=old.patient_id,
            clinic_id=old.clinic_id,
            changes={
                "replaces": old.pk,
                "starts_at": {"old": old.starts_at, "new": new.starts_at},
                "chair": {"old": old.chair_id, "new": new.chair_id},
                "reason": reason,
            },
            detail=f"session {old.number} rescheduled",
        )
    return new


def appointment_cancel(*, actor: Any, appointment: Appointment, reason: str) -> Appointment:
    _require(actor, "schedule.manage", appointment.clinic_id)
    reason = _reason(reason, required=True)
    with transaction.atomic():
        locked = _locked_appointment(appointment)
        _transition(locked, AppointmentStatus.CANCELLED)
        locked.status, locked.status_reason = AppointmentStatus.CANCELLED, reason
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        _audit(
            actor,
            locked,
            Action.UPDATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes={"status": {"old": "scheduled", "new": "cancelled"}, "reason": reason},
            detail=f"session {locked.number} cancelled",
        )
    return locked


def appointment_mark_missed(
    *, actor: Any, appointment: Appointment, reason: str = ""
) -> Appointment:
    """Record a no-show. For esketamine the prescriber sees the label's missed-dose suggestion."""
    _require(actor, "schedule.manage", appointment.clinic_id)
    reason = _reason(reason, required=False) or "Did not attend"
    with transaction.atomic():
        locked = _locked_appointment(appointment)
        _transition(locked, AppointmentStatus.MISSED)
        if locked.starts_at > clock.now():
            raise ValidationError({"status": ["A session can be marked missed once it has begun."]})
        locked.status, locked.status_reason = AppointmentStatus.MISSED, reason
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        _audit(
            actor,
            locked,
            Action.UPDATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes={"status": {"old": "scheduled", "new": "missed"}, "reason": reason},
            detail=f"session {locked.number} missed",
        )
    return locked


def appointment_complete(*, actor: Any, appointment: Appointment) -> Appointment:
    """Record that the session was given. The first session of a planned course starts the
    course, which passes only when the start gates (consent, REMS, eligibility) pass."""
    _require(actor, "session.record", appointment.clinic_id)
    with transaction.atomic():
        locked = _locked_appointment(appointment)
        _transition(locked, AppointmentStatus.COMPLETED)
        if scheduling.local_date(locked.clinic, locked.starts_at) > _today(locked.clinic):
            raise ValidationError({"status": ["A future session cannot be recorded as given."]})
        course = _locked_course(locked.course)
        changes: dict[str, Any] = {"status": {"old": "scheduled", "new": "completed"}}
        if course.status == CourseStatus.PLANNED:
            changes.update(_start(course))
        elif course.status != CourseStatus.ACTIVE:
            raise ValidationError({"status": [f"The course is {course.status}."]})
        else:
            # An active course may have lost a gate since it started (consent withdrawn, a new
            # contraindication): every session checks again.
            reasons = start_blockers(course)
            if reasons:
                raise Blocked("This session cannot be given.", reasons)
        locked.status = AppointmentStatus.COMPLETED
        locked.save(update_fields=["status", "updated_at"])
        _audit(
            actor,
            locked,
            Action.UPDATE,
            patient_id=locked.patient_id,
            clinic_id=locked.clinic_id,
            changes=changes,
            detail=f"session {locked.number} given",
        )
    return locked


def appointment_set_dose(
    *,
    actor: Any,
    appointment: Appointment,
    reason: str,
    dose_mg: Any = None,
    dose_mg_per_kg: Any = None,
) -> Appointment:
    """A prescriber changes the dose of one scheduled session, with a reason."""
    _require(actor, "course.manage", appointment.clinic_id)
    reason = _reason(reason, required=True)
    with transaction.atomic():
        locked = _locked_appointment(appointment)
        if locked.status != AppointmentStatus.SCHEDULED:
            raise ValidationError({"status": ["Only a scheduled session's dose can change."]})
        if dose_mg in (None, "") and dose_mg_per_kg in (None, ""):
            raise ValidationError({"dose_mg": ["Enter the new dose."]})
        planned = Dose(locked.dose_mg, locked.dose_mg_per_kg)
        dose = check_dose(
            locked.course.protocol,
            number=locked.number,
            dose_mg=dose_mg,
            dose_mg_per_kg=dose_mg_per_kg,
            planned=planned,
        )
        before = {"dose_mg": locked.dose_mg, "dose_mg_per_kg": locked.dose_mg_per_kg}
        locked.dose_mg, locked.dose_mg_per_kg = dose.dose_mg, dose.dose_mg_per_kg
        changes = diff(before, {"dose_mg": dose.dose_mg, "dose_mg_per_kg": dose.dose_mg_per_kg})
        if changes:
            locked.save(update_fields=["dose_mg", "dose_mg_per_kg", "updated_at"])
            _audit(
                actor,
                locked,
                Action.UPDATE,
                patient_id=locked.patient_id,
                clinic_id=locked.clinic_id,
                changes={**changes, "reason": reason},
                detail=f"session {locked.number} dose changed",
            )
    return locked


# --- Clinic configuration (administrators) --------------------------------------------------


def chair_save(
    *, actor: Any, clinic_id: int, data: Mapping[str, Any], chair: Chair | None = None
) -> Chair:
    _require(actor, "clinic.configure", clinic_id)
    fields = ("name", "capacity", "is_active", "notes")
    unknown = set(data) - set(fields)
    if unknown:
        raise ValidationError({name: ["This field cannot be set."] for name in sorted(unknown)})
    with transaction.atomic():
        target = chair or Chair(clinic_id=clinic_id)
        before = {} if chair is None else {f: getattr(target, f) for f in fields}
        for name, value in data.items():
            setattr(target, name, value.strip() if isinstance(value, str) else value)
        try:
            target.full_clean(exclude=["clinic"], validate_unique=False)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        clash = Chair.objects.filter(clinic_id=clinic_id, name__iexact=target.name)
        if target.pk:
            clash = clash.exclude(pk=target.pk)
        if clash.exists():
            raise ValidationError({"name": ["Another chair has this name."]})
        target.save()
        record_event(
            action=Action.CREATE if chair is None else Action.UPDATE,
            user=actor,
            clinic_id=clinic_id,
            obj=target,
            changes=diff(before, {f: getattr(target, f) for f in fields}),
            detail="chair",
        )
    return target


SCHEDULE_FIELDS = (
    "clinic_days",
    "opens_at",
    "closes_at",
    "esketamine_chair_minutes",
    "iv_chair_minutes",
    "im_chair_minutes",
    "oral_chair_minutes",
)


def clinic_schedule_update(
    *, actor: Any, clinic: Clinic, data: Mapping[str, Any]
) -> ClinicSchedule:
    """Opening days and hours and chair time per treatment; chair time never below the floor."""
    _require(actor, "clinic.configure", clinic.pk)
    unknown = set(data) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be set."] for name in sorted(unknown)})
    with transaction.atomic():
        schedule = ClinicSchedule.objects.select_for_update().filter(clinic_id=clinic.pk).first()
        created = schedule is None
        schedule = schedule or ClinicSchedule(clinic=clinic)
        before = {} if created else {f: getattr(schedule, f) for f in SCHEDULE_FIELDS}
        for name, value in data.items():
            setattr(schedule, name, value)
        errors: dict[str, list[str]] = {}
        days = str(schedule.clinic_days or "")
        parts = [p.strip() for p in days.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and 0 <= int(p) <= 6 for p in parts):
            errors["clinic_days"] = ["Choose at least one clinic day."]
        else:
            schedule.clinic_days = ",".join(str(d) for d in sorted({int(p) for p in parts}))
        if not isinstance(schedule.opens_at, time) or not isinstance(schedule.closes_at, time):
            errors["opens_at"] = ["Enter opening and closing times."]
        elif schedule.closes_at <= schedule.opens_at:
            errors["closes_at"] = ["Closing time must be after opening time."]
        for treatment, field in scheduling.CHAIR_MINUTE_FIELDS.items():
            value = getattr(schedule, field)
            floor = scheduling.chair_minutes_floor(treatment)
            if isinstance(value, bool) or not isinstance(value, int):
                errors[field] = ["Enter minutes."]
            elif not floor <= value <= 600:
                errors[field] = [
                    f"At least {floor} minutes (the clinical minimum for "
                    f"{TREATMENTS[treatment].title}) and at most 600."
                ]
        if errors:
            raise ValidationError(errors)
        schedule.updated_by = actor
        schedule.save()
        record_event(
            action=Action.CREATE if created else Action.UPDATE,
            user=actor,
            clinic_id=clinic.pk,
            obj=schedule,
            changes=diff(before, {f: getattr(schedule, f) for f in SCHEDULE_FIELDS}),
            detail="clinic schedule",
        )
    return schedule


def price_item_set(
    *,
    actor: Any,
    clinic_id: int,
    kind: str,
    unit_price: Any,
    billing_codes: str,
    description: str = "",
) -> PriceItem:
    """Set one line of the clinic's price list (audited old -> new)."""
    _require(actor, "clinic.configure", clinic_id)
    if kind not in PriceKind.values:
        raise ValidationError({"kind": ["Choose a price-list item."]})
    try:
        price = Decimal(str(unit_price))
    except (InvalidOperation, ValueError):
        raise ValidationError({"unit_price": ["Enter a price."]}) from None
    if not price.is_finite() or price < 0 or price > Decimal("1000000"):
        raise ValidationError({"unit_price": ["Enter a price from 0 to 1,000,000."]})
    if price != price.quantize(Decimal("0.01")):
        raise ValidationError({"unit_price": ["Use whole cents."]})
    codes = (billing_codes or "").strip()
    description = (description or "").strip() or PriceKind(kind).label
    if len(codes) > 100 or len(description) > 200 or "\x00" in codes + description:
        raise ValidationError({"billing_codes": ["Too long."]})
    with transaction.atomic():
        item = PriceItem.objects.select_for_update().filter(clinic_id=clinic_id, kind=kind).first()
        created = item is None
        item = item or PriceItem(clinic_id=clinic_id, kind=kind)
        fields = ("unit_price", "billing_codes", "description")
        before = {} if created else {f: getattr(item, f) for f in fields}
        item.unit_price, item.billing_codes, item.description = price, codes, description
        item.updated_by = actor
        changes = diff(before, {f: getattr(item, f) for f in fields})
        if changes:
            item.save()
            record_event(
                action=Action.CREATE if created else Action.UPDATE,
                user=actor,
                clinic_id=clinic_id,
                obj=item,
                changes=changes,
                detail="price list",
            )
    return item
