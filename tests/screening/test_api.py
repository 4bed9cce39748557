"""/api/v1/screening: the same rules and audit as the pages, JSON errors, 409 with reasons."""

from __future__ import annotations

import pytest

from ketaclinic.audit.models import AuditEvent
from ketaclinic.screening.models import BaselineMeasure, EligibilityOverride, Intake
from tests.screening.builders import PHQ9_MODERATE, TODAY, screen

pytestmark = pytest.mark.usefixtures("frozen_now")
API = "/api/v1/screening"


def post(client, path, body):
    return client.post(API + path, body, content_type="application/json")


def put(client, path, body):
    return client.put(API + path, body, content_type="application/json")


def test_referral_for_a_new_patient_and_the_queue(world, client_for):
    desk = client_for("front_desk")
    created = post(
        desk,
        "/referrals",
        {
            "clinic_id": world.clinic_a.pk,
            "referral_source": "therapist",
            "referred_on": "2026-03-01",
            "intended_treatment": "iv_ketamine",
            "patient": {"first_name": "Noor", "last_name": "Haddad", "date_of_birth": "1990-02-03"},
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "referred" and body["intended_treatment"] == "iv_ketamine"
    listed = desk.get(API + "/referrals").json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]
    other = post(
        desk,
        "/referrals",
        {
            "clinic_id": world.clinic_b.pk,
            "referral_source": "self",
            "referred_on": "2026-03-01",
            "patient_id": world.patient_b.pk,
        },
    )
    assert other.status_code == 404  # another clinic's patient is not even found
    bad = post(
        desk,
        "/referrals",
        {
            "clinic_id": world.clinic_a.pk,
            "referral_source": "self",
            "referred_on": "2026-03-01",
            "patient_id": world.patient_a2.pk,
            "favourite_colour": "blue",
        },
    )
    assert bad.status_code == 422 and "favourite_colour" in bad.json()["errors"]
    assert Intake.objects.count() == 1


def test_history_measures_and_eligibility_through_the_api(world, client_for):
    nurse, p = client_for("nurse"), world.patient_a2
    base = f"/patients/{p.pk}"
    assert (
        put(
            nurse,
            f"{base}/medical-history",
            {"no_known_allergies": True, "takes_no_medications": True},
        ).status_code
        == 200
    )
    assert put(nurse, f"{base}/psychiatric-history", {}).status_code == 200
    diagnosis = post(nurse, f"{base}/diagnoses", {"icd10_code": "F33.2", "is_primary": True})
    assert diagnosis.status_code == 201 and diagnosis.json()["fields"]["icd10_code"] == "F33.2"
    wrong_code = post(nurse, f"{base}/diagnoses", {"icd10_code": "X00"})
    assert wrong_code.status_code == 422
    for drug in ("sertraline", "escitalopram"):
        trial = post(
            nurse,
            f"{base}/antidepressant-trials",
            {
                "drug_name": drug,
                "dose_mg": "20",
                "weeks": 8,
                "adequate": True,
                "outcome": "no_response",
            },
        )
        assert trial.status_code == 201, trial.content
    measure = post(
        nurse,
        f"{base}/baseline-measures",
        {
            "instrument": "phq9",
            "administered_on": "2026-03-02",
            "answers": PHQ9_MODERATE,
        },
    )
    assert measure.status_code == 201 and measure.json()["total"] == 10
    bad = post(
        nurse,
        f"{base}/baseline-measures",
        {
            "instrument": "phq9",
            "administered_on": "2026-03-02",
            "answers": [9] * 9,
        },
    )
    assert bad.status_code == 422 and "q1" in bad.json()["errors"]["answers"]
    assert BaselineMeasure.objects.count() == 1

    checked = post(nurse, f"{base}/eligibility/check", {"treatment": "esketamine_trd"})
    assert checked.status_code == 200
    assert checked.json()["status"] == "eligible" and checked.json()["screening_gaps"] == []
    summary = nurse.get(f"{API}{base}/intake").json()
    assert summary["treatment_resistant"] is True and summary["failed_antidepressant_trials"] == 2
    assert {h["kind"] for h in summary["history"]} == {"diagnosis", "antidepressant-trial"}

    medication = post(nurse, f"{base}/medications", {"name": "lorazepam", "dose": "1 mg"})
    assert medication.json()["fields"]["is_benzodiazepine"] is True
    current = nurse.get(f"{API}{base}/eligibility").json()  # no referral: esketamine_trd
    assert current["status"] == "needs_review" and current["changed_from"] == "eligible"
    assert current["decision"]["reasons"][0]["code"] == "cns_depressant"
    assert current["decision"]["reasons"][0]["source"].startswith("Spravato PI §7")
    removed = post(nurse, f"/medications/{medication.json()['id']}/remove", {"reason": "typo"})
    assert removed.status_code == 200 and removed.json()["entered_in_error"] is True


def test_override_api_permissions_reasons_and_409(world, client_for):
    p = world.patient_a2
    screen(world.users["nurse"], p, failed_trials=1)
    path = f"/patients/{p.pk}/eligibility/override"
    body = {"treatment": "esketamine_trd", "reason": "Third trial stopped for cost at week 6."}
    assert post(client_for("nurse"), path, body).status_code == 403
    assert post(client_for("front_desk"), path, body).status_code == 403
    assert post(client_for("other_clinic_nurse"), path, body).status_code == 404
    short = post(client_for("prescriber"), path, {**body, "reason": "ok"})
    assert short.status_code == 422 and "reason" in short.json()["errors"]
    signed = post(client_for("prescriber"), path, body)
    assert signed.status_code == 201
    assert signed.json()["covered_reason_codes"] == ["fewer_than_two_failed_trials"]
    again = post(client_for("prescriber"), path, body)
    assert again.status_code == 422  # already covered

    put(
        client_for("nurse"),
        f"/patients/{p.pk}/medical-history",
        {
            "no_known_allergies": True,
            "takes_no_medications": True,
            "arteriovenous_malformation": True,
        },
    )
    blocked = post(client_for("prescriber"), path, body)
    assert blocked.status_code == 409
    assert blocked.json()["reasons"][0]["code"] == "arteriovenous_malformation"
    assert blocked.json()["reasons"][0]["source"]
    assert EligibilityOverride.objects.count() == 1


def test_consent_rems_and_transport_api(world, client_for):
    nurse, p = client_for("nurse"), world.patient_a2
    consent = post(
        nurse,
        f"/patients/{p.pk}/consents",
        {
            "kind": "esketamine",
            "patient_signature": p.full_name,
            "patient_signed_on": "2026-03-02",
        },
    )
    assert consent.status_code == 201 and consent.json()["version"] == 1
    withdrawn = post(nurse, f"/consents/{consent.json()['id']}/withdraw", {"reason": "moved"})
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]
    assert (
        post(
            client_for("other_clinic_nurse"),
            f"/consents/{consent.json()['id']}/withdraw",
            {"reason": "x"},
        ).status_code
        == 404
    )
    rems = put(
        nurse,
        f"/patients/{p.pk}/rems-enrolment",
        {"enrolment_id": "SPR-77", "enrolled_on": "2026-03-01"},
    )
    assert rems.status_code == 200 and rems.json()["clinic_certified"] is False
    assert (
        put(
            client_for("front_desk"),
            f"/patients/{p.pk}/rems-enrolment",
            {"enrolment_id": "SPR-77", "enrolled_on": "2026-03-01"},
        ).status_code
        == 403
    )
    ride = put(
        client_for("front_desk"),
        f"/patients/{p.pk}/transport-plan",
        {"escort_name": "Sam", "escort_phone": "+1 617 555 0101"},
    )
    assert ride.status_code == 200 and ride.json()["escort_name"] == "Sam"


