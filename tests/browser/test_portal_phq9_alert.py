"""On a phone, a patient answers a PHQ-9 one question at a time with item 9 positive and sees
crisis resources at once; the prescriber then finds the alert in the alert inbox and
acknowledges it with the action taken."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ketaclinic.measures import services
from ketaclinic.measures.models import SafetyAlert
from tests.conftest import World
from tests.factories import PASSWORD
from tests.measures import factories

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Browser, live_server: Any, page_problems: list[str]) -> Iterator[Page]:
    """A phone-sized page; fails the test on JS errors, CSP violations or broken assets."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        timezone_id="America/New_York",
    )
    context.set_default_timeout(5_000)
    page = context.new_page()
    page.on("pageerror", lambda error: page_problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: (
            page_problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            page_problems.append(f"{r.status} {r.url}")
            if r.request.resource_type != "document" and r.status >= 400
            else None
        ),
    )
    yield page
    context.close()
    if page_problems:
        pytest.fail("problems in the phone browser:\n" + "\n".join(page_problems))


def test_patient_item9_on_a_phone_then_prescriber_acknowledges(
    world: World, phone: Page, page: Page, sign_in: Any, screenshot: Any
) -> None:
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(prescriber, world.clinic_a, factories.WEEKLY_PHQ9)
    factories.enrol(
        prescriber,
        world.patient_a,
        plan,
        first_session_on=services.clock.now().date(),
        prescriber=prescriber,
    )
    services.assignment_create(
        actor=world.users["nurse"], patient=world.patient_a, instrument="phq9"
    )

    # The patient signs in on a phone and lands on the portal.
    phone.goto("/accounts/login/")
    phone.get_by_label("Username").fill(world.users["patient"].username)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone).to_have_url(re.compile(r"/portal/$"))
    expect(phone.get_by_test_id("crisis-strip")).to_contain_text("988")
    expect(phone.get_by_test_id("portal-footer")).to_contain_text("not monitored around the clock")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "no sideways scrolling on a phone"

    phone.get_by_test_id("due-phq9").click()
    for number in range(1, 10):
        expect(phone.get_by_text(f"Question {number} of 9")).to_be_visible()
        answer = "More than half the days" if number == 9 else "Several days"
        phone.get_by_label(answer).check()
        if number == 9:
            expect(phone.get_by_test_id("question")).to_contain_text("better off dead")
            screenshot(phone, "portal-phq9-item9")
            phone.get_by_role("button", name="Submit").click()
        else:
            phone.get_by_role("button", name="Next").click()

    # Crisis resources at once, on the page that confirms the submission.
    crisis = phone.get_by_test_id("crisis-resources")
    expect(crisis).to_be_visible()
    expect(crisis.get_by_role("button", name="Call 988")).to_have_attribute("href", "tel:988")
    expect(crisis).to_contain_text("911")
    box = crisis.bounding_box()
    assert box is not None and box["y"] < PHONE["height"], "visible without scrolling"
    screenshot(phone, "portal-crisis-resources")
    alert = SafetyAlert.objects.get()
    assert (alert.kind, alert.assigned_to) == ("phq9_item9", prescriber)

    # The prescriber sees it waiting in the alert inbox and acknowledges it.
    sign_in(page, prescriber)
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_test_id("count-same-day")).to_have_text("1")
    row = page.get_by_test_id("alert-table").get_by_role("row").filter(has_text="item 9")
    expect(row).to_contain_text(world.patient_a.last_name)
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("alert-summary")).to_contain_text("PHQ-9 item 9 answered 2")
    expect(page.get_by_test_id("alert-waiting")).to_be_visible()
    page.get_by_label("Called the patient").check()
    page.get_by_label("Note").fill("Spoke with her; safe at home, partner present; seen tomorrow.")
    page.get_by_test_id("acknowledge").click()
    expect(page.get_by_text("Alert acknowledged.")).to_be_visible()
    expect(page.get_by_test_id("count-same-day")).to_have_text("0")
    alert.refresh_from_db()
    assert alert.acknowledged_by == prescriber and alert.action == "called_patient"
