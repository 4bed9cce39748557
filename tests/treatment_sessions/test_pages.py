"""The session pages (issue 6): each step through the Django test client on a real database,
every gate's reason on the page, bad input changing nothing (400), other clinics 404, audited
reads and a workspace whose query count does not grow with its rows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances.models import LedgerEntry
from ketaclinic.core import clock
from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.choices import SessionStatus as S
from ketaclinic.treatment_sessions.models import (
    AdverseEvent,
    DissociationScore,
    EsketamineDevice,
    InfusionOrder,
    NoteAmendment,
    NoteSignature,
    PreDoseCheck,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)
from tests.factories import PASSWORD
from tests.screening.builders import ready_for_esketamine
from tests.screening.matrix_support import _course
from tests.treatment_sessions.builders import force_state, new_session
from tests.treatment_sessions.test_discharge_and_sign import ALL_CLEAR
from tests.treatment_sessions.test_pre_dose_gate import GOOD

pytestmark = pytest.mark.usefixtures("frozen_now")


@pytest.fixture(autouse=True)
def long_idle_timeout(settings):
    """The tests jump the clock through a two-hour session; staff stay signed in meanwhile."""
    settings.KETACLINIC_IDLE_TIMEOUT_MINUTES = 600


PRE_DOSE = {**GOOD, "fasting_confirmed": "on", "ride_home_confirmed": "on"}
DISCHARGE = {k: ("on" if v is True else v) for k, v in ALL_CLEAR.items()}
BP_OK = {"systolic_mmhg": 126, "diastolic_mmhg": 80, "heart_rate_bpm": 74, "spo2_pct": 98}


def url(name, session, *args):
    return reverse(f"treatment_sessions:{name}", args=[session.pk, *args])


def _errors(response) -> str:
    """The messages a refused page shows, for a readable failure."""
    html = response.content.decode()
    found = re.findall(r'role="alert"[^>]*>(.*?)</(?:div|p|small)>', html, re.S)
    return " | ".join(re.sub(r"<[^>]+>", " ", f) for f in found) or html[-2000:]


def post(client, name, session, data=None, status=302):
    response = client.post(url(name, session), data or {})
    assert response.status_code == status, _errors(response)
    return response


def page(client, session) -> str:
    response = client.get(url("workspace", session))
    assert response.status_code == 200
    return response.content.decode()


def test_iv_session_from_check_in_to_signed_note(lg, frozen_now, client_for):
    world = lg.world
    nurse = client_for("nurse")  # the prescriber signs in later: no authenticator code yet
    session = new_session(world)
    lot = lg.receive(lg.vial10, containers=1, lot_number="KET-10")  # 200 mg

    html = page(nurse, session)
    assert "Check the patient in" in html and 'data-state="current"' in html
    read = AuditEvent.objects.filter(action="read", object_id=str(session.pk)).last()
    assert read is not None and read.patient_id == session.patient_id

    post(nurse, "check_in", session)
    html = page(nurse, session)
    assert "Record the same-day weight" in html  # the gate's blocker, in words

    # bad input: the form shows the field error, nothing is written
    bad = post(nurse, "pre_dose", session, {**PRE_DOSE, "weight_kg": "abc"}, status=400)
    assert "Enter a number" in bad.content.decode() and not PreDoseCheck.objects.exists()
    post(nurse, "pre_dose", session, PRE_DOSE)
    html = page(nurse, session)
    assert 'data-testid="gate-status">Proceed' in html

    post(nurse, "pass_gate", session)
    unsafe = post(
        nurse, "order", session,
        {"dose_mg_per_kg": "0.5", "minutes": 40, "concentration_mg_per_ml": "50"}, status=400,
    )  # fmt: skip
    assert 'class="field-error"' in unsafe.content.decode()
    assert not InfusionOrder.objects.exists()
    preview = nurse.get(url("order_preview", session), {"dose_mg_per_kg": "0.5", "minutes": 40,
                        "concentration_mg_per_ml": "1"}).content.decode()  # fmt: skip
    assert 'data-testid="preview-rate">54.4<' in preview and not InfusionOrder.objects.exists()
    unsafe = nurse.get(url("order_preview", session), {"dose_mg_per_kg": "0.5", "minutes": 40,
                       "concentration_mg_per_ml": "50"}).content.decode()  # fmt: skip
    assert 'data-testid="preview-problem"' in unsafe
    post(nurse, "order", session, {"dose_mg_per_kg": "0.5", "minutes": 40,
                                   "concentration_mg_per_ml": "1"})  # fmt: skip
    html = page(nurse, session)
    for testid, value in [("order-mg", "36.3"), ("order-rate", "54.4"), ("order-vtbi", "36.3")]:
        assert f'data-testid="{testid}">{value}<' in html
    assert "a second clinician must check it" in html

    # start refused until the second check
    refused = post(nurse, "start_dosing", session, status=400)
    assert "second clinician" in refused.content.decode()
    checker = world.users["prescriber"]
    wrong = post(nurse, "second_check", session,
                 {"checker": checker.pk, "checker_password": "nope"}, status=400)  # fmt: skip
    assert "password is incorrect" in wrong.content.decode()
    assert InfusionOrder.objects.get().checked_by is None
    post(nurse, "second_check", session, {"checker": checker.pk, "checker_password": PASSWORD})
    assert InfusionOrder.objects.get().checked_by == checker

    # the dose drawn and the rest of the vial wasted: a witness is needed for the waste
    from ketaclinic.controlled_substances.models import Balance

    stock = Balance.objects.get(lot=lot, location=lg.safe).pk
    draw = {"stock": stock, "dose_mg": "36.3", "waste_remainder": "on"}
    no_witness = post(nurse, "draw", session, draw, status=400)
    assert "witness" in no_witness.content.decode().lower()
    assert not LedgerEntry.objects.filter(treatment_session_id=session.pk).exists()
    post(nurse, "draw", session,
         {**draw, "witness": checker.pk, "witness_password": PASSWORD})  # fmt: skip
    kinds = sorted(
        LedgerEntry.objects.filter(clinic=world.clinic_a, lot=lot).values_list("kind", flat=True)
    )
    assert "administer" in kinds and "waste" in kinds

    post(nurse, "start_dosing", session)
    empty = post(nurse, "vitals", session, {}, status=400)
    assert "at least one measurement" in empty.content.decode()
    frozen_now.shift(timedelta(minutes=10))
    post(nurse, "vitals", session, {**BP_OK, "systolic_mmhg": 185, "moaas": 4})
    alert = VitalAlert.objects.get()
    html = page(nurse, session)
    assert 'data-testid="open-alert"' in html and 'data-testid="vitals-due"' in html
    assert 'data-testid="timer"' in html and ">10:00<" in html  # server-computed mm:ss
    ack = reverse("treatment_sessions:acknowledge_alert", args=[alert.pk])
    assert nurse.post(ack, {"action": ""}).status_code == 400
    assert nurse.post(ack, {"action": "Rechecked, rate slowed"}).status_code == 302
    post(nurse, "cadss", session, {"total": "93"}, status=400)
    post(nurse, "cadss", session, {"total": "12"})
    assert DissociationScore.objects.get().total == 12
    post(nurse, "intervention", session, {"kind": "antiemetic", "detail": ""}, status=400)
    post(nurse, "intervention", session, {"kind": "antiemetic", "detail": "Ondansetron 4 mg IV"})
    assert "Ondansetron 4 mg IV" in page(nurse, session)
    post(nurse, "adverse_event", session, {"code": "other", "severity": "mild",
                                           "outcome": "resolved"}, status=400)  # fmt: skip
    post(nurse, "adverse_event", session, {"code": "nausea", "severity": "mild",
                                           "outcome": "resolved"})  # fmt: skip
    assert AdverseEvent.objects.get().code == "nausea"

    frozen_now.shift(timedelta(minutes=30))
    post(nurse, "observe", session)
    early = post(nurse, "ready", session, status=400).content.decode()
    assert "Assess the discharge criteria first" in early
    frozen_now.shift(timedelta(minutes=30))
    post(nurse, "vitals", session, BP_OK)
    # the escort's name is needed when one is present
    post(nurse, "assess_discharge", session, {**DISCHARGE, "escort_name": ""}, status=400)
    post(nurse, "assess_discharge", session, DISCHARGE)
    post(nurse, "ready", session)
    post(nurse, "discharge", session)

    prescriber = client_for("prescriber")
    printed = nurse.get(url("instructions", session))
    text = printed.content.decode()
    assert "Do not drive" in text and "next day" in text and "988" in text
    assert AuditEvent.objects.filter(action="print", object_id=str(session.pk)).exists()

    assert nurse.post(url("sign", session), {"meaning": "x"}).status_code == 403
    post(prescriber, "sign", session, {"meaning": ""}, status=400)
    signed = prescriber.post(url("sign", session), {"meaning": "Reviewed and approved"})
    assert signed.status_code == 302 and signed["Location"] == url("note", session)
    signature = NoteSignature.objects.get()
    note = prescriber.get(url("note", session)).content.decode()
    assert signature.content_sha256 in note and "Reviewed and approved" in note
    assert "<h2>Dose</h2>" in note and "pump rate 54.4 mL/h" in note
    assert "antiemetic given — Ondansetron 4 mg IV" in note
    assert 'data-testid="verified">verifies' in note
    post(prescriber, "amend", session, {"text": ""}, status=400)
    amended = prescriber.post(url("amend", session), {"text": "Patient called: well."})
    assert amended.status_code == 302
    assert "Patient called: well." in prescriber.get(url("note", session)).content.decode()
    assert NoteAmendment.objects.count() == 1


def test_review_needs_a_prescribers_written_acknowledgement(world, client_for):
    nurse, prescriber = client_for("nurse"), client_for("prescriber")
    session = force_state(world, new_session(world), S.CHECKED_IN)
    post(nurse, "pre_dose", session, {**PRE_DOSE, "systolic_mmhg": 150})
    html = page(nurse, session)
    assert 'data-testid="gate-status">Review' in html
    assert "needs a prescriber&#x27;s acknowledgement" in html or "acknowledgement" in html
    assert "Pass the gate" not in html
    refused = post(nurse, "pass_gate", session, status=400)
    assert "prescriber" in refused.content.decode()
    assert nurse.post(url("acknowledge_gate", session), {"reason": "ok"}).status_code == 403
    post(prescriber, "acknowledge_gate", session, {"reason": ""}, status=400)
    post(prescriber, "acknowledge_gate", session, {"reason": "Anxious; rechecked 138/86"})
    html = page(nurse, session)
    assert "Review acknowledged by" in html and "Anxious; rechecked 138/86" in html
    post(nurse, "pass_gate", session)
    session.refresh_from_db()
    assert session.status == S.GATE_PASSED


def test_hold_is_shown_plainly_and_only_a_prescriber_overrides(world, client_for):
    nurse, prescriber = client_for("nurse"), client_for("prescriber")
    session = force_state(world, new_session(world), S.CHECKED_IN)
    post(nurse, "pre_dose", session, {**PRE_DOSE, "systolic_mmhg": 185, "diastolic_mmhg": 112})
    html = page(nurse, session)
    assert 'data-testid="gate-status">Hold' in html and "hold the dose" in html
    assert "only a prescriber" in html
    post(prescriber, "acknowledge_gate", session, {"reason": "Repeat 150/90 after rest"})
    assert "Hold overridden by" in page(nurse, session)


def test_esketamine_devices_discharge_gate_and_rems_complete_signing(lg, frozen_now, client_for):
    world = lg.world
    nurse, prescriber = client_for("nurse"), client_for("prescriber")
    session = new_session(world, "esketamine_trd")
    TreatmentSession.objects.filter(pk=session.pk).update(planned_dose_mg=56)
    session.refresh_from_db()
    post(nurse, "check_in", session)
    post(nurse, "pre_dose", session, PRE_DOSE)
    html = page(nurse, session)
    assert "Verify the patient" in html and "prescriber on site" in html.lower()
    refused = post(nurse, "pre_dose", session,
                   {**PRE_DOSE, "rems_enrolment_verified": "on"}, status=400)  # fmt: skip
    assert "no REMS enrolment" in refused.content.decode()
    ready_for_esketamine(world.users["nurse"], world.patient_a2)
    post(
        nurse,
        "pre_dose",
        session,
        {
            **PRE_DOSE,
            "rems_enrolment_verified": "on",
            "prescriber_on_site": world.users["prescriber"].pk,
        },
    )
    post(nurse, "pass_gate", session)
    lot = lg.receive(lg.device, containers=2, lot_number="SPR-77")
    from ketaclinic.controlled_substances.models import Balance

    stock = Balance.objects.get(lot=lot, location=lg.safe).pk
    post(nurse, "draw", session, {"stock": stock, "dose_mg": "56"})
    post(nurse, "start_dosing", session)
    post(nurse, "device", session)
    post(nurse, "vitals", session, BP_OK)
    frozen_now.shift(timedelta(minutes=3))
    early = post(nurse, "device", session, status=400).content.decode()
    assert "Wait 5 minutes between devices" in early and 'data-testid="device-wait"' in early
    assert EsketamineDevice.objects.count() == 1
    frozen_now.shift(timedelta(minutes=2))
    post(nurse, "device", session)
    post(nurse, "observe", session)
    frozen_now.shift(timedelta(minutes=38))
    post(nurse, "vitals", session, {**BP_OK, "systolic_mmhg": 150})
    post(nurse, "assess_discharge", session, DISCHARGE)
    html = page(nurse, session)
    assert 'data-testid="discharge-reasons"' in html and "120" in html
    early = post(nurse, "ready", session, status=400).content.decode()
    assert "120" in early
    frozen_now.shift(timedelta(minutes=80))
    post(nurse, "vitals", session, BP_OK)
    post(nurse, "assess_discharge", session, DISCHARGE)
    post(nurse, "ready", session)
    post(nurse, "discharge", session)
    html = page(prescriber, session)
    assert 'data-testid="sign-blockers"' not in html  # the REMS form is complete
    post(prescriber, "sign", session, {"meaning": "Reviewed and approved"})
    session.refresh_from_db()
    assert session.status == S.SIGNED


def test_sign_shows_missing_rems_fields(lg, frozen_now, client_for):
    from tests.treatment_sessions.test_rems_form import full_esketamine_session

    session = full_esketamine_session(lg, frozen_now, bp_at_40=False)
    prescriber = client_for("prescriber")
    html = page(prescriber, session)
    assert 'data-testid="sign-blockers"' in html
    assert "the blood pressure at about 40 minutes is missing" in html
    note = prescriber.get(url("note", session)).content.decode()
    assert 'data-testid="rems-missing"' in note and "40 minutes" in note
    refused = post(prescriber, "sign", session, {"meaning": "Reviewed"}, status=400)
    assert "40 minutes" in refused.content.decode()
    assert not NoteSignature.objects.exists()


def test_cancel_and_stop_early_need_a_reason(world, client_for):
    nurse = client_for("nurse")
    session = new_session(world)
    post(nurse, "cancel", session, {"reason": ""}, status=400)
    post(nurse, "cancel", session, {"reason": "Patient unwell, rebooked"})
    session.refresh_from_db()
    assert session.status == S.CANCELLED and session.status_reason == "Patient unwell, rebooked"
    other = force_state(world, new_session(world, patient=world.patient_a), S.CHECKED_IN)
    post(nurse, "stop_early", other, {"reason": "Declined after the gate"})
    other.refresh_from_db()
    assert other.status == S.STOPPED_EARLY
    # a cancelled session takes no more readings: the reason is shown, nothing written
    refused = post(nurse, "vitals", session, BP_OK, status=400).content.decode()
    assert "cancelled session" in refused and not VitalSign.objects.exists()


def test_other_clinic_and_missing_sessions_are_404_and_roles_are_checked(world, client_for):
    session = new_session(world)
    other_nurse = client_for("other_clinic_nurse")
    for name in ("workspace", "note", "instructions"):
        assert other_nurse.get(url(name, session)).status_code == 404
    assert other_nurse.post(url("check_in", session)).status_code == 404
    missing = reverse("treatment_sessions:workspace", args=[session.pk + 999])
    assert client_for("nurse").get(missing).status_code == 404
    assert client_for("front_desk").post(url("check_in", session)).status_code == 403
    assert client_for("front_desk").get(url("workspace", session)).status_code == 200
    assert client_for("patient").get(url("workspace", session)).status_code == 403
    session.refresh_from_db()
    assert session.status == S.SCHEDULED


def test_open_a_session_from_the_appointment_and_the_chart(world, client_for):
    nurse = client_for("nurse")
    course = _course(world.patient_a2, world, status="active")
    appointment = course.appointments.order_by("starts_at").first()
    link = reverse("treatment_sessions:for_appointment", args=[appointment.pk])
    assert link in nurse.get(reverse("courses:appointment", args=[appointment.pk])).content.decode()
    assert link in nurse.get(reverse("patients:chart", args=[world.patient_a2.pk])).content.decode()
    assert nurse.get(link).status_code == 200
    opened = nurse.post(link)
    session = TreatmentSession.objects.get(appointment=appointment)
    assert opened["Location"] == url("workspace", session)
    assert nurse.get(link)["Location"] == url("workspace", session)  # no second session
    assert TreatmentSession.objects.count() == 1
    assert client_for("other_clinic_nurse").post(link).status_code == 404
    assert client_for("front_desk").post(link).status_code == 403


def workspace_queries(client, session) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url("workspace", session)).status_code == 200
    return len(ctx.captured_queries)


def test_workspace_queries_do_not_grow_with_rows(world, frozen_now, client_for):
    nurse_user = world.users["nurse"]
    client = client_for("nurse")
    session = force_state(world, new_session(world), S.CHECKED_IN)
    services.session_record_pre_dose(actor=nurse_user, session=session, data=GOOD)
    session = force_state(world, session, S.DOSING)
    services.session_record_vitals(actor=nurse_user, session=session, data={**BP_OK,
                                   "systolic_mmhg": 190})  # fmt: skip
    services.session_record_cadss(actor=nurse_user, session=session, total=10)
    few = workspace_queries(client, session)
    for _ in range(8):
        frozen_now.shift(timedelta(minutes=1))
        services.session_record_vitals(actor=nurse_user, session=session, data={**BP_OK,
                                       "systolic_mmhg": 190})  # fmt: skip
        services.session_record_cadss(actor=nurse_user, session=session, total=10)
        services.session_record_adverse_event(
            actor=nurse_user, session=session,
            data={"code": "nausea", "severity": "mild", "outcome": "resolved"},
        )  # fmt: skip
    assert workspace_queries(client, session) == few
    assert few <= 26, few


def test_observation_workspace_reads_each_table_once(world, frozen_now, client_for):
    """In observation the page shows the flowsheet, when vitals are due and what still stops
    discharge: the guards use the rows the page read rather than reading them again, so the
    queries are few and the same for 1 or 9 readings, alerts and assessments."""
    nurse_user = world.users["nurse"]
    client = client_for("nurse")
    session = force_state(world, new_session(world), S.CHECKED_IN)
    services.session_record_pre_dose(actor=nurse_user, session=session, data=GOOD)
    session = force_state(world, session, S.GATE_PASSED)
    services.session_order_infusion(
        actor=nurse_user, session=session, dose_mg_per_kg="0.5", minutes=40,
        concentration_mg_per_ml="1",
    )  # fmt: skip
    session = force_state(world, session, S.OBSERVING)

    def one_more_of_each() -> None:
        frozen_now.shift(timedelta(minutes=5))
        services.session_record_vitals(actor=nurse_user, session=session, data={**BP_OK,
                                       "systolic_mmhg": 190})  # fmt: skip
        services.session_assess_discharge(actor=nurse_user, session=session, data=ALL_CLEAR)

    one_more_of_each()
    html = page(client, session)
    assert 'data-testid="vitals-due"' in html and 'data-testid="ready-blockers"' in html
    assert "Acknowledge 1 open alert(s) first." in html
    few = workspace_queries(client, session)
    for _ in range(8):
        one_more_of_each()
    html = page(client, session)
    assert html.count('data-testid="vitals-row"') == 9
    assert "Acknowledge 9 open alert(s) first." in html
    assert workspace_queries(client, session) == few
    rows = selectors.session_rows(session)
    for to, guards in services.GUARDS.items():  # the rows give each guard the same answer
        for guard in guards:
            try:
                expected = guard(session)
            except ValidationError as exc:
                with pytest.raises(ValidationError) as same:
                    guard(session, rows)
                assert same.value.messages == exc.messages, (to, guard)
            else:
                assert guard(session, rows) == expected, (to, guard)
    now = clock.now()
    assert services.next_vitals_due(session, now, rows) == services.next_vitals_due(session, now)
    # One query per table the page shows (each read once, and one for the staff they name) plus
    # sign-in, session and audit: the guards, the vitals schedule and the discharge check read
    # nothing more. On PostgreSQL
    # the table reads share one round trip (core.compiled_query.objects_together).
    assert few <= (11 if connection.vendor == "postgresql" else 24), few  # 28 before


def test_pre_session_answers_and_safety_flags_show_in_the_workspace(world, client_for):
    from ketaclinic.measures import services as measures
    from ketaclinic.measures.models import Assignment
    from tests.measures import factories

    nurse = world.users["nurse"]
    course = _course(world.patient_a2, world, status="active")
    appointment = course.appointments.order_by("starts_at").first()
    assignment = measures.assignment_create(
        actor=world.users["prescriber"], patient=world.patient_a2, instrument="phq9"
    )
    Assignment.objects.filter(pk=assignment.pk).update(appointment=appointment)
    assignment.refresh_from_db()
    measures.response_submit(
        actor=nurse, assignment=assignment, answers=factories.phq9(12, item9=1), source="clinic"
    )
    session = services.session_create(actor=nurse, appointment=appointment)
    html = page(client_for("nurse"), session)
    assert 'data-testid="pre-session-response"' in html and "PHQ9" in html
    assert ">12<" in html
    assert 'data-testid="safety-flag"' in html


@pytest.mark.parametrize("treatment", ["im_ketamine", "oral_ketamine"])
def test_im_and_oral_doses_are_drawn_and_given_without_an_iv_order(lg, client_for, treatment):
    world = lg.world
    nurse = client_for("nurse")
    session = new_session(world, treatment)
    post(nurse, "check_in", session)
    post(nurse, "pre_dose", session, PRE_DOSE)
    post(nurse, "pass_gate", session)
    html = page(nurse, session)
    assert 'data-testid="order-form"' not in html and 'data-testid="draw-form"' in html
    lot = lg.receive(lg.vial50, containers=1, lot_number="IM-1")
    from ketaclinic.controlled_substances.models import Balance

    stock = Balance.objects.get(lot=lot, location=lg.safe).pk
    wrong = post(nurse, "draw", session, {"stock": stock, "dose_mg": "50"}, status=400)
    assert "The ordered dose is 35" in wrong.content.decode()
    witness = world.users["prescriber"]
    post(nurse, "draw", session, {"stock": stock, "dose_mg": "35", "waste_remainder": "on",
                                  "witness": witness.pk, "witness_password": PASSWORD})  # fmt: skip
    post(nurse, "start_dosing", session)
    post(nurse, "observe", session)
    session.refresh_from_db()
    assert session.status == S.OBSERVING


@pytest.mark.parametrize("prefix", ["/", "/clinic-app/"])
def test_workspace_action_paths_are_the_reversed_urls(prefix):
    """The workspace fills each action's path in from a pattern reversed once: the same path
    as reverse() for every action it links to, under any script prefix."""
    from pathlib import Path

    from django.conf import settings
    from django.urls import get_script_prefix, set_script_prefix

    from ketaclinic.treatment_sessions.views import _SessionPaths

    template = Path(settings.BASE_DIR, "ketaclinic/templates/treatment_sessions/workspace.html")
    names = set(re.findall(r"\{\{ paths\.(\w+) \}\}", template.read_text()))
    assert {"vitals", "assess_discharge", "stop_early"} <= names
    before = get_script_prefix()
    set_script_prefix(prefix)
    try:
        for session_id in (1, 24, 918273645, 2**40):
            paths = _SessionPaths(session_id)
            for name in names:
                expected = reverse(f"treatment_sessions:{name}", args=[session_id])
                assert paths[name] == expected and expected.startswith(prefix)
        with pytest.raises(KeyError):
            _SessionPaths(1)["no_such_action"]
    finally:
        set_script_prefix(before)