def test_api_reads_are_audited_and_token_auth_works(world, client_for):
    from ketaclinic.accounts import services as account_services

    _, raw = account_services.api_token_create(actor=world.users["nurse"], name="t", days=5)
    since = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    response = client_for("anonymous").get(
        f"{API}/patients/{world.patient_a2.pk}/intake", headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 200
    (event,) = AuditEvent.objects.filter(seq__gt=since)
    assert (event.action, event.patient_id, event.detail) == (
        "read",
        world.patient_a2.pk,
        "api intake summary",
    )
    assert (
        client_for("anonymous").get(f"{API}/patients/{world.patient_a2.pk}/intake").status_code
        == 401
    )
    assert (
        client_for("front_desk").get(f"{API}/patients/{world.patient_a2.pk}/intake").status_code
        == 403
    )
    assert client_for("patient").get(f"{API}/referrals").status_code == 403


def test_referral_status_and_update_api(world, client_for):
    desk = client_for("front_desk")
    created = post(
        desk,
        "/referrals",
        {
            "clinic_id": world.clinic_a.pk,
            "referral_source": "self",
            "referred_on": "2026-03-01",
            "patient_id": world.patient_a2.pk,
        },
    ).json()
    patched = desk.patch(
        f"{API}/intakes/{created['id']}",
        {"referring_clinician_name": "Dr. Lee"},
        content_type="application/json",
    )
    assert patched.status_code == 200 and patched.json()["referring_clinician_name"] == "Dr. Lee"
    status = post(
        desk, f"/intakes/{created['id']}/status", {"status": "withdrawn", "reason": "moved"}
    )
    assert status.status_code == 200 and status.json()["status"] == "withdrawn"
    assert client_for("other_clinic_nurse").get(f"{API}/intakes/{created['id']}").status_code == 404
    assert TODAY.isoformat() == "2026-03-02"
