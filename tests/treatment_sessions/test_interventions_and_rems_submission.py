"""Interventions during a session, and the REMS monitoring form's submission and worklist."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import Intervention, RemsSubmission
from ketaclinic.treatment_sessions.note import note_text
from ketaclinic.treatment_sessions.rems import FORM_VERSION
from tests.treatment_sessions.builders import force_state, new_session
from tests.treatment_sessions.test_rems_form import full_esketamine_session

pytestmark = pytest.mark.usefixtures("frozen_now")

# frozen_now is Monday 2 March 2026, noon in Boston.
SESSION_DAY = date(2026, 3, 2)


# --- Interventions ------------------------------------------------------------------------------


def test_intervention_is_recorded_timed_audited_and_in_the_note(world):
    session = force_state(world, new_session(world), SessionStatus.DOSING)
    nurse = world.users["nurse"]
    before = AuditEvent.objects.count()
    row = services.session_record_intervention(
        actor=nurse, session=session, kind="antiemetic", detail="ondansetron 4 mg IV"
    )
    assert row.kind == "antiemetic" and row.detail == "ondansetron 4 mg IV"
    assert row.given_at == row.recorded_at
    event = AuditEvent.objects.order_by("-seq").first()
    assert AuditEvent.objects.count() == before + 1
    assert event.object_type == "treatment_sessions.intervention"
    assert event.patient_id == session.patient_id
    assert "INTERVENTION Antiemetic given: ondansetron 4 mg IV" in note_text(session)


def test_slowing_the_infusion_needs_no_words(world):
    session = force_state(world, new_session(world), SessionStatus.OBSERVING)
    row = services.session_record_intervention(
        actor=world.users["nurse"], session=session, kind="infusion_slowed"
    )
    assert str(row) == "Infusion slowed"


@pytest.mark.parametrize(
    ("kind", "detail", "field"),
    [
        ("antiemetic", "", "detail"),
        ("antihypertensive", "   ", "detail"),
        ("other", "", "detail"),
        ("chocolate", "x", "kind"),
        ("oxygen", "x" * 501, "detail"),
    ],
)
def test_bad_intervention_is_refused_and_writes_nothing(world, kind, detail, field):
    session = force_state(world, new_session(world), SessionStatus.DOSING)
    with pytest.raises(ValidationError) as refused:
        services.session_record_intervention(
            actor=world.users["nurse"], session=session, kind=kind, detail=detail
        )
    assert field in refused.value.message_dict
    assert not Intervention.objects.exists()


@pytest.mark.parametrize("state", [SessionStatus.CHECKED_IN, SessionStatus.DISCHARGED])
def test_interventions_only_while_dosing_or_observing(world, state):
    session = force_state(world, new_session(world), state)
    with pytest.raises(ValidationError) as refused:
        services.session_record_intervention(
            actor=world.users["nurse"], session=session, kind="infusion_stopped"
        )
    assert "status" in refused.value.message_dict
    assert not Intervention.objects.exists()


def test_intervention_time_must_be_within_the_session(world, frozen_now):
    session = force_state(world, new_session(world), SessionStatus.DOSING)
    later = services.clock.now() + timedelta(hours=1)
    with pytest.raises(ValidationError) as refused:
        services.session_record_intervention(
            actor=world.users["nurse"], session=session, kind="infusion_stopped", given_at=later
        )
    assert "given_at" in refused.value.message_dict


def test_front_desk_cannot_record_an_intervention(world):
    session = force_state(world, new_session(world), SessionStatus.DOSING)
    with pytest.raises(PermissionDenied):
        services.session_record_intervention(
            actor=world.users["front_desk"], session=session, kind="infusion_stopped"
        )
    assert not Intervention.objects.exists()


# --- REMS form submission -----------------------------------------------------------------------


def _submit(session, actor, **overrides):
    values = {"submitted_on": "2026-03-04", "method": "online", "confirmation": "PMF-123456"}
    values.update(overrides)
    return services.rems_submission_record(actor=actor, session=session, **values)


def test_complete_form_is_submitted_with_a_snapshot(lg, frozen_now):
    session = full_esketamine_session(lg, frozen_now)
    frozen_now.shift(timedelta(days=2))
    nurse = lg.world.users["nurse"]
    submission = _submit(session, nurse)
    assert submission.submitted_on == date(2026, 3, 4)
    assert submission.form_version == FORM_VERSION
    assert submission.form["lot_number"] == "SPR-77" and submission.form["dose_mg"] == 56
    assert submission.form["bp_40_min"] == "150/80"
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.object_type == "treatment_sessions.remssubmission"
    assert event.changes["confirmation"] == "PMF-123456"
    with pytest.raises(ValidationError) as again:
        _submit(session, nurse)
    assert "already been submitted" in str(again.value)
    assert RemsSubmission.objects.count() == 1


def test_incomplete_form_cannot_be_submitted(lg, frozen_now):
    session = full_esketamine_session(lg, frozen_now, bp_at_40=False)
    with pytest.raises(ValidationError) as refused:
        _submit(session, lg.world.users["nurse"], submitted_on="2026-03-02")
    assert "40 minutes" in str(refused.value)
    assert not RemsSubmission.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"submitted_on": "yesterday"}, "submitted_on"),
        ({"submitted_on": "2026-03-01"}, "submitted_on"),  # before the session
        ({"submitted_on": "2026-03-09"}, "submitted_on"),  # in the future
        ({"method": "pigeon"}, "method"),
        ({"confirmation": ""}, "confirmation"),
        ({"confirmation": "x" * 101}, "confirmation"),
        ({"confirmation": 12}, "confirmation"),
    ],
)
def test_bad_submission_is_refused_and_writes_nothing(lg, frozen_now, overrides, field):
    session = full_esketamine_session(lg, frozen_now)
    with pytest.raises(ValidationError) as refused:
        _submit(session, lg.world.users["nurse"], **overrides)
    assert field in refused.value.message_dict
    assert not RemsSubmission.objects.exists()


def test_iv_session_has_no_rems_form(world):
    session = force_state(world, new_session(world), SessionStatus.DISCHARGED)
    with pytest.raises(ValidationError) as refused:
        _submit(session, world.users["nurse"], submitted_on="2026-03-02")
    assert "Only esketamine" in str(refused.value)


def test_form_is_not_sent_before_discharge(world):
    session = force_state(world, new_session(world, "esketamine_trd"), SessionStatus.OBSERVING)
    with pytest.raises(ValidationError) as refused:
        _submit(session, world.users["nurse"], submitted_on="2026-03-02")
    assert "after the patient is discharged" in str(refused.value)


# --- The worklist ------------------------------------------------------------------------------


def test_worklist_sorts_forms_into_due_overdue_and_submitted(lg, frozen_now):
    world = lg.world
    nurse = world.users["nurse"]
    session = full_esketamine_session(lg, frozen_now)
    assert selectors.rems_due_on(session) == SESSION_DAY + timedelta(days=7)

    listed = selectors.rems_worklist(nurse, today=date(2026, 3, 9))
    assert [s.pk for s in listed.due] == [session.pk] and listed.due[0].days_left == 0
    assert listed.overdue == [] and listed.submitted == []

    listed = selectors.rems_worklist(nurse, today=date(2026, 3, 10))
    assert [s.pk for s in listed.overdue] == [session.pk] and listed.overdue[0].days_left == -1

    # An IV session is never on the list; neither is one of the other clinic.
    force_state(world, new_session(world), SessionStatus.DISCHARGED)
    elsewhere = selectors.rems_worklist(world.users["other_clinic_nurse"], today=date(2026, 3, 10))
    assert elsewhere.overdue == [] and elsewhere.due == []
    assert [s.pk for s in selectors.rems_worklist(nurse, today=date(2026, 3, 10)).overdue] == [
        session.pk
    ]

    frozen_now.shift(timedelta(days=3))
    _submit(session, nurse, submitted_on="2026-03-05")
    listed = selectors.rems_worklist(nurse, today=date(2026, 3, 10))
    assert listed.overdue == [] and [s.pk for s in listed.submitted] == [session.pk]
    assert listed.submitted[0].submission.confirmation == "PMF-123456"


def test_worklist_is_closed_to_front_desk_and_auditor(lg, frozen_now):
    full_esketamine_session(lg, frozen_now)
    for persona in ("front_desk", "auditor"):
        listed = selectors.rems_worklist(lg.world.users[persona], today=date(2026, 3, 10))
        assert listed.overdue == [] and listed.due == []
