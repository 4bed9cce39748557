"""API schemas for intake and screening. Inputs forbid unknown fields; units are in the names."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from ketaclinic.screening.choices import (
    DIAGNOSES,
    AllergySeverity,
    ConsentKind,
    IntakeStatus,
    OtherTreatmentKind,
    ReferralSource,
    Substance,
    TrialOutcome,
    UsePattern,
)

Treatment = Literal[
    "iv_ketamine", "im_ketamine", "oral_ketamine", "esketamine_trd", "esketamine_mdsi"
]
DiagnosisCode = Literal[tuple(DIAGNOSES)]  # type: ignore[valid-type]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


# --- Blocks ---------------------------------------------------------------------------------


class ReasonOut(Schema):
    code: str
    message: str
    source: str
    severity: str


class BlockedOut(Schema):
    """409: the action is stopped by a rule; every reason is listed with its source."""

    detail: str
    errors: dict[str, str]
    reasons: list[ReasonOut]


# --- Referral -------------------------------------------------------------------------------


class NewPatientIn(In):
    first_name: str = Field(..., min_length=1, max_length=100)
    last_name: str = Field(..., min_length=1, max_length=100)
    date_of_birth: date
    sex_at_birth: Literal["female", "male", "intersex", "unknown"] = "unknown"
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=254)


class ReferralFields(In):
    referral_source: ReferralSource
    referred_on: date
    referring_clinician_name: str = Field("", max_length=200)
    referring_clinician_practice: str = Field("", max_length=200)
    referring_clinician_phone: str = Field("", max_length=40)
    referring_clinician_npi: str = Field("", max_length=10)
    reason_for_referral: str = Field("", max_length=4000)
    intended_treatment: Treatment | Literal[""] = ""


class ReferralIn(ReferralFields):
    clinic_id: int
    patient_id: int | None = Field(None, description="An existing patient of the clinic")
    patient: NewPatientIn | None = Field(None, description="Or a new patient to register")


class IntakePatch(In):
    referral_source: ReferralSource | None = None
    referred_on: date | None = None
    referring_clinician_name: str | None = Field(None, max_length=200)
    referring_clinician_practice: str | None = Field(None, max_length=200)
    referring_clinician_phone: str | None = Field(None, max_length=40)
    referring_clinician_npi: str | None = Field(None, max_length=10)
    reason_for_referral: str | None = Field(None, max_length=4000)
    intended_treatment: Treatment | Literal[""] | None = None


class IntakeStatusIn(In):
    status: IntakeStatus
    reason: str = Field("", max_length=300)


class IntakeOut(Schema):
    id: int
    patient_id: int
    clinic_id: int
    status: str
    status_reason: str
    referral_source: str
    referred_on: date
    referring_clinician_name: str
    referring_clinician_practice: str
    referring_clinician_phone: str
    referring_clinician_npi: str
    reason_for_referral: str
    intended_treatment: str
    created_at: datetime


# --- History --------------------------------------------------------------------------------


class PsychiatricIn(In):
    psychosis_history: bool = False
    mania_history: bool = False
    suicide_attempt_history: bool = False
    self_harm_history: bool = False
    psychiatric_hospitalisations: int = Field(0, ge=0, le=200)
    current_episode_began_on: date | None = None
    notes: str = Field("", max_length=4000)


class MedicalIn(In):
    aneurysmal_vascular_disease: bool = False
    arteriovenous_malformation: bool = False
    intracerebral_hemorrhage_history: bool = False
    hypersensitivity_ketamine: bool = False
    uncontrolled_hypertension: bool = False
    cardiovascular_disease: bool = False
    severe_hepatic_impairment: bool = False
    raised_intracranial_pressure: bool = False
    pregnant: bool = False
    breastfeeding: bool = False
    pregnancy_status_checked_on: date | None = None
    hypertension: bool = False
    hypertensive_encephalopathy_history: bool = False
    raised_intraocular_pressure: bool = False
    seizure_disorder: bool = False
    urinary_symptoms: bool = False
    sleep_apnea: bool = False
    takes_no_medications: bool = False
    no_known_allergies: bool = False
    notes: str = Field("", max_length=4000)


class DiagnosisIn(In):
    icd10_code: DiagnosisCode  # type: ignore[valid-type]
    is_primary: bool = False
    diagnosed_on: date | None = None
    notes: str = Field("", max_length=500)


class TrialIn(In):
    drug_name: str = Field(..., min_length=1, max_length=100)
    dose_mg: Decimal = Field(..., gt=0, le=10000, max_digits=7, decimal_places=2)
    weeks: int = Field(..., ge=0, le=520)
    adequate: bool
    outcome: TrialOutcome
    current_episode: bool = True
    started_on: date | None = None
    notes: str = Field("", max_length=500)


class OtherTreatmentIn(In):
    kind: OtherTreatmentKind
    description: str = Field("", max_length=200)
    sessions: int | None = Field(None, ge=0, le=32767)
    started_on: date | None = None
    ended_on: date | None = None
    outcome: TrialOutcome
    current_episode: bool = True


class MedicationIn(In):
    name: str = Field(..., min_length=1, max_length=100)
    dose: str = Field("", max_length=60)
    frequency: str = Field("", max_length=60)
    is_oral_antidepressant: bool = False
    is_maoi: bool = False
    is_psychostimulant: bool = False
    is_cns_depressant: bool = False
    is_benzodiazepine: bool = False
    is_opioid: bool = False
    started_on: date | None = None
    stopped_on: date | None = None
    notes: str = Field("", max_length=300)


class AllergyIn(In):
    substance: str = Field(..., min_length=1, max_length=100)
    reaction: str = Field("", max_length=200)
    severity: AllergySeverity = AllergySeverity.UNKNOWN


class SubstanceUseIn(In):
    substance: Substance
    pattern: UsePattern
    use_disorder: bool = False
    last_used_on: date | None = None
    details: str = Field("", max_length=300)


ITEM_SCHEMAS: dict[str, type[In]] = {
    "diagnosis": DiagnosisIn,
    "antidepressant-trial": TrialIn,
    "other-treatment": OtherTreatmentIn,
    "medication": MedicationIn,
    "allergy": AllergyIn,
    "substance-use": SubstanceUseIn,
}


class RemoveIn(In):
    reason: str = Field(..., min_length=1, max_length=300)


class ItemOut(Schema):
    """A history entry: its list (`kind`), id, fields and whether it was entered in error."""

    kind: str
    id: int
    patient_id: int
    entered_in_error: bool
    removed_reason: str
    fields: dict[str, Any]


class PdmpIn(In):
    checked_on: date
    state: str = Field("", max_length=2)
    concerns_found: bool = False
    findings: str = Field("", max_length=500)


class VitalsIn(In):
    measured_on: date
    height_cm: Decimal | None = Field(None, ge=50, le=250, max_digits=4, decimal_places=1)
    weight_kg: Decimal | None = Field(None, ge=20, le=350, max_digits=4, decimal_places=1)
    systolic_mmhg: int | None = Field(None, ge=0, le=400)
    diastolic_mmhg: int | None = Field(None, ge=0, le=300)
    heart_rate_bpm: int | None = Field(None, ge=0, le=400)
    spo2_pct: int | None = Field(None, ge=0, le=100)
    respiratory_rate: int | None = Field(None, ge=0, le=100)


class VitalsOut(Schema):
    id: int
    measured_on: date
    height_cm: Decimal | None
    weight_kg: Decimal | None
    bmi: Decimal | None
    systolic_mmhg: int | None
    diastolic_mmhg: int | None
    heart_rate_bpm: int | None
    spo2_pct: int | None
    respiratory_rate: int | None


class MeasureIn(In):
    instrument: Literal[
        "phq9",
        "gad7",
        "cssrs_screener",
        "pcl5",
        "ybocs",
        "madrs",
        "qids_sr16",
        "hamd17",
        "pain_nrs",
    ]
    administered_on: date
    answers: list[int] | dict[str, int | bool] = Field(
        ..., description="Item values in item order, or item id -> value (C-SSRS: yes/no)"
    )


class MeasureOut(Schema):
    id: int
    instrument: str
    administered_on: date
    total: int
    severity: str
    flags: list[str]
    subscores: dict[str, int]
    answers: dict[str, Any]


class PdmpOut(Schema):
    id: int
    checked_on: date
    state: str
    concerns_found: bool
    findings: str


# --- Eligibility, consent, REMS, transport --------------------------------------------------


class OverrideOut(Schema):
    id: int
    treatment: str
    decision_id: int
    covered_reason_codes: list[str]
    reason: str
    signature: str
    signed_at: datetime
    content_hash: str


class DecisionOut(Schema):
    id: int
    treatment: str
    status: str
    previous_status: str
    reasons: list[ReasonOut]
    facts: dict[str, Any]
    provenance: dict[str, list[str]]
    as_of: date
    decided_at: datetime
    trigger: str


class EligibilityOut(Schema):
    treatment: str
    title: str
    status: str
    changed_from: str
    proceed_allowed: bool
    decision: DecisionOut | None
    override: OverrideOut | None
    history: list[DecisionOut]
    screening_gaps: list[str]


class CheckIn(In):
    treatment: Treatment


class OverrideIn(In):
    treatment: Treatment
    reason: str = Field(..., max_length=4000)


class ConsentIn(In):
    kind: ConsentKind
    patient_signature: str = Field(..., min_length=1, max_length=200)
    patient_signed_on: date


class ConsentOut(Schema):
    id: int
    kind: str
    version: int
    text_sha256: str
    patient_signature: str
    patient_signed_on: date
    clinician_signature: str
    clinician_signed_at: datetime
    withdrawn_at: datetime | None
    withdrawn_reason: str


class WithdrawIn(In):
    reason: str = Field(..., min_length=1, max_length=300)


class RemsIn(In):
    enrolment_id: str = Field(..., min_length=1, max_length=40)
    enrolled_on: date


class RemsOut(Schema):
    enrolment_id: str
    enrolled_on: date
    clinic_certified: bool


class TransportIn(In):
    escort_name: str = Field(..., min_length=1, max_length=200)
    escort_relationship: str = Field("", max_length=60)
    escort_phone: str = Field("", max_length=40)
    notes: str = Field("", max_length=300)


class TransportOut(Schema):
    escort_name: str
    escort_relationship: str
    escort_phone: str
    notes: str


class IntakeSummaryOut(Schema):
    patient_id: int
    intake: IntakeOut | None
    failed_antidepressant_trials: int
    treatment_resistant: bool
    history: list[ItemOut]
    psychiatric_history: dict[str, Any] | None
    medical_history: dict[str, Any] | None
    pdmp_checks: list[PdmpOut]
    vitals: list[VitalsOut]
    measures: list[MeasureOut]
    eligibility: list[EligibilityOut]
    consents: list[ConsentOut]
    rems_enrolment: RemsOut | None
    transport_plan: TransportOut | None
    screening_gaps: list[str]
    suicide_risk_flags: list[str]
