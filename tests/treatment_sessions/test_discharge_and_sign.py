"""Discharge gate (esketamine never before 120 minutes), prescriber sign-off bound to the SHA-256
of the note, verification that breaks when content changes, and amendments that keep the
original."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import NoteSignature
from ketaclinic.treatment_sessions.note import sha256_of
from tests.treatment_sessions.builders import force_state
from tests.treatment_sessions.test_dosing import gate_passed, order

pytestmark = pytest.mark.usefixtures("frozen_now")
ALL_CLEAR = {
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "vitals_acceptable": True,
    "escort_present": True,
    "escort_name": "Sam (spouse)",
}


def observing(world, treatment="esketamine_trd", dose=56):
    return force_state(world, gate_passed(world, treatment, dose=dose), SessionStatus.OBSERVING)


def ready(world, session):
    return services.session_transition(
        actor=world.users["nurse"], session=session, to=SessionStatus.READY_FOR_DISCHARGE
    )


def test_esketamine_is_never_ready_before_120_minutes(world, frozen_now):
    session = observing(world)
    frozen_now.shift(timedelta(minutes=119))
    assessment = services.session_assess_discharge(
        actor=world.users["nurse"], session=session, data=ALL_CLEAR
    )
    assert assessment.gate_status == "hold"
    with pytest.raises(ValidationError) as early:
        ready(world, session)
    assert "120" in str(early.value)
    frozen_now.shift(timedelta(minutes=1))
    # the gate is checked again with the clock, not taken from the earlier assessment
    assert ready(world, session).status == SessionStatus.READY_FOR_DISCHARGE


def test_the_earliest_discharge_time_is_given_in_the_clinics_time(world, frozen_now):
    from zoneinfo import ZoneInfo

    session = observing(world)
    frozen_now.shift(timedelta(minutes=30))
    assessment = services.session_assess_discharge(
        actor=world.users["nurse"], session=session, data=ALL_CLEAR
    )
    session.refresh_from_db()
    zone = ZoneInfo(session.clinic.timezone)
    earliest = (session.dosing_started_at + timedelta(minutes=120)).astimezone(zone)
    [reason] = [r["message"] for r in assessment.gate_reasons]
    assert f"(earliest {earliest.isoformat()})" in reason
    assert earliest.utcoffset() != timedelta(0)  # a clinic away from UTC: the test means it
    assert [reason] == services.discharge_blockers(session)


@pytest.mark.parametrize("missing", [k for k in ALL_CLEAR if k != "escort_name"])
def test_every_discharge_criterion_is_required(world, frozen_now, missing):
    session = observing(world)
    frozen_now.shift(timedelta(minutes=130))
    services.session_assess_discharge(
        actor=world.users["nurse"], session=session, data={**ALL_CLEAR, missing: False}
    )
    with pytest.raises(ValidationError):
        ready(world, session)


def discharged(world, frozen_now):
    session = gate_passed(world, "iv_ketamine", dose=35)
    order(world, session)
    session = force_state(world, session, SessionStatus.OBSERVING)
    frozen_now.shift(timedelta(minutes=90))
    services.session_assess_discharge(actor=world.users["nurse"], session=session, data=ALL_CLEAR)
    ready(world, session)
    return services.session_transition(
        actor=world.users["nurse"], session=session, to=SessionStatus.DISCHARGED
    )


def test_prescriber_signs_the_note_bound_to_its_hash(world, frozen_now):
    session = discharged(world, frozen_now)
    with pytest.raises(PermissionDenied):
        services.session_sign(actor=world.users["nurse"], session=session)
    signature = services.session_sign(actor=world.users["prescriber"], session=session)
    session.refresh_from_db()
    assert session.status == SessionStatus.SIGNED and session.signed_by == world.users["prescriber"]
    assert signature.content_sha256 == sha256_of(signature.content)
    assert "PRE-DOSE" in signature.content and "Sam (spouse)" in signature.content
    assert signature.meaning == "Reviewed and approved"
    assert services.verify_signature(session)
    event = AuditEvent.objects.filter(object_type="treatment_sessions.treatmentsession").last()
    assert event.changes["note_sha256"] == signature.content_sha256
    # changing the signed content breaks verification
    NoteSignature.objects.filter(pk=signature.pk).update(content=signature.content + "x")
    assert not services.verify_signature(session)


def test_changed_session_data_breaks_verification(world, frozen_now):
    session = discharged(world, frozen_now)
    services.session_sign(actor=world.users["prescriber"], session=session)
    session.pre_dose_checks.update(weight_kg=99)
    assert not services.verify_signature(session)


def test_amendments_keep_the_signed_original(world, frozen_now):
    session = discharged(world, frozen_now)
    with pytest.raises(ValidationError):  # not signed yet
        services.session_amend(actor=world.users["nurse"], session=session, text="Late entry.")
    signature = services.session_sign(actor=world.users["prescriber"], session=session)
    with pytest.raises(ValidationError):
        services.session_amend(actor=world.users["nurse"], session=session, text="  ")
    amendment = services.session_amend(
        actor=world.users["nurse"], session=session, text="Patient called at 18:00: feeling well."
    )
    assert amendment.content_sha256 == sha256_of(amendment.text)
    signature.refresh_from_db()
    assert services.verify_signature(session) and "called at 18:00" not in signature.content
    with pytest.raises(ValidationError):  # signed once
        services.session_sign(actor=world.users["prescriber"], session=session)
