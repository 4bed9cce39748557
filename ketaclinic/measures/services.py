"""Every write of measurement-based care: one function per state change, atomic, permission
checked, audited (ARCHITECTURE rule 1).

Scores come only from `ketaclinic.clinical.score`; outcomes only from `classify_change` and
`detect_relapse` (through `measures.trajectories`). Side effects that leave the database (email,
SMS, queued tasks) run after commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse

from ketaclinic.accounts import access
from ketaclinic.accounts.choices import CLINICIAN_ROLES, Role
from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import diff, record_event
from ketaclinic.clinical import INSTRUMENTS, PROTOCOLS, InvalidInput, score
from ketaclinic.core import clock
from ketaclinic.courses.choices import OPEN_COURSE_STATUSES
from ketaclinic.courses.models import TreatmentCourse
from ketaclinic.measures import notifications, questionnaire, scheduling, selectors, trajectories
from ketaclinic.measures.choices import (
    AlertAction,
    AlertKind,
    AlertPriority,
    AssignmentStatus,
    BoosterResolution,
    Cadence,
    EnrolmentStatus,
    Phase,
    Respondent,
    ResponseSource,
)
from ketaclinic.measures.models import (
    Assignment,
    BoosterRecommendation,
    CheckIn,
    ClinicMeasurePolicy,
    JournalEntry,
    MeasurementEnrolment,
    MeasurementPlan,
    OnDutyShift,
    PlanItem,
    Response,
    SafetyAlert,
)
from ketaclinic.measures.timeline import course_appointments_prefetch, timeline_for
from ketaclinic.patients.models import Patient

# An unacknowledged alert is escalated again every escalate_after_minutes, at most this often.
MAX_ESCALATIONS = 3
# Ad-hoc questionnaires stay open this long unless the clinician says otherwise.
AD_HOC_OPEN_HOURS = 72
DUTY_SHIFT_MAX_HOURS = 24
# Boosters treat a depressive relapse (reference §1a maintenance, §5 SUSTAIN-1): relapse on these
# scales raises a recommendation; an anxiety relapse (GAD-7) shows on the chart only.
BOOSTER_INSTRUMENTS = frozenset({"phq9", "madrs", "qids_sr16"})


def _now(as_of: datetime | None) -> datetime:
    return as_of or clock.now()


def _require(actor: Any, permission: str, clinic_id: int) -> None:
    if not access.has_permission(actor, permission, clinic_id):
        raise PermissionDenied


def _require_own(actor: Any, patient: Patient) -> None:
    """The actor is this patient, signed in to the portal."""
    if not access.patients_for(actor, "portal.own").filter(pk=patient.pk).exists():
        raise PermissionDenied


def _audit(
    action: Action,
    *,
    actor: Any,
    obj: Any,
    patient_id: int | None,
    clinic_id: int,
    detail: str = "",
    changes: Mapping[str, Any] | None = None,
) -> None:
    record_event(
        action=action,
        user=actor,
        username="" if actor else "system",
        clinic_id=clinic_id,
        patient_id=patient_id,
        obj=obj,
        detail=detail,
        changes=changes,
    )


def digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


# --- Policy and plans ------------------------------------------------------------------------


@transaction.atomic
def policy_update(
    *,
    actor: User,
    clinic: Clinic,
    escalate_after_minutes: int,
    max_reminders: int,
    madrs_remission_max: int,
) -> ClinicMeasurePolicy:
    """Change a clinic's alert escalation time, reminder count and MADRS remission cut-off."""
    _require(actor, "measures.configure", clinic.pk)
    policy, _ = ClinicMeasurePolicy.objects.select_for_update().get_or_create(clinic=clinic)
    before = {
        "escalate_after_minutes": policy.escalate_after_minutes,
        "max_reminders": policy.max_reminders,
        "madrs_remission_max": policy.madrs_remission_max,
    }
    after = {
        "escalate_after_minutes": escalate_after_minutes,
        "max_reminders": max_reminders,
        "madrs_remission_max": madrs_remission_max,
    }
    for field, value in after.items():
        setattr(policy, field, value)
    policy.updated_by = actor
    policy.full_clean(exclude=["clinic"])
    policy.save()
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=policy,
        patient_id=None,
        clinic_id=clinic.pk,
        changes=diff(before, after),
    )
    return policy


@transaction.atomic
def plan_create(
    *, actor: User, clinic: Clinic, name: str, description: str = "", is_default: bool = False
) -> MeasurementPlan:
    """A new, empty measurement plan for a clinic."""
    _require(actor, "measures.configure", clinic.pk)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the plan a name."})
    if MeasurementPlan.objects.filter(clinic=clinic, name__iexact=name).exists():
        raise ValidationError({"name": "This clinic already has a plan with that name."})
    if is_default:
        MeasurementPlan.objects.filter(clinic=clinic, is_default=True).update(is_default=False)
    plan = MeasurementPlan.objects.create(
        clinic=clinic, name=name, description=description.strip(), is_default=is_default
    )
    _audit(
        Action.CREATE,
        actor=actor,
        obj=plan,
        patient_id=None,
        clinic_id=clinic.pk,
        detail=f"measurement plan {name!r}",
    )
    return plan


@transaction.atomic
def plan_update(
    *,
    actor: User,
    plan: MeasurementPlan,
    name: str,
    description: str,
    is_default: bool,
    is_active: bool,
) -> MeasurementPlan:
    """Rename, describe, make default or retire a plan. Items change through plan_item_*."""
    _require(actor, "measures.configure", plan.clinic_id)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the plan a name."})
    clash = MeasurementPlan.objects.filter(clinic_id=plan.clinic_id, name__iexact=name)
    if clash.exclude(pk=plan.pk).exists():
        raise ValidationError({"name": "This clinic already has a plan with that name."})
    if is_default and not is_active:
        raise ValidationError({"is_default": "A retired plan cannot be the default."})
    before = {
        "name": plan.name,
        "description": plan.description,
        "is_default": plan.is_default,
        "is_active": plan.is_active,
    }
    if is_default and not plan.is_default:
        MeasurementPlan.objects.filter(clinic_id=plan.clinic_id, is_default=True).update(
            is_default=False
        )
    plan.name, plan.description = name, description.strip()
    plan.is_default, plan.is_active = is_default, is_active
    plan.save()
    after = {
        "name": plan.name,
        "description": plan.description,
        "is_default": is_default,
        "is_active": is_active,
    }
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=plan,
        patient_id=None,
        clinic_id=plan.clinic_id,
        changes=diff(before, after),
    )
    return plan


