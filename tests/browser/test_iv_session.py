"""Issue 6: a full IV ketamine session in the browser, from the appointment to the signed note.

The nurse opens the session from the appointment, checks the patient in, records the pre-dose
check and passes the gate, orders the infusion (mg, mL, mL/h, VTBI shown large); a second nurse
checks it on the same screen with her own password; the dose is drawn from a lot and the rest
of the vial wasted with that nurse as witness; vitals and CADSS go on the flowsheet; after the
minimum observation the patient is discharged; the prescriber signs and the note shows it.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from ketaclinic.controlled_substances.models import LedgerEntry
from ketaclinic.treatment_sessions.models import NoteSignature, TreatmentSession
from tests.browser.sessions_support import (
    assess_discharge,
    press,
    record_vitals,
    second_nurse,
    session_clock,  # noqa: F401 (fixture)
    status,
    stock,
    submit,
    with_address,
)
from tests.factories import PASSWORD
from tests.screening.matrix_support import _course

pytestmark = pytest.mark.browser


def test_iv_session_from_check_in_to_signed_note(
    page: Page,
    sign_in,
    screenshot,
    world,
    live_server,
    session_clock,  # noqa: F811
) -> None:
    nurse, prescriber = world.users["nurse"], world.users["prescriber"]
    checker = second_nurse(world)
    lot = stock(world, esketamine=False, lot_number="KET-10")
    course = _course(with_address(world.patient_a2), world, status="active")
    appointment = course.appointments.order_by("starts_at").first()

    sign_in(page, nurse)
    page.goto(f"/courses/appointments/{appointment.pk}/")
    press(page, "open-session")
    press(page, "start-session")
    expect(page).to_have_url(re.compile(r"/sessions/\d+/$"))
    session = TreatmentSession.objects.get(appointment=appointment)
    status(page, "Scheduled")

    press(page, "check-in")
    status(page, "Checked in")
    expect(page.get_by_test_id("gate-blockers")).to_contain_text("same-day weight")
    form = page.get_by_test_id("pre-dose-form")
    form.get_by_label("Weight today (kg)").fill("80")
    form.get_by_label("Systolic BP (mmHg)").fill("128")
    form.get_by_label("Diastolic BP (mmHg)").fill("78")
    form.get_by_label("Heart rate (/min)").fill("72")
    form.get_by_label("SpO₂ (%)").fill("98")
    form.get_by_label("Fasting as instructed").check()
    form.get_by_label("Ride home arranged").check()
    form.get_by_label("Pregnancy").select_option("not_pregnant")
    submit(page, form.get_by_role("button", name="Record pre-dose check"))
    expect(page.get_by_test_id("gate-status")).to_have_text("Proceed")
    press(page, "pass-gate")
    status(page, "Pre-dose gate passed")

    order = page.get_by_test_id("order-form")
    expect(order.get_by_label("Dose (mg/kg)")).to_have_value("0.5")
    expect(page.get_by_test_id("preview-rate")).to_have_text("60")  # htmx, before saving
    order.get_by_label("Infusion time (minutes)").fill("60")
    expect(page.get_by_test_id("preview-rate")).to_have_text("40")
    order.get_by_label("Infusion time (minutes)").fill("40")
    expect(page.get_by_test_id("preview-rate")).to_have_text("60")
    submit(page, order.get_by_role("button", name="Compute and record the order"))
    expect(page.get_by_test_id("order-mg")).to_have_text("40")
    expect(page.get_by_test_id("order-ml")).to_have_text("40")
    expect(page.get_by_test_id("order-rate")).to_have_text("60")
    expect(page.get_by_test_id("order-vtbi")).to_have_text("40")
    expect(page.get_by_test_id("dosing-blockers")).to_contain_text("second clinician")
    screenshot(page, "session-iv-order")

    check = page.get_by_test_id("check-form")
    check.get_by_label("Second checker:", exact=True).select_option(label=checker.signature_name)
    check.get_by_label("Second checker password").fill("wrong password")
    submit(page, check.get_by_role("button", name="Sign the second check"))
    expect(page.get_by_test_id("check-form")).to_contain_text("password is incorrect")
    check = page.get_by_test_id("check-form")
    check.get_by_label("Second checker:", exact=True).select_option(label=checker.signature_name)
    check.get_by_label("Second checker password").fill(PASSWORD)
    submit(page, check.get_by_role("button", name="Sign the second check"))
    expect(page.get_by_test_id("second-check")).to_contain_text(checker.signature_name)

    draw = page.get_by_test_id("draw-form")
    draw.get_by_label("Stock (location · product · lot)").select_option(index=1)
    expect(draw.get_by_label("Dose drawn (mg)")).to_have_value(re.compile(r"^40(\.0+)?$"))
    expect(draw.get_by_label("Waste the rest of the opened vial(s)")).to_be_checked()
    draw.get_by_label("Witness:", exact=True).select_option(label=checker.signature_name)
    draw.get_by_label("Witness password").fill(PASSWORD)
    submit(page, draw.get_by_role("button", name="Record dose drawn and waste"))
    expect(page.get_by_test_id("drawn")).to_contain_text("KET-10")
    waste = LedgerEntry.objects.get(kind="waste", lot=lot)
    assert waste.quantity_mg == -160 and waste.witness_id == checker.pk

    press(page, "start-dosing")
    status(page, "Dosing")
    record_vitals(page, 126, 80, moaas=5)
    expect(page.get_by_test_id("vitals-row")).to_have_count(1)
    expect(page.get_by_test_id("vitals-due")).to_be_visible()
    cadss = page.get_by_test_id("cadss-form")
    cadss.get_by_label("CADSS total").fill("12")
    submit(page, cadss.get_by_role("button", name="Record CADSS"))
    expect(page.get_by_test_id("cadss")).to_contain_text("12")

    session_clock.shift(timedelta(minutes=41))
    page.goto(f"/sessions/{session.pk}/")
    expect(page.get_by_test_id("timer")).to_have_text(re.compile(r"^4[12]:\d\d$"))
    press(page, "start-observation")
    status(page, "Observing")
    record_vitals(page, 122, 78, moaas=5)
    session_clock.shift(timedelta(minutes=31))
    page.goto(f"/sessions/{session.pk}/")
    assess_discharge(page, "Sam Baker (brother)")
    expect(page.get_by_test_id("discharge-result")).to_contain_text("Criteria met")
    press(page, "ready")
    press(page, "discharge-button")
    status(page, "Discharged")
    submit(page, page.get_by_role("button", name="Discharge instructions"))
    expect(page.get_by_test_id("instructions")).to_contain_text("Do not drive")
    expect(page.get_by_test_id("crisis-line")).to_have_text("988")
    screenshot(page, "session-iv-instructions")

    page.goto("/")
    submit(page, page.get_by_role("button", name="Sign out"))
    sign_in(page, prescriber)
    page.goto(f"/sessions/{session.pk}/")
    sign = page.get_by_test_id("sign-form")
    expect(sign.get_by_label("Meaning of your signature")).to_have_value("Reviewed and approved")
    submit(page, sign.get_by_role("button", name="Sign the note"))
    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/note/$"))
    signature = NoteSignature.objects.get(session=session)
    box = page.get_by_test_id("signature")
    expect(box).to_contain_text(prescriber.signature_name)
    expect(box).to_contain_text("Reviewed and approved")
    expect(page.get_by_test_id("sha256")).to_have_text(signature.content_sha256)
    expect(page.get_by_test_id("verified")).to_have_text("verifies")
    expect(page.get_by_test_id("note")).to_contain_text("pump rate 60 mL/h")
    expect(page.get_by_test_id("note-status")).to_have_text("Signed")
    screenshot(page, "session-iv-note")
