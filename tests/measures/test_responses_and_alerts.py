"""Scoring through clinical.score, immutable responses, safety alerts (creation, routing,
acknowledgement, escalation) and booster recommendations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.clinical import INSTRUMENTS, score
from ketaclinic.measures import selectors, services
from ketaclinic.measures.choices import AlertKind, AlertPriority, AssignmentStatus
from ketaclinic.measures.models import (
    BoosterRecommendation,
    CheckIn,
    ImmutableRowError,
    Response,
    SafetyAlert,
)
from tests.factories import MembershipFactory, UserFactory
from tests.measures import factories
from tests.measures.conftest import MONDAY

pytestmark = pytest.mark.django_db


@pytest.fixture
def assignment(world, enrolled, clock):
    (created,) = services.assignments_schedule()
    return created


def submit_as_patient(world, assignment, answers):
    return services.response_submit(
        actor=world.users["patient"], assignment=assignment, answers=answers, source="portal"
    )


def test_patient_submission_is_scored_by_the_clinical_rules_and_stored_with_version(
    world, assignment
):
    answers = factories.phq9(14)
    response = submit_as_patient(world, assignment, answers)
    expected = score("phq9", answers)
    assert (
        (response.total, response.severity)
        == (expected.total, expected.severity)
        == (
            14,
            "moderate",
        )
    )
    assert response.instrument_version == INSTRUMENTS["phq9"].version
    assert response.loinc_total == "44261-6"
    assert response.answers == answers and response.flags == []
    assignment.refresh_from_db()
    assert assignment.status == AssignmentStatus.COMPLETED and assignment.draft_answers == {}
    assert AuditEvent.objects.filter(
        action="create", object_type="measures.response", patient_id=world.patient_a.pk
    ).exists()
    assert SafetyAlert.objects.count() == 0


def test_bad_answers_are_refused_and_change_nothing(world, assignment):
    with pytest.raises(ValidationError) as exc:
        submit_as_patient(world, assignment, {**factories.phq9(10), "q3": 7})
    assert "q3" in exc.value.message_dict["answers"][0]
    assignment.refresh_from_db()
    assert assignment.status == AssignmentStatus.PENDING
    assert Response.objects.count() == 0


def test_a_patient_cannot_answer_someone_elses_questionnaire(world, assignment):
    other = UserFactory(username="patient_b")
    MembershipFactory(user=other, clinic=world.clinic_a, role="patient")
    world.patient_a2.user = other
    world.patient_a2.save()
    with pytest.raises(PermissionDenied):
        services.response_submit(
            actor=other, assignment=assignment, answers=factories.phq9(3), source="portal"
        )
    assert Response.objects.count() == 0


def test_closed_questionnaires_take_no_answers(world, assignment, clock):
    clock.shift(timedelta(days=4))
    with pytest.raises(ValidationError):
        submit_as_patient(world, assignment, factories.phq9(3))
    assert Response.objects.count() == 0


def test_responses_and_check_ins_are_immutable(world, assignment):
    response = submit_as_patient(world, assignment, factories.phq9(9))
    response.total = 2
    with pytest.raises(ImmutableRowError):
        response.save()
    with pytest.raises(ImmutableRowError):
        response.delete()
    checkin = services.checkin_record(
        actor=world.users["patient"], patient=world.patient_a, mood_0_to_10=6
    )
    with pytest.raises(ImmutableRowError):
        checkin.save()
    assert Response.objects.get(pk=response.pk).total == 9


def test_the_database_refuses_to_change_a_response(world, assignment):
    """PostgreSQL: a trigger rejects UPDATE and DELETE whoever connects as the app (migration
    0002). SQLite, the embedded demo database, relies on the model guard."""
    response = submit_as_patient(world, assignment, factories.phq9(9))
    checkin = services.checkin_record(
        actor=world.users["patient"], patient=world.patient_a, mood_0_to_10=6
    )
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic():
            Response.objects.filter(pk=response.pk).update(total=1)
        with pytest.raises(DatabaseError), transaction.atomic():
            CheckIn.objects.filter(pk=checkin.pk).delete()
    else:
        with pytest.raises(ImmutableRowError):
            Response.objects.get(pk=response.pk).save()
    assert Response.objects.get(pk=response.pk).total == 9
    assert CheckIn.objects.filter(pk=checkin.pk).exists()


def test_phq9_item9_raises_a_same_day_alert_for_the_prescriber(world, assignment):
    response = submit_as_patient(world, assignment, factories.phq9(15, item9=2))
    assert response.flags == ["suicidal_ideation"]
    (alert,) = SafetyAlert.objects.all()
    assert alert.kind == AlertKind.PHQ9_ITEM9 and alert.priority == AlertPriority.SAME_DAY
    assert alert.assigned_to == world.users["prescriber"]
    assert alert.response == response and alert.escalated_at is None
    assert "item 9 answered 2" in alert.summary


@pytest.mark.parametrize(
    ("answers", "risk", "priority"),
    [
        ({"q1": True, "q2": False, "q6": False}, "low", AlertPriority.SAME_DAY),
        (
            {"q1": True, "q2": True, "q3": True, "q4": False, "q5": False, "q6": False},
            "moderate",
            AlertPriority.SAME_DAY,
        ),
        (
            {"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6": False},
            "high",
            AlertPriority.IMMEDIATE,
        ),
        ({"q1": False, "q2": False, "q6": True, "q6_past_3_months": True}, "high", "immediate"),
    ],
)
def test_any_cssrs_yes_alerts_and_high_risk_escalates_at_once(
    world, enrolled, clock, answers, risk, priority
):
    response = factories.clinic_score(
        world.users["nurse"], world.patient_a, "cssrs_screener", answers, at=services.clock.now()
    )
    assert response.severity == risk
    (alert,) = SafetyAlert.objects.all()
    assert (alert.kind, alert.cssrs_risk, alert.priority) == (AlertKind.CSSRS, risk, priority)
    assert (alert.escalated_at is not None) == (priority == AlertPriority.IMMEDIATE)


def test_no_alert_when_cssrs_is_all_no(world, enrolled, clock):
    factories.clinic_score(
        world.users["nurse"],
        world.patient_a,
        "cssrs_screener",
        {"q1": False, "q2": False, "q6": False},
        at=services.clock.now(),
    )
    assert SafetyAlert.objects.count() == 0


def test_urgent_check_in_and_journal_alert_and_private_entries_stay_private(world, enrolled):
    patient = world.users["patient"]
    services.checkin_record(actor=patient, patient=world.patient_a, mood_0_to_10=2, urgent=True)
    services.journal_entry_create(actor=patient, patient=world.patient_a, body="Private thoughts")
    urgent = services.journal_entry_create(
        actor=patient, patient=world.patient_a, body="Please call me", urgent=True
    )
    kinds = sorted(SafetyAlert.objects.values_list("kind", flat=True))
    assert kinds == [AlertKind.URGENT_CHECKIN, AlertKind.URGENT_JOURNAL]
    assert urgent.shared_with_care_team  # urgent entries go to the team
    assert [e.body for e in selectors.shared_journal(world.patient_a.pk)] == ["Please call me"]
    with pytest.raises(ValidationError):
        services.journal_entry_set_sharing(actor=patient, entry=urgent, share=False)
    with pytest.raises(PermissionDenied):
        services.checkin_record(actor=world.users["nurse"], patient=world.patient_a, mood_0_to_10=5)


def test_acknowledgement_needs_the_role_and_the_action(world, assignment, clock):
    submit_as_patient(world, assignment, factories.phq9(12, item9=1))
    alert = SafetyAlert.objects.get()
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(actor=world.users["front_desk"], alert=alert, action="other")
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(
            actor=world.users["other_clinic_nurse"], alert=alert, action="called_patient"
        )
    with pytest.raises(ValidationError) as exc:
        services.alert_acknowledge(actor=world.users["nurse"], alert=alert, action="other")
    assert "note" in exc.value.message_dict
    clock.shift(timedelta(minutes=42))
    done = services.alert_acknowledge(
        actor=world.users["nurse"], alert=alert, action="called_patient", note="Safe at home"
    )
    assert done.acknowledged_by == world.users["nurse"]
    assert done.acknowledged_at - done.created_at == timedelta(minutes=42)
    event = AuditEvent.objects.filter(object_type="measures.safetyalert", action="update").last()
    assert event is not None and "after 42 min" in event.detail
    with pytest.raises(ValidationError):
        services.alert_acknowledge(actor=world.users["nurse"], alert=alert, action="safety_plan")


def test_unacknowledged_alerts_escalate_after_the_clinic_time(world, assignment, clock):
    submit_as_patient(world, assignment, factories.phq9(12, item9=1))
    services.policy_update(
        actor=world.users["clinic_admin"],
        clinic=world.clinic_a,
        escalate_after_minutes=30,
        max_reminders=2,
        madrs_remission_max=12,
    )
    clock.shift(timedelta(minutes=29))
    assert services.alerts_escalate() == 0
    clock.shift(timedelta(minutes=2))
    assert services.alerts_escalate() == 1
    alert = SafetyAlert.objects.get()
    assert alert.escalation_count == 1 and alert.escalated_at == services.clock.now()
    assert services.alerts_escalate() == 0  # not again until another 30 minutes pass
    for _ in range(5):
        clock.shift(timedelta(minutes=31))
        services.alerts_escalate()
    assert SafetyAlert.objects.get().escalation_count == services.MAX_ESCALATIONS
    services.alert_acknowledge(actor=world.users["nurse"], alert=alert, action="called_patient")


def test_escalations_go_to_on_duty_clinicians_or_every_clinician(world, assignment, clock):
    submit_as_patient(world, assignment, factories.phq9(12, item9=1))
    alert = SafetyAlert.objects.get()
    MembershipFactory(user=UserFactory(username="nurse2_a"), clinic=world.clinic_a, role="nurse")
    now = services.clock.now()
    everyone = {u.username for u in services.alert_recipients(alert, escalated=True, now=now)}
    assert everyone == {"prescriber_a", "nurse_a", "nurse2_a"}  # nobody on duty: all clinicians
    assert {u.username for u in services.alert_recipients(alert, escalated=False, now=now)} == {
        "prescriber_a"
    }
    services.duty_start(actor=world.users["nurse"], clinic=world.clinic_a, hours=8)
    on_duty = {u.username for u in services.alert_recipients(alert, escalated=True, now=now)}
    assert on_duty == {"prescriber_a", "nurse_a"}
    services.duty_end(actor=world.users["nurse"], clinic=world.clinic_a)
    assert selectors.on_duty_clinicians(world.clinic_a.pk, now) == []
    with pytest.raises(PermissionDenied):
        services.duty_start(actor=world.users["front_desk"], clinic=world.clinic_a, hours=8)


def test_relapse_after_response_raises_one_booster_recommendation(world, enrolled, clock):
    nurse = world.users["nurse"]
    now = services.clock.now()

    def phq(days, total):
        factories.clinic_score(
            nurse, world.patient_a, "phq9", factories.phq9(total), at=now + timedelta(days=days)
        )

    phq(-2, 20)  # baseline before the first session (MONDAY)
    phq(10, 8)  # response
    phq(38, 12)
    assert BoosterRecommendation.objects.count() == 0
    phq(45, 14)  # second score 7 days later, still >= 10 and short of response: relapse
    (rec,) = BoosterRecommendation.objects.all()
    assert rec.relapse_on == MONDAY + timedelta(days=45)
    assert (rec.baseline_total, rec.latest_total) == (20, 14)
    assert rec.prescriber == world.users["prescriber"]
    phq(52, 15)
    assert BoosterRecommendation.objects.count() == 1  # one per relapse
    with pytest.raises(PermissionDenied):
        services.booster_resolve(actor=nurse, recommendation=rec, resolution="booster_planned")
    services.booster_resolve(
        actor=world.users["prescriber"], recommendation=rec, resolution="booster_planned"
    )
    rec.refresh_from_db()
    assert rec.resolved_at is not None


def test_anxiety_relapse_does_not_recommend_a_booster(world, enrolled, clock):
    nurse = world.users["nurse"]
    now = services.clock.now()
    for days, total in ((-2, 16), (10, 6), (38, 12), (45, 13)):
        factories.clinic_score(
            nurse,
            world.patient_a,
            "gad7",
            {f"q{i}": min(3, max(0, total - 3 * (i - 1))) for i in range(1, 8)},
            at=now + timedelta(days=days),
        )
    assert BoosterRecommendation.objects.count() == 0
    (gad,) = selectors.patient_outcomes(world.patient_a).trajectories
    assert gad.relapse_on == MONDAY + timedelta(days=45)  # still shown on the chart


def test_licensed_scales_are_entered_as_item_scores_by_clinicians(world, enrolled, clock):
    answers = {f"q{i}": 3 for i in range(1, 11)}
    response = factories.clinic_score(
        world.users["prescriber"], world.patient_a, "madrs", answers, at=services.clock.now()
    )
    assert (response.total, response.severity, response.source) == (30, "moderate", "clinic")
    assert response.entered_by == world.users["prescriber"]
    with pytest.raises(PermissionDenied):
        factories.clinic_score(
            world.users["front_desk"], world.patient_a, "madrs", answers, at=services.clock.now()
        )