def _validate_item(
    *, instrument: str, cadence: str, interval_days: int | None, respondent: str, phase: str
) -> None:
    errors: dict[str, str] = {}
    if instrument not in questionnaire.PLAN_INSTRUMENTS:
        errors["instrument"] = "Choose one of the questionnaires or rating scales offered."
    elif respondent == Respondent.PATIENT and not questionnaire.patient_can_answer(instrument):
        title = INSTRUMENTS[instrument].title
        errors["respondent"] = (
            f"{title} is licensed: its items are not shown to patients (reference §10 rule 17). "
            "Make it clinician-entered."
        )
    if cadence not in Cadence.values:
        errors["cadence"] = "Choose how often."
    elif cadence == Cadence.EVERY_N_DAYS and not interval_days:
        errors["interval_days"] = "Say every how many days."
    elif cadence != Cadence.EVERY_N_DAYS and interval_days:
        errors["interval_days"] = "Only 'every N days' takes a number of days."
    if respondent not in Respondent.values:
        errors["respondent"] = "Choose who answers."
    if phase not in Phase.values:
        errors["phase"] = "Choose a course phase."
    elif cadence in (Cadence.AT_BASELINE, Cadence.END_OF_INDUCTION) and phase != Phase.ANY:
        errors["phase"] = "Baseline and end-of-induction items are tied to the course itself."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def plan_item_add(
    *,
    actor: User,
    plan: MeasurementPlan,
    instrument: str,
    phase: str,
    cadence: str,
    respondent: str,
    interval_days: int | None = None,
    window_hours: int = 72,
) -> PlanItem:
    """Add an instrument to a plan; assignments follow from the next scheduling run."""
    _require(actor, "measures.configure", plan.clinic_id)
    _validate_item(
        instrument=instrument,
        cadence=cadence,
        interval_days=interval_days,
        respondent=respondent,
        phase=phase,
    )
    item = PlanItem(
        plan=plan,
        instrument=instrument,
        phase=phase,
        cadence=cadence,
        respondent=respondent,
        interval_days=interval_days,
        window_hours=window_hours,
    )
    item.full_clean(exclude=["plan"])
    item.save()
    _audit(
        Action.CREATE,
        actor=actor,
        obj=item,
        patient_id=None,
        clinic_id=plan.clinic_id,
        detail=f"plan {plan.name!r}: {item}",
    )
    return item


@transaction.atomic
def plan_item_retire(*, actor: User, item: PlanItem) -> PlanItem:
    """Stop scheduling an item. Past assignments keep their link to it, so it is not deleted."""
    _require(actor, "measures.configure", item.plan.clinic_id)
    if item.is_active:
        item.is_active = False
        item.save(update_fields=["is_active"])
        _audit(
            Action.UPDATE,
            actor=actor,
            obj=item,
            patient_id=None,
            clinic_id=item.plan.clinic_id,
            changes={"is_active": {"old": True, "new": False}},
        )
    return item


# The plan of issue 7, offered to every clinic as a starting point. PHQ-9 and the C-SSRS screener
# before every session (reference §10 rule 15), GAD-7 weekly in induction, PCL-5 every 2 weeks,
# MADRS entered by a clinician at baseline, at the end of induction and monthly.
STARTER_PLAN: tuple[dict[str, Any], ...] = (
    {"instrument": "phq9", "phase": Phase.ANY, "cadence": Cadence.AT_BASELINE,
     "respondent": Respondent.PATIENT, "window_hours": 168},
    {"instrument": "phq9", "phase": Phase.ANY, "cadence": Cadence.BEFORE_EACH_SESSION,
     "respondent": Respondent.PATIENT, "window_hours": 48},
    {"instrument": "cssrs_screener", "phase": Phase.ANY, "cadence": Cadence.BEFORE_EACH_SESSION,
     "respondent": Respondent.PATIENT, "window_hours": 48},
    {"instrument": "gad7", "phase": Phase.ANY, "cadence": Cadence.AT_BASELINE,
     "respondent": Respondent.PATIENT, "window_hours": 168},
    {"instrument": "gad7", "phase": Phase.INDUCTION, "cadence": Cadence.WEEKLY,
     "respondent": Respondent.PATIENT, "window_hours": 72},
    {"instrument": "phq9", "phase": Phase.MAINTENANCE, "cadence": Cadence.WEEKLY,
     "respondent": Respondent.PATIENT, "window_hours": 72},
    {"instrument": "pcl5", "phase": Phase.ANY, "cadence": Cadence.EVERY_N_DAYS,
     "interval_days": 14, "respondent": Respondent.PATIENT, "window_hours": 96},
    {"instrument": "madrs", "phase": Phase.ANY, "cadence": Cadence.AT_BASELINE,
     "respondent": Respondent.CLINICIAN, "window_hours": 168},
    {"instrument": "madrs", "phase": Phase.ANY, "cadence": Cadence.END_OF_INDUCTION,
     "respondent": Respondent.CLINICIAN, "window_hours": 168},
    {"instrument": "madrs", "phase": Phase.MAINTENANCE, "cadence": Cadence.MONTHLY,
     "respondent": Respondent.CLINICIAN, "window_hours": 168},
)  # fmt: skip


@transaction.atomic
def plan_create_starter(
    *, actor: User, clinic: Clinic, name: str = "Standard ketamine course", ptsd: bool = False
) -> MeasurementPlan:
    """A plan pre-filled with the issue 7 defaults (PCL-5 only in a PTSD plan)."""
    plan = plan_create(
        actor=actor,
        clinic=clinic,
        name=name,
        description="PHQ-9 and C-SSRS screener before every session; GAD-7 weekly during "
        "induction; PHQ-9 weekly in maintenance; MADRS by a clinician at baseline, end of "
        "induction and monthly" + ("; PCL-5 every 2 weeks." if ptsd else "."),
        is_default=not MeasurementPlan.objects.filter(clinic=clinic, is_default=True).exists(),
    )
    for spec in STARTER_PLAN:
        if spec["instrument"] == "pcl5" and not ptsd:
            continue
        plan_item_add(actor=actor, plan=plan, **spec)
    return plan


# --- Enrolment -------------------------------------------------------------------------------


