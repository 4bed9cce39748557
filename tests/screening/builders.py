"""Builders for intake and course tests: a screened patient in a few lines, through the services.

Everything goes through the real services (permission, validation, audit), so a test that uses
a builder also exercises the write paths it relies on.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts.models import Clinic
from ketaclinic.courses import services as course_services
from ketaclinic.courses.models import Chair
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services

# A Monday; tests travel here so clinic days and "the future" are fixed.
TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("America/New_York"))
PHQ9_MODERATE = [2, 2, 1, 1, 1, 1, 1, 1, 0]  # total 10, item 9 = 0
PHQ9_ITEM9 = [2, 2, 2, 2, 2, 2, 2, 2, 1]  # total 17, item 9 positive


def chair(clinic: Clinic, name: str = "Chair 1", capacity: int = 1) -> Chair:
    return Chair.objects.create(clinic=clinic, name=name, capacity=capacity)


def screen(
    actor: Any,
    patient: Patient,
    *,
    failed_trials: int = 2,
    medical: dict[str, Any] | None = None,
    psychiatric: dict[str, Any] | None = None,
    medications: list[dict[str, Any]] | None = None,
    phq9: list[int] | None = None,
    diagnosis: str = "F33.2",
) -> None:
    """A complete pre-treatment evaluation; by default treatment-resistant and eligible."""
    services.medical_history_update(
        actor=actor,
        patient=patient,
        data={
            "no_known_allergies": True,
            "takes_no_medications": not medications,
            **(medical or {}),
        },
    )
    services.psychiatric_history_update(actor=actor, patient=patient, data=psychiatric or {})
    services.history_item_add(
        actor=actor,
        patient=patient,
        kind="diagnosis",
        data={"icd10_code": diagnosis, "is_primary": True},
    )
    for index in range(failed_trials):
        services.history_item_add(
            actor=actor,
            patient=patient,
            kind="antidepressant-trial",
            data={
                "drug_name": ["sertraline", "venlafaxine", "bupropion", "mirtazapine"][index % 4],
                "dose_mg": Decimal("150"),
                "weeks": 8,
                "adequate": True,
                "outcome": "no_response",
                "current_episode": True,
            },
        )
    for medication in medications or []:
        services.history_item_add(actor=actor, patient=patient, kind="medication", data=medication)
    services.pdmp_check_record(
        actor=actor, patient=patient, data={"checked_on": TODAY, "state": "MA"}
    )
    services.baseline_vitals_record(
        actor=actor,
        patient=patient,
        data={
            "measured_on": TODAY,
            "height_cm": Decimal("170"),
            "weight_kg": Decimal("80"),
            "systolic_mmhg": 122,
            "diastolic_mmhg": 78,
            "heart_rate_bpm": 70,
            "spo2_pct": 98,
        },
    )
    services.baseline_measure_record(
        actor=actor,
        patient=patient,
        instrument="phq9",
        answers=phq9 or PHQ9_MODERATE,
        administered_on=TODAY,
    )


def ready_for_esketamine(nurse: Any, patient: Patient) -> None:
    """Signed consent and REMS enrolment, as the first esketamine session needs."""
    services.consent_sign(
        actor=nurse,
        patient=patient,
        kind="esketamine",
        data={"patient_signature": patient.full_name, "patient_signed_on": TODAY},
    )
    services.rems_enrolment_record(
        actor=nurse, patient=patient, data={"enrolment_id": "PT-1234567", "enrolled_on": TODAY}
    )


def plan(prescriber: Any, patient: Patient, protocol: str = "esketamine_trd", **kwargs: Any):
    values = {"start_date": date(2026, 3, 3), "session_time": time(9, 0)}
    values.update(kwargs)
    return course_services.course_create(
        actor=prescriber, patient=patient, protocol=protocol, **values
    )
