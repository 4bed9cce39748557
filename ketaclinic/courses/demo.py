"""Demo chairs, clinic schedules, price lists and treatment courses at every stage.

Courses that started in the past (and today's sessions, whatever the hour of seeding) cannot be
booked through `courses.services`, which refuses times that have passed; they are written here
directly, after the same eligibility gate the service uses, and one system audit event records
the seeding. The planned course of the "needs review with override" patient is real service
output. Deterministic for a given day; idempotent (a patient with a course is left alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import PROTOCOLS, plan_course
from ketaclinic.core import clock
from ketaclinic.courses import scheduling, services
from ketaclinic.courses.choices import (
    DEFAULT_BILLING_CODES,
    PLAN_PHASES,
    AppointmentStatus,
    CoursePhase,
    CourseStatus,
    PriceKind,
)
from ketaclinic.courses.models import Appointment, Chair, ClinicSchedule, PriceItem, TreatmentCourse
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services as screening
from ketaclinic.screening.demo import Staff

CHAIRS = {
    "boston": (("Recliner 1", 1), ("Recliner 2", 1), ("Recliner 3", 1), ("Group room", 2)),
    "denver": (("Chair A", 1), ("Chair B", 1)),
}
PRICES = {
    "boston": {
        PriceKind.CONSULT: "450.00",
        PriceKind.IV_INFUSION: "550.00",
        PriceKind.IV_EXTRA_HOUR: "150.00",
        PriceKind.IM_SESSION: "425.00",
        PriceKind.ORAL_SESSION: "300.00",
        PriceKind.ESKETAMINE_UP_TO_56: "850.00",
        PriceKind.ESKETAMINE_OVER_56: "950.00",
        PriceKind.ESKETAMINE_DRUG_PER_MG: "18.30",
    },
    "denver": {
        PriceKind.CONSULT: "400.00",
        PriceKind.IV_INFUSION: "495.00",
        PriceKind.ESKETAMINE_UP_TO_56: "800.00",
        PriceKind.ESKETAMINE_OVER_56: "900.00",
    },
}


def seed_clinic_setup(clinics: dict[str, Any], admins: dict[str, Any]) -> None:
    """Chairs, opening days (Boston opens Saturdays) and the price list, once."""
    for slug, clinic in clinics.items():
        if not ClinicSchedule.objects.filter(clinic=clinic).exists():
            services.clinic_schedule_update(
                actor=admins[slug],
                clinic=clinic,
                data={
                    "clinic_days": "0,1,2,3,4,5" if slug == "boston" else "0,1,2,3,4",
                    "opens_at": time(8, 0),
                    "closes_at": time(18, 0),
                },
            )
        existing = set(Chair.objects.filter(clinic=clinic).values_list("name", flat=True))
        for name, capacity in CHAIRS[slug]:
            if name not in existing:
                services.chair_save(
                    actor=admins[slug],
                    clinic_id=clinic.pk,
                    data={"name": name, "capacity": capacity, "is_active": True},
                )
        priced = set(PriceItem.objects.filter(clinic=clinic).values_list("kind", flat=True))
        for kind, price in PRICES[slug].items():
            if kind not in priced:
                services.price_item_set(
                    actor=admins[slug],
                    clinic_id=clinic.pk,
                    kind=kind,
                    unit_price=Decimal(price),
                    billing_codes=DEFAULT_BILLING_CODES[kind],
                )


def demo_day(clinic: Any) -> date:
    """Today, or the next clinic day when the clinic is closed today (so the board has rows)."""
    weekdays = scheduling.schedule_for(clinic).weekdays
    day = clock.today_in(clinic.timezone)
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


def _chair(clinic: Any, name: str) -> Chair:
    return Chair.objects.get(clinic=clinic, name=name)


def _course(
    patient: Patient,
    prescriber: Any,
    protocol: str,
    start: date,
    *,
    status: str,
    phase: str,
    weeks: int | None = None,
) -> TreatmentCourse:
    decision, override, _ = screening.eligibility_gate(
        actor=prescriber, patient=patient, treatment=PROTOCOLS[protocol].treatment
    )
    screening.intake_accept_for_course(patient=patient)
    now = clock.now()
    return TreatmentCourse.objects.create(
        patient=patient,
        clinic=patient.clinic,
        treatment=PROTOCOLS[protocol].treatment,
        protocol=protocol,
        status=status,
        phase=phase,
        start_date=start,
        planned_weeks=weeks or PROTOCOLS[protocol].default_weeks,
        eligibility_decision=decision,
        eligibility_override=override,
        prescriber=prescriber,
        started_at=now if status != CourseStatus.PLANNED else None,
        ended_at=now if status == CourseStatus.COMPLETED else None,
    )


def _sessions(
    course: TreatmentCourse,
    rows: Sequence[tuple[date, str, str]],
    *,
    chair: Chair,
    at: time,
    actor: Any,
    first_number: int = 1,
) -> None:
    """rows: (day, phase, status); times in the clinic's zone; minutes by treatment."""
    schedule = scheduling.schedule_for(course.clinic)
    minutes = scheduling.chair_minutes(schedule, course.treatment)
    protocol = PROTOCOLS[course.protocol]
    phase_def = protocol.phases[0]
    for number, (day, phase, status) in enumerate(rows, start=first_number):
        starts = scheduling.local_datetime(course.clinic, day, at)
        Appointment.objects.create(
            course=course,
            patient=course.patient,
            clinic=course.clinic,
            chair=chair,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=minutes),
            number=number,
            phase=phase,
            dose_mg=phase_def.dose_mg,
            dose_mg_per_kg=phase_def.dose_mg_per_kg,
            infusion_minutes=phase_def.minutes,
            status=status,
            status_reason="Did not attend; phoned, feeling worse"
            if status == AppointmentStatus.MISSED
            else "",
            created_by=actor,
        )