@transaction.atomic
def enrolment_start(
    *,
    actor: User,
    patient: Patient,
    plan: MeasurementPlan,
    prescriber: User | None,
    course: TreatmentCourse | None = None,
    protocol: str = "",
    first_session_on: Any = None,
    plan_weeks: int | None = None,
    notify_by_email: bool = True,
    notify_by_sms: bool = False,
    as_of: datetime | None = None,
) -> MeasurementEnrolment:
    """Start measuring a patient under a plan (one active enrolment at a time).

    With a treatment course, its appointments give the sessions and phases (and its prescriber
    receives the alerts unless another is named); without one, a protocol and a first session
    day lay them out. Baseline questionnaires taken at intake are adopted as pre-course scores.
    """
    _require(actor, "measures.manage", patient.clinic_id)
    errors: dict[str, str] = {}
    if plan.clinic_id != patient.clinic_id or not plan.is_active:
        errors["plan"] = "Choose an active plan of the patient's clinic."
    if course is not None:
        if course.patient_id != patient.pk or course.status not in OPEN_COURSE_STATUSES:
            errors["course"] = "Choose an open treatment course of this patient."
        elif MeasurementEnrolment.objects.filter(course=course).exists():
            errors["course"] = "This course already has a measurement plan."
        protocol, first_session_on = course.protocol, course.start_date
        prescriber = prescriber or course.prescriber
        plan_weeks = None
    elif protocol not in PROTOCOLS:
        errors["protocol"] = "Choose a protocol (or a treatment course)."
    elif plan_weeks is not None:
        fixed = PROTOCOLS[protocol].fixed_weeks
        if fixed is not None and plan_weeks > fixed:
            errors["plan_weeks"] = f"This protocol lasts {fixed} weeks."
    if course is None and first_session_on is None:
        errors["first_session_on"] = "Give the first session day (or choose a treatment course)."
    if (
        prescriber is not None
        and not Membership.objects.filter(
            user=prescriber, clinic_id=patient.clinic_id, role=Role.PRESCRIBER, is_active=True
        ).exists()
    ):
        errors["prescriber"] = "Choose a prescriber of the patient's clinic."
    if MeasurementEnrolment.objects.filter(patient=patient, status=EnrolmentStatus.ACTIVE).exists():
        errors["__all__"] = "The patient already has an active measurement plan; end it first."
    if errors:
        raise ValidationError(errors)
    enrolment = _enrol(
        actor=actor,
        patient=patient,
        plan=plan,
        course=course,
        protocol=protocol,
        first_session_on=first_session_on,
        prescriber=prescriber,
        plan_weeks=plan_weeks,
        notify_by_email=notify_by_email,
        notify_by_sms=notify_by_sms,
        now=_now(as_of),
    )
    return enrolment


def _enrol(*, actor: User | None, now: datetime, **fields: Any) -> MeasurementEnrolment:
    """Write an enrolment (the caller checked the rules), audit it, adopt intake baselines."""
    enrolment = MeasurementEnrolment.objects.create(
        clinic_id=fields["patient"].clinic_id, started_at=now, created_by=actor, **fields
    )
    course = fields.get("course")
    _audit(
        Action.CREATE,
        actor=actor,
        obj=enrolment,
        patient_id=enrolment.patient_id,
        clinic_id=enrolment.clinic_id,
        detail=f"measurement plan {enrolment.plan.name!r}, "
        + (
            f"treatment course {course.pk}"
            if course is not None
            else f"protocol {enrolment.protocol}, first session {enrolment.first_session_on}"
        ),
    )
    _adopt_intake_baselines(enrolment.patient)
    return enrolment


def _adopt_intake_baselines(patient: Patient) -> list[Response]:
    """Baseline questionnaires recorded at intake (screening) become pre-course scores, once.

    They are scored by the same clinical rules and were reviewed by a clinician at intake, so
    they are adopted as they are and raise no new alert.
    """
    from ketaclinic.screening.models import BaselineMeasure

    tz = ZoneInfo(patient.clinic.timezone)
    adopted = []
    rows = BaselineMeasure.objects.filter(
        patient_id=patient.pk,
        instrument__in=questionnaire.PLAN_INSTRUMENTS,
        measures_response__isnull=True,
    ).order_by("administered_on", "pk")
    for row in rows:
        definition = INSTRUMENTS[row.instrument]
        answers = row.answers
        if isinstance(answers, list):
            answers = dict(zip(definition.item_ids, answers, strict=False))
        recorded = row.recorded_at.astimezone(tz)
        completed = (
            row.recorded_at
            if recorded.date() == row.administered_on
            else scheduling.at_local(row.administered_on, 12, tz)
        )
        response = Response.objects.create(
            clinic_id=patient.clinic_id,
            patient=patient,
            instrument=row.instrument,
            instrument_version=definition.version,
            answers={key: int(value) for key, value in answers.items()},
            total=row.total,
            severity=row.severity,
            flags=list(row.flags),
            subscores=dict(row.subscores),
            loinc_total=definition.loinc_total or "",
            completed_at=completed,
            source=ResponseSource.SCREENING,
            entered_by_id=row.recorded_by_id,
            adopted_from=row,
        )
        record_event(
            action=Action.CREATE,
            username="system",
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=response,
            detail=f"intake baseline {definition.title} {row.total} adopted as a pre-course score",
        )
        adopted.append(response)
    return adopted


def enrolments_follow_courses(*, as_of: datetime | None = None) -> int:
    """Tie measurement to treatment courses: an open course without a measurement plan gets the
    clinic's default plan (an active enrolment without a course adopts the course instead), and
    a stopped course ends its enrolment. Returns how many enrolments changed."""
    from ketaclinic.courses.choices import CourseStatus

    now = _now(as_of)
    changed = 0
    waiting = (
        TreatmentCourse.objects.filter(status__in=OPEN_COURSE_STATUSES)
        .exclude(measurement_enrolments__isnull=False)
        .select_related("patient__clinic", "prescriber")
        .order_by("pk")
    )
    defaults = {
        plan.clinic_id: plan
        for plan in MeasurementPlan.objects.filter(is_default=True, is_active=True)
    }
    for course in waiting:
        with transaction.atomic():
            current = (
                MeasurementEnrolment.objects.select_for_update()
                .filter(patient_id=course.patient_id, status=EnrolmentStatus.ACTIVE)
                .first()
            )
            if current is not None and current.course_id is None:
                current.course = course
                current.protocol, current.first_session_on = course.protocol, course.start_date
                current.prescriber = current.prescriber or course.prescriber
                current.save(update_fields=["course", "protocol", "first_session_on", "prescriber"])
                record_event(
                    action=Action.UPDATE,
                    username="system",
                    clinic_id=current.clinic_id,
                    patient_id=current.patient_id,
                    obj=current,
                    detail=f"measurement plan follows treatment course {course.pk}",
                )
                changed += 1
                continue
            plan = defaults.get(course.clinic_id)
            if current is not None or plan is None:
                continue  # measured under another course, or the clinic has no default plan
            _enrol(
                actor=None,
                now=now,
                patient=course.patient,
                plan=plan,
                course=course,
                protocol=course.protocol,
                first_session_on=course.start_date,
                prescriber=course.prescriber,
                plan_weeks=None,
            )
            changed += 1
    stopped = MeasurementEnrolment.objects.filter(
        status=EnrolmentStatus.ACTIVE, course__status=CourseStatus.STOPPED
    ).values_list("pk", flat=True)
    for pk in list(stopped):
        with transaction.atomic():
            enrolment = MeasurementEnrolment.objects.select_for_update().get(pk=pk)
            _end(enrolment, reason="Treatment course stopped", now=now, actor=None)
            changed += 1
    return changed


@transaction.atomic
def enrolment_end(
    *, actor: User, enrolment: MeasurementEnrolment, reason: str, as_of: datetime | None = None
) -> MeasurementEnrolment:
    """Stop measuring under this plan; open assignments are cancelled."""
    _require(actor, "measures.manage", enrolment.clinic_id)
    if not reason.strip():
        raise ValidationError({"reason": "Say why measuring stops."})
    enrolment = MeasurementEnrolment.objects.select_for_update().get(pk=enrolment.pk)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise ValidationError({"__all__": "This plan has already ended."})
    return _end(enrolment, reason=reason, now=_now(as_of), actor=actor)


