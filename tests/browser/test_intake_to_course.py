"""Issue 5, end to end in the browser: the front desk registers a referral, a nurse records the
history and a baseline PHQ-9, the prescriber sees "needs review" with its reasons, signs an
override with a written reason, plans an esketamine TRD course, and the day board shows the
first appointment with the override alert."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from ketaclinic.courses.models import Appointment, Chair
from ketaclinic.screening.models import EligibilityOverride, Intake

pytestmark = pytest.mark.browser

OVERRIDE_REASON = (
    "Second antidepressant stopped at week 5 for cost; clinically treatment-resistant."
)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_referral_to_scheduled_esketamine_course(
    page: Page, sign_in, screenshot, world, live_server
) -> None:
    Chair.objects.create(clinic=world.clinic_a, name="Recliner 1")
    world.clinic_a.rems_certified = True
    world.clinic_a.save()

    # 1. Front desk: a new patient and the referral, on one page.
    sign_in(page, world.users["front_desk"])
    page.get_by_role("link", name="Referrals").click()
    page.get_by_role("button", name="Register a referral").click()
    page.get_by_label("First name").fill("Imogen")
    page.get_by_label("Last name").fill("Quartermaine")
    page.get_by_label("Date of birth").fill("1984-07-19")
    page.get_by_label("Referral source").select_option("psychiatrist")
    page.get_by_label("Referring clinician name").fill("Dr. Aaron Whitfield")
    page.get_by_label("Treatment to screen for").select_option("esketamine_trd")
    page.get_by_role("button", name="Register referral").click()
    expect(page.locator(".flash")).to_contain_text("Referral registered for Imogen Quartermaine")
    expect(page.get_by_test_id("referral-table")).to_contain_text("Quartermaine")
    screenshot(page, "referral-queue")
    intake = Intake.objects.get(patient__last_name="Quartermaine")
    patient = intake.patient
    sign_out(page)

    # 2. Nurse: history, one failed trial (so not yet treatment-resistant), baseline PHQ-9.
    sign_in(page, world.users["nurse"])
    page.goto("/screening/")
    page.get_by_role("row", name=re.compile("Quartermaine")).get_by_role(
        "link", name="Intake"
    ).click()
    expect(page.get_by_test_id("workspace-name")).to_contain_text("Quartermaine")
    page.locator("#medical").get_by_role("link", name="Record").click()
    page.get_by_label("Takes no medications").check()
    page.get_by_label("No known allergies").check()
    page.get_by_role("button", name="Save").click()
    page.locator("#psychiatric").get_by_role("link", name="Record").click()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("link", name="Add diagnosis").click()
    page.get_by_label("Diagnosis:", exact=True).select_option("F33.2")
    page.get_by_label("Primary diagnosis").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("link", name="Add antidepressant trial").click()
    page.get_by_label("Drug name").fill("sertraline")
    page.get_by_label("Highest daily dose (mg)").fill("150")
    page.get_by_label("Weeks at that dose").fill("10")
    page.get_by_label("Adequate dose and duration").check()
    page.get_by_label("Outcome").select_option("no_response")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("trd-summary")).to_contain_text("not treatment-resistant")
    page.get_by_role("link", name="PHQ-9").click()
    for item, value in enumerate([2, 2, 2, 1, 1, 2, 1, 1, 0], start=1):
        page.locator(f"input[name=q{item}][value='{value}']").check()
    page.get_by_role("button", name="Score and save").click()
    expect(page.locator(".flash")).to_contain_text("PHQ-9 recorded: total 12, moderate")
    elig = page.get_by_test_id("eligibility-esketamine_trd")
    expect(elig.get_by_test_id("eligibility-status")).to_have_text("Needs review")
    expect(page.get_by_role("button", name="Sign override")).to_have_count(0)  # not a nurse's
    page.goto(f"/screening/patients/{patient.pk}/consent/esketamine/")
    page.get_by_label(re.compile("The patient read this version")).check()
    page.get_by_role("button", name="Record signatures").click()
    page.goto(f"/screening/patients/{patient.pk}/rems/")
    page.get_by_label("REMS patient enrolment ID").fill("SPR-4200123")
    clinic_today = datetime.now(ZoneInfo(world.clinic_a.timezone)).date()
    page.get_by_label("Enrolled on").fill(clinic_today.isoformat())
    page.get_by_role("button", name="Save").click()
    sign_out(page)

    # 3. Prescriber: the reasons with their sources, a signed override, the course.
    sign_in(page, world.users["prescriber"])
    page.goto(f"/screening/patients/{patient.pk}/")
    elig = page.get_by_test_id("eligibility-esketamine_trd")
    expect(elig.get_by_test_id("eligibility-status")).to_have_text("Needs review")
    expect(elig).to_contain_text("1 failed antidepressant trial(s) recorded")
    expect(elig).to_contain_text("Source: Spravato PI §1 indication")
    screenshot(page, "needs-review")
    page.get_by_label("Why the benefit outweighs the risks for this patient").fill("too short")
    page.get_by_role("button", name="Sign override").click()
    expect(page.locator(".field-error").first).to_contain_text("at least 20 characters")
    assert not EligibilityOverride.objects.exists()
    page.get_by_label("Why the benefit outweighs the risks for this patient").fill(OVERRIDE_REASON)
    page.get_by_role("button", name="Sign override").click()
    expect(page.get_by_test_id("override")).to_contain_text(OVERRIDE_REASON)

    page.get_by_role("button", name="Plan a course").click()
    expect(page.get_by_label("Protocol")).to_have_value("esketamine_trd")
    page.get_by_label("Session time").fill("09:00")
    expect(page.locator("#plan-preview tbody tr")).to_have_count(12)  # live htmx preview
    page.get_by_role("button", name="Plan course and book sessions").click()
    expect(page.locator(".flash")).to_contain_text("Course planned")
    expect(page.get_by_test_id("course-status")).to_have_text("Planned")
    expect(page.get_by_test_id("start-ready")).to_be_visible()  # consent and REMS on file
    expect(page.get_by_test_id("sessions").locator("tbody tr")).to_have_count(12)
    screenshot(page, "course")

    # 4. The day board of the first session's day shows it, with the override alert.
    first = Appointment.objects.filter(patient=patient).order_by("starts_at").first()
    assert first is not None and first.dose_mg == 56
    day = first.starts_at.astimezone(ZoneInfo(world.clinic_a.timezone))
    page.get_by_role("link", name="Day board").click()
    page.goto(f"/courses/board/?day={day:%Y-%m-%d}")
    slot = page.get_by_test_id("board-slot").filter(has_text="Quartermaine")
    expect(slot).to_have_count(1)
    expect(slot).to_contain_text("09:00")
    expect(slot).to_contain_text("session 1")
    expect(slot).to_contain_text("Needs-review override by")
    screenshot(page, "day-board")
