"""One reading, one statement (issue 6): on PostgreSQL a single reading is read once and written
in one statement (lock, re-check, reading, alerts, audit row); anywhere else, and whenever what
the reading was judged on has changed, the general path decides. Either way the rows, alerts,
audit row and answers are the same, and nothing is written without its audit row."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.http import Http404
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ketaclinic.accounts import services as account_services
from ketaclinic.audit.chain import chain_hash
from ketaclinic.audit.models import AuditChainHead, AuditEvent
from ketaclinic.audit.services import payload_of
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import TreatmentSession, VitalAlert, VitalSign
from tests.screening.builders import NOW
from tests.treatment_sessions.builders import force_state, new_session
from tests.treatment_sessions.test_dosing import gate_passed
from tests.treatment_sessions.test_pre_dose_gate import GOOD

pytestmark = pytest.mark.usefixtures("frozen_now")
# A reading from the pages on SQLite, which keeps the general path (statements counted).
SQLITE_PAGE_READING_STATEMENTS = 8  # inside the test's transaction: with SAVEPOINTs
ALERTING = {"systolic_mmhg": 186, "diastolic_mmhg": 112, "heart_rate_bpm": 130, "spo2_pct": 90}


def assert_recorded(reading: VitalSign, alerts: list[VitalAlert], nurse: Any) -> AuditEvent:
    """The reading and its alerts are stored as returned, with exactly one audit row that
    names them and hashes as the chain's Python definition says."""
    stored = VitalSign.objects.get(pk=reading.pk)
    for name in ("session_id", "taken_at", "systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm",
                 "spo2_pct", "respiratory_rate_per_min", "moaas", "source", "client_id",
                 "recorded_by_id", "recorded_at"):  # fmt: skip
        assert getattr(stored, name) == getattr(reading, name), name
    rows = list(VitalAlert.objects.filter(reading=reading).order_by("id"))
    assert [(a.pk, a.code, a.message, a.severity, a.source, a.session_id) for a in rows] == [
        (a.pk, a.code, a.message, a.severity, a.source, a.session_id) for a in alerts
    ]
    events = AuditEvent.objects.filter(
        object_type="treatment_sessions.vitalsign", object_id=str(reading.pk)
    )
    assert events.count() == 1
    event = events.get()
    session = TreatmentSession.objects.get(pk=reading.session_id)
    assert (event.action, event.user_id, event.username, event.clinic_id, event.patient_id) == (
        "create",
        nurse.pk,
        nurse.username,
        session.clinic_id,
        session.patient_id,
    )
    assert event.changes == {
        "session": session.pk,
        "readings": [reading.pk],
        "alerts": [a.code for a in alerts],
    }
    assert event.detail == f"1 vital-sign reading(s), {len(alerts)} alert(s)"
    assert event.entry_hash == chain_hash(event.prev_hash, payload_of(event))
    return event


def test_a_reading_with_alerts_is_stored_as_returned_with_one_audit_row(world):
    nurse = world.users["nurse"]
    session = force_state(world, gate_passed(world), SessionStatus.DOSING)
    for data in (ALERTING, {"spo2_pct": 97}, {"systolic_mmhg": 85, "moaas": 2}):
        reading, alerts = services.session_record_vitals(actor=nurse, session=session, data=data)
        assert_recorded(reading, alerts, nurse)
    codes = [a.code for a in VitalAlert.objects.order_by("id")]
    assert codes == ["hypertension", "tachycardia", "desaturation", "hypotension"]
    # The baseline (the pre-dose check) is in the messages, as on the general path.
    assert "(baseline 128 mmHg)" in VitalAlert.objects.get(code="hypertension").message
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit chain intact" in out.getvalue()


def test_the_session_read_for_a_reading_is_scoped_like_any_session(world):
    session = new_session(world)
    nurse = world.users["nurse"]
    assert services.session_for_reading(nurse, session.pk).pk == session.pk
    for who, session_id in (
        ("other_clinic_nurse", session.pk),
        ("nurse", session.pk + 1000),
        ("nurse", "x"),
        ("nurse", 2**63),
    ):
        with pytest.raises(Http404):
            services.session_for_reading(world.users[who], session_id)


def test_a_state_changed_since_the_read_is_refused_in_the_general_paths_words(world):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = world.users["nurse"]
    read = services.session_for_reading(nurse, session.pk)
    TreatmentSession.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED)
    audit_before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.session_record_vitals(actor=nurse, session=read, data={"spo2_pct": 97})
    assert refused.value.message_dict == {
        "status": ["Readings are not taken in a cancelled session."]
    }
    assert not VitalSign.objects.exists() and AuditEvent.objects.count() == audit_before


def test_a_pre_dose_check_recorded_since_the_read_is_the_baseline(world):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = world.users["nurse"]
    read = services.session_for_reading(nurse, session.pk)
    services.session_record_pre_dose(actor=nurse, session=session, data=GOOD)
    _, alerts = services.session_record_vitals(actor=nurse, session=read, data=ALERTING)
    assert "(baseline 128 mmHg)" in alerts[0].message
    assert VitalAlert.objects.get(pk=alerts[0].pk).message == alerts[0].message


def test_a_session_read_serves_one_reading_and_later_ones_read_afresh(world):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = world.users["nurse"]
    read = services.session_for_reading(nurse, session.pk)
    first, _ = services.session_record_vitals(actor=nurse, session=read, data={"spo2_pct": 97})
    second, _ = services.session_record_vitals(actor=nurse, session=read, data={"spo2_pct": 96})
    assert first.pk != second.pk
    assert VitalSign.objects.filter(session=session).count() == 2
    for reading in (first, second):
        assert_recorded(reading, [], nurse)