def _end(
    enrolment: MeasurementEnrolment, *, reason: str, now: datetime, actor: User | None
) -> MeasurementEnrolment:
    enrolment.status, enrolment.ended_at = EnrolmentStatus.ENDED, now
    enrolment.ended_reason = reason.strip()[:200]
    enrolment.save(update_fields=["status", "ended_at", "ended_reason"])
    cancelled = Assignment.objects.filter(
        enrolment=enrolment, status=AssignmentStatus.PENDING
    ).update(status=AssignmentStatus.CANCELLED, link_token_digest="", next_reminder_at=None)
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=enrolment,
        patient_id=enrolment.patient_id,
        clinic_id=enrolment.clinic_id,
        detail=f"ended: {enrolment.ended_reason}; {cancelled} open questionnaire(s) cancelled",
    )
    return enrolment


# --- Assignments: scheduling, delivery, reminders, expiry ------------------------------------


def _first_reminder(
    available_at: datetime, expires_at: datetime, max_reminders: int
) -> datetime | None:
    times = scheduling.reminder_times(available_at, expires_at, max_reminders)
    return times[0] if times else None


def assignments_schedule(*, as_of: datetime | None = None) -> list[Assignment]:
    """Create the assignments that have fallen due under every active enrolment.

    An occurrence is skipped when the patient already has an open questionnaire of the same
    instrument, or answered it since the occurrence opened (a weekly PHQ-9 and a pre-session
    PHQ-9 in the same days are asked once). Occurrences that closed before this run are not
    created (nothing to answer any more).
    """
    now = _now(as_of)
    created: list[Assignment] = []
    enrolments: list[MeasurementEnrolment] = list(
        MeasurementEnrolment.objects.filter(status=EnrolmentStatus.ACTIVE)
        .select_related("clinic", "course")
        .prefetch_related(
            "plan__items",
            course_appointments_prefetch("course__appointments"),
        )
        .order_by("pk")
    )
    for start in range(0, len(enrolments), 500):
        created += _schedule_chunk(enrolments[start : start + 500], now)
    return created


@transaction.atomic
def _schedule_chunk(enrolments: Sequence[MeasurementEnrolment], now: datetime) -> list[Assignment]:
    ids = [e.pk for e in enrolments]
    patient_ids = [e.patient_id for e in enrolments]
    existing = set(
        Assignment.objects.filter(enrolment_id__in=ids, expires_at__gt=now).values_list(
            "enrolment_id", "plan_item_id", "occurrence_key"
        )
    )
    open_now = set(
        Assignment.objects.filter(
            patient_id__in=patient_ids, status=AssignmentStatus.PENDING
        ).values_list("patient_id", "instrument")
    )
    latest = {
        (row["patient_id"], row["instrument"]): row["last"]
        for row in Response.objects.filter(patient_id__in=patient_ids)
        .values("patient_id", "instrument")
        .annotate(last=Max("completed_at"))
    }
    policies = selectors.policies_for({e.clinic_id for e in enrolments})
    new: list[Assignment] = []
    for enrolment in enrolments:
        tz = ZoneInfo(enrolment.clinic.timezone)
        timeline = timeline_for(enrolment)
        policy = policies[enrolment.clinic_id]
        for item in enrolment.plan.items.all():
            if not item.is_active:
                continue
            rule = scheduling.ItemRule(
                item.pk,
                item.instrument,
                item.phase,
                item.cadence,
                item.interval_days,
                item.window_hours,
            )
            for occ in scheduling.occurrences(
                rule,
                timeline,
                enrolled_on=enrolment.started_at.astimezone(tz).date(),
                ended_on=None,
                tz=tz,
                until=now,
            ):
                key = (enrolment.pk, item.pk, occ.key)
                pair = (enrolment.patient_id, item.instrument)
                answered = latest.get(pair)
                if (
                    occ.expires_at <= now
                    or key in existing
                    or pair in open_now
                    or (answered is not None and answered >= occ.available_at)
                ):
                    continue
                existing.add(key)
                open_now.add(pair)
                patient_reported = item.respondent == Respondent.PATIENT
                new.append(
                    Assignment(
                        clinic_id=enrolment.clinic_id,
                        patient_id=enrolment.patient_id,
                        enrolment=enrolment,
                        plan_item=item,
                        occurrence_key=occ.key,
                        instrument=item.instrument,
                        respondent=item.respondent,
                        course_id=enrolment.course_id,
                        appointment_id=occ.appointment_id,
                        course_phase=occ.phase,
                        session_number=occ.session_number,
                        available_at=occ.available_at,
                        due_at=occ.due_at,
                        expires_at=occ.expires_at,
                        next_reminder_at=(
                            _first_reminder(now, occ.expires_at, policy.max_reminders)
                            if patient_reported
                            else None
                        ),
                    )
                )
    Assignment.objects.bulk_create(new)
    for assignment in new:
        _audit(
            Action.CREATE,
            actor=None,
            obj=assignment,
            patient_id=assignment.patient_id,
            clinic_id=assignment.clinic_id,
            detail=f"scheduled {assignment.instrument} ({assignment.occurrence_key}), due "
            f"{assignment.due_at:%Y-%m-%d %H:%M} UTC",
        )
    return new


@transaction.atomic
def assignment_create(
    *,
    actor: User,
    patient: Patient,
    instrument: str,
    respondent: str = Respondent.PATIENT,
    open_hours: int = AD_HOC_OPEN_HOURS,
    as_of: datetime | None = None,
) -> Assignment:
    """Ask a patient for a questionnaire now (or a clinician to enter one), outside the plan."""
    _require(actor, "measures.manage", patient.clinic_id)
    _validate_item(
        instrument=instrument,
        cadence=Cadence.WEEKLY,
        interval_days=None,
        respondent=respondent,
        phase=Phase.ANY,
    )
    if not 4 <= open_hours <= 30 * 24:
        raise ValidationError({"open_hours": "Keep it open between 4 hours and 30 days."})
    if Assignment.objects.filter(
        patient=patient, instrument=instrument, status=AssignmentStatus.PENDING
    ).exists():
        raise ValidationError({"instrument": "This questionnaire is already open for the patient."})
    now = _now(as_of)
    expires = now + timedelta(hours=open_hours)
    enrolment = selectors.active_enrolment(patient.pk)
    policy = selectors.policy_for(patient.clinic_id)
    assignment = Assignment.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        enrolment=enrolment,
        instrument=instrument,
        respondent=respondent,
        available_at=now,
        due_at=min(now + timedelta(hours=scheduling.DUE_AFTER_HOURS), expires),
        expires_at=expires,
        next_reminder_at=(
            _first_reminder(now, expires, policy.max_reminders)
            if respondent == Respondent.PATIENT
            else None
        ),
        created_by=actor,
    )
    _audit(
        Action.CREATE,
        actor=actor,
        obj=assignment,
        patient_id=patient.pk,
        clinic_id=patient.clinic_id,
        detail=f"asked for {instrument} ({respondent})",
    )
    if respondent == Respondent.PATIENT:
        transaction.on_commit(partial(_enqueue_delivery, assignment.pk))
    return assignment


