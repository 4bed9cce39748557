"""Issue 6: a full esketamine session in the browser: REMS checks at the gate, two devices no
closer than 5 minutes (the early second device is refused with its reason), the 40-minute blood
pressure, discharge refused before 120 minutes, then a REMS-complete note the prescriber signs.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.models import EsketamineDevice, NoteSignature
from ketaclinic.treatment_sessions.rems import rems_missing
from tests.browser.sessions_support import (
    assess_discharge,
    press,
    record_vitals,
    session_clock,  # noqa: F401 (fixture)
    status,
    stock,
    submit,
    with_address,
)
from tests.screening.builders import ready_for_esketamine

pytestmark = pytest.mark.browser


def test_esketamine_session_devices_120_minutes_and_rems_complete_signing(
    page: Page,
    sign_in,
    screenshot,
    world,
    live_server,
    session_clock,  # noqa: F811
) -> None:
    nurse, prescriber = world.users["nurse"], world.users["prescriber"]
    patient = with_address(world.patient_a2)
    ready_for_esketamine(nurse, patient)
    stock(world, esketamine=True, lot_number="SPR-77")
    session = services.session_create(
        actor=nurse, patient=patient, treatment="esketamine_trd", planned_dose_mg=56
    )

    sign_in(page, nurse)
    page.goto(f"/sessions/{session.pk}/")
    press(page, "check-in")
    form = page.get_by_test_id("pre-dose-form")
    form.get_by_label("Weight today (kg)").fill("70")
    form.get_by_label("Systolic BP (mmHg)").fill("124")
    form.get_by_label("Diastolic BP (mmHg)").fill("78")
    form.get_by_label("Fasting as instructed").check()
    form.get_by_label("Ride home arranged").check()
    form.get_by_label("Pregnancy").select_option("not_pregnant")
    submit(page, form.get_by_role("button", name="Record pre-dose check"))
    blockers = page.get_by_test_id("gate-blockers")
    expect(blockers).to_contain_text("Verify the patient's REMS enrolment.")
    expect(blockers).to_contain_text("Mark the prescriber on site (REMS).")
    expect(page.get_by_test_id("pass-gate")).to_have_count(0)
    page.get_by_text("Measure again").click()
    form = page.get_by_test_id("pre-dose-form")
    form.get_by_label("Systolic BP (mmHg)").fill("124")
    form.get_by_label("Diastolic BP (mmHg)").fill("78")
    form.get_by_label("REMS enrolment verified").check()
    form.get_by_label("Prescriber on site").select_option(label=prescriber.signature_name)
    submit(page, form.get_by_role("button", name="Record pre-dose check"))
    expect(page.get_by_test_id("gate-status")).to_have_text("Proceed")
    press(page, "pass-gate")

    draw = page.get_by_test_id("draw-form")
    draw.get_by_label("Stock (location · product · lot)").select_option(index=1)
    expect(draw.get_by_label("Dose drawn (mg)")).to_have_value(re.compile(r"^56(\.0+)?$"))
    submit(page, draw.get_by_role("button", name="Record dose drawn and waste"))
    expect(page.get_by_test_id("drawn")).to_contain_text("SPR-77")
    press(page, "start-dosing")
    press(page, "device-button")
    expect(page.get_by_test_id("devices")).to_contain_text("1 of 2")
    record_vitals(page, 126, 80)

    session_clock.shift(timedelta(minutes=3))
    page.goto(f"/sessions/{session.pk}/")
    expect(page.get_by_test_id("device-wait")).to_contain_text("5 minutes between devices")
    press(page, "device-button")  # too early: refused, with the reason
    expect(page.get_by_test_id("blocked")).to_contain_text("Wait 5 minutes between devices")
    assert EsketamineDevice.objects.filter(session=session).count() == 1
    screenshot(page, "session-esketamine-device-refused")

    session_clock.shift(timedelta(minutes=2, seconds=5))
    page.goto(f"/sessions/{session.pk}/")
    press(page, "device-button")
    expect(page.get_by_test_id("devices")).to_contain_text("2 of 2")
    press(page, "start-observation")
    status(page, "Observing")

    session_clock.shift(timedelta(minutes=36))
    page.goto(f"/sessions/{session.pk}/")
    record_vitals(page, 148, 88)  # the 40-minute blood pressure
    assess_discharge(page, "Alex Baker")
    result = page.get_by_test_id("discharge-result")
    expect(result).to_contain_text("Not yet")
    expect(page.get_by_test_id("discharge-reasons")).to_contain_text("120")
    expect(page.get_by_test_id("ready-blockers")).to_contain_text("120")
    expect(page.get_by_test_id("ready")).to_have_count(0)
    expect(page.get_by_test_id("minimum")).to_contain_text("at least 120 minutes")
    screenshot(page, "session-esketamine-120")

    session_clock.shift(timedelta(minutes=80))
    page.goto(f"/sessions/{session.pk}/")
    record_vitals(page, 128, 80)
    assess_discharge(page, "Alex Baker")
    expect(page.get_by_test_id("discharge-result")).to_contain_text("Criteria met")
    press(page, "ready")
    press(page, "discharge-button")
    status(page, "Discharged")
    session.refresh_from_db()
    assert rems_missing(session) == []

    page.goto("/")
    submit(page, page.get_by_role("button", name="Sign out"))
    sign_in(page, prescriber)
    page.goto(f"/sessions/{session.pk}/")
    expect(page.get_by_test_id("sign-blockers")).to_have_count(0)
    submit(page, page.get_by_test_id("sign-form").get_by_role("button", name="Sign the note"))
    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/note/$"))
    signature = NoteSignature.objects.get(session=session)
    expect(page.get_by_test_id("signer")).to_have_text(signature.signer_name)
    expect(page.get_by_test_id("sha256")).to_have_text(signature.content_sha256)
    expect(page.get_by_test_id("note")).to_contain_text("device 2")
    screenshot(page, "session-esketamine-note")