def _past_or_future(day: date, today: date) -> str:
    return AppointmentStatus.COMPLETED if day < today else AppointmentStatus.SCHEDULED


def seed_courses(
    clinics: dict[str, Any], staff: dict[str, Staff], stages: dict[str, Patient]
) -> int:
    """Courses for the stages `screening.demo` prepared; returns how many were created."""
    created = 0
    boston, denver = clinics["boston"], clinics["denver"]
    b, d = staff["boston"], staff["denver"]
    today = demo_day(boston)
    weekdays = scheduling.schedule_for(boston).weekdays

    def fresh(stage: str) -> Patient | None:
        patient = stages.get(stage)
        if patient is None or TreatmentCourse.objects.filter(patient=patient).exists():
            return None
        return patient

    if patient := fresh("needs_review_override"):
        # Planned through the service from the next clinic day; today's first dose is added
        # so the day board shows the override alert.
        course = _course(
            patient,
            b.prescriber,
            "esketamine_trd",
            today,
            status=CourseStatus.PLANNED,
            phase=CoursePhase.INDUCTION,
        )
        plan = plan_course("esketamine_trd", today, clinic_days=weekdays)
        _sessions(
            course,
            [(s.date, PLAN_PHASES[s.phase], AppointmentStatus.SCHEDULED) for s in plan],
            chair=_chair(boston, "Recliner 2"),
            at=time(13, 0),
            actor=b.prescriber,
        )
        created += 1

    if patient := fresh("active_iv_induction"):
        course = _course(
            patient,
            b.prescriber,
            "iv_ketamine_induction",
            today - timedelta(days=7),
            status=CourseStatus.ACTIVE,
            phase=CoursePhase.INDUCTION,
        )
        days = [today + timedelta(days=n) for n in (-7, -4, 0, 3, 7, 10)]
        days = [scheduling_next(day, weekdays) for day in days]
        _sessions(
            course,
            [(day, CoursePhase.INDUCTION, _past_or_future(day, today)) for day in days],
            chair=_chair(boston, "Recliner 1"),
            at=time(9, 0),
            actor=b.prescriber,
        )
        created += 1

    if patient := fresh("esketamine_maintenance"):
        start = today - timedelta(days=35)
        course = _course(
            patient,
            b.prescriber,
            "esketamine_trd",
            start,
            status=CourseStatus.ACTIVE,
            phase=CoursePhase.MAINTENANCE,
            weeks=12,
        )
        course.maintenance_cadence, course.maintenance_interval_weeks = "label", 1
        course.maintenance_started_on = today - timedelta(days=7)
        course.save()
        induction = plan_course("esketamine_trd", start, weeks=4, clinic_days=weekdays)
        rows = [(s.date, CoursePhase.INDUCTION, AppointmentStatus.COMPLETED) for s in induction]
        rows.append((today - timedelta(days=7), CoursePhase.MAINTENANCE, AppointmentStatus.MISSED))
        for weeks_ahead in (0, 1, 2, 4, 6):
            day = scheduling_next(today + timedelta(weeks=weeks_ahead), weekdays)
            rows.append((day, CoursePhase.MAINTENANCE, AppointmentStatus.SCHEDULED))
        _sessions(
            course, rows, chair=_chair(boston, "Recliner 3"), at=time(10, 30), actor=b.prescriber
        )
        created += 1

    if patient := fresh("completed"):
        start = today - timedelta(days=120)
        course = _course(
            patient,
            b.prescriber,
            "iv_ketamine_induction",
            start,
            status=CourseStatus.COMPLETED,
            phase=CoursePhase.INDUCTION,
        )
        plan = plan_course("iv_ketamine_induction", start, clinic_days=weekdays)
        _sessions(
            course,
            [(s.date, CoursePhase.INDUCTION, AppointmentStatus.COMPLETED) for s in plan],
            chair=_chair(boston, "Recliner 1"),
            at=time(14, 0),
            actor=b.prescriber,
        )
        created += 1

    if patient := fresh("esketamine_not_ready"):
        denver_day = demo_day(denver)
        course = _course(
            patient,
            d.prescriber,
            "esketamine_trd",
            denver_day,
            status=CourseStatus.PLANNED,
            phase=CoursePhase.INDUCTION,
        )
        plan = plan_course(
            "esketamine_trd", denver_day, clinic_days=scheduling.schedule_for(denver).weekdays
        )
        _sessions(
            course,
            [(s.date, PLAN_PHASES[s.phase], AppointmentStatus.SCHEDULED) for s in plan],
            chair=_chair(denver, "Chair A"),
            at=time(9, 30),
            actor=d.prescriber,
        )
        created += 1

    if created:
        record_event(
            action=Action.SYSTEM,
            object_type="courses.treatmentcourse",
            detail=f"demo seed: {created} treatment courses with their sessions",
        )
    return created