def _enqueue_delivery(assignment_id: int) -> None:
    from ketaclinic.measures.tasks import deliver_assignment  # tasks import this module

    deliver_assignment.enqueue(assignment_id)


@transaction.atomic
def assignment_cancel(*, actor: User, assignment: Assignment) -> Assignment:
    _require(actor, "measures.manage", assignment.clinic_id)
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.status != AssignmentStatus.PENDING:
        raise ValidationError({"__all__": "Only an open questionnaire can be cancelled."})
    assignment.status = AssignmentStatus.CANCELLED
    assignment.link_token_digest, assignment.next_reminder_at = "", None
    assignment.save(update_fields=["status", "link_token_digest", "next_reminder_at"])
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=assignment,
        patient_id=assignment.patient_id,
        clinic_id=assignment.clinic_id,
        detail="cancelled",
    )
    return assignment


def assignments_expire(*, as_of: datetime | None = None) -> int:
    """Close every open questionnaire whose window has passed."""
    now = _now(as_of)
    with transaction.atomic():
        rows = list(
            Assignment.objects.select_for_update()
            .filter(status=AssignmentStatus.PENDING, expires_at__lte=now)
            .values_list("pk", "patient_id", "clinic_id", "instrument")
        )
        Assignment.objects.filter(pk__in=[row[0] for row in rows]).update(
            status=AssignmentStatus.EXPIRED, link_token_digest="", next_reminder_at=None
        )
        for pk, patient_id, clinic_id, instrument in rows:
            record_event(
                action=Action.UPDATE,
                username="system",
                clinic_id=clinic_id,
                patient_id=patient_id,
                object_type="measures.assignment",
                object_id=pk,
                detail=f"{instrument} expired unanswered",
            )
    return len(rows)


def _deliverable(assignment: Assignment) -> tuple[str, str]:
    """(email, phone) the patient agreed to be contacted on for this assignment."""
    enrolment = assignment.enrolment
    patient = assignment.patient
    by_email = enrolment.notify_by_email if enrolment else True
    by_sms = enrolment.notify_by_sms if enrolment else False
    return (patient.email if by_email else "", patient.phone if by_sms else "")


def _send_link(assignment: Assignment, now: datetime, *, reminder: bool) -> list[str]:
    """Issue a fresh one-time link (the previous one stops working) and send it."""
    email, phone = _deliverable(assignment)
    if not (email or phone):
        return []
    raw = secrets.token_urlsafe(32)
    assignment.link_token_digest = digest(raw)
    assignment.link_sent_at = now
    patient, clinic = assignment.patient, assignment.clinic
    expires_at = assignment.expires_at

    def send() -> None:
        notifications.send_questionnaire(
            first_name=patient.preferred_name or patient.first_name,
            clinic_name=clinic.name,
            clinic_phone=clinic.phone,
            tz_name=clinic.timezone,
            email=email,
            phone=phone,
            raw_token=raw,
            expires_at=expires_at,
            reminder=reminder,
        )

    transaction.on_commit(send)
    return [name for name, address in (("email", email), ("sms", phone)) if address]


@transaction.atomic
def assignment_deliver(*, assignment_id: int, as_of: datetime | None = None) -> list[str]:
    """Send the first message with the one-time link; returns the channels (idempotent)."""
    now = _now(as_of)
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("patient", "clinic", "enrolment")
        .filter(pk=assignment_id)
        .first()
    )
    if (
        assignment is None
        or assignment.delivered_at is not None
        or assignment.status != AssignmentStatus.PENDING
        or assignment.respondent != Respondent.PATIENT
        or assignment.expires_at <= now
    ):
        return []
    channels = _send_link(assignment, now, reminder=False)
    assignment.delivered_at = now
    assignment.save(update_fields=["link_token_digest", "link_sent_at", "delivered_at"])
    _audit(
        Action.EXPORT if channels else Action.UPDATE,
        actor=None,
        obj=assignment,
        patient_id=assignment.patient_id,
        clinic_id=assignment.clinic_id,
        detail=f"questionnaire link sent by {', '.join(channels)}"
        if channels
        else "no email or phone to send to; available in the portal",
    )
    return channels


def assignments_deliver_due(*, as_of: datetime | None = None) -> int:
    """Deliver every open patient questionnaire that has opened and was not sent yet."""
    now = _now(as_of)
    ids = list(
        Assignment.objects.filter(
            status=AssignmentStatus.PENDING,
            respondent=Respondent.PATIENT,
            delivered_at__isnull=True,
            available_at__lte=now,
            expires_at__gt=now,
        ).values_list("pk", flat=True)
    )
    return sum(1 for pk in ids if assignment_deliver(assignment_id=pk, as_of=now))


def assignments_remind(*, as_of: datetime | None = None) -> int:
    """Send the reminders that are due (at most the clinic's limit, two by default)."""
    now = _now(as_of)
    ids = list(
        Assignment.objects.filter(
            status=AssignmentStatus.PENDING,
            respondent=Respondent.PATIENT,
            delivered_at__isnull=False,
            next_reminder_at__lte=now,
            expires_at__gt=now,
        ).values_list("pk", flat=True)
    )
    sent = 0
    for pk in ids:
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update(of=("self",))
                .select_related("patient", "clinic", "enrolment")
                .get(pk=pk)
            )
            if (
                assignment.status != AssignmentStatus.PENDING
                or assignment.next_reminder_at is None
                or assignment.next_reminder_at > now
            ):
                continue
            limit = selectors.policy_for(assignment.clinic_id).max_reminders
            if assignment.reminders_sent >= limit:
                assignment.next_reminder_at = None
                assignment.save(update_fields=["next_reminder_at"])
                continue
            channels = _send_link(assignment, now, reminder=True)
            assignment.reminders_sent += 1
            times = scheduling.reminder_times(
                assignment.delivered_at or assignment.available_at, assignment.expires_at, limit
            )
            assignment.next_reminder_at = (
                times[assignment.reminders_sent] if assignment.reminders_sent < len(times) else None
            )
            assignment.save(
                update_fields=[
                    "link_token_digest",
                    "link_sent_at",
                    "reminders_sent",
                    "next_reminder_at",
                ]
            )
            _audit(
                Action.EXPORT,
                actor=None,
                obj=assignment,
                patient_id=assignment.patient_id,
                clinic_id=assignment.clinic_id,
                detail=f"reminder {assignment.reminders_sent} sent by {', '.join(channels)}"
                if channels
                else f"reminder {assignment.reminders_sent}: no email or phone on file",
            )
            sent += 1
    return sent


