"""Demo intake data: patients at every stage from referral to eligibility decision.

Deterministic (fixed patients, fixed answers, dates relative to the seeding day) and idempotent
(a patient who already has a referral is left alone). Everything goes through the services, so
the demo audit trail reads like a real clinic's. `courses.demo` builds the courses on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ketaclinic.core import clock
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services
from ketaclinic.screening.models import Intake

# Stages in the order patients are picked from the clinic's list.
BOSTON_STAGES = (
    "referred",
    "screening",
    "ineligible",
    "needs_review_override",
    "active_iv_induction",
    "esketamine_maintenance",
    "completed",
    "needs_review_waiting",
)
DENVER_STAGES = ("esketamine_not_ready",)


@dataclass(frozen=True)
class Staff:
    prescriber: Any
    nurse: Any
    front_desk: Any


def demo_patients(clinic: Any, count: int) -> list[Patient]:
    """The first patients of the clinic by MRN who have no portal login (stable across runs)."""
    return list(Patient.objects.filter(clinic=clinic, user__isnull=True).order_by("mrn")[:count])


def _refer(staff: Staff, patient: Patient, today: date, treatment: str, **extra: Any) -> None:
    services.referral_create(
        actor=staff.front_desk,
        clinic_id=patient.clinic_id,
        patient=patient,
        data={
            "referral_source": extra.pop("source", "psychiatrist"),
            "referred_on": today - timedelta(days=extra.pop("days_ago", 21)),
            "referring_clinician_name": extra.pop("clinician", "Dr. Aaron Whitfield"),
            "referring_clinician_practice": extra.pop("practice", "Back Bay Psychiatry"),
            "reason_for_referral": extra.pop(
                "reason", "Recurrent depression, no response to two antidepressants."
            ),
            "intended_treatment": treatment,
        },
    )


def _history(
    staff: Staff,
    patient: Patient,
    today: date,
    *,
    diagnosis: str = "F33.2",
    trials: int = 2,
    medical: dict[str, Any] | None = None,
    psychiatric: dict[str, Any] | None = None,
    medications: tuple[dict[str, Any], ...] = (),
    phq9: tuple[int, ...] = (2, 3, 2, 2, 1, 2, 2, 1, 0),
    gad7: tuple[int, ...] | None = (2, 2, 1, 2, 1, 1, 1),
    weight_kg: str = "78.4",
) -> None:
    nurse = staff.nurse
    services.medical_history_update(
        actor=nurse,
        patient=patient,
        data={
            "no_known_allergies": True,
            "takes_no_medications": not medications,
            "pregnancy_status_checked_on": today - timedelta(days=7),
            **(medical or {}),
        },
    )
    services.psychiatric_history_update(
        actor=nurse,
        patient=patient,
        data={
            "psychiatric_hospitalisations": 1,
            "current_episode_began_on": today - timedelta(days=420),
            **(psychiatric or {}),
        },
    )
    services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="diagnosis",
        data={
            "icd10_code": diagnosis,
            "is_primary": True,
            "diagnosed_on": today - timedelta(days=900),
        },
    )
    tried = (
        ("sertraline", "200", 10, "no_response"),
        ("venlafaxine", "225", 8, "partial_response"),
        ("bupropion", "300", 8, "no_response"),
    )
    for drug, dose, weeks, outcome in tried[:trials]:
        services.history_item_add(
            actor=nurse,
            patient=patient,
            kind="antidepressant-trial",
            data={
                "drug_name": drug,
                "dose_mg": Decimal(dose),
                "weeks": weeks,
                "adequate": True,
                "outcome": outcome,
                "current_episode": True,
            },
        )
    services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="other-treatment",
        data={
            "kind": "psychotherapy",
            "description": "CBT, weekly",
            "sessions": 16,
            "outcome": "partial_response",
            "current_episode": True,
        },
    )
    for medication in medications:
        services.history_item_add(actor=nurse, patient=patient, kind="medication", data=medication)
    services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="substance-use",
        data={
            "substance": "alcohol",
            "pattern": "current",
            "use_disorder": False,
            "details": "2-3 drinks a week",
        },
    )
    services.pdmp_check_record(
        actor=nurse,
        patient=patient,
        data={
            "checked_on": today - timedelta(days=10),
            "state": patient.clinic.state[:2],
            "concerns_found": False,
            "findings": "No controlled-substance fills in 12 months",
        },
    )
    services.baseline_vitals_record(
        actor=nurse,
        patient=patient,
        data={
            "measured_on": today - timedelta(days=10),
            "height_cm": Decimal("171.0"),
            "weight_kg": Decimal(weight_kg),
            "systolic_mmhg": 124,
            "diastolic_mmhg": 79,
            "heart_rate_bpm": 72,
            "spo2_pct": 98,
            "respiratory_rate": 14,
        },
    )
    services.baseline_measure_record(
        actor=nurse,
        patient=patient,
        instrument="phq9",
        answers=list(phq9),
        administered_on=today - timedelta(days=10),
    )
    if gad7:
        services.baseline_measure_record(
            actor=nurse,
            patient=patient,
            instrument="gad7",
            answers=list(gad7),
            administered_on=today - timedelta(days=10),
        )
    services.baseline_measure_record(
        actor=nurse,
        patient=patient,
        instrument="cssrs_screener",
        answers={"q1": phq9[8] > 0, "q2": False, "q6": False},
        administered_on=today - timedelta(days=10),
    )
    services.transport_plan_update(
        actor=staff.front_desk,
        patient=patient,
        data={
            "escort_name": "Jamie Rivera",
            "escort_relationship": "partner",
            "escort_phone": "+1 617 555 0188",
        },
    )


def _consent(staff: Staff, patient: Patient, today: date, kind: str) -> None:
    services.consent_sign(
        actor=staff.prescriber,
        patient=patient,
        kind=kind,
        data={
            "patient_signature": patient.full_name,
            "patient_signed_on": today - timedelta(days=3),
        },
    )


def _rems(staff: Staff, patient: Patient, today: date, number: int) -> None:
    services.rems_enrolment_record(
        actor=staff.nurse,
        patient=patient,
        data={"enrolment_id": f"SPR-{4100000 + number}", "enrolled_on": today - timedelta(days=3)},
    )


LORAZEPAM = {"name": "lorazepam", "dose": "0.5 mg", "frequency": "at night as needed"}
SERTRALINE = {"name": "sertraline", "dose": "150 mg", "frequency": "once daily"}


def seed_stage(stage: str, patient: Patient, staff: Staff, today: date) -> None:
    """Bring one patient to a stage (no-op when they already have a referral)."""
    if Intake.objects.filter(patient=patient).exists():
        return
    number = int("".join(ch for ch in patient.mrn if ch.isdigit()) or 0)
    if stage == "referred":
        _refer(
            staff,
            patient,
            today,
            "esketamine_trd",
            source="primary_care",
            clinician="Dr. Priya Raman",
            practice="Fenway Family Medicine",
            days_ago=2,
        )
    elif stage == "screening":
        _refer(
            staff,
            patient,
            today,
            "iv_ketamine",
            source="therapist",
            days_ago=9,
            clinician="Sam Okoye, LICSW",
            practice="South End Counseling",
            reason="Chronic PTSD with depression; interested in ketamine.",
        )
        services.psychiatric_history_update(
            actor=staff.nurse, patient=patient, data={"psychiatric_hospitalisations": 0}
        )
        services.history_item_add(
            actor=staff.nurse,
            patient=patient,
            kind="diagnosis",
            data={"icd10_code": "F43.12", "is_primary": True},
        )
        services.baseline_measure_record(
            actor=staff.nurse,
            patient=patient,
            instrument="pcl5",
            answers=[3, 3, 2, 3, 2, 3, 2, 2, 3, 2, 3, 2, 2, 3, 2, 3, 2, 1, 2, 3],
            administered_on=today - timedelta(days=2),
        )
    elif stage == "ineligible":
        _refer(staff, patient, today, "esketamine_trd", days_ago=30)
        _history(
            staff,
            patient,
            today,
            medical={"aneurysmal_vascular_disease": True, "hypertension": True},
        )
        intake = Intake.objects.get(patient=patient)
        services.intake_change_status(
            actor=staff.prescriber,
            intake=intake,
            status="declined",
            reason="Abdominal aortic aneurysm: esketamine is contraindicated; referred back "
            "for ECT evaluation.",
        )
    elif stage == "needs_review_override":
        _refer(staff, patient, today, "esketamine_trd", days_ago=18)
        _history(staff, patient, today, medications=(SERTRALINE, LORAZEPAM))
        services.eligibility_override_sign(
            actor=staff.prescriber,
            patient=patient,
            treatment="esketamine_trd",
            reason="Lorazepam 0.5 mg only at night, never on session days; sedation risk "
            "discussed; benefit outweighs the risk after two failed trials.",
        )
        _consent(staff, patient, today, "esketamine")
        _rems(staff, patient, today, number)
    elif stage == "active_iv_induction":
        _refer(staff, patient, today, "iv_ketamine", days_ago=40)
        # Item 9 positive at the last check: the day board shows it at every session.
        _history(
            staff, patient, today, trials=3, phq9=(3, 3, 2, 3, 2, 3, 2, 1, 1), weight_kg="82.6"
        )
        _consent(staff, patient, today, "ketamine_off_label")
    elif stage == "esketamine_maintenance":
        _refer(staff, patient, today, "esketamine_trd", days_ago=60)
        _history(staff, patient, today, medications=(SERTRALINE,))
        _consent(staff, patient, today, "esketamine")
        _rems(staff, patient, today, number)
    elif stage == "completed":
        _refer(staff, patient, today, "iv_ketamine", days_ago=170)
        _history(staff, patient, today, diagnosis="F33.1", weight_kg="69.0")
        _consent(staff, patient, today, "ketamine_off_label")
    elif stage == "needs_review_waiting":
        _refer(staff, patient, today, "esketamine_trd", days_ago=12)
        _history(staff, patient, today, trials=1, psychiatric={"psychosis_history": False})
    elif stage == "esketamine_not_ready":
        _refer(
            staff,
            patient,
            today,
            "esketamine_trd",
            days_ago=14,
            practice="Capitol Hill Behavioral Health",
        )
        _history(staff, patient, today)
    else:
        raise ValueError(f"unknown demo stage {stage!r}")


def seed_intakes(clinics: dict[str, Any], staff: dict[str, Staff]) -> dict[str, Patient]:
    """Patients at every intake stage in both demo clinics; returns stage -> patient."""
    picked: dict[str, Patient] = {}
    for slug, stages in (("boston", BOSTON_STAGES), ("denver", DENVER_STAGES)):
        clinic = clinics[slug]
        today = clock.today_in(clinic.timezone)
        for stage, patient in zip(stages, demo_patients(clinic, len(stages)), strict=False):
            seed_stage(stage, patient, staff[slug], today)
            picked[stage] = patient
    return picked
