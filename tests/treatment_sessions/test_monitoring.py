"""Monitoring: timed vitals with alerts a nurse acknowledges with an action, vitals due,
CADSS, coded adverse events, and idempotent batch ingestion by client-supplied id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import AdverseEvent, VitalAlert, VitalSign
from tests.treatment_sessions.builders import force_state
from tests.treatment_sessions.test_dosing import gate_passed

pytestmark = pytest.mark.usefixtures("frozen_now")


def dosing(world, treatment="esketamine_trd", dose=56):
    session = gate_passed(world, treatment, dose=dose)
    return force_state(world, session, SessionStatus.DOSING)


def test_reading_in_range_raises_no_alert_and_is_audited(world):
    session = dosing(world)
    reading, alerts = services.session_record_vitals(
        actor=world.users["nurse"], session=session,
        data={"systolic_mmhg": 132, "diastolic_mmhg": 80, "heart_rate_bpm": 80, "moaas": 5},
    )  # fmt: skip
    assert alerts == [] and reading.moaas == 5 and reading.source == "manual"
    assert AuditEvent.objects.filter(object_type="treatment_sessions.vitalsign").count() == 1


def test_alert_blocks_discharge_readiness_until_acknowledged_with_an_action(world, frozen_now):
    session = dosing(world)
    _, alerts = services.session_record_vitals(
        actor=world.users["nurse"], session=session,
        data={"systolic_mmhg": 186, "diastolic_mmhg": 112, "spo2_pct": 90},
    )  # fmt: skip
    assert {a.code for a in alerts} >= {"hypertension", "desaturation"}
    session = force_state(world, session, SessionStatus.OBSERVING)
    with pytest.raises(ValidationError) as blocked:
        services.session_transition(
            actor=world.users["nurse"], session=session, to=SessionStatus.READY_FOR_DISCHARGE
        )
    assert "open alert" in str(blocked.value)
    with pytest.raises(ValidationError):
        services.session_acknowledge_alert(actor=world.users["nurse"], alert=alerts[0], action="")
    for alert in alerts:
        services.session_acknowledge_alert(
            actor=world.users["nurse"], alert=alert, action="Repositioned, O2 2 L; MD informed."
        )
    assert not VitalAlert.objects.filter(acknowledged_by__isnull=True).exists()
    frozen_now.shift(timedelta(minutes=125))
    services.session_assess_discharge(
        actor=world.users["nurse"], session=session,
        data={"sedation_resolved": True, "dissociation_resolved": True, "vitals_acceptable": True,
              "respiratory_depression_resolved": True, "escort_present": True},
    )  # fmt: skip
    moved = services.session_transition(
        actor=world.users["nurse"], session=session, to=SessionStatus.READY_FOR_DISCHARGE
    )
    assert moved.status == SessionStatus.READY_FOR_DISCHARGE


@pytest.mark.parametrize(
    "data",
    [{}, {"systolic_mmhg": "abc"}, {"spo2_pct": 101}, {"moaas": 7}, {"heart_rate_bpm": 80.5},
     {"systolic_mmhg": 80, "diastolic_mmhg": 90}, {"heart_rate_bpm": 80, "taken_at": "yesterday"}],
)  # fmt: skip
def test_bad_readings_are_refused_and_nothing_written(world, data):
    session = dosing(world)
    with pytest.raises(ValidationError):
        services.session_record_vitals(actor=world.users["nurse"], session=session, data=data)
    assert not VitalSign.objects.exists()


def test_batch_ingestion_is_idempotent_by_client_id(world, frozen_now):
    session = dosing(world)
    batch = [
        {"client_id": f"cuff-1-{n}", "systolic_mmhg": 130 + n, "diastolic_mmhg": 80,
         "taken_at": (frozen_now_time() + timedelta(minutes=n)).isoformat()}
        for n in range(3)
    ]  # fmt: skip
    frozen_now.shift(timedelta(minutes=5))
    first = services.session_ingest_vitals(
        actor=world.users["nurse"], session=session, readings=batch
    )
    assert first == {"created": 3, "duplicates": 0, "alerts": []}
    again = services.session_ingest_vitals(
        actor=world.users["nurse"], session=session,
        readings=[*batch, {"client_id": "ox-9", "spo2_pct": 88}],
    )  # fmt: skip
    assert again["created"] == 1 and again["duplicates"] == 3
    assert again["alerts"] == ["desaturation"]
    assert VitalSign.objects.filter(source="device").count() == 4


def frozen_now_time():
    from ketaclinic.core import clock

    return clock.now()


@pytest.mark.parametrize(
    "readings",
    [[], "x", [{"client_id": "", "spo2_pct": 97}], [{"client_id": "a", "spo2_pct": 97},
     {"client_id": "a", "spo2_pct": 98}], [{"client_id": "a", "spo2_pct": 97},
     {"client_id": "b", "spo2_pct": 200}]],
)  # fmt: skip
def test_a_bad_batch_is_refused_whole(world, readings):
    session = dosing(world)
    with pytest.raises(ValidationError):
        services.session_ingest_vitals(
            actor=world.users["nurse"], session=session, readings=readings
        )
    assert not VitalSign.objects.exists()


def test_vitals_due_follow_the_esketamine_schedule(world, frozen_now):
    session = dosing(world)
    start = session.dosing_started_at
    assert services.next_vitals_due(session, start) == start
    services.session_record_vitals(
        actor=world.users["nurse"],
        session=session,
        data={"systolic_mmhg": 130, "diastolic_mmhg": 80},
    )
    assert services.next_vitals_due(session, start) == start + timedelta(minutes=40)


def test_cadss_and_adverse_events(world):
    session = dosing(world)
    assert (
        services.session_record_cadss(actor=world.users["nurse"], session=session, total=14).total
        == 14
    )
    with pytest.raises(ValidationError):
        services.session_record_cadss(actor=world.users["nurse"], session=session, total=93)
    event = services.session_record_adverse_event(
        actor=world.users["nurse"], session=session,
        data={"code": "nausea", "severity": "mild", "outcome": "resolved"},
    )  # fmt: skip
    assert str(event) == "Nausea"
    with pytest.raises(ValidationError) as other:
        services.session_record_adverse_event(
            actor=world.users["nurse"], session=session,
            data={"code": "other", "severity": "mild", "outcome": "resolved"},
        )  # fmt: skip
    assert "other_text" in other.value.message_dict
    with pytest.raises(ValidationError):
        services.session_record_adverse_event(
            actor=world.users["nurse"], session=session,
            data={"code": "plague", "severity": "mild", "outcome": "resolved"},
        )  # fmt: skip
    assert AdverseEvent.objects.count() == 1


def test_alerts_quote_the_latest_pre_dose_baseline_single_and_batch(world):
    session = dosing(world)
    check = services.latest_check(session)
    assert check is not None
    expected = f"(baseline {check.systolic_mmhg} mmHg)"
    _, alerts = services.session_record_vitals(
        actor=world.users["nurse"],
        session=session,
        data={"systolic_mmhg": 190, "diastolic_mmhg": 90},
    )
    assert [a.code for a in alerts] == ["hypertension"]
    assert expected in alerts[0].message
    services.session_ingest_vitals(
        actor=world.users["nurse"], session=session,
        readings=[{"client_id": "cuff-1", "systolic_mmhg": 191, "diastolic_mmhg": 90}],
    )  # fmt: skip
    batch_alert = VitalAlert.objects.get(reading__client_id="cuff-1")
    assert batch_alert.code == "hypertension" and expected in batch_alert.message


def test_alerts_without_a_pre_dose_check_quote_no_baseline(world):
    from ketaclinic.treatment_sessions.models import PreDoseCheck

    session = dosing(world)
    PreDoseCheck.objects.filter(session=session).delete()
    _, alerts = services.session_record_vitals(
        actor=world.users["nurse"],
        session=session,
        data={"systolic_mmhg": 190, "diastolic_mmhg": 90},
    )
    assert [a.code for a in alerts] == ["hypertension"] and "baseline" not in alerts[0].message
