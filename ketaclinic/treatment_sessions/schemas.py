"""API shapes for treatment sessions. Amounts are decimal strings in JSON, never floats.

Inputs forbid unknown fields (a misspelt field is an error, not silently dropped); ranges the
services check again are also declared here so the OpenAPI schema tells device makers.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_validator

from ketaclinic.treatment_sessions.choices import (
    AdverseEventCode,
    EventOutcome,
    InterventionKind,
    PregnancyStatus,
    SessionStatus,
    Severity,
    SubmissionMethod,
)


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


# --- Errors ---------------------------------------------------------------------------------


class BlockedOut(Schema):
    """409: a safety rule or the state machine stops the action; `reasons` in plain words."""

    detail: str
    errors: dict[str, str]
    reasons: list[str]


# --- Inputs ---------------------------------------------------------------------------------


class SessionFilters(Schema):
    clinic_id: int | None = None
    date: dt.date | None = Field(None, description="Scheduled on this day (clinic time zone)")
    status: SessionStatus | None = None


class SessionCreateIn(_In):
    """From a booked appointment; or, without one, for a patient and a treatment."""

    appointment_id: int | None = Field(None, ge=1)
    patient_id: int | None = Field(None, ge=1)
    treatment: str = Field("", max_length=40)
    scheduled_at: datetime | None = None
    planned_dose_mg: Decimal | None = Field(None, gt=0, lt=1000, max_digits=6, decimal_places=2)

    @model_validator(mode="after")
    def _one_source(self) -> SessionCreateIn:
        if self.appointment_id is None and self.patient_id is None:
            raise ValueError("Give appointment_id, or patient_id with a treatment.")
        if self.appointment_id is not None and self.patient_id is not None:
            raise ValueError("Give appointment_id or patient_id, not both.")
        return self


TransitionTarget = Literal[
    "checked_in",
    "gate_passed",
    "dosing",
    "observing",
    "ready_for_discharge",
    "discharged",
    "cancelled",
    "stopped_early",
]


class TransitionIn(_In):
    """Move the session along the state table. Signing is `POST …/sign` (it binds the note)."""

    to: TransitionTarget
    reason: str = Field("", max_length=500)


class PreDoseIn(_In):
    weight_kg: Decimal = Field(..., ge=20, le=350, max_digits=5, decimal_places=1)
    systolic_mmhg: int = Field(..., ge=50, le=300)
    diastolic_mmhg: int = Field(..., ge=20, le=200)
    heart_rate_bpm: int | None = Field(None, ge=20, le=250)
    spo2_pct: int | None = Field(None, ge=50, le=100)
    respiratory_rate_per_min: int | None = Field(None, ge=4, le=60)
    fasting_confirmed: bool = False
    ride_home_confirmed: bool = False
    pregnancy_status: PregnancyStatus = PregnancyStatus.NOT_APPLICABLE
    medications_changed: bool = False
    medication_changes: str = Field("", max_length=1000)
    rems_enrolment_verified: bool = False
    prescriber_on_site: int | None = Field(None, ge=1, description="user id of the prescriber")


class ReasonIn(_In):
    reason: str = Field(..., max_length=500)


class InfusionOrderIn(_In):
    dose_mg_per_kg: Decimal = Field(..., gt=0, max_digits=4, decimal_places=2)
    minutes: int = Field(..., ge=1, le=240)
    concentration_mg_per_ml: Decimal = Field(..., gt=0, max_digits=5, decimal_places=2)


class SignerIn(_In):
    """A second person re-authenticating in this very request: their username (or user id),
    their own password, and their authenticator code when they have one."""

    username: str | None = Field(None, max_length=150, pattern=r"^[^\x00]*$")
    user_id: int | None = Field(None, ge=1)
    password: str = Field(..., max_length=200)
    otp: str = Field("", max_length=10)

    @model_validator(mode="after")
    def _who(self) -> SignerIn:
        if not self.username and self.user_id is None:
            raise ValueError("Give the username (or user id) of the person signing.")
        return self


class SecondCheckIn(_In):
    checker: SignerIn


class AdministrationIn(_In):
    """Draw the dose from a lot at a storage location and waste the remainder with a witness."""

    location_id: int = Field(..., ge=1)
    lot_id: int = Field(..., ge=1)
    dose_mg: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    waste_mg: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=3)
    witness: SignerIn | None = None


class VitalsIn(_In):
    taken_at: datetime | None = None
    systolic_mmhg: int | None = Field(None, ge=40, le=300)
    diastolic_mmhg: int | None = Field(None, ge=20, le=200)
    heart_rate_bpm: int | None = Field(None, ge=20, le=250)
    spo2_pct: int | None = Field(None, ge=50, le=100)
    respiratory_rate_per_min: int | None = Field(None, ge=2, le=60)
    moaas: int | None = Field(None, ge=0, le=5)


class DeviceReadingIn(VitalsIn):
    client_id: str = Field(
        ..., min_length=1, max_length=80, description="unique per device reading"
    )


class VitalsBatchIn(_In):
    readings: list[DeviceReadingIn] = Field(..., min_length=1, max_length=500)


class AlertAcknowledgeIn(_In):
    action: str = Field(..., max_length=500, description="what was done")


class CadssIn(_In):
    total: int = Field(..., ge=0, le=92)


class AdverseEventIn(_In):
    code: AdverseEventCode
    other_text: str = Field("", max_length=200)
    severity: Severity
    outcome: EventOutcome
    onset_at: datetime | None = None


class DischargeAssessmentIn(_In):
    sedation_resolved: bool = False
    dissociation_resolved: bool = False
    respiratory_depression_resolved: bool = False
    vitals_acceptable: bool = False
    escort_present: bool = False
    escort_name: str = Field("", max_length=200)


class SignIn(_In):
    meaning: str = Field("Reviewed and approved", max_length=200)


class AmendmentIn(_In):
    text: str = Field(..., max_length=4000)


class InterventionIn(_In):
    kind: InterventionKind
    detail: str = Field("", max_length=500)
    given_at: datetime | None = None


class RemsSubmissionIn(_In):
    submitted_on: date
    method: SubmissionMethod
    confirmation: str = Field(..., max_length=100, description="the REMS's confirmation number")


class WorklistFilters(Schema):
    clinic_id: int | None = None


# --- Outputs --------------------------------------------------------------------------------


class SessionSummaryOut(Schema):
    id: int
    patient_id: int
    patient_name: str
    clinic_id: int
    chair: str | None
    treatment: str
    status: SessionStatus
    scheduled_at: datetime
    checked_in_at: datetime | None
    dosing_started_at: datetime | None

    @staticmethod
    def resolve_patient_name(obj: object) -> str:
        return obj.patient.full_name  # type: ignore[attr-defined, no-any-return]

    @staticmethod
    def resolve_chair(obj: object) -> str | None:
        chair = obj.chair  # type: ignore[attr-defined]
        return str(chair) if chair is not None else None


class GateReasonOut(Schema):
    code: str
    message: str
    source: str = ""
    severity: str = ""


class PreDoseOut(Schema):
    id: int
    weight_kg: Decimal
    systolic_mmhg: int
    diastolic_mmhg: int
    heart_rate_bpm: int | None
    spo2_pct: int | None
    respiratory_rate_per_min: int | None
    fasting_confirmed: bool
    ride_home_confirmed: bool
    pregnancy_status: str
    medications_changed: bool
    medication_changes: str
    rems_enrolment_verified: bool
    prescriber_on_site_id: int | None
    gate_status: str
    gate_reasons: list[GateReasonOut]
    cleared: bool
    acknowledged_by_id: int | None
    acknowledged_at: datetime | None
    acknowledgement_reason: str
    recorded_by_id: int
    recorded_at: datetime


class InfusionOrderOut(Schema):
    id: int
    weight_kg: Decimal
    dose_mg_per_kg: Decimal
    minutes: int
    concentration_mg_per_ml: Decimal
    dose_mg: Decimal
    volume_ml: Decimal
    rate_ml_per_h: Decimal
    vtbi_ml: Decimal
    ordered_by_id: int
    ordered_at: datetime
    checked_by_id: int | None
    checked_at: datetime | None


class DeviceOut(Schema):
    id: int
    number: int
    dose_mg: int
    administered_at: datetime
    recorded_by_id: int


class LedgerLineOut(Schema):
    seq: int
    kind: str
    occurred_at: datetime
    lot_id: int
    lot_number: str
    location_id: int
    quantity_mg: Decimal
    actor_name: str
    witness_name: str


class AdministrationOut(Schema):
    administration: LedgerLineOut
    waste: LedgerLineOut | None
    dispensed_mg: Decimal


class VitalOut(Schema):
    id: int
    taken_at: datetime
    systolic_mmhg: int | None
    diastolic_mmhg: int | None
    heart_rate_bpm: int | None
    spo2_pct: int | None
    respiratory_rate_per_min: int | None
    moaas: int | None
    source: str
    client_id: str


class AlertOut(Schema):
    id: int
    reading_id: int
    code: str
    message: str
    severity: str
    source: str
    is_open: bool
    acknowledged_by_id: int | None
    acknowledged_at: datetime | None
    action: str

    @staticmethod
    def resolve_is_open(obj: object) -> bool:
        return obj.acknowledged_by_id is None  # type: ignore[attr-defined, no-any-return]


class VitalRecordedOut(Schema):
    reading: VitalOut
    alerts: list[AlertOut]


class BatchResultOut(Schema):
    created: int
    duplicates: int
    alerts: list[str]


class CadssOut(Schema):
    id: int
    total: int
    scored_at: datetime
    recorded_by_id: int


class AdverseEventOut(Schema):
    id: int
    code: str
    other_text: str
    severity: str
    outcome: str
    onset_at: datetime
    recorded_by_id: int
    recorded_at: datetime


class DischargeOut(Schema):
    id: int
    sedation_resolved: bool
    dissociation_resolved: bool
    respiratory_depression_resolved: bool
    vitals_acceptable: bool
    escort_present: bool
    escort_name: str
    gate_status: str
    gate_reasons: list[GateReasonOut]
    assessed_by_id: int
    assessed_at: datetime


class SignatureOut(Schema):
    signer_name: str
    signed_by_id: int
    signed_at: datetime
    meaning: str
    content_sha256: str


class AmendmentOut(Schema):
    id: int
    text: str
    content_sha256: str
    author_id: int
    written_at: datetime


class InterventionOut(Schema):
    id: int
    kind: str
    detail: str
    given_at: datetime
    recorded_by_id: int
    recorded_at: datetime


class TransitionOut(Schema):
    from_status: str
    to_status: str
    reason: str
    actor_id: int
    at: datetime


class NextStepOut(Schema):
    to: str | None
    blockers: list[str]


class SessionOut(Schema):
    """Everything the chair-side screen needs, in one read."""

    id: int
    patient_id: int
    patient_name: str
    clinic_id: int
    appointment_id: int | None
    course_id: int | None
    chair: str | None
    treatment: str
    route: str
    planned_dose_mg: Decimal | None
    status: SessionStatus
    status_reason: str
    scheduled_at: datetime
    checked_in_at: datetime | None
    gate_passed_at: datetime | None
    dosing_started_at: datetime | None
    observing_started_at: datetime | None
    ready_at: datetime | None
    discharged_at: datetime | None
    signed_at: datetime | None
    ended_at: datetime | None
    pre_dose_check: PreDoseOut | None
    infusion_order: InfusionOrderOut | None
    devices: list[DeviceOut]
    next_device_at: datetime | None
    administrations: list[LedgerLineOut]
    vitals: list[VitalOut]
    alerts: list[AlertOut]
    open_alerts: int
    cadss: list[CadssOut]
    adverse_events: list[AdverseEventOut]
    interventions: list[InterventionOut]
    discharge_assessment: DischargeOut | None
    next_step: NextStepOut
    next_vitals_due_at: datetime | None
    minutes_since_first_dose: int | None
    signature: SignatureOut | None
    amendments: list[AmendmentOut]
    transitions: list[TransitionOut]


class NoteOut(Schema):
    session_id: int
    text: str
    signed: bool
    signature: SignatureOut | None
    signature_verifies: bool
    amendments: list[AmendmentOut]


class RemsSubmissionOut(Schema):
    session_id: int
    submitted_on: date
    method: str
    confirmation: str
    form_version: str
    recorded_by_id: int
    recorded_at: datetime


class RemsFormOut(Schema):
    session_id: int
    form_version: str
    applies: bool = Field(..., description="false: not an esketamine session, no form is due")
    form: dict[str, object]
    missing: list[str]
    complete: bool
    due_on: date | None
    submission: RemsSubmissionOut | None


class WorklistRowOut(Schema):
    session_id: int
    patient_id: int
    patient_name: str
    clinic_id: int
    status: str
    due_on: date
    days_left: int = Field(..., description="negative when overdue")
    submission: RemsSubmissionOut | None


class WorklistOut(Schema):
    overdue: list[WorklistRowOut]
    due: list[WorklistRowOut]
    submitted: list[WorklistRowOut]