@transaction.atomic
def assignment_open_link(*, raw_token: str, as_of: datetime | None = None) -> Assignment:
    """Exchange a one-time link for access to its one questionnaire. The link stops working
    (a reminder sends a new one); a wrong, used or expired link says so without detail."""
    now = _now(as_of)
    invalid = ValidationError({"token": "This link has expired or was already used."})
    if not raw_token or len(raw_token) > 100:
        raise invalid
    assignment = (
        Assignment.objects.select_for_update()
        .filter(link_token_digest=digest(raw_token), status=AssignmentStatus.PENDING)
        .first()
    )
    if assignment is None or assignment.expires_at <= now:
        raise invalid
    assignment.link_token_digest = ""
    assignment.link_opened_at = now
    assignment.save(update_fields=["link_token_digest", "link_opened_at"])
    _audit(
        Action.UPDATE,
        actor=None,
        obj=assignment,
        patient_id=assignment.patient_id,
        clinic_id=assignment.clinic_id,
        detail="one-time questionnaire link opened",
    )
    return assignment


def _check_answerer(actor: Any, assignment: Assignment, *, via_link: bool) -> None:
    if assignment.respondent != Respondent.PATIENT:
        raise PermissionDenied
    if via_link:
        if assignment.link_opened_at is None:
            raise PermissionDenied
    else:
        _require_own(actor, assignment.patient)


def _open_assignment(assignment: Assignment, now: datetime) -> Assignment:
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status != AssignmentStatus.PENDING or locked.expires_at <= now:
        raise ValidationError({"__all__": "This questionnaire is closed."})
    return locked


@transaction.atomic
def assignment_save_answer(
    *,
    actor: Any,
    assignment: Assignment,
    item_id: str,
    value: Any,
    via_link: bool = False,
    as_of: datetime | None = None,
) -> Assignment:
    """Record one answer while a patient goes through a questionnaire item by item.

    Not audited per item: the draft is the patient's own unsubmitted work; the submission is.
    """
    _check_answerer(actor, assignment, via_link=via_link)
    locked = _open_assignment(assignment, _now(as_of))
    definition = INSTRUMENTS[locked.instrument]
    items = {
        item.id: item for item in questionnaire.applicable_items(definition, locked.draft_answers)
    }
    item = items.get(item_id)
    if item is None:
        raise ValidationError({"answer": "This question is not part of the questionnaire."})
    allowed = {option.value for option in item.options}
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number not in allowed:
        raise ValidationError({"answer": "Choose one of the answers."})
    locked.draft_answers = questionnaire.with_answer(
        definition, locked.draft_answers, item_id, int(number)
    )
    locked.save(update_fields=["draft_answers"])
    return locked


@transaction.atomic
def response_submit(
    *,
    actor: Any,
    answers: Mapping[str, Any],
    source: str,
    assignment: Assignment | None = None,
    patient: Patient | None = None,
    instrument: str | None = None,
    via_link: bool = False,
    as_of: datetime | None = None,
) -> Response:
    """Score and store a completed questionnaire, then route its safety signals.

    A patient answers their own open assignment (portal, one-time link or API). A clinician
    (`measures.manage`) enters a clinician-rated scale, or a patient questionnaire done on paper
    at the clinic, for an assignment or on its own (`patient` + `instrument`).
    """
    now = _now(as_of)
    clinician_entry = False
    if assignment is not None:
        patient_answers = assignment.respondent == Respondent.PATIENT and (
            via_link or access.has_permission(actor, "portal.own", assignment.clinic_id)
        )
        if patient_answers:
            _check_answerer(actor, assignment, via_link=via_link)
        else:
            _require(actor, "measures.manage", assignment.clinic_id)
            clinician_entry = True
        assignment = _open_assignment(assignment, now)
        patient = Patient.objects.select_related("clinic").get(pk=assignment.patient_id)
        instrument = assignment.instrument
    else:
        if patient is None or instrument is None:
            raise ValidationError({"__all__": "Say which patient and questionnaire."})
        _require(actor, "measures.manage", patient.clinic_id)
        clinician_entry = True
        if instrument not in questionnaire.PLAN_INSTRUMENTS:
            raise ValidationError({"instrument": "Unknown questionnaire."})
    if clinician_entry:
        source = ResponseSource.CLINIC if source != ResponseSource.API else source
    definition = INSTRUMENTS[instrument]
    try:
        result = score(instrument, questionnaire.scoring_answers(definition, dict(answers)))
    except InvalidInput as exc:
        raise ValidationError({"answers": str(exc)}) from None
    response = Response.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        assignment=assignment,
        instrument=instrument,
        instrument_version=definition.version,
        answers={key: int(value) for key, value in result.answers.items()},
        total=result.total,
        severity=result.severity or "",
        flags=sorted(result.flags),
        subscores=dict(result.subscores),
        loinc_total=definition.loinc_total or "",
        completed_at=now,
        source=source,
        entered_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if assignment is not None:
        assignment.status, assignment.completed_at = AssignmentStatus.COMPLETED, now
        assignment.draft_answers, assignment.link_token_digest = {}, ""
        assignment.next_reminder_at = None
        assignment.save(
            update_fields=[
                "status",
                "completed_at",
                "draft_answers",
                "link_token_digest",
                "next_reminder_at",
            ]
        )
    _audit(
        Action.CREATE,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        obj=response,
        patient_id=patient.pk,
        clinic_id=patient.clinic_id,
        detail=f"{definition.title} total {result.total}"
        + (f" ({result.severity})" if result.severity else "")
        + f" via {source}",
    )
    _route_response(response, now)
    _check_relapse(response, now)
    return response


# --- Safety routing --------------------------------------------------------------------------


def _route_response(response: Response, now: datetime) -> None:
    """PHQ-9 item 9 > 0 or any C-SSRS yes → an alert; C-SSRS high → immediate (rule 15)."""
    if "suicidal_ideation" not in response.flags:
        return
    if response.instrument == "phq9":
        item9 = response.answers.get("q9", 0)
        alert_raise(
            response.patient,
            kind=AlertKind.PHQ9_ITEM9,
            priority=AlertPriority.SAME_DAY,
            summary=f"PHQ-9 item 9 answered {item9} of 3 (total {response.total})",
            now=now,
            response=response,
        )
    elif response.instrument == "cssrs_screener":
        high = response.is_high_risk
        alert_raise(
            response.patient,
            kind=AlertKind.CSSRS,
            priority=AlertPriority.IMMEDIATE if high else AlertPriority.SAME_DAY,
            cssrs_risk=response.severity,
            summary=f"C-SSRS screener risk {response.severity} ({response.total} yes answers)",
            now=now,
            response=response,
        )


