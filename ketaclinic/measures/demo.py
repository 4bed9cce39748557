"""Demo data for measurement-based care: months of score trajectories, check-ins, journal
entries, alerts of each kind and booster recommendations, through the services.

Deterministic for a given seed and day; re-running adds nothing to a clinic that already has
enrolments, except that the portal demo patient always has questionnaires due (they expire).

Archetypes (PHQ-9 pre-session during induction, weekly in maintenance; GAD-7 weekly; MADRS by a
clinician at baseline, end of induction and monthly; C-SSRS before sessions):

* responder / remitter: response by sessions 4-6 (McInnes 2022: ~54% respond, ~29% remit);
* late responder (esketamine): response only after session 8;
* partial responder, non-responder, worsened (~8% worsen, McInnes 2022);
* relapse after response: response at the end of induction, then scores climb back above the
  moderate threshold a few weeks later, so `detect_relapse` confirms it and a booster is
  recommended. The portal demo patient (`patient.demo`) follows this story.

Patients on a demo treatment course are measured through their course (its appointments and
prescriber), with their intake baseline questionnaires adopted as pre-course scores.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from ketaclinic.accounts.choices import Role
from ketaclinic.accounts.models import Clinic, User
from ketaclinic.core import clock
from ketaclinic.measures import services
from ketaclinic.measures.choices import (
    AlertAction,
    AlertKind,
    AlertPriority,
    AssignmentStatus,
    EnrolmentStatus,
    Respondent,
    ResponseSource,
)
from ketaclinic.measures.models import (
    Assignment,
    CheckIn,
    JournalEntry,
    MeasurementEnrolment,
    MeasurementPlan,
    SafetyAlert,
)
from ketaclinic.measures.timeline import build_timeline
from ketaclinic.patients.models import Patient

# Patients measured per clinic (the first by MRN); the rest of the demo clinic is not enrolled.
MEASURED = {"boston": 30, "denver": 10}
ARCHETYPES = (
    ("remitter", 6),
    ("responder", 6),
    ("relapse", 5),
    ("late_responder", 4),
    ("partial", 4),
    ("non_responder", 4),
    ("worsened", 2),
    ("upcoming", 3),
)

_JOURNAL_LINES = (
    "Slept better last night than I have in weeks.",
    "Hard day at work, but I noticed I didn't spiral like I used to.",
    "The infusion felt strange but calm. Walked by the river after.",
    "Talked to my sister for an hour. Felt more like myself.",
    "Low energy today. Still got out of bed and made breakfast.",
    "Therapist and I talked about what I want the next months to look like.",
)


@dataclass(frozen=True)
class _Story:
    archetype: str
    protocol: str
    start_days_ago: int
    baseline: int


def _curve(story: _Story, day: int, last_induction_day: int) -> float:
    """The expected PHQ-9 total `day` days after the first session (before noise)."""
    b = story.baseline
    kind = story.archetype
    if day < 0:
        return b
    if kind == "remitter":
        return b * max(0.15, 0.93**day)
    if kind == "responder":
        return b * max(0.38, 0.95**day)
    if kind == "partial":
        return b * max(0.62, 0.97**day)
    if kind == "non_responder":
        return b * (0.92 + 0.04 * ((day // 7) % 2))
    if kind == "worsened":
        return b * min(1.35, 1 + 0.02 * day)
    if kind == "late_responder":
        # Esketamine twice weekly: little change for four weeks, response from week 5-6.
        return b * (0.9 if day < 28 else max(0.35, 0.9 - 0.035 * (day - 28)))
    if kind == "relapse":
        if day <= last_induction_day + 21:
            return b * max(0.3, 0.93**day)
        return min(b * 0.95, b * 0.3 + 1.6 * (day - last_induction_day - 21))
    return b


def _total(value: float, rng: random.Random, high: int = 27) -> int:
    return max(0, min(high, round(value + rng.uniform(-1.5, 1.5))))


def _phq9(total: int, *, item9: int = 0) -> dict[str, int]:
    rest = total - item9
    values = [min(3, max(0, rest - 3 * i)) for i in range(8)]
    values.sort()  # spread the highest answers over the last items (sleep, energy, ...)
    return {f"q{i}": v for i, v in enumerate([*values, item9], start=1)}


def _gad7(total: int) -> dict[str, int]:
    return {f"q{i}": min(3, max(0, total - 3 * (i - 1))) for i in range(1, 8)}


def _madrs(total: int) -> dict[str, int]:
    return {f"q{i}": min(6, max(0, total - 6 * (i - 1))) for i in range(1, 11)}


def _cssrs(level: str) -> dict[str, bool]:
    if level == "low":
        return {"q1": True, "q2": False, "q6": False}
    if level == "high":
        return {"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6": False}
    return {"q1": False, "q2": False, "q6": False}


def _at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz)


def _clinicians(clinic: Clinic) -> tuple[User, User]:
    prescriber = (
        User.objects.filter(memberships__clinic=clinic, memberships__role=Role.PRESCRIBER)
        .order_by("username")
        .first()
    )
    nurse = (
        User.objects.filter(memberships__clinic=clinic, memberships__role=Role.NURSE)
        .order_by("username")
        .first()
    )
    if prescriber is None or nurse is None:
        raise RuntimeError(f"demo clinic {clinic.slug} needs a prescriber and a nurse")
    return prescriber, nurse


def _plan(clinic: Clinic, prescriber: User) -> MeasurementPlan:
    plan = MeasurementPlan.objects.filter(clinic=clinic, is_default=True).first()
    return plan or services.plan_create_starter(actor=prescriber, clinic=clinic)


def _stories(rng: random.Random, count: int) -> list[_Story]:
    kinds = [kind for kind, weight in ARCHETYPES for _ in range(weight)]
    stories = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        protocol = "esketamine_trd" if kind == "late_responder" else "iv_ketamine_induction"
        if kind != "late_responder" and rng.random() < 0.25:
            protocol = "iv_ketamine_induction_3x_weekly"
        start = {
            "upcoming": rng.randint(-6, -2),
            "relapse": rng.randint(70, 110),
            "late_responder": rng.randint(75, 120),
        }.get(kind, rng.randint(35, 180))
        stories.append(_Story(kind, protocol, start, rng.randint(15, 23)))
    return stories


def _seed_patient(
    patient: Patient,
    story: _Story,
    *,
    plan: MeasurementPlan,
    prescriber: User,
    nurse: User,
    today: date,
    now: datetime,
    rng: random.Random,
) -> None:
    tz = ZoneInfo(patient.clinic.timezone)
    first = today - timedelta(days=story.start_days_ago)
    weeks = 26 if story.protocol == "esketamine_trd" else None
    timeline = build_timeline(story.protocol, first, weeks=weeks)
    enrolled_at = _at(first - timedelta(days=7), 10, tz)
    enrolment = services.enrolment_start(
        actor=nurse,
        patient=patient,
        plan=plan,
        protocol=story.protocol,
        first_session_on=first,
        prescriber=prescriber,
        plan_weeks=weeks,
        as_of=enrolled_at,
    )
    last_induction = timeline.last_induction_session
    last_induction_day = (last_induction.on - first).days if last_induction else 21

    def submit(instrument: str, answers: Mapping[str, object], at: datetime, actor: User) -> None:
        if at >= now:
            return
        services.response_submit(
            actor=actor,
            answers=answers,
            source=ResponseSource.CLINIC,
            patient=patient,
            instrument=instrument,
            as_of=at,
        )

    # Baseline a few days before the first session.
    base_day = first - timedelta(days=rng.randint(2, 6))
    submit("phq9", _phq9(story.baseline), _at(base_day, 11, tz), nurse)
    submit("gad7", _gad7(max(5, story.baseline - rng.randint(2, 6))), _at(base_day, 11, tz), nurse)
    madrs_base = min(48, round(story.baseline * 1.6) + rng.randint(-2, 2))
    submit("madrs", _madrs(madrs_base), _at(base_day, 12, tz), prescriber)

    score_days = {s.on for s in timeline.sessions if s.on < today and s.on > first}
    day = last_induction.on + timedelta(days=7) if last_induction else first
    while day < today:
        score_days.add(day)
        day += timedelta(days=7)
    worst_item9_day = None
    if story.archetype in {"non_responder", "worsened"}:
        worst_item9_day = sorted(score_days)[len(score_days) // 2] if score_days else None
    last_gad7: date | None = None
    induction_days = {s.on for s in timeline.sessions if s.phase == "induction"}
    for day in sorted(score_days):
        offset = (day - first).days
        total = _total(_curve(story, offset, last_induction_day), rng)
        item9 = 1 if day == worst_item9_day and total >= 2 else 0
        at = _at(day, 8, tz) + timedelta(minutes=rng.randint(0, 50))
        submit("phq9", _phq9(total, item9=item9), at, nurse)
        if last_gad7 is None or (day - last_gad7).days >= 6:
            submit("gad7", _gad7(round(total * 0.8)), at + timedelta(minutes=3), nurse)
            last_gad7 = day
        if day in induction_days:
            submit("cssrs_screener", _cssrs("none"), at + timedelta(minutes=5), nurse)
    for months in range(0, 8):
        day = (last_induction.on + timedelta(days=1)) if last_induction else first
        day += timedelta(days=30 * months)
        if day >= today:
            break
        offset = (day - first).days
        madrs = min(60, round(_curve(story, offset, last_induction_day) * 1.6))
        submit("madrs", _madrs(_total(madrs, rng, high=60)), _at(day, 14, tz), prescriber)
    if story.archetype == "upcoming":
        return
    _seed_checkins(patient, story, first, today, tz, rng, last_induction_day)
    if enrolment.status == EnrolmentStatus.ACTIVE and rng.random() < 0.1:
        services.enrolment_end(
            actor=prescriber, enrolment=enrolment, reason="Course completed", as_of=now
        )


def _seed_checkins(
    patient: Patient,
    story: _Story,
    first: date,
    today: date,
    tz: ZoneInfo,
    rng: random.Random,
    last_induction_day: int,
) -> None:
    # Check-ins and journal entries are patient-entered in the portal; the demo writes their
    # rows directly (there is no patient login to act as) and raises alerts through the service.
    rows = []
    for back in range(30, 0, -1):
        day = today - timedelta(days=back)
        if day < first or rng.random() < 0.3:
            continue
        phq = _curve(story, (day - first).days, last_induction_day)
        mood = max(0, min(10, round(10 - phq / 2.7 + rng.uniform(-1, 1))))
        rows.append(
            CheckIn(
                clinic_id=patient.clinic_id,
                patient=patient,
                mood_0_to_10=mood,
                note=rng.choice(["", "", "", "Tired but okay.", "Good walk today."]),
                recorded_at=_at(day, 20, tz) + timedelta(minutes=rng.randint(0, 90)),
            )
        )
    CheckIn.objects.bulk_create(rows)
    for back in (20, 9, 3):
        if rng.random() < 0.5:
            continue
        created = _at(today - timedelta(days=back), 21, tz)
        JournalEntry.objects.create(
            clinic_id=patient.clinic_id,
            patient=patient,
            body=rng.choice(_JOURNAL_LINES),
            shared_with_care_team=rng.random() < 0.5,
            shared_at=created,
            created_at=created,
        )


def _seed_alerts(
    clinic: Clinic, patients: list[Patient], nurse: User, now: datetime, rng: random.Random
) -> None:
    """A few alerts of each kind besides those the scores raised, then acknowledge the older
    ones as a clinic would (the newest stay waiting in the inbox)."""
    picks = patients[:5]
    if len(picks) < 5:
        return
    for patient, hours_ago in ((picks[0], 2), (picks[1], 30)):
        at = now - timedelta(hours=hours_ago)
        checkin = CheckIn.objects.create(
            clinic_id=clinic.pk,
            patient=patient,
            mood_0_to_10=2,
            note="Really struggling tonight. Could someone call me tomorrow?",
            urgent=True,
            recorded_at=at,
        )
        services.alert_raise(
            patient,
            kind=AlertKind.URGENT_CHECKIN,
            priority=AlertPriority.SAME_DAY,
            summary="Check-in marked urgent (mood 2/10)",
            now=at,
            checkin=checkin,
        )
    entry_at = now - timedelta(hours=5)
    entry = JournalEntry.objects.create(
        clinic_id=clinic.pk,
        patient=picks[2],
        body="I've had a rough few days and the dark thoughts came back. Please call me.",
        urgent=True,
        shared_with_care_team=True,
        shared_at=entry_at,
        created_at=entry_at,
    )
    services.alert_raise(
        picks[2],
        kind=AlertKind.URGENT_JOURNAL,
        priority=AlertPriority.SAME_DAY,
        summary="Journal entry marked urgent",
        now=entry_at,
        journal_entry=entry,
    )
    for patient, level, hours_ago in ((picks[3], "low", 50), (picks[4], "high", 1)):
        services.response_submit(
            actor=nurse,
            answers=_cssrs(level),
            source=ResponseSource.CLINIC,
            patient=patient,
            instrument="cssrs_screener",
            as_of=now - timedelta(hours=hours_ago),
        )
    # Acknowledge everything older than a day; a fifth of those waited past the escalation time.
    for alert in SafetyAlert.objects.filter(
        clinic=clinic, acknowledged_at__isnull=True, created_at__lt=now - timedelta(hours=24)
    ).order_by("pk"):
        waited = timedelta(minutes=rng.choice([12, 25, 40, 55, 95]))
        action = rng.choice([AlertAction.CALLED_PATIENT, AlertAction.SAFETY_PLAN])
        services.alert_acknowledge(
            actor=nurse,
            alert=alert,
            action=action,
            note="Spoke with the patient; safe, follow-up at the next session.",
            as_of=alert.created_at + waited,
        )


def _ensure_portal_assignments(patient: Patient, nurse: User, now: datetime) -> None:
    """The portal demo patient always has a PHQ-9 and a GAD-7 to answer."""
    services.assignments_expire(as_of=now)
    for instrument in ("phq9", "gad7"):
        open_now = Assignment.objects.filter(
            patient=patient, instrument=instrument, status=AssignmentStatus.PENDING
        ).exists()
        if not open_now:
            services.assignment_create(
                actor=nurse,
                patient=patient,
                instrument=instrument,
                respondent=Respondent.PATIENT,
                open_hours=7 * 24,
            )


@transaction.atomic
def seed_measures(*, clinics: list[Clinic], portal_user: User | None, seed: int) -> None:
    """Seed every demo clinic that has no enrolments yet; keep the portal patient's to-do list."""
    now = clock.now()
    rng = random.Random(seed * 7 + 1)  # noqa: S311 (demo data, not security)
    portal_patient = Patient.objects.filter(user=portal_user).first() if portal_user else None
    for clinic in clinics:
        prescriber, nurse = _clinicians(clinic)
        if not MeasurementEnrolment.objects.filter(clinic=clinic).exists():
            plan = _plan(clinic, prescriber)
            count = MEASURED.get(clinic.slug, 10)
            # Patients on a treatment course (courses demo) follow their course instead: the
            # worker's periodic run (and the end of this seed) puts them on the default plan.
            patients = list(
                Patient.objects.filter(clinic=clinic)
                .exclude(user=portal_user)
                .exclude(courses__isnull=False)
                .select_related("clinic")
                .order_by("mrn")[:count]
            )
            stories = _stories(rng, len(patients))
            if (
                portal_patient is not None
                and portal_patient.clinic_id == clinic.pk
                and not portal_patient.courses.exists()
            ):
                patients.insert(
                    0, Patient.objects.select_related("clinic").get(pk=portal_patient.pk)
                )
                stories.insert(0, _Story("relapse", "iv_ketamine_induction", 60, 19))
            today = now.astimezone(ZoneInfo(clinic.timezone)).date()
            for patient, story in zip(patients, stories, strict=True):
                _seed_patient(
                    patient,
                    story,
                    plan=plan,
                    prescriber=prescriber,
                    nurse=nurse,
                    today=today,
                    now=now,
                    rng=rng,
                )
            _seed_alerts(clinic, patients[1:], nurse, now, rng)
        if portal_patient is not None and portal_patient.clinic_id == clinic.pk:
            _ensure_portal_assignments(portal_patient, nurse, now)
    # What the worker would have done by now: courses on the default plan, questionnaires due
    # today, MADRS to enter.
    services.enrolments_follow_courses(as_of=now)
    services.assignments_schedule(as_of=now)
