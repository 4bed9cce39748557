"""Measurement-based care in `make bench` (issue 7).

Before measuring, the bench clinic (10,000 patients) gets, once and kept in the bench database:

- one patient with two years of weekly PHQ-9 and GAD-7 scores, monthly MADRS and C-SSRS
  screens, a year of esketamine sessions and a month of mood check-ins: the chart with its
  trajectories and the scores API are measured on this patient;
- 3,000 safety alerts spread over the clinic's patients across two years, 60 of them still
  waiting: the alert inbox is measured on them.

Rows are written in bulk (the services' per-row audit and relapse checks would take minutes);
they are the same rows the services write.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

PLAN_NAME = "Bench: two years of weekly scores"
WEEKS = 104
ALERTS = 3_000
OPEN_ALERTS = 60


def _phq9(total: int) -> dict[str, int]:
    values = sorted(min(3, max(0, total - 3 * i)) for i in range(8))
    return {f"q{i}": v for i, v in enumerate([*values, 0], start=1)}


def _trajectory_patient(ctx: Any) -> int:
    from ketaclinic.accounts.models import Clinic
    from ketaclinic.clinical import INSTRUMENTS, score
    from ketaclinic.core import clock
    from ketaclinic.measures.models import (
        CheckIn,
        MeasurementEnrolment,
        MeasurementPlan,
        Response,
    )
    from ketaclinic.patients.models import Patient

    clinic = Clinic.objects.get(pk=ctx.clinic_id)
    plan = MeasurementPlan.objects.filter(clinic=clinic, name=PLAN_NAME).first()
    if plan is not None:
        return int(plan.enrolments.values_list("patient_id", flat=True).get())
    tz = ZoneInfo(clinic.timezone)
    today = clock.today_in(clinic.timezone)
    first = today - timedelta(days=7 * WEEKS)
    patient = (
        Patient.objects.filter(clinic=clinic, measurement_enrolments__isnull=True)
        .exclude(courses__isnull=False)
        .order_by("mrn")
        .first()
    )
    assert patient is not None
    plan = MeasurementPlan.objects.create(clinic=clinic, name=PLAN_NAME, is_active=False)
    MeasurementEnrolment.objects.create(
        clinic=clinic,
        patient=patient,
        plan=plan,
        protocol="esketamine_trd",
        first_session_on=first,
        plan_weeks=WEEKS,
        started_at=datetime.combine(first - timedelta(days=7), time(10), tzinfo=tz),
    )
    rng = random.Random(7)  # noqa: S311 (bench data)
    rows = []

    def add(code: str, answers: dict[str, Any], day: Any, hour: int) -> None:
        result = score(code, answers)
        definition = INSTRUMENTS[code]
        rows.append(
            Response(
                clinic=clinic,
                patient=patient,
                instrument=code,
                instrument_version=definition.version,
                answers={k: int(v) for k, v in result.answers.items()},
                total=result.total,
                severity=result.severity or "",
                flags=sorted(result.flags),
                subscores=dict(result.subscores),
                loinc_total=definition.loinc_total or "",
                completed_at=datetime.combine(day, time(hour), tzinfo=tz),
                source="portal",
            )
        )

    for week in range(-1, WEEKS):
        day = first + timedelta(days=7 * week)
        phq = 20 if week < 0 else max(2, min(24, int(20 * 0.9**week + 8 * (week % 26 > 20))))
        phq = max(0, min(24, phq + rng.randint(-2, 2)))
        add("phq9", _phq9(phq), day, 8)
        add("gad7", {f"q{i}": min(3, max(0, phq * 7 // 9 - 3 * (i - 1))) for i in range(1, 8)},
            day, 8)  # fmt: skip
        add("cssrs_screener", {"q1": False, "q2": False, "q6": False}, day, 8)
        if week % 4 == 0:
            add("madrs", {f"q{i}": min(6, max(0, phq * 16 // 10 - 6 * (i - 1)))
                          for i in range(1, 11)}, day, 14)  # fmt: skip
    Response.objects.bulk_create(rows, batch_size=1000)
    CheckIn.objects.bulk_create(
        CheckIn(
            clinic=clinic,
            patient=patient,
            mood_0_to_10=rng.randint(4, 8),
            recorded_at=datetime.combine(today - timedelta(days=d), time(20), tzinfo=tz),
        )
        for d in range(30, 0, -1)
    )
    return int(patient.pk)


def _alerts(ctx: Any) -> None:
    from ketaclinic.accounts.models import User
    from ketaclinic.core import clock
    from ketaclinic.measures.models import SafetyAlert

    have = SafetyAlert.objects.filter(clinic_id=ctx.clinic_id).count()
    if have >= ALERTS:
        return
    nurse = User.objects.get(username=ctx.user.username)
    rng = random.Random(11)  # noqa: S311 (bench data)
    now = clock.now()
    kinds = [("phq9_item9", "same_day"), ("cssrs", "same_day"), ("cssrs", "immediate"),
             ("urgent_checkin", "same_day"), ("urgent_journal", "same_day")]  # fmt: skip
    rows = []
    for index in range(ALERTS - have):
        kind, priority = rng.choice(kinds)
        waiting = index < OPEN_ALERTS
        created = now - timedelta(
            minutes=rng.randint(5, 600) if waiting else rng.randint(60 * 24, 60 * 24 * 730)
        )
        rows.append(
            SafetyAlert(
                clinic_id=ctx.clinic_id,
                patient_id=ctx.patient_id(rng.randrange(len(ctx.patient_ids))),
                kind=kind,
                priority=priority,
                cssrs_risk="high" if priority == "immediate" else "",
                summary=f"bench alert {index}",
                created_at=created,
                acknowledged_at=None if waiting else created + timedelta(minutes=35),
                acknowledged_by=None if waiting else nurse,
                action="" if waiting else "called_patient",
            )
        )
    SafetyAlert.objects.bulk_create(rows, batch_size=1000)


def prepare(ctx: Any) -> None:
    ctx.extra["trajectory_patient_id"] = _trajectory_patient(ctx)
    _alerts(ctx)
