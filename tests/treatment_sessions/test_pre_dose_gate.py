"""Check-in and the pre-dose gate: review needs a prescriber's acknowledgement, hold stops unless
a prescriber overrides, esketamine needs REMS enrolment verified and a prescriber on site."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import PreDoseCheck
from tests.screening.builders import ready_for_esketamine
from tests.treatment_sessions.builders import force_state, new_session

pytestmark = pytest.mark.usefixtures("frozen_now")

GOOD = {
    "weight_kg": "72.5",
    "systolic_mmhg": 128,
    "diastolic_mmhg": 78,
    "heart_rate_bpm": 72,
    "spo2_pct": 98,
    "fasting_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_status": "not_pregnant",
}


def checked_in(world, treatment="iv_ketamine"):
    return force_state(world, new_session(world, treatment), SessionStatus.CHECKED_IN)


def record(world, session, **changes):
    return services.session_record_pre_dose(
        actor=world.users["nurse"], session=session, data={**GOOD, **changes}
    )


def test_proceed_passes_the_gate_and_audits_it(world):
    session = checked_in(world)
    check = record(world, session)
    assert check.gate_status == "proceed" and check.gate_reasons == []
    assert AuditEvent.objects.filter(object_type="treatment_sessions.predosecheck").count() == 1
    passed = services.session_pass_gate(actor=world.users["nurse"], session=session)
    assert passed.status == SessionStatus.GATE_PASSED


def test_review_needs_a_prescribers_acknowledgement_with_a_reason(world):
    session = checked_in(world)
    check = record(world, session, systolic_mmhg=150, diastolic_mmhg=85)
    assert check.gate_status == "review" and check.gate_reasons[0]["code"]
    with pytest.raises(ValidationError) as blocked:
        services.session_pass_gate(actor=world.users["nurse"], session=session)
    assert "acknowledgement" in str(blocked.value)
    with pytest.raises(PermissionDenied):
        services.session_acknowledge_gate(
            actor=world.users["nurse"], session=session, reason="Fine."
        )
    with pytest.raises(ValidationError):
        services.session_acknowledge_gate(
            actor=world.users["prescriber"], session=session, reason=""
        )
    services.session_acknowledge_gate(
        actor=world.users["prescriber"], session=session, reason="White-coat; repeat was 138/84."
    )
    check.refresh_from_db()
    assert check.acknowledged_by == world.users["prescriber"]
    event = AuditEvent.objects.filter(object_type="treatment_sessions.predosecheck").last()
    assert event.changes["answer"] == "review acknowledged"
    assert services.session_pass_gate(actor=world.users["nurse"], session=session).status == (
        SessionStatus.GATE_PASSED
    )


def test_hold_stops_the_session_unless_a_prescriber_overrides(world):
    session = checked_in(world)
    check = record(world, session, systolic_mmhg=185, diastolic_mmhg=100)
    assert check.gate_status == "hold"
    with pytest.raises(ValidationError) as blocked:
        services.session_pass_gate(actor=world.users["nurse"], session=session)
    assert "hold" in str(blocked.value)
    session.refresh_from_db()
    assert session.status == SessionStatus.CHECKED_IN
    services.session_acknowledge_gate(
        actor=world.users["prescriber"], session=session, reason="Repeat after rest 150/88."
    )
    event = AuditEvent.objects.filter(object_type="treatment_sessions.predosecheck").last()
    assert event.changes["answer"] == "hold overridden"
    with pytest.raises(ValidationError):  # answered once only
        services.session_acknowledge_gate(
            actor=world.users["prescriber"], session=session, reason="Again."
        )
    assert services.session_pass_gate(actor=world.users["nurse"], session=session).status == (
        SessionStatus.GATE_PASSED
    )


def test_a_new_measurement_supersedes_the_old_one(world):
    session = checked_in(world)
    record(world, session, systolic_mmhg=185, diastolic_mmhg=100)
    record(world, session)
    assert PreDoseCheck.objects.count() == 2
    assert services.session_pass_gate(actor=world.users["nurse"], session=session).status == (
        SessionStatus.GATE_PASSED
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"fasting_confirmed": False}, "fasting"),
        ({"ride_home_confirmed": False}, "ride home"),
        ({"pregnancy_status": "pregnant"}, "pregnant"),
    ],
)
def test_each_confirmation_is_required(world, changes, words):
    session = checked_in(world)
    record(world, session, **changes)
    with pytest.raises(ValidationError) as blocked:
        services.session_pass_gate(actor=world.users["nurse"], session=session)
    assert words in str(blocked.value)


def test_yesterdays_weight_does_not_count(world, frozen_now):
    session = checked_in(world)
    record(world, session)
    frozen_now.shift(timedelta(days=1))
    with pytest.raises(ValidationError) as blocked:
        services.session_pass_gate(actor=world.users["nurse"], session=session)
    assert "not from today" in str(blocked.value)


def test_esketamine_needs_rems_enrolment_verified_and_a_prescriber_on_site(world):
    session = checked_in(world, "esketamine_trd")
    with pytest.raises(ValidationError) as refused:
        record(world, session, rems_enrolment_verified=True)
    assert "no REMS enrolment" in str(refused.value)
    record(world, session)
    with pytest.raises(ValidationError) as blocked:
        services.session_pass_gate(actor=world.users["nurse"], session=session)
    assert "REMS enrolment" in str(blocked.value) and "prescriber on site" in str(blocked.value)
    ready_for_esketamine(world.users["nurse"], world.patient_a2)
    with pytest.raises(ValidationError):  # a nurse is not a prescriber
        record(world, session, rems_enrolment_verified=True,
               prescriber_on_site=world.users["nurse"].pk)  # fmt: skip
    record(world, session, rems_enrolment_verified=True,
           prescriber_on_site=world.users["prescriber"].pk)  # fmt: skip
    assert services.session_pass_gate(actor=world.users["nurse"], session=session).status == (
        SessionStatus.GATE_PASSED
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("weight_kg", ""),
        ("weight_kg", "abc"),
        ("weight_kg", "NaN"),
        ("weight_kg", 900),
        ("systolic_mmhg", None),
        ("diastolic_mmhg", 400),
        ("spo2_pct", 120),
        ("pregnancy_status", "maybe"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(world, field, value):
    session = checked_in(world)
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        record(world, session, **{field: value})
    assert field in refused.value.message_dict
    assert not PreDoseCheck.objects.exists() and AuditEvent.objects.count() == before


def test_medication_changes_need_describing_and_gate_is_recorded_at_check_in_only(world):
    session = checked_in(world)
    with pytest.raises(ValidationError) as refused:
        record(world, session, medications_changed=True, medication_changes="")
    assert "medication_changes" in refused.value.message_dict
    scheduled = new_session(world, patient=world.patient_a)
    with pytest.raises(ValidationError):
        record(world, scheduled)