def test_a_time_outside_the_session_is_refused_and_writes_nothing(world):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = world.users["nurse"]
    read = services.session_for_reading(nurse, session.pk)
    early = (NOW - timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError) as refused:
        services.session_record_vitals(
            actor=nurse, session=read, data={"spo2_pct": 97, "taken_at": early}
        )
    assert "taken_at" in refused.value.message_dict
    assert not VitalSign.objects.exists()


def test_without_a_chain_head_the_one_statement_writes_nothing(world):
    """A new database has no chain head until its first event (the general path makes it):
    the one statement (PostgreSQL) then writes no reading either, so none goes without its
    audit row; the service's general path then records both, on either database."""
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    if connection.vendor == "postgresql":
        AuditChainHead.objects.all().delete()
    before = AuditEvent.objects.count()
    values = services._clean_reading({"spo2_pct": 97})
    nurse = world.users["nurse"]
    if connection.vendor == "postgresql":
        assert services._reading_in_one_statement(nurse, session, values, None) is None
        assert not VitalSign.objects.exists() and AuditEvent.objects.count() == before
    else:  # SQLite has no one-statement path: the general path writes both or neither
        reading, alerts = services.session_record_vitals(
            actor=nurse, session=session, data={"spo2_pct": 97}
        )
        assert list(VitalSign.objects.all()) == [reading] and alerts == []
        assert AuditEvent.objects.count() == before + 1


def _token_client(user: Any) -> Client:
    _, raw = account_services.api_token_create(actor=user, name="t", days=5)
    account_services.api_token_user(raw)  # notes first use (a write, at most once a minute)
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _post(client: Client, session_id: int, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/sessions/{session_id}/vitals", json.dumps(body), content_type="application/json"
    )


def test_one_reading_over_the_api_is_three_statements_on_postgresql(world):
    """Token with memberships, the session with its baseline, and the write (issue 6: was 7:
    token, scope read, BEGIN, lock, insert, audit, COMMIT)."""
    session = force_state(world, gate_passed(world), SessionStatus.DOSING)
    client = _token_client(world.users["nurse"])
    assert _post(client, session.pk, {"spo2_pct": 97}).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, session.pk, ALERTING)
    assert response.status_code == 201
    body = response.json()
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert len(statements) == 3, statements
        assert statements[2].startswith("WITH locked AS")
    stored = VitalAlert.objects.filter(reading_id=body["reading"]["id"]).order_by("id")
    assert [(a["id"], a["code"], a["message"]) for a in body["alerts"]] == [
        (a.pk, a.code, a.message) for a in stored
    ]
    assert all(a["reading_id"] == body["reading"]["id"] and a["is_open"] for a in body["alerts"])
    assert_recorded(
        VitalSign.objects.get(pk=body["reading"]["id"]), list(stored), world.users["nurse"]
    )


def test_the_api_answers_are_unchanged(world):
    session = new_session(world)
    nurse, other = (
        _token_client(world.users["nurse"]),
        _token_client(world.users["other_clinic_nurse"]),
    )
    blocked = _post(nurse, session.pk, {"spo2_pct": 97})  # scheduled: no readings yet
    assert blocked.status_code == 409
    assert blocked.json()["reasons"] == ["Readings are not taken in a scheduled session."]
    assert _post(other, session.pk, {"spo2_pct": 97}).status_code == 404
    assert _post(nurse, session.pk + 1000, {"spo2_pct": 97}).status_code == 404
    assert _post(_token_client(world.users["front_desk"]), session.pk, {}).status_code == 403
    assert _post(nurse, session.pk, {}).status_code in (409, 422)
    assert not VitalSign.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_readings_on_one_session_each_get_one_chained_audit_row(world):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = world.users["nurse"]
    writers, per_writer = 4, 10
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            barrier.wait()
            for n in range(per_writer):
                read = services.session_for_reading(nurse, session.pk)
                data = ALERTING if n % 3 == 0 else {"spo2_pct": 95 + index}
                services.session_record_vitals(actor=nurse, session=read, data=data)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    readings = list(VitalSign.objects.filter(session=session))
    if connection.vendor == "sqlite" and errors:
        # The in-memory SQLite test database answers "table is locked" to a second writer at
        # once instead of waiting (as in test_audit_append); what was written must be whole.
        assert all("locked" in str(e) for e in errors), errors
    else:
        assert not errors, errors
        assert len(readings) == writers * per_writer
    for reading in readings:
        alerts = list(VitalAlert.objects.filter(reading=reading).order_by("id"))
        assert_recorded(reading, alerts, nurse)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit chain intact" in out.getvalue()


def test_a_reading_from_the_pages_is_two_statements_on_postgresql(world):
    """The pages pass the session they read: the service reads it with the baseline and
    writes in one statement (was BEGIN, lock, insert, audit, COMMIT)."""
    session = force_state(world, gate_passed(world), SessionStatus.DOSING)
    nurse = world.users["nurse"]
    services.session_record_vitals(actor=nurse, session=session, data={"spo2_pct": 97})
    with CaptureQueriesContext(connection) as queries:
        reading, alerts = services.session_record_vitals(
            actor=nurse, session=session, data=ALERTING
        )
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert len(statements) == 2, statements
        assert statements[1].startswith("WITH locked AS")
    else:  # SQLite keeps the general path: BEGIN, lock, reading, alerts, audit, COMMIT
        assert len(statements) == SQLITE_PAGE_READING_STATEMENTS, statements
    assert_recorded(reading, alerts, nurse)
