"""Issue 2: a nurse signs in with TOTP, finds a patient and opens the chart; a nurse of the
other clinic gets the friendly 404 for that chart, exactly as for a chart that does not exist."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from ketaclinic.audit.models import AuditEvent

pytestmark = pytest.mark.browser

DEBUG_PAGE_MARKERS = ("Traceback", "Http404", "Request Method", "Page not found at", "DEBUG")


def test_nurse_signs_in_with_totp_finds_patient_and_opens_chart(
    page: Page, sign_in, screenshot, world, live_server
) -> None:
    nurse, patient, other = world.users["nurse"], world.patient_a2, world.patient_a
    sign_in(page, nurse)
    expect(page).to_have_url(re.compile(r"/patients/$"))  # a nurse lands on the patient list
    results = page.locator("#patient-results")
    expect(results.get_by_role("link", name=other.last_name)).to_be_visible()

    # Live search through htmx: typing sends the form as an htmx request and swaps the results.
    with page.expect_response(
        lambda r: "q=Baker" in r.url and r.request.headers.get("hx-request") == "true"
    ) as search:
        page.get_by_label("Name, MRN or date of birth").fill(patient.last_name)
    assert search.value.status == 200
    expect(page.get_by_role("search")).to_be_visible()  # the search landmark
    expect(page.locator("#patient-results")).to_have_count(1)  # swapped, not nested
    expect(results).to_contain_text("1 patient match")
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(patient.mrn)
    expect(results.get_by_role("link", name=other.last_name)).to_have_count(0)
    screenshot(page, "patient-search")

    rows.get_by_role("link", name=f"{patient.last_name}, {patient.first_name}").click()
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_test_id("chart-name")).to_have_text(
        f"{patient.last_name}, {patient.first_name}"
    )
    expect(page.locator(".chart-header")).to_contain_text(f"MRN {patient.mrn}")
    expect(page.locator(".demo-banner")).to_have_count(0)
    expect(page).to_have_title(re.compile(re.escape(patient.last_name)))
    screenshot(page, "chart")

    reads = AuditEvent.objects.filter(action="read", patient_id=patient.pk)
    assert reads.count() == 1
    read = reads.get()
    assert read.user_id == nurse.pk
    assert read.clinic_id == world.clinic_a.pk
    assert (read.object_type, read.object_id) == ("patients.patient", str(patient.pk))
    assert read.source_ip == "127.0.0.1"
    assert read.request_id


def test_other_clinic_nurse_gets_friendly_404_for_the_chart(
    page: Page, sign_in, screenshot, world
) -> None:
    patient = world.patient_a2
    sign_in(page, world.users["other_clinic_nurse"])

    response = page.goto(f"/patients/{patient.pk}/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_test_id("chart-name")).to_have_count(0)
    html = page.content()
    for secret in (patient.last_name, patient.first_name, patient.mrn):
        assert secret not in html
    for marker in DEBUG_PAGE_MARKERS:
        assert marker not in html
    message = page.locator(".error-page p").first.inner_text()
    screenshot(page, "chart-404")

    # Indistinguishable from a chart that does not exist (no probing for other clinics' ids).
    missing = page.goto("/patients/999999/")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert page.locator(".error-page p").first.inner_text() == message

    assert not AuditEvent.objects.filter(action="read", patient_id=patient.pk).exists()
