"""The sessions JSON API: every gate answered through HTTP (409 with its reasons), bad input 422
with field errors and nothing written, another clinic's session 404, idempotent device batches,
and the audit trail of reads and writes."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances.models import LedgerEntry
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import (
    EsketamineDevice,
    InfusionOrder,
    PreDoseCheck,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)
from tests.conftest import verified_device
from tests.controlled_substances.test_witness import totp_code
from tests.factories import PASSWORD
from tests.treatment_sessions.builders import force_state, new_session
from tests.treatment_sessions.test_discharge_and_sign import ALL_CLEAR
from tests.treatment_sessions.test_pre_dose_gate import GOOD

pytestmark = pytest.mark.usefixtures("frozen_now")
API = "/api/v1/sessions"


def post(client, path, body=None):
    response = client.post(f"{API}{path}", json.dumps(body or {}), content_type="application/json")
    return response, response.json()


def move(client, session, to, reason=""):
    return post(client, f"/{session.pk}/transitions", {"to": to, "reason": reason})


def test_full_iv_session_through_the_api(lg, client_for, frozen_now):
    world = lg.world
    nurse, prescriber = client_for("nurse"), client_for("prescriber")
    response, body = post(
        nurse,
        "",
        {"patient_id": world.patient_a2.pk, "treatment": "iv_ketamine", "planned_dose_mg": "35"},
    )
    assert response.status_code == 201 and body["status"] == "scheduled"
    session = TreatmentSession.objects.get(pk=body["id"])
    assert move(nurse, session, "checked_in")[0].status_code == 200
    response, check = post(nurse, f"/{session.pk}/pre-dose", GOOD)
    assert response.status_code == 201 and check["gate_status"] == "proceed"
    response, body = move(nurse, session, "gate_passed")
    assert response.status_code == 200 and body["next_step"]["to"] == "dosing"
    assert body["next_step"]["blockers"] == ["Order the infusion first."]

    response, placed = post(
        nurse,
        f"/{session.pk}/infusion-order",
        {"dose_mg_per_kg": "0.5", "minutes": 40, "concentration_mg_per_ml": "1"},
    )
    assert response.status_code == 201
    assert (placed["dose_mg"], placed["volume_ml"], placed["rate_ml_per_h"], placed["vtbi_ml"]) == (
        "36.3",
        "36.3",
        "54.4",
        "36.3",
    )

    # The second-person check gate: no dose before an independent, re-authenticated check.
    response, blocked = move(nurse, session, "dosing")
    assert response.status_code == 409
    assert "second clinician" in blocked["detail"] and blocked["errors"]["status"]
    response, wrong = post(
        nurse,
        f"/{session.pk}/infusion-order/check",
        {"checker": {"username": "prescriber_a", "password": "nope"}},
    )
    assert response.status_code == 422 and "checker_password" in wrong["errors"]
    response, own = post(
        nurse,
        f"/{session.pk}/infusion-order/check",
        {"checker": {"username": "nurse_a", "password": PASSWORD}},
    )
    assert response.status_code == 422 and "checker" in own["errors"]
    assert InfusionOrder.objects.get().checked_by_id is None
    response, checked = post(
        nurse,
        f"/{session.pk}/infusion-order/check",
        {"checker": {"username": "prescriber_a", "password": PASSWORD}},
    )
    # Signed in with two-step sign-in, the checker types their current code too.
    assert response.status_code == 422 and "checker_otp" in checked["errors"]
    code = totp_code(verified_device(world.users["prescriber"]))
    response, checked = post(
        nurse,
        f"/{session.pk}/infusion-order/check",
        {"checker": {"username": "prescriber_a", "password": PASSWORD, "otp": code}},
    )
    assert response.status_code == 200, checked
    assert checked["checked_by_id"] == world.users["prescriber"].pk

    lot = lg.receive(lg.vial10, containers=1)  # 200 mg
    response, drawn = post(
        nurse,
        f"/{session.pk}/administrations",
        {
            "location_id": lg.safe.pk,
            "lot_id": lot.pk,
            "dose_mg": "36.3",
            "waste_mg": "163.7",
            "witness": {"user_id": world.users["clinic_admin"].pk, "password": PASSWORD},
        },
    )
    assert response.status_code == 201, (drawn, nurse.get(f"{API}/{session.pk}").status_code)
    assert drawn["administration"]["quantity_mg"] == "36.300"
    assert drawn["waste"]["witness_name"] and Decimal(drawn["dispensed_mg"]) == 200
    assert move(nurse, session, "dosing")[0].status_code == 200
    assert move(nurse, session, "observing")[0].status_code == 200
    response, reading = post(
        nurse, f"/{session.pk}/vitals", {"systolic_mmhg": 132, "diastolic_mmhg": 80, "spo2_pct": 97}
    )
    assert response.status_code == 201 and reading["alerts"] == []
    frozen_now.shift(timedelta(minutes=90))
    nurse, prescriber = client_for("nurse"), client_for("prescriber")  # idle sign-out meanwhile
    response, assessment = post(nurse, f"/{session.pk}/discharge-assessments", ALL_CLEAR)
    assert response.status_code == 201 and assessment["gate_status"] == "proceed"
    assert move(nurse, session, "ready_for_discharge")[0].status_code == 200
    assert move(nurse, session, "discharged")[0].status_code == 200

    # Only a prescriber signs; the note is bound to its hash; amendments keep the original.
    assert post(nurse, f"/{session.pk}/sign", {})[0].status_code == 403
    response, signed = post(prescriber, f"/{session.pk}/sign", {"meaning": "Reviewed"})
    assert response.status_code == 200 and signed["signed"]
    assert len(signed["signature"]["content_sha256"]) == 64
    response, amendment = post(nurse, f"/{session.pk}/amendments", {"text": "Late entry."})
    assert response.status_code == 201
    note = nurse.get(f"{API}/{session.pk}/note").json()
    assert note["signature_verifies"] and "VTBI 36.30 mL" in note["text"]
    assert [a["text"] for a in note["amendments"]] == ["Late entry."]
    detail = nurse.get(f"{API}/{session.pk}").json()
    assert detail["status"] == "signed" and detail["minutes_since_first_dose"] == 90
    assert [e["kind"] for e in detail["administrations"]] == ["administer", "waste"]


def test_bp_review_needs_a_prescribers_acknowledgement_with_a_reason(world, client_for):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse, prescriber = client_for("nurse"), client_for("prescriber")
    response, check = post(
        nurse, f"/{session.pk}/pre-dose", {**GOOD, "systolic_mmhg": 150, "diastolic_mmhg": 85}
    )
    assert response.status_code == 201 and check["gate_status"] == "review"
    assert check["gate_reasons"][0]["message"] and not check["cleared"]
    response, blocked = move(nurse, session, "gate_passed")
    assert response.status_code == 409 and "acknowledgement" in blocked["detail"]
    path = f"/{session.pk}/pre-dose/acknowledge"
    assert post(nurse, path, {"reason": "fine"})[0].status_code == 403
    response, empty = post(prescriber, path, {"reason": " "})
    assert response.status_code == 422 and "reason" in empty["errors"]
    response, answered = post(prescriber, path, {"reason": "White-coat; repeat 138/82."})
    assert response.status_code == 200 and answered["cleared"]
    assert answered["acknowledged_by_id"] == world.users["prescriber"].pk
    assert move(nurse, session, "gate_passed")[0].status_code == 200


def test_bp_hold_stops_until_a_prescriber_overrides(world, client_for):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse, prescriber = client_for("nurse"), client_for("prescriber")
    response, check = post(
        nurse, f"/{session.pk}/pre-dose", {**GOOD, "systolic_mmhg": 185, "diastolic_mmhg": 100}
    )
    assert check["gate_status"] == "hold" and check["gate_reasons"]
    response, blocked = move(nurse, session, "gate_passed")
    assert response.status_code == 409 and "hold" in blocked["detail"]
    assert TreatmentSession.objects.get(pk=session.pk).status == SessionStatus.CHECKED_IN
    post(prescriber, f"/{session.pk}/pre-dose/acknowledge", {"reason": "Rechecked, treating."})
    assert move(nurse, session, "gate_passed")[0].status_code == 200
    events = AuditEvent.objects.filter(object_type="treatment_sessions.predosecheck")
    assert [e.action for e in events.order_by("seq")] == ["create", "update"]


def test_esketamine_gate_needs_rems_enrolment_and_a_prescriber_on_site(world, client_for):
    from tests.screening.builders import ready_for_esketamine

    session = force_state(world, new_session(world, "esketamine_trd"), SessionStatus.CHECKED_IN)
    nurse = client_for("nurse")
    response, refused = post(
        nurse, f"/{session.pk}/pre-dose", {**GOOD, "rems_enrolment_verified": True}
    )
    assert response.status_code == 409 and "REMS enrolment" in refused["detail"]
    assert not PreDoseCheck.objects.exists()
    post(nurse, f"/{session.pk}/pre-dose", GOOD)
    response, blocked = move(nurse, session, "gate_passed")
    assert response.status_code == 409
    assert "Verify the patient's REMS enrolment." in blocked["reasons"]
    assert "Mark the prescriber on site (REMS)." in blocked["reasons"]
    ready_for_esketamine(world.users["nurse"], world.patient_a2)
    response, check = post(
        nurse,
        f"/{session.pk}/pre-dose",
        {
            **GOOD,
            "rems_enrolment_verified": True,
            "prescriber_on_site": world.users["prescriber"].pk,
        },
    )
    assert response.status_code == 201 and check["rems_enrolment_verified"]
    assert move(nurse, session, "gate_passed")[0].status_code == 200


def test_esketamine_devices_are_spaced_five_minutes(world, client_for, frozen_now):
    session = new_session(world, "esketamine_trd")
    TreatmentSession.objects.filter(pk=session.pk).update(planned_dose_mg=56)
    session = force_state(world, session, SessionStatus.DOSING)
    nurse = client_for("nurse")
    response, first = post(nurse, f"/{session.pk}/devices")
    assert response.status_code == 201 and first["number"] == 1
    frozen_now.shift(timedelta(minutes=4))
    response, early = post(nurse, f"/{session.pk}/devices")
    assert response.status_code == 409 and "Wait 5 minutes" in early["detail"]
    assert EsketamineDevice.objects.count() == 1
    detail = nurse.get(f"{API}/{session.pk}").json()
    assert detail["next_device_at"] == "2026-03-02T17:05:00Z"
    frozen_now.shift(timedelta(minutes=1))
    response, second = post(nurse, f"/{session.pk}/devices")
    assert response.status_code == 201 and second["number"] == 2
    response, done = post(nurse, f"/{session.pk}/devices")
    assert response.status_code == 409 and "All 2 devices" in done["detail"]


def test_esketamine_is_not_ready_for_discharge_before_120_minutes(world, client_for, frozen_now):
    session = new_session(world, "esketamine_trd")
    TreatmentSession.objects.filter(pk=session.pk).update(planned_dose_mg=56)
    session = force_state(world, session, SessionStatus.OBSERVING)
    nurse = client_for("nurse")
    frozen_now.shift(timedelta(minutes=119))
    response, assessment = post(nurse, f"/{session.pk}/discharge-assessments", ALL_CLEAR)
    assert response.status_code == 201 and assessment["gate_status"] == "hold"
    assert any("120" in r["message"] for r in assessment["gate_reasons"])
    detail = nurse.get(f"{API}/{session.pk}").json()
    assert detail["next_step"]["to"] == "ready_for_discharge"
    assert any("120" in b for b in detail["next_step"]["blockers"])
    response, blocked = move(nurse, session, "ready_for_discharge")
    assert response.status_code == 409 and any("120" in r for r in blocked["reasons"])
    assert move(nurse, session, "discharged")[0].status_code == 409  # not along the table
    frozen_now.shift(timedelta(minutes=1))
    response, body = move(nurse, session, "ready_for_discharge")
    assert response.status_code == 200 and body["status"] == "ready_for_discharge"


def test_device_batches_are_idempotent_by_client_id(world, client_for):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = client_for("nurse")
    batch = {
        "readings": [
            {"client_id": "cuff-1", "systolic_mmhg": 130, "diastolic_mmhg": 80},
            {"client_id": "ox-1", "spo2_pct": 97, "heart_rate_bpm": 70},
            {"client_id": "ox-2", "spo2_pct": 86},
        ]
    }
    response, first = post(nurse, f"/{session.pk}/vitals/batch", batch)
    assert response.status_code == 200
    assert first == {"created": 3, "duplicates": 0, "alerts": ["desaturation"]}
    response, again = post(nurse, f"/{session.pk}/vitals/batch", batch)
    assert again == {"created": 0, "duplicates": 3, "alerts": []}
    assert VitalSign.objects.filter(session=session, source="device").count() == 3
    assert VitalAlert.objects.filter(session=session).count() == 1
    detail = nurse.get(f"{API}/{session.pk}").json()
    assert detail["open_alerts"] == 1 and len(detail["vitals"]) == 3
    alert = detail["alerts"][0]
    path = f"/{session.pk}/alerts/{alert['id']}/acknowledge"
    assert post(nurse, path, {"action": ""})[0].status_code == 422
    response, acked = post(nurse, path, {"action": "O2 2 L, SpO2 95% at 5 min."})
    assert response.status_code == 200 and not acked["is_open"]


@pytest.mark.parametrize(
    "readings",
    [
        [],
        [{"client_id": "a", "spo2_pct": 97}, {"client_id": "b", "spo2_pct": 200}],
        [{"client_id": "a", "spo2_pct": 97}, {"client_id": "a", "spo2_pct": 98}],
        [{"client_id": "", "spo2_pct": 97}],
        [{"client_id": "a"}],
        [{"client_id": "a", "spo2_pct": 97, "colour": "red"}],
        [{"client_id": "a", "spo2_pct": 97, "taken_at": "yesterday"}],
    ],
)
def test_a_bad_batch_is_refused_whole_and_names_the_field(world, client_for, readings):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    response, body = post(
        client_for("nurse"), f"/{session.pk}/vitals/batch", {"readings": readings}
    )
    assert response.status_code == 422 and body["errors"], body
    assert not VitalSign.objects.exists()


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("pre-dose", {**GOOD, "weight_kg": "abc"}, "weight_kg"),
        ("pre-dose", {**GOOD, "systolic_mmhg": 400}, "systolic_mmhg"),
        ("pre-dose", {**GOOD, "smoker": True}, "smoker"),
        ("pre-dose", {**GOOD, "medications_changed": True}, "medication_changes"),
        ("pre-dose", {**GOOD, "pregnancy_status": "maybe"}, "pregnancy_status"),
        ("transitions", {"to": "signed"}, "to"),
        ("transitions", {"to": "cancelled"}, "reason"),
        ("vitals", {}, "systolic_mmhg"),
        ("cadss", {"total": 93}, "total"),
        (
            "adverse-events",
            {"code": "other", "severity": "mild", "outcome": "resolved"},
            "other_text",
        ),
    ],
)
def test_bad_input_is_422_with_field_errors_and_writes_nothing(
    world, client_for, path, payload, field
):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = client_for("nurse")
    audit_before = AuditEvent.objects.count()
    response, body = post(nurse, f"/{session.pk}/{path}", payload)
    assert response.status_code == 422, body
    assert field in body["errors"] and body["detail"]
    assert AuditEvent.objects.count() == audit_before
    assert not PreDoseCheck.objects.exists() and not VitalSign.objects.exists()
    assert TreatmentSession.objects.get(pk=session.pk).status == SessionStatus.CHECKED_IN


def test_a_checker_name_with_a_null_character_is_refused_not_crashed(world, client_for):
    session = force_state(world, new_session(world), SessionStatus.GATE_PASSED)
    body = {"checker": {"username": "pre\x00scriber", "password": "x"}}
    response, answer = post(client_for("nurse"), f"/{session.pk}/infusion-order/check", body)
    assert response.status_code == 422 and "username" in answer["errors"]


def test_malformed_json_is_a_client_error(world, client_for):
    session = new_session(world)
    response = client_for("nurse").post(
        f"{API}/{session.pk}/transitions", "{not json", content_type="application/json"
    )
    assert 400 <= response.status_code < 500


def test_another_clinics_session_is_404_and_roles_are_checked(world, client_for):
    session = new_session(world)
    other = client_for("other_clinic_nurse")
    assert other.get(f"{API}/{session.pk}").status_code == 404
    assert move(other, session, "checked_in")[0].status_code == 404
    assert post(other, f"/{session.pk}/vitals", {"spo2_pct": 97})[0].status_code == 404
    assert other.get(API).json()["count"] == 0
    assert client_for("auditor").get(f"{API}/{session.pk}").status_code == 200
    assert move(client_for("front_desk"), session, "checked_in")[0].status_code == 403
    assert client_for("patient").get(f"{API}/{session.pk}").status_code == 403
    assert TreatmentSession.objects.get(pk=session.pk).status == SessionStatus.SCHEDULED


def test_list_filters_and_reads_are_audited(world, client_for, frozen_now):
    today = new_session(world)
    force_state(world, today, SessionStatus.CHECKED_IN)
    new_session(world, patient=world.patient_a)
    nurse = client_for("nurse")
    listed = nurse.get(API, {"status": "checked_in", "date": "2026-03-02"}).json()
    assert [row["id"] for row in listed["items"]] == [today.pk]
    assert nurse.get(API, {"date": "2026-03-03"}).json()["count"] == 0
    assert nurse.get(API, {"clinic_id": world.clinic_b.pk}).status_code == 404
    assert nurse.get(API, {"status": "nonsense"}).status_code == 422
    before = AuditEvent.objects.count()
    nurse.get(f"{API}/{today.pk}")
    event = AuditEvent.objects.order_by("-seq").first()
    assert AuditEvent.objects.count() == before + 1
    assert (event.action, event.patient_id, event.user_id) == (
        "read",
        today.patient_id,
        world.users["nurse"].pk,
    )
    assert AuditEvent.objects.filter(
        action="list", object_type="treatment_sessions.treatmentsession"
    ).exists()


def test_cancel_needs_a_reason_and_is_recorded(world, client_for):
    session = new_session(world)
    nurse = client_for("nurse")
    response, body = move(nurse, session, "cancelled", "Patient unwell, rebooked.")
    assert response.status_code == 200 and body["status_reason"] == "Patient unwell, rebooked."
    assert body["transitions"][-1]["to_status"] == "cancelled"
    assert move(nurse, session, "checked_in")[0].status_code == 409


def test_session_from_a_booked_appointment(world, client_for):
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
    nurse = client_for("nurse")
    response, body = post(nurse, "", {"appointment_id": first.pk})
    assert response.status_code == 201
    assert (body["appointment_id"], body["course_id"], body["treatment"]) == (
        first.pk,
        course.pk,
        "esketamine_trd",
    )
    response, again = post(nurse, "", {"appointment_id": first.pk})
    assert response.status_code == 422 and "already has a session" in again["errors"]["appointment"]
    other = post(client_for("other_clinic_nurse"), "", {"appointment_id": first.pk})
    assert other[0].status_code == 422 and "appointment_id" in other[1]["errors"]
    assert TreatmentSession.objects.count() == 1


def test_rems_form_lists_what_is_missing(world, client_for):
    session = new_session(world, "esketamine_trd")
    TreatmentSession.objects.filter(pk=session.pk).update(planned_dose_mg=56)
    session = force_state(world, session, SessionStatus.DOSING)
    nurse = client_for("nurse")
    post(nurse, f"/{session.pk}/devices")
    form = nurse.get(f"{API}/{session.pk}/rems-form").json()
    assert form["applies"] and not form["complete"]
    assert form["form"]["dose_mg"] == 28 and form["form_version"]
    assert any("lot" in m for m in form["missing"])
    iv = new_session(world, patient=world.patient_a)
    assert nurse.get(f"{API}/{iv.pk}/rems-form").json()["applies"] is False


def test_cadss_and_adverse_events_are_recorded_and_shown(world, client_for):
    session = force_state(world, new_session(world), SessionStatus.DOSING)
    nurse = client_for("nurse")
    assert post(nurse, f"/{session.pk}/cadss", {"total": 18})[0].status_code == 201
    response, event = post(
        nurse,
        f"/{session.pk}/adverse-events",
        {"code": "nausea", "severity": "mild", "outcome": "resolved"},
    )
    assert response.status_code == 201 and event["code"] == "nausea"
    detail = nurse.get(f"{API}/{session.pk}").json()
    assert [c["total"] for c in detail["cadss"]] == [18]
    assert [e["code"] for e in detail["adverse_events"]] == ["nausea"]
    assert LedgerEntry.objects.count() == 0


def test_interventions_are_recorded_while_dosing(world, client_for):
    session = force_state(world, new_session(world), SessionStatus.CHECKED_IN)
    nurse = client_for("nurse")
    path = f"/{session.pk}/interventions"
    response, early = post(nurse, path, {"kind": "infusion_slowed"})
    assert response.status_code == 409 and "dosing" in early["detail"]
    session = force_state(world, session, SessionStatus.DOSING)
    response, missing = post(nurse, path, {"kind": "antiemetic"})
    assert response.status_code == 422 and "detail" in missing["errors"]
    assert post(nurse, path, {"kind": "sedative"})[0].status_code == 422
    response, given = post(nurse, path, {"kind": "antiemetic", "detail": "Ondansetron 4 mg IV"})
    assert response.status_code == 201 and given["kind"] == "antiemetic"
    detail = nurse.get(f"{API}/{session.pk}").json()
    assert [i["detail"] for i in detail["interventions"]] == ["Ondansetron 4 mg IV"]
    assert (
        post(client_for("front_desk"), path, {"kind": "oxygen", "detail": "2 L"})[0].status_code
        == 403
    )


def test_rems_form_is_submitted_once_when_complete_and_shows_on_the_worklist(
    lg, client_for, frozen_now
):
    from tests.treatment_sessions.test_rems_form import full_esketamine_session

    session = full_esketamine_session(lg, frozen_now)
    nurse = client_for("nurse")
    form = nurse.get(f"{API}/{session.pk}/rems-form").json()
    assert form["complete"] and form["missing"] == [] and form["submission"] is None
    worklist = nurse.get(f"{API}/rems-worklist").json()
    assert [row["session_id"] for row in worklist["due"]] == [session.pk]
    assert worklist["due"][0]["days_left"] == 7
    path = f"/{session.pk}/rems-submission"
    body = {"submitted_on": "2026-03-02", "method": "online", "confirmation": "RC-55512"}
    assert post(nurse, path, {**body, "method": "pigeon"})[0].status_code == 422
    assert post(nurse, path, {**body, "submitted_on": "2026-03-09"})[0].status_code == 422
    response, sent = post(nurse, path, body)
    assert response.status_code == 201 and sent["confirmation"] == "RC-55512"
    response, again = post(nurse, path, body)
    assert response.status_code == 409 and "already been submitted" in again["detail"]
    worklist = nurse.get(f"{API}/rems-worklist").json()
    assert [row["session_id"] for row in worklist["submitted"]] == [session.pk]
    assert worklist["submitted"][0]["submission"]["method"] == "online"
    assert client_for("front_desk").get(f"{API}/rems-worklist").status_code == 403
    assert client_for("other_clinic_nurse").get(f"{API}/rems-worklist").json()["submitted"] == []


def test_incomplete_rems_form_is_not_submitted(lg, client_for, frozen_now):
    from tests.treatment_sessions.test_rems_form import full_esketamine_session

    session = full_esketamine_session(lg, frozen_now, bp_at_40=False)
    nurse = client_for("nurse")
    form = nurse.get(f"{API}/{session.pk}/rems-form").json()
    assert not form["complete"] and any("40 minutes" in m for m in form["missing"])
    response, blocked = post(
        nurse,
        f"/{session.pk}/rems-submission",
        {"submitted_on": "2026-03-02", "method": "fax", "confirmation": "F-1"},
    )
    assert response.status_code == 409 and any("40 minutes" in r for r in blocked["reasons"])


def test_list_query_count_does_not_grow_with_the_sessions(world, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    nurse = client_for("nurse")
    new_session(world)
    nurse.get(API)  # memberships and the like, cached after the first request of the client
    with CaptureQueriesContext(connection) as one:
        assert nurse.get(API).json()["count"] == 1
    new_session(world, patient=world.patient_a)
    new_session(world, "esketamine_trd", patient=world.patient_a)
    with CaptureQueriesContext(connection) as three:
        assert nurse.get(API).json()["count"] == 3
    assert len(three) == len(one)