def alert_raise(
    patient: Patient,
    *,
    kind: str,
    priority: str,
    summary: str,
    now: datetime,
    cssrs_risk: str = "",
    response: Response | None = None,
    checkin: CheckIn | None = None,
    journal_entry: JournalEntry | None = None,
) -> SafetyAlert:
    """Create an alert for the patient's prescriber (inside the caller's transaction); notify
    them, and for an immediate alert every on-duty clinician, after commit."""
    enrolment = selectors.active_enrolment(patient.pk)
    alert = SafetyAlert.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        kind=kind,
        priority=priority,
        cssrs_risk=cssrs_risk,
        summary=summary[:300],
        response=response,
        checkin=checkin,
        journal_entry=journal_entry,
        assigned_to=enrolment.prescriber if enrolment else None,
        created_at=now,
    )
    if priority == AlertPriority.IMMEDIATE:
        alert.escalated_at, alert.escalation_count = now, 1
        alert.save(update_fields=["escalated_at", "escalation_count"])
    record_event(
        action=Action.CREATE,
        username="system",
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=alert,
        detail=f"safety alert ({alert.get_priority_display()}): {alert.summary}",
    )
    transaction.on_commit(partial(_enqueue_alert_notice, alert.pk, escalated=False))
    return alert


def _enqueue_alert_notice(alert_id: int, *, escalated: bool) -> None:
    from ketaclinic.measures.tasks import notify_alert  # tasks import this module

    notify_alert.enqueue(alert_id, escalated=escalated)


def alert_recipients(alert: SafetyAlert, *, escalated: bool, now: datetime) -> list[User]:
    """Who hears about an alert: the assigned prescriber; on escalation (and for immediate
    alerts) every clinician on duty, or, when nobody is on duty, every clinician of the clinic."""
    people: dict[int, User] = {}
    if alert.assigned_to is not None and alert.assigned_to.is_active:
        people[alert.assigned_to.pk] = alert.assigned_to
    if escalated or alert.priority == AlertPriority.IMMEDIATE or not people:
        on_duty = selectors.on_duty_clinicians(alert.clinic_id, now)
        if not on_duty:
            on_duty = list(
                User.objects.filter(
                    memberships__clinic_id=alert.clinic_id,
                    memberships__is_active=True,
                    memberships__role__in=CLINICIAN_ROLES,
                    is_active=True,
                ).distinct()
            )
        people.update({user.pk: user for user in on_duty})
    return list(people.values())


def alert_notify(*, alert_id: int, escalated: bool = False, as_of: datetime | None = None) -> int:
    """Email the alert's recipients (no clinical details in the message)."""
    now = _now(as_of)
    alert = SafetyAlert.objects.select_related("clinic", "assigned_to").filter(pk=alert_id).first()
    if alert is None or (not escalated and alert.acknowledged_at is not None):
        return 0
    recipients = alert_recipients(alert, escalated=escalated, now=now)
    return notifications.send_alert_notice(
        recipients=[user.email for user in recipients],
        clinic_name=alert.clinic.name,
        alert_path=reverse("measures:alert_detail", args=[alert.pk]),
        escalated=escalated,
        urgent=alert.priority == AlertPriority.IMMEDIATE,
    )


@transaction.atomic
def alert_acknowledge(
    *,
    actor: User,
    alert: SafetyAlert,
    action: str,
    note: str = "",
    as_of: datetime | None = None,
) -> SafetyAlert:
    """A clinician confirms they have acted on the alert, and how."""
    _require(actor, "alerts.acknowledge", alert.clinic_id)
    if action not in AlertAction.values:
        raise ValidationError({"action": "Choose the action taken."})
    note = note.strip()
    if action == AlertAction.OTHER and not note:
        raise ValidationError({"note": "Describe the action taken."})
    locked = SafetyAlert.objects.select_for_update().get(pk=alert.pk)
    if locked.acknowledged_at is not None:
        raise ValidationError({"__all__": "This alert was already acknowledged."})
    now = _now(as_of)
    locked.acknowledged_at, locked.acknowledged_by = now, actor
    locked.action, locked.action_note = action, note[:2000]
    locked.save(update_fields=["acknowledged_at", "acknowledged_by", "action", "action_note"])
    waited = int((now - locked.created_at).total_seconds() // 60)
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=locked,
        patient_id=locked.patient_id,
        clinic_id=locked.clinic_id,
        detail=f"alert acknowledged after {waited} min: {locked.get_action_display()}",
    )
    return locked


def alerts_escalate(*, as_of: datetime | None = None) -> int:
    """Escalate unacknowledged alerts that waited longer than their clinic allows."""
    now = _now(as_of)
    candidates = list(
        SafetyAlert.objects.filter(
            acknowledged_at__isnull=True, escalation_count__lt=MAX_ESCALATIONS
        ).values_list("pk", "clinic_id", "created_at", "escalated_at")
    )
    policies = selectors.policies_for({row[1] for row in candidates})
    escalated = 0
    for pk, clinic_id, created_at, escalated_at in candidates:
        wait = timedelta(minutes=policies[clinic_id].escalate_after_minutes)
        if (escalated_at or created_at) + wait > now:
            continue
        with transaction.atomic():
            alert = SafetyAlert.objects.select_for_update().get(pk=pk)
            if alert.acknowledged_at is not None or alert.escalation_count >= MAX_ESCALATIONS:
                continue
            alert.escalated_at = now
            alert.escalation_count += 1
            alert.save(update_fields=["escalated_at", "escalation_count"])
            record_event(
                action=Action.UPDATE,
                username="system",
                clinic_id=alert.clinic_id,
                patient_id=alert.patient_id,
                obj=alert,
                detail=f"alert escalated to on-duty clinicians (round {alert.escalation_count}) "
                f"after {int((now - alert.created_at).total_seconds() // 60)} min",
            )
            transaction.on_commit(partial(_enqueue_alert_notice, alert.pk, escalated=True))
            escalated += 1
    return escalated


@transaction.atomic
def duty_start(
    *, actor: User, clinic: Clinic, hours: int, as_of: datetime | None = None
) -> OnDutyShift:
    """Put oneself on duty for escalated alerts at a clinic."""
    _require(actor, "alerts.acknowledge", clinic.pk)
    if not 1 <= hours <= DUTY_SHIFT_MAX_HOURS:
        raise ValidationError({"hours": f"A shift lasts 1 to {DUTY_SHIFT_MAX_HOURS} hours."})
    now = _now(as_of)
    OnDutyShift.objects.filter(clinic=clinic, user=actor, ends_at__gt=now).update(ends_at=now)
    shift = OnDutyShift.objects.create(
        clinic=clinic, user=actor, starts_at=now, ends_at=now + timedelta(hours=hours)
    )
    _audit(
        Action.CREATE,
        actor=actor,
        obj=shift,
        patient_id=None,
        clinic_id=clinic.pk,
        detail=f"on duty for alerts until {shift.ends_at:%Y-%m-%d %H:%M} UTC",
    )
    return shift


