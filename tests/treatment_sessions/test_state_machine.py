"""The session state machine: every allowed and every forbidden transition, through the service,
with history and audit on success and nothing written on refusal."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.audit.selectors import verify_audit_chain
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import (
    REASON_REQUIRED,
    SESSION_TRANSITIONS,
    SessionStatus,
)
from ketaclinic.treatment_sessions.models import SessionTransition, TreatmentSession
from tests.treatment_sessions.builders import force_state, new_session

pytestmark = pytest.mark.usefixtures("frozen_now")

ALLOWED = [(a, b) for a in SessionStatus.values for b in sorted(SESSION_TRANSITIONS[a])]
FORBIDDEN = [
    (a, b)
    for a in SessionStatus.values
    for b in SessionStatus.values
    if b not in SESSION_TRANSITIONS[a]
]


def test_the_table_covers_every_state_and_ends_in_signed_or_cancelled():
    assert set(SESSION_TRANSITIONS) == set(SessionStatus.values)
    assert SESSION_TRANSITIONS[SessionStatus.SIGNED] == frozenset()
    assert SESSION_TRANSITIONS[SessionStatus.CANCELLED] == frozenset()
    assert len(ALLOWED) == 16 and len(ALLOWED) + len(FORBIDDEN) == 100


@pytest.mark.parametrize(("start", "to"), ALLOWED)
def test_allowed_transition_moves_records_history_and_audits(world, start, to):
    session = force_state(world, new_session(world), start)
    actor = world.users["prescriber" if to == SessionStatus.SIGNED else "nurse"]
    events = AuditEvent.objects.count()
    reason = "Patient asked to stop." if to in REASON_REQUIRED else ""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "GUARDS", {})
        moved = services.session_transition(actor=actor, session=session, to=to, reason=reason)
    moved.refresh_from_db()
    assert moved.status == to
    last = SessionTransition.objects.filter(session=moved).last()
    assert (last.from_status, last.to_status, last.actor) == (start, to, actor)
    assert last.reason == reason
    event = AuditEvent.objects.order_by("seq").last()
    assert AuditEvent.objects.count() == events + 1
    assert event.user == actor and event.action == "update"
    assert event.patient_id == session.patient_id and event.clinic_id == session.clinic_id
    assert event.changes["status"] == {"old": start, "new": to}
    assert verify_audit_chain().ok


@pytest.mark.parametrize(("start", "to"), FORBIDDEN)
def test_forbidden_transition_is_refused_and_writes_nothing(world, start, to):
    session = force_state(world, new_session(world), start)
    actor = world.users["prescriber"]
    before = (AuditEvent.objects.count(), SessionTransition.objects.count())
    with pytest.raises(ValidationError) as refused:
        services.session_transition(actor=actor, session=session, to=to, reason="Because.")
    assert "cannot become" in str(refused.value)
    session.refresh_from_db()
    assert session.status == start
    assert (AuditEvent.objects.count(), SessionTransition.objects.count()) == before


@pytest.mark.parametrize("to", sorted(REASON_REQUIRED))
def test_cancel_and_stop_need_a_reason(world, to):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    with pytest.raises(ValidationError) as refused:
        services.session_transition(actor=world.users["nurse"], session=session, to=to, reason=" ")
    assert "reason" in refused.value.message_dict
    session.refresh_from_db()
    assert session.status == SessionStatus.CHECKED_IN


def test_only_a_prescriber_signs(world):
    session = force_state(world, new_session(world), SessionStatus.DISCHARGED)
    with pytest.raises(PermissionDenied):
        services.session_transition(
            actor=world.users["nurse"], session=session, to=SessionStatus.SIGNED
        )
    session.refresh_from_db()
    assert session.status == SessionStatus.DISCHARGED and session.signed_by is None


@pytest.mark.parametrize("persona", ["front_desk", "clinic_admin", "auditor", "other_clinic_nurse"])
def test_non_clinicians_and_other_clinics_cannot_move_a_session(world, persona):
    session = new_session(world)
    with pytest.raises(PermissionDenied):
        services.session_check_in(actor=world.users[persona], session=session)
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED


def test_one_open_session_per_patient(world):
    first = new_session(world)
    services.session_check_in(actor=world.users["nurse"], session=first)
    second = new_session(world)
    with pytest.raises(ValidationError) as refused:
        services.session_check_in(actor=world.users["nurse"], session=second)
    assert "already in another session" in str(refused.value)
    services.session_stop_early(actor=world.users["nurse"], session=first, reason="Felt unwell.")
    assert services.session_check_in(actor=world.users["nurse"], session=second).checked_in_at


def test_entering_a_state_stamps_its_time_and_a_signed_session_names_the_signer(world):
    session = force_state(world, new_session(world), SessionStatus.SIGNED)
    assert session.checked_in_at and session.dosing_started_at and session.discharged_at
    assert session.signed_at and session.signed_by == world.users["prescriber"]
    assert [t.to_status for t in session.transitions.all()][-1] == SessionStatus.SIGNED


def test_create_refuses_unknown_treatment_and_writes_nothing(world):
    with pytest.raises(ValidationError) as refused:
        services.session_create(
            actor=world.users["nurse"], patient=world.patient_a2, treatment="heroin"
        )
    assert "treatment" in refused.value.message_dict
    assert not TreatmentSession.objects.exists()


def test_create_is_audited_and_scoped(world):
    session = new_session(world)
    event = AuditEvent.objects.get(object_type="treatment_sessions.treatmentsession")
    assert event.action == "create" and event.patient_id == world.patient_a2.pk
    assert session.clinic_id == world.clinic_a.pk
    with pytest.raises(PermissionDenied):
        new_session(world, patient=world.patient_b)


def test_session_from_a_booked_appointment_takes_its_course_chair_and_dose(world):
    from ketaclinic.screening import services as screening
    from tests.screening.builders import TODAY, chair, plan, screen

    screening.referral_create(
        actor=world.users["front_desk"],
        clinic_id=world.clinic_a.pk,
        patient=world.patient_a2,
        data={
            "referral_source": "self",
            "referred_on": TODAY,
            "intended_treatment": "esketamine_trd",
        },
    )
    screen(world.users["nurse"], world.patient_a2)
    chair(world.clinic_a)
    course = plan(world.users["prescriber"], world.patient_a2, dose_mg=84)
    first = course.appointments.order_by("number").first()
    session = services.session_create(actor=world.users["nurse"], appointment=first)
    assert (session.course, session.chair, session.treatment) == (
        course,
        first.chair,
        "esketamine_trd",
    )
    assert session.planned_dose_mg == 56 and session.scheduled_at == first.starts_at
    with pytest.raises(ValidationError) as again:
        services.session_create(actor=world.users["nurse"], appointment=first)
    assert "already has a session" in str(again.value)
    assert TreatmentSession.objects.count() == 1