def scheduling_next(day: date, weekdays: tuple[int, ...]) -> date:
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


# Demo staff per clinic: prescriber, nurse, front desk, clinic administrator (demo/seed.py).
DEMO_STAFF = {
    "boston": ("dr.chen", "nurse.ortiz", "desk.jones", "admin.patel"),
    "denver": ("dr.okafor", "nurse.lee", "desk.ramos", "admin.nguyen"),
}


def seed_treatment(*, clinics: list[Any]) -> None:
    """Intake stages, chairs, schedules, prices and courses for the demo clinics (idempotent)."""
    from ketaclinic.accounts.models import User
    from ketaclinic.screening.demo import seed_intakes

    by_slug = {clinic.slug: clinic for clinic in clinics if clinic.slug in DEMO_STAFF}
    users = {
        u.username: u
        for u in User.objects.filter(
            username__in=[name for names in DEMO_STAFF.values() for name in names]
        )
    }
    if len(by_slug) != len(DEMO_STAFF) or len(users) != sum(map(len, DEMO_STAFF.values())):
        return
    staff = {
        slug: Staff(prescriber=users[p], nurse=users[n], front_desk=users[f])
        for slug, (p, n, f, _) in DEMO_STAFF.items()
    }
    seed_clinic_setup(by_slug, {slug: users[names[3]] for slug, names in DEMO_STAFF.items()})
    stages = seed_intakes(by_slug, staff)
    seed_courses(by_slug, staff, stages)