@transaction.atomic
def duty_end(*, actor: User, clinic: Clinic, as_of: datetime | None = None) -> int:
    _require(actor, "alerts.acknowledge", clinic.pk)
    now = _now(as_of)
    ended = OnDutyShift.objects.filter(
        clinic=clinic, user=actor, starts_at__lte=now, ends_at__gt=now
    ).update(ends_at=now)
    if ended:
        record_event(
            action=Action.UPDATE,
            user=actor,
            clinic_id=clinic.pk,
            object_type="measures.ondutyshift",
            detail="went off duty for alerts",
        )
    return ended


# --- Relapse and booster recommendations -----------------------------------------------------


def _check_relapse(response: Response, now: datetime) -> BoosterRecommendation | None:
    """After each score, look for a relapse after response (clinical.detect_relapse); raise one
    booster recommendation per relapse for the prescriber."""
    if response.instrument not in BOOSTER_INSTRUMENTS:
        return None
    definition = INSTRUMENTS[response.instrument]
    # detect_relapse confirms a relapse on a score at or above the instrument's moderate
    # threshold, so a lower score cannot confirm a new one: skip the work.
    if definition.moderate_threshold is None or response.total < definition.moderate_threshold:
        return None
    enrolment = selectors.active_enrolment(response.patient_id)
    if enrolment is None:
        return None
    tz = ZoneInfo(response.patient.clinic.timezone)
    points = selectors.score_points(response.patient_id, response.instrument, tz)
    result = trajectories.trajectory(
        response.instrument,
        points,
        timeline_for(enrolment),
        settings=selectors.clinical_settings_for(response.clinic_id),
    )
    if result.relapse_on is None or result.baseline is None or result.latest is None:
        return None
    recommendation, created = BoosterRecommendation.objects.get_or_create(
        patient_id=response.patient_id,
        instrument=response.instrument,
        relapse_on=result.relapse_on,
        defaults={
            "clinic_id": response.clinic_id,
            "enrolment": enrolment,
            "baseline_total": result.baseline.total,
            "latest_total": result.latest.total,
            "prescriber": enrolment.prescriber,
            "created_at": now,
        },
    )
    if created:
        record_event(
            action=Action.CREATE,
            username="system",
            clinic_id=response.clinic_id,
            patient_id=response.patient_id,
            obj=recommendation,
            detail=f"booster recommended: {definition.title} relapse confirmed "
            f"{result.relapse_on} (baseline {result.baseline.total}, now {result.latest.total})",
        )
    return recommendation


@transaction.atomic
def booster_resolve(
    *,
    actor: User,
    recommendation: BoosterRecommendation,
    resolution: str,
    note: str = "",
    as_of: datetime | None = None,
) -> BoosterRecommendation:
    """The prescriber decides on a booster recommendation."""
    _require(actor, "booster.resolve", recommendation.clinic_id)
    if resolution not in BoosterResolution.values:
        raise ValidationError({"resolution": "Choose what was decided."})
    locked = BoosterRecommendation.objects.select_for_update().get(pk=recommendation.pk)
    if locked.resolved_at is not None:
        raise ValidationError({"__all__": "Already decided."})
    locked.resolved_at, locked.resolved_by = _now(as_of), actor
    locked.resolution, locked.note = resolution, note.strip()[:2000]
    locked.save(update_fields=["resolved_at", "resolved_by", "resolution", "note"])
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=locked,
        patient_id=locked.patient_id,
        clinic_id=locked.clinic_id,
        detail=f"booster recommendation: {locked.get_resolution_display()}",
    )
    return locked


# --- Check-ins and journal -------------------------------------------------------------------


@transaction.atomic
def checkin_record(
    *,
    actor: User,
    patient: Patient,
    mood_0_to_10: int,
    note: str = "",
    urgent: bool = False,
    source: str = "portal",
    as_of: datetime | None = None,
) -> CheckIn:
    """A patient's own mood check-in; marked urgent, it raises an alert."""
    _require_own(actor, patient)
    if isinstance(mood_0_to_10, bool) or not isinstance(mood_0_to_10, int):
        raise ValidationError({"mood_0_to_10": "Choose a number from 0 to 10."})
    if not 0 <= mood_0_to_10 <= 10:
        raise ValidationError({"mood_0_to_10": "Choose a number from 0 to 10."})
    if len(note) > 2000:
        raise ValidationError({"note": "Keep the note under 2,000 characters."})
    now = _now(as_of)
    checkin = CheckIn.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        mood_0_to_10=mood_0_to_10,
        note=note.strip(),
        urgent=urgent,
        recorded_at=now,
        source=source,
    )
    _audit(
        Action.CREATE,
        actor=actor,
        obj=checkin,
        patient_id=patient.pk,
        clinic_id=patient.clinic_id,
        detail=f"mood check-in {mood_0_to_10}/10" + (" (urgent)" if urgent else ""),
    )
    if urgent:
        alert_raise(
            patient,
            kind=AlertKind.URGENT_CHECKIN,
            priority=AlertPriority.SAME_DAY,
            summary=f"Check-in marked urgent (mood {mood_0_to_10}/10)",
            now=now,
            checkin=checkin,
        )
    return checkin


@transaction.atomic
def journal_entry_create(
    *,
    actor: User,
    patient: Patient,
    body: str,
    share: bool = False,
    urgent: bool = False,
    as_of: datetime | None = None,
) -> JournalEntry:
    """A patient's journal entry: private unless shared; urgent entries are shared and alert."""
    _require_own(actor, patient)
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Write something first."})
    if len(body) > 10000:
        raise ValidationError({"body": "Keep an entry under 10,000 characters."})
    now = _now(as_of)
    shared = share or urgent
    entry = JournalEntry.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        body=body,
        urgent=urgent,
        shared_with_care_team=shared,
        shared_at=now if shared else None,
        created_at=now,
    )
    _audit(
        Action.CREATE,
        actor=actor,
        obj=entry,
        patient_id=patient.pk,
        clinic_id=patient.clinic_id,
        detail="journal entry" + (" shared with the care team" if shared else " (private)"),
    )
    if urgent:
        alert_raise(
            patient,
            kind=AlertKind.URGENT_JOURNAL,
            priority=AlertPriority.SAME_DAY,
            summary="Journal entry marked urgent",
            now=now,
            journal_entry=entry,
        )
    return entry


@transaction.atomic
def journal_entry_set_sharing(
    *, actor: User, entry: JournalEntry, share: bool, as_of: datetime | None = None
) -> JournalEntry:
    """The patient shares an entry with the care team, or stops sharing it."""
    _require_own(actor, entry.patient)
    locked = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    if locked.urgent and not share:
        raise ValidationError({"__all__": "An entry marked urgent stays with the care team."})
    if locked.shared_with_care_team == share:
        return locked
    locked.shared_with_care_team = share
    locked.shared_at = _now(as_of) if share else None
    locked.save(update_fields=["shared_with_care_team", "shared_at"])
    _audit(
        Action.UPDATE,
        actor=actor,
        obj=locked,
        patient_id=locked.patient_id,
        clinic_id=locked.clinic_id,
        changes={"shared_with_care_team": {"old": not share, "new": share}},
    )
    return locked
