"""Referral, history records, baseline scores, vitals, consent, REMS and ride home: the write
paths' rules, and that bad input or a refused actor changes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors, services
from ketaclinic.screening.models import (
    BaselineMeasure,
    ConsentText,
    Diagnosis,
    Intake,
    SignedConsent,
)
from tests.screening.builders import PHQ9_ITEM9, TODAY, screen

pytestmark = pytest.mark.usefixtures("frozen_now")

REFERRAL = {
    "referral_source": "primary_care",
    "referred_on": TODAY,
    "intended_treatment": "esketamine_trd",
    "referring_clinician_name": "Dr. Raman",
}
NEW_PATIENT = {"first_name": "Robin", "last_name": "Quill", "date_of_birth": date(1988, 6, 1)}


def test_front_desk_registers_a_new_patient_and_referral_together(world):
    desk = world.users["front_desk"]
    intake = services.referral_create(
        actor=desk, clinic_id=world.clinic_a.pk, data=REFERRAL, patient_data=NEW_PATIENT
    )
    assert intake.status == "referred" and intake.patient.last_name == "Quill"
    assert intake.patient.mrn  # issued by the patients service
    assert intake.clinic_id == world.clinic_a.pk
    assert [e.action for e in AuditEvent.objects.filter(patient_id=intake.patient_id)] == [
        "create",
        "create",
    ]


def test_a_bad_referral_creates_neither_patient_nor_referral(world):
    before = Patient.objects.count()
    with pytest.raises(ValidationError) as raised:
        services.referral_create(
            actor=world.users["front_desk"],
            clinic_id=world.clinic_a.pk,
            data={
                **REFERRAL,
                "referred_on": TODAY + timedelta(days=1),
                "referring_clinician_npi": "12ab",
            },
            patient_data=NEW_PATIENT,
        )
    assert set(raised.value.message_dict) == {"referred_on", "referring_clinician_npi"}
    assert Patient.objects.count() == before and not Intake.objects.exists()


def test_referral_permissions_and_clinic_scope(world):
    with pytest.raises(PermissionDenied):
        services.referral_create(
            actor=world.users["auditor"],
            clinic_id=world.clinic_a.pk,
            data=REFERRAL,
            patient=world.patient_a2,
        )
    with pytest.raises(ValidationError, match="cannot register referrals"):
        services.referral_create(
            actor=world.users["front_desk"],
            clinic_id=world.clinic_b.pk,
            data=REFERRAL,
            patient=world.patient_b,
        )
    with pytest.raises(ValidationError, match="another clinic"):
        services.referral_create(
            actor=world.users["front_desk"],
            clinic_id=world.clinic_a.pk,
            data=REFERRAL,
            patient=world.patient_b,
        )
    services.referral_create(
        actor=world.users["front_desk"],
        clinic_id=world.clinic_a.pk,
        data=REFERRAL,
        patient=world.patient_a2,
    )
    with pytest.raises(ValidationError, match="already has an open referral"):
        services.referral_create(
            actor=world.users["nurse"],
            clinic_id=world.clinic_a.pk,
            data=REFERRAL,
            patient=world.patient_a2,
        )
    assert Intake.objects.count() == 1


def test_first_clinical_record_starts_screening_and_status_machine(world):
    intake = services.referral_create(
        actor=world.users["front_desk"],
        clinic_id=world.clinic_a.pk,
        data=REFERRAL,
        patient=world.patient_a2,
    )
    services.history_item_add(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="diagnosis",
        data={"icd10_code": "F33.1"},
    )
    intake.refresh_from_db()
    assert intake.status == "screening"
    with pytest.raises(PermissionDenied):  # declining is the prescriber's decision
        services.intake_change_status(
            actor=world.users["front_desk"], intake=intake, status="declined", reason="x"
        )
    with pytest.raises(ValidationError, match="reason"):
        services.intake_change_status(
            actor=world.users["prescriber"], intake=intake, status="declined", reason=""
        )
    with pytest.raises(ValidationError, match="cannot become"):
        services.intake_change_status(
            actor=world.users["prescriber"], intake=intake, status="referred"
        )
    declined = services.intake_change_status(
        actor=world.users["prescriber"], intake=intake, status="declined", reason="Prefers ECT"
    )
    assert (declined.status, declined.status_reason) == ("declined", "Prefers ECT")


def test_clinical_history_is_for_clinicians_and_other_clinics_are_refused(world):
    data = {"icd10_code": "F33.1"}
    for persona in ("front_desk", "clinic_admin", "auditor", "patient"):
        with pytest.raises(PermissionDenied):
            services.history_item_add(
                actor=world.users[persona], patient=world.patient_a2, kind="diagnosis", data=data
            )
    with pytest.raises(PermissionDenied):
        services.history_item_add(
            actor=world.users["other_clinic_nurse"],
            patient=world.patient_a2,
            kind="diagnosis",
            data=data,
        )
    assert not Diagnosis.objects.exists()


def test_history_validation_names_the_field_and_writes_nothing(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    cases = [
        ("diagnosis", {"icd10_code": "Z99.9"}, "icd10_code"),
        (
            "antidepressant-trial",
            {
                "drug_name": "",
                "dose_mg": Decimal("0"),
                "weeks": 4,
                "adequate": True,
                "outcome": "no_response",
            },
            "drug_name",
        ),
        (
            "antidepressant-trial",
            {
                "drug_name": "x",
                "dose_mg": Decimal("-5"),
                "weeks": 4,
                "adequate": True,
                "outcome": "no_response",
            },
            "dose_mg",
        ),
        (
            "medication",
            {"name": "sertraline", "started_on": TODAY, "stopped_on": TODAY - timedelta(days=3)},
            "stopped_on",
        ),
        (
            "medication",
            {"name": "sertraline", "started_on": TODAY + timedelta(days=2)},
            "started_on",
        ),
        (
            "other-treatment",
            {
                "kind": "tms",
                "outcome": "response",
                "started_on": TODAY,
                "ended_on": TODAY - timedelta(days=1),
            },
            "ended_on",
        ),
        ("allergy", {"substance": "x\x00"}, "substance"),
        ("substance-use", {"substance": "alcohol", "pattern": "sometimes"}, "pattern"),
        ("diagnosis", {"icd10_code": "F33.1", "mrn": "X"}, "mrn"),
    ]
    for kind, data, field in cases:
        with pytest.raises(ValidationError) as raised:
            services.history_item_add(actor=nurse, patient=patient, kind=kind, data=data)
        assert field in raised.value.message_dict, (kind, raised.value.message_dict)
    assert not AuditEvent.objects.filter(patient_id=patient.pk).exists()


def test_one_primary_diagnosis_and_entered_in_error_keeps_the_row(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    first = services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="diagnosis",
        data={"icd10_code": "F33.1", "is_primary": True},
    )
    second = services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="diagnosis",
        data={"icd10_code": "F43.12", "is_primary": True},
    )
    first.refresh_from_db()
    assert not first.is_primary and second.is_primary
    with pytest.raises(ValidationError):
        services.history_item_remove(actor=nurse, item=second, kind="diagnosis", reason=" ")
    services.history_item_remove(actor=nurse, item=second, kind="diagnosis", reason="wrong patient")
    second.refresh_from_db()
    assert second.entered_in_error and second.removed_reason == "wrong patient"
    with pytest.raises(ValidationError):
        services.history_item_update(
            actor=nurse, item=second, kind="diagnosis", data={"icd10_code": "F33.2"}
        )


def test_baseline_phq9_is_scored_by_the_clinical_rules_and_kept_immutable(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    measure = services.baseline_measure_record(
        actor=nurse, patient=patient, instrument="phq9", answers=PHQ9_ITEM9, administered_on=TODAY
    )
    assert (measure.total, measure.severity, measure.flags) == (
        17,
        "moderately severe",
        ["suicidal_ideation"],
    )
    assert measure.answers["q9"] == 1
    summary = selectors.intake_summary(patient)
    assert summary.suicide_risk_flags == ["PHQ-9 item 9 positive on 2026-03-02"]
    assert selectors.suicide_risk_at_last_check([patient.pk]) == {
        patient.pk: "PHQ-9 item 9 positive at last check (2026-03-02)"
    }
    if connection.vendor == "postgresql":  # the trigger of migration 0002
        with pytest.raises(DatabaseError), transaction.atomic():
            BaselineMeasure.objects.filter(pk=measure.pk).update(total=0)
    # A newer PHQ-9 without item 9 clears the alert.
    services.baseline_measure_record(
        actor=nurse,
        patient=patient,
        instrument="phq9",
        answers=[1] * 8 + [0],
        administered_on=TODAY,
    )
    assert selectors.suicide_risk_at_last_check([patient.pk]) == {}


@pytest.mark.parametrize(
    ("instrument", "answers", "message"),
    [
        ("phq9", [1] * 8, "expects 9 answers"),
        ("phq9", [1] * 8 + [4], "q9"),
        ("gad7", [True] * 7, "whole number"),
        ("cssrs_screener", {"q1": True, "q2": False, "q3": True, "q6": False}, "q3"),
        ("madrs", {"q1": 1}, "missing"),
        ("bprs", [1] * 18, "baseline questionnaire"),
    ],
)
def test_bad_answers_are_refused_with_the_item_named(world, instrument, answers, message):
    with pytest.raises(ValidationError) as raised:
        services.baseline_measure_record(
            actor=world.users["nurse"],
            patient=world.patient_a2,
            instrument=instrument,
            answers=answers,
            administered_on=TODAY,
        )
    assert message in " ".join(raised.value.messages)
    assert not BaselineMeasure.objects.exists()


def test_cssrs_and_ybocs_scores(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    cssrs = services.baseline_measure_record(
        actor=nurse,
        patient=patient,
        instrument="cssrs_screener",
        answers={"q1": True, "q2": True, "q3": False, "q4": True, "q5": False, "q6": False},
        administered_on=TODAY,
    )
    assert cssrs.severity == "high" and "high_suicide_risk" in cssrs.flags
    assert selectors.suicide_risk_at_last_check([patient.pk])[patient.pk].startswith("C-SSRS high")
    ybocs = services.baseline_measure_record(
        actor=nurse, patient=patient, instrument="ybocs", answers=[3] * 10, administered_on=TODAY
    )
    assert (ybocs.total, ybocs.severity) == (30, "severe")


def test_vitals_bmi_and_plausibility(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    vitals = services.baseline_vitals_record(
        actor=nurse,
        patient=patient,
        data={"measured_on": TODAY, "height_cm": Decimal("180"), "weight_kg": Decimal("81")},
    )
    assert vitals.bmi == Decimal("25.0")
    for data, field in [
        ({"systolic_mmhg": 120}, "diastolic_mmhg"),
        ({"systolic_mmhg": 80, "diastolic_mmhg": 90}, "systolic_mmhg"),
        ({"heart_rate_bpm": 400}, "heart_rate_bpm"),
        ({"spo2_pct": 30}, "spo2_pct"),
        ({"weight_kg": Decimal("500")}, "weight_kg"),
        ({}, "__all__"),
    ]:
        with pytest.raises(ValidationError) as raised:
            services.baseline_vitals_record(
                actor=nurse, patient=patient, data={"measured_on": TODAY, **data}
            )
        assert field in raised.value.message_dict, (data, raised.value.message_dict)


def test_screening_gaps_until_the_evaluation_is_complete(world):
    patient = world.patient_a2
    gaps = {g.code for g in services.screening_gaps(patient) if g.required}
    assert gaps == {
        "medical_history_missing",
        "psychiatric_history_missing",
        "diagnosis_missing",
        "medications_not_reconciled",
        "allergies_not_recorded",
    }
    screen(world.users["nurse"], patient)
    assert services.screening_gaps(patient) == []


def test_consent_records_the_version_and_both_signatures(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    with pytest.raises(ValidationError) as raised:
        services.consent_sign(
            actor=nurse,
            patient=patient,
            kind="ketamine_off_label",
            data={"patient_signature": "Someone Else", "patient_signed_on": TODAY},
        )
    assert "patient_signature" in raised.value.message_dict
    assert not ConsentText.objects.exists()  # the failed attempt stored nothing
    consent = services.consent_sign(
        actor=nurse,
        patient=patient,
        kind="ketamine_off_label",
        data={"patient_signature": patient.full_name, "patient_signed_on": TODAY},
    )
    assert consent.consent_text.version == 1 and "off-label" in consent.consent_text.body
    assert consent.text_sha256 == services.sha256_text(consent.consent_text.body)
    assert consent.clinician_signature == nurse.signature_name
    with pytest.raises(ValidationError, match="already signed"):
        services.consent_sign(
            actor=nurse,
            patient=patient,
            kind="ketamine_off_label",
            data={"patient_signature": patient.full_name, "patient_signed_on": TODAY},
        )
    assert selectors.consents_in_force([patient.pk]) == {patient.pk: {"ketamine_off_label"}}

    new = services.consent_text_publish(
        actor=world.users["clinic_admin"],
        clinic_id=world.clinic_a.pk,
        kind="ketamine_off_label",
        title="Off-label consent (2026)",
        body="Revised wording. " * 10,
    )
    assert new.version == 2
    services.consent_withdraw(actor=nurse, consent=consent, reason="Changed her mind")
    assert selectors.consents_in_force([patient.pk]) == {}
    again = services.consent_sign(
        actor=nurse,
        patient=patient,
        kind="ketamine_off_label",
        data={"patient_signature": patient.full_name, "patient_signed_on": TODAY},
    )
    assert again.consent_text == new
    assert SignedConsent.objects.count() == 2


def test_consent_wording_is_published_by_administrators_only(world):
    with pytest.raises(PermissionDenied):
        services.consent_text_publish(
            actor=world.users["prescriber"],
            clinic_id=world.clinic_a.pk,
            kind="esketamine",
            title="t",
            body="b" * 200,
        )
    with pytest.raises(ValidationError) as raised:
        services.consent_text_publish(
            actor=world.users["clinic_admin"],
            clinic_id=world.clinic_a.pk,
            kind="esketamine",
            title="",
            body="too short",
        )
    assert set(raised.value.message_dict) == {"title", "body"}


def test_rems_enrolment_and_ride_home_are_audited_old_to_new(world):
    nurse, patient = world.users["nurse"], world.patient_a2
    services.rems_enrolment_record(
        actor=nurse, patient=patient, data={"enrolment_id": "PT-1", "enrolled_on": TODAY}
    )
    services.rems_enrolment_record(
        actor=nurse, patient=patient, data={"enrolment_id": "PT-2", "enrolled_on": TODAY}
    )
    event = AuditEvent.objects.filter(object_type="screening.remsenrolment").last()
    assert event.changes == {"enrolment_id": {"old": "PT-1", "new": "PT-2"}}
    with pytest.raises(PermissionDenied):
        services.rems_enrolment_record(
            actor=world.users["front_desk"],
            patient=patient,
            data={"enrolment_id": "PT-3", "enrolled_on": TODAY},
        )
    plan = services.transport_plan_update(
        actor=world.users["front_desk"],
        patient=patient,
        data={"escort_name": "Jo Park", "escort_relationship": "sister"},
    )
    assert plan.escort_name == "Jo Park"
    with pytest.raises(ValidationError) as raised:
        services.transport_plan_update(
            actor=world.users["front_desk"], patient=patient, data={"escort_name": ""}
        )
    assert "escort_name" in raised.value.message_dict
