"""Intake pages: who may open and post each one (own clinic, other clinic -> 404, wrong role ->
403), inline errors that change nothing, one audit read per page, and the chart panel."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketaclinic.audit.models import AuditEvent
from ketaclinic.screening import services
from ketaclinic.screening.models import (
    Diagnosis,
    EligibilityOverride,
    Intake,
    MedicalHistory,
    SignedConsent,
)
from tests.factories import PatientFactory
from tests.screening.builders import TODAY, screen

pytestmark = pytest.mark.usefixtures("frozen_now")

CLINICAL = ("prescriber", "nurse")
WRITERS = ("prescriber", "nurse", "front_desk", "clinic_admin")
NOT_CLINICAL = ("front_desk", "clinic_admin", "auditor", "patient")

# url (with {p} for the patient) -> personas that may open it
PATIENT_PAGES = {
    "/screening/patients/{p}/": CLINICAL,
    "/screening/patients/{p}/psychiatric/": CLINICAL,
    "/screening/patients/{p}/medical/": CLINICAL,
    "/screening/patients/{p}/pdmp/": CLINICAL,
    "/screening/patients/{p}/vitals/": CLINICAL,
    "/screening/patients/{p}/rems/": CLINICAL,
    "/screening/patients/{p}/history/medication/new/": CLINICAL,
    "/screening/patients/{p}/history/antidepressant-trial/new/": CLINICAL,
    "/screening/patients/{p}/measures/phq9/": CLINICAL,
    "/screening/patients/{p}/measures/cssrs_screener/": CLINICAL,
    "/screening/patients/{p}/measures/ybocs/": CLINICAL,
    "/screening/patients/{p}/eligibility/": CLINICAL,
    "/screening/patients/{p}/consent/esketamine/": CLINICAL,
    "/screening/patients/{p}/transport/": WRITERS,
    "/screening/patients/{p}/referral/": WRITERS,
}


@pytest.mark.parametrize("url", list(PATIENT_PAGES))
def test_patient_pages_by_role_and_clinic(world, client_for, url):
    allowed = PATIENT_PAGES[url]
    own, other = world.patient_a2, world.patient_b
    for persona in ("prescriber", "nurse", "front_desk", "clinic_admin", "auditor", "patient"):
        client = client_for(persona)
        response = client.get(url.format(p=own.pk))
        if persona in allowed:
            assert response.status_code == 200, (persona, url)
            assert own.last_name in response.content.decode()
            # The same persona never reaches another clinic's patient: 404 like a missing one.
            assert client.get(url.format(p=other.pk)).status_code == 404
            assert client.get(url.format(p=999999)).status_code == 404
        else:
            assert response.status_code == 403, (persona, url, response.status_code)
    nurse_b = client_for("other_clinic_nurse")
    assert nurse_b.get(url.format(p=own.pk)).status_code == 404
    assert client_for("anonymous").get(url.format(p=own.pk)).status_code == 302


def test_each_page_view_is_one_audited_read(world, client_for):
    client = client_for("nurse")
    since = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    client.get(f"/screening/patients/{world.patient_a2.pk}/")
    (event,) = AuditEvent.objects.filter(seq__gt=since)
    assert (event.action, event.patient_id, event.object_type) == (
        "read",
        world.patient_a2.pk,
        "patients.patient",
    )
    assert event.detail == "intake workspace"


def test_referral_queue_lists_own_clinic_only(world, client_for):
    for patient in (world.patient_a2, world.patient_b):
        desk = world.users["front_desk"] if patient.clinic_id == world.clinic_a.pk else None
        actor = desk or world.users["other_clinic_nurse"]
        services.referral_create(
            actor=actor,
            clinic_id=patient.clinic_id,
            patient=patient,
            data={"referral_source": "self", "referred_on": TODAY},
        )
    page = client_for("front_desk").get("/screening/").content.decode()
    assert world.patient_a2.last_name in page and world.patient_b.last_name not in page
    assert client_for("auditor").get("/screening/").status_code == 403
    assert client_for("patient").get("/screening/").status_code == 403


def test_front_desk_registers_a_new_patient_with_referral_from_one_page(world, client_for):
    client = client_for("front_desk")
    assert client.get("/screening/referrals/new/").status_code == 200
    data = {
        "p-clinic": world.clinic_a.pk,
        "p-first_name": "Ada",
        "p-last_name": "Lovelace",
        "p-date_of_birth": "1985-12-10",
        "p-sex_at_birth": "female",
        "p-phone": "",
        "p-email": "",
        "p-emergency_contact_name": "",
        "p-emergency_contact_phone": "",
        "r-referral_source": "psychiatrist",
        "r-referred_on": "2026-03-01",
        "r-referring_clinician_name": "Dr. Who",
        "r-intended_treatment": "esketamine_trd",
        "r-referring_clinician_npi": "",
        "r-referring_clinician_practice": "",
        "r-referring_clinician_phone": "",
        "r-reason_for_referral": "",
    }
    bad = client.post(
        "/screening/referrals/new/", {**data, "r-referred_on": "2026-04-01", "p-last_name": ""}
    )
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "This date is in the future." in html and "This field is required." in html
    assert not Intake.objects.exists()
    ok = client.post("/screening/referrals/new/", data)
    assert ok.status_code == 302 and ok["Location"] == "/screening/"
    intake = Intake.objects.get()
    assert intake.patient.last_name == "Lovelace" and intake.intended_treatment == "esketamine_trd"


def test_nurse_records_history_through_the_forms(world, client_for):
    client, patient = client_for("nurse"), world.patient_a2
    bad = client.post(
        f"/screening/patients/{patient.pk}/history/diagnosis/new/", {"icd10_code": "nope"}
    )
    assert bad.status_code == 400 and "field-error" in bad.content.decode()
    assert not Diagnosis.objects.exists()
    ok = client.post(
        f"/screening/patients/{patient.pk}/history/diagnosis/new/",
        {"icd10_code": "F33.2", "is_primary": "on"},
    )
    assert ok.status_code == 302 and ok["Location"].endswith("#diagnosis")
    item = Diagnosis.objects.get()
    edit = client.get(f"/screening/history/diagnosis/{item.pk}/")
    assert edit.status_code == 200 and "Entered in error?" in edit.content.decode()
    removed = client.post(f"/screening/history/diagnosis/{item.pk}/remove/", {"reason": "dup"})
    assert removed.status_code == 302
    item.refresh_from_db()
    assert item.entered_in_error
    nurse_b = client_for("other_clinic_nurse")
    assert nurse_b.get(f"/screening/history/diagnosis/{item.pk}/").status_code == 404
    assert (
        nurse_b.post(f"/screening/history/diagnosis/{item.pk}/remove/", {"reason": "x"}).status_code
        == 404
    )
    assert client.get("/screening/history/unknown/1/").status_code == 404

    medical = client.post(
        f"/screening/patients/{patient.pk}/medical/",
        {"pregnant": "on", "no_known_allergies": "on", "notes": ""},
    )
    assert medical.status_code == 302
    assert MedicalHistory.objects.get().pregnant


def test_questionnaire_form_scores_and_names_the_bad_item(world, client_for):
    client, patient = client_for("nurse"), world.patient_a2
    url = f"/screening/patients/{patient.pk}/measures/cssrs_screener/"
    page = client.get(url).content.decode()
    assert "Have you actually had any thoughts of killing yourself?" in page
    bad = client.post(
        url, {"administered_on": "2026-03-02", "q1": "yes", "q2": "no", "q3": "yes", "q6": "no"}
    )
    assert bad.status_code == 400
    assert "q3 is asked only when q2 is yes" in bad.content.decode()
    ok = client.post(url, {"administered_on": "2026-03-02", "q1": "yes", "q2": "no", "q6": "no"})
    assert ok.status_code == 302
    phq = f"/screening/patients/{patient.pk}/measures/phq9/"
    answers = {f"q{i}": "2" for i in range(1, 10)}
    client.post(phq, {"administered_on": "2026-03-02", **answers})
    workspace = client.get(f"/screening/patients/{patient.pk}/").content.decode()
    assert "PHQ-9 item 9 positive" in workspace and ">18<" in workspace
    assert client.get(f"/screening/patients/{patient.pk}/measures/bprs/").status_code == 404


def test_workspace_shows_needs_review_reasons_and_prescriber_signs_override(world, client_for):
    patient = world.patient_a2
    services.referral_create(
        actor=world.users["front_desk"],
        clinic_id=patient.clinic_id,
        patient=patient,
        data={
            "referral_source": "self",
            "referred_on": TODAY,
            "intended_treatment": "esketamine_trd",
        },
    )
    screen(world.users["nurse"], patient, failed_trials=1)
    nurse_page = client_for("nurse").get(f"/screening/patients/{patient.pk}/").content.decode()
    assert "Needs review" in nurse_page
    assert "1 failed antidepressant trial(s) recorded" in nurse_page
    assert "Spravato PI §1 indication" in nurse_page  # the reason's source
    assert "Sign override" not in nurse_page  # nurses cannot override
    assert (
        client_for("nurse")
        .post(
            f"/screening/patients/{patient.pk}/eligibility/override/",
            {"treatment": "esketamine_trd", "reason": "x" * 40},
        )
        .status_code
        == 403
    )

    prescriber = client_for("prescriber")
    assert "Sign override" in prescriber.get(f"/screening/patients/{patient.pk}/").content.decode()
    short = prescriber.post(
        f"/screening/patients/{patient.pk}/eligibility/override/",
        {"treatment": "esketamine_trd", "reason": "fine"},
    )
    assert short.status_code == 400 and "at least 20 characters" in short.content.decode()
    assert not EligibilityOverride.objects.exists()
    signed = prescriber.post(
        f"/screening/patients/{patient.pk}/eligibility/override/",
        {
            "treatment": "esketamine_trd",
            "reason": "Second trial stopped at week 5 for cost; clinically resistant.",
        },
    )
    assert signed.status_code == 302
    chart = prescriber.get(f"/patients/{patient.pk}/").content.decode()
    assert "Override signed by" in chart and "stopped at week 5 for cost" in chart


def test_consent_page_signs_and_withdraw_needs_a_reason(world, client_for):
    client, patient = client_for("prescriber"), world.patient_a2
    url = f"/screening/patients/{patient.pk}/consent/ketamine_off_label/"
    page = client.get(url).content.decode()
    assert "off-label" in page
    unconfirmed = client.post(
        url, {"patient_signature": patient.full_name, "patient_signed_on": "2026-03-02"}
    )
    assert unconfirmed.status_code == 400 and not SignedConsent.objects.exists()
    ok = client.post(
        url,
        {
            "patient_signature": patient.full_name,
            "patient_signed_on": "2026-03-02",
            "confirm": "on",
        },
    )
    assert ok.status_code == 302
    consent = SignedConsent.objects.get()
    no_reason = client.post(f"/screening/consents/{consent.pk}/withdraw/", {"reason": ""})
    assert no_reason.status_code == 400
    consent.refresh_from_db()
    assert consent.withdrawn_at is None
    assert (
        client_for("front_desk")
        .post(f"/screening/consents/{consent.pk}/withdraw/", {"reason": "x"})
        .status_code
        == 403
    )


def test_chart_panel_by_role(world, client_for):
    patient = world.patient_a2
    services.referral_create(
        actor=world.users["front_desk"],
        clinic_id=patient.clinic_id,
        patient=patient,
        data={"referral_source": "self", "referred_on": TODAY, "intended_treatment": "iv_ketamine"},
    )
    screen(world.users["nurse"], patient)
    nurse = client_for("nurse").get(f"/patients/{patient.pk}/").content.decode()
    assert "Intake and eligibility" in nurse and "F33.2" in nurse and "Eligible" in nurse
    desk = client_for("front_desk").get(f"/patients/{patient.pk}/").content.decode()
    assert "Intake and eligibility" in desk and "Referral details" in desk
    assert "F33.2" not in desk and "PHQ-9" not in desk  # clinical details stay with clinicians
    auditor = client_for("auditor").get(f"/patients/{patient.pk}/").content.decode()
    assert "Intake and eligibility" not in auditor


def _chart_queries(client, patient) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/patients/{patient.pk}/").status_code == 200
    return len(queries)


def test_chart_query_count_does_not_grow_with_history_or_patients(world, client_for):
    patient, nurse = world.patient_a2, world.users["nurse"]
    services.referral_create(
        actor=world.users["front_desk"],
        clinic_id=patient.clinic_id,
        patient=patient,
        data={"referral_source": "self", "referred_on": TODAY, "intended_treatment": "iv_ketamine"},
    )
    screen(nurse, patient, failed_trials=1)
    client = client_for("prescriber")
    small = _chart_queries(client, patient)
    screen_more = [
        ("diagnosis", {"icd10_code": "F41.1"}),
        ("allergy", {"substance": "latex"}),
        ("medication", {"name": "sertraline"}),
        ("substance-use", {"substance": "tobacco", "pattern": "past"}),
    ]
    for _ in range(3):
        for kind, data in screen_more:
            services.history_item_add(actor=nurse, patient=patient, kind=kind, data=data)
        services.baseline_measure_record(
            actor=nurse, patient=patient, instrument="gad7", answers=[1] * 7, administered_on=TODAY
        )
    for _ in range(30):
        PatientFactory(clinic=world.clinic_a, date_of_birth=date(1970, 1, 1))
    assert _chart_queries(client, patient) == small


def test_default_dates_are_the_clinics_own_day(world, client_for, time_machine):
    # 23:30 in Boston is already the next day in UTC: forms must offer Boston's date.
    from datetime import UTC, datetime

    time_machine.move_to(datetime(2026, 3, 3, 4, 30, tzinfo=UTC))
    client = client_for("nurse")
    patient = world.patient_a2
    for url in ("pdmp/", "vitals/", "measures/phq9/", "consent/esketamine/"):
        page = client.get(f"/screening/patients/{patient.pk}/{url}").content.decode()
        assert 'value="2026-03-02"' in page and "2026-03-03" not in page, url
    referral = client_for("front_desk").get(f"/screening/patients/{patient.pk}/referral/")
    assert 'value="2026-03-02"' in referral.content.decode()
