"""Assignments created by the scheduler per phase, with a controlled clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.measures import services
from ketaclinic.measures.choices import AssignmentStatus, Cadence, Phase, Respondent
from ketaclinic.measures.models import Assignment
from ketaclinic.measures.timeline import build_timeline
from tests.measures import factories
from tests.measures.conftest import MONDAY

pytestmark = pytest.mark.django_db


def keys() -> list[tuple[str, str, str]]:
    return list(
        Assignment.objects.order_by("available_at", "pk").values_list(
            "instrument", "occurrence_key", "status"
        )
    )


def test_weekly_questionnaire_is_created_once_per_week_and_expires(world, enrolled, clock):
    created = services.assignments_schedule()
    assert [(a.instrument, a.occurrence_key) for a in created] == [("phq9", MONDAY.isoformat())]
    assert services.assignments_schedule() == []  # idempotent
    a = created[0]
    assert a.respondent == Respondent.PATIENT and a.enrolment == enrolled
    assert a.expires_at - a.available_at == timedelta(hours=72)
    assert a.next_reminder_at == a.available_at + timedelta(hours=24)
    assert (
        AuditEvent.objects.filter(
            action="create", object_type="measures.assignment", patient_id=world.patient_a.pk
        ).count()
        == 1
    )

    clock.shift(timedelta(days=3, minutes=1))
    assert services.assignments_expire() == 1
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.EXPIRED

    clock.shift(timedelta(days=4))
    second = services.assignments_schedule()
    assert [x.occurrence_key for x in second] == [(MONDAY + timedelta(days=7)).isoformat()]


def test_phase_items_follow_the_course(world, clock):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(
        prescriber,
        world.clinic_a,
        {"instrument": "gad7", "cadence": Cadence.WEEKLY, "phase": Phase.INDUCTION},
        {"instrument": "phq9", "cadence": Cadence.WEEKLY, "phase": Phase.MAINTENANCE},
    )
    factories.enrol(prescriber, world.patient_a, plan, first_session_on=MONDAY)
    assert [(i, k) for i, k, _ in keys()] == []
    services.assignments_schedule()
    assert keys() == [("gad7", MONDAY.isoformat(), "pending")]

    last = build_timeline("iv_ketamine_induction", MONDAY).sessions[-1].on
    clock.move_to(
        (services.clock.now() + timedelta(days=(last - MONDAY).days + 1)).replace(minute=5)
    )
    services.assignments_expire()
    services.assignments_schedule()
    phq = [k for i, k, s in keys() if i == "phq9"]
    assert phq == [(last + timedelta(days=1)).isoformat()]  # maintenance starts the day after
    gad = [k for i, k, s in keys() if i == "gad7"]
    assert all(k <= last.isoformat() for k in gad)  # none in maintenance


def test_before_each_session_opens_48_hours_ahead(world, clock):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(
        prescriber,
        world.clinic_a,
        {
            "instrument": "cssrs_screener",
            "cadence": Cadence.BEFORE_EACH_SESSION,
            "window_hours": 48,
        },
    )
    # First session in 3 days: nothing yet; 2 days before it, it opens.
    factories.enrol(prescriber, world.patient_a, plan, first_session_on=MONDAY + timedelta(days=3))
    assert services.assignments_schedule() == []
    clock.shift(timedelta(days=1))
    created = services.assignments_schedule()
    assert [(a.occurrence_key, a.session_number) for a in created] == [("s1", 1)]


def test_same_instrument_is_asked_once_when_two_items_fall_together(world, clock):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(
        prescriber,
        world.clinic_a,
        {"instrument": "phq9", "cadence": Cadence.BEFORE_EACH_SESSION, "window_hours": 48},
        {"instrument": "phq9", "cadence": Cadence.WEEKLY},
    )
    factories.enrol(prescriber, world.patient_a, plan, first_session_on=MONDAY)
    created = services.assignments_schedule()
    assert len(created) == 1  # the pre-session PHQ-9 covers this week's
    services.response_submit(
        actor=world.users["patient"],
        assignment=created[0],
        answers=factories.phq9(12),
        source="portal",
    )
    clock.shift(timedelta(hours=1))
    assert services.assignments_schedule() == []  # answered after the weekly one opened


def test_clinician_items_are_not_sent_to_the_patient(world, clock, mailoutbox):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(
        prescriber,
        world.clinic_a,
        {"instrument": "madrs", "cadence": Cadence.AT_BASELINE, "respondent": "clinician",
         "window_hours": 168},
    )  # fmt: skip
    factories.enrol(prescriber, world.patient_a, plan, first_session_on=MONDAY + timedelta(days=2))
    (madrs,) = services.assignments_schedule()
    assert madrs.respondent == Respondent.CLINICIAN and madrs.next_reminder_at is None
    assert services.assignments_deliver_due() == 0
    assert mailoutbox == []


def test_ending_the_plan_cancels_open_questionnaires_and_stops_scheduling(world, enrolled, clock):
    services.assignments_schedule()
    services.enrolment_end(actor=world.users["nurse"], enrolment=enrolled, reason="Moved away")
    assert keys() == [("phq9", MONDAY.isoformat(), "cancelled")]
    clock.shift(timedelta(days=7))
    assert services.assignments_schedule() == []


def test_plan_rules_are_checked(world):
    prescriber = world.users["prescriber"]
    plan = factories.empty_plan(prescriber, world.clinic_a)
    with pytest.raises(ValidationError) as licensed:
        services.plan_item_add(
            actor=prescriber,
            plan=plan,
            instrument="madrs",
            phase=Phase.ANY,
            cadence=Cadence.MONTHLY,
            respondent=Respondent.PATIENT,
        )
    assert "licensed" in licensed.value.message_dict["respondent"][0]
    with pytest.raises(ValidationError) as no_days:
        services.plan_item_add(
            actor=prescriber,
            plan=plan,
            instrument="pcl5",
            phase=Phase.ANY,
            cadence=Cadence.EVERY_N_DAYS,
            respondent=Respondent.PATIENT,
        )
    assert "interval_days" in no_days.value.message_dict
    with pytest.raises(ValidationError):
        services.plan_item_add(
            actor=prescriber,
            plan=plan,
            instrument="moaas",  # an in-session observation, not a questionnaire
            phase=Phase.ANY,
            cadence=Cadence.WEEKLY,
            respondent=Respondent.CLINICIAN,
        )
    with pytest.raises(PermissionDenied):
        services.plan_item_add(
            actor=world.users["nurse"],
            plan=plan,
            instrument="phq9",
            phase=Phase.ANY,
            cadence=Cadence.WEEKLY,
            respondent=Respondent.PATIENT,
        )
    assert plan.items.count() == 0


def test_starter_plan_holds_the_issue_defaults(world):
    plan = services.plan_create_starter(
        actor=world.users["clinic_admin"], clinic=world.clinic_a, ptsd=True
    )
    items = {(i.instrument, i.cadence, i.phase, i.respondent) for i in plan.items.all()}
    assert ("phq9", "before_each_session", "any", "patient") in items
    assert ("cssrs_screener", "before_each_session", "any", "patient") in items
    assert ("gad7", "weekly", "induction", "patient") in items
    assert ("pcl5", "every_n_days", "any", "patient") in items
    assert ("madrs", "end_of_induction", "any", "clinician") in items
    assert ("madrs", "monthly", "maintenance", "clinician") in items
    assert plan.is_default


def test_one_active_enrolment_per_patient(world, enrolled, phq9_weekly_plan):
    with pytest.raises(ValidationError):
        factories.enrol(
            world.users["nurse"], world.patient_a, phq9_weekly_plan, first_session_on=MONDAY
        )
    with pytest.raises(PermissionDenied):
        factories.enrol(
            world.users["front_desk"], world.patient_a2, phq9_weekly_plan, first_session_on=MONDAY
        )
    with pytest.raises(ValidationError) as other_clinic:
        factories.enrol(
            world.users["prescriber"],
            world.patient_a2,
            phq9_weekly_plan,
            first_session_on=MONDAY,
            prescriber=world.users["other_clinic_nurse"],
        )
    assert "prescriber" in other_clinic.value.message_dict
