"""API schemas for courses, appointments, the day board and estimates."""

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from ketaclinic.courses.choices import CourseStatus, MaintenanceCadence
from ketaclinic.screening.schemas import ReasonOut

ProtocolCode = Literal[
    "iv_ketamine_induction",
    "iv_ketamine_induction_3x_weekly",
    "esketamine_trd",
    "esketamine_mdsi",
    "im_ketamine",
    "oral_ketamine",
]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class PhaseOut(Schema):
    name: str
    first_week: int
    last_week: int | None
    sessions_per_block: int
    block_weeks: int
    dose_mg: int | None
    dose_mg_per_kg: Decimal | None
    minutes: int | None


class ProtocolOut(Schema):
    code: str
    title: str
    treatment: str
    route: str
    default_weeks: int
    source: str
    clinic_defined: bool
    review_after_course: bool
    allowed_doses_mg: list[int]
    dose_note: str
    phases: list[PhaseOut]


class GoalIn(In):
    kind: Literal["target_score", "personal"]
    instrument: str | None = Field(None, max_length=20)
    target_total: int | None = Field(None, ge=0, le=1000)
    text: str | None = Field(None, max_length=500)


class GoalOut(Schema):
    id: int
    kind: str
    instrument: str
    target_total: int | None
    text: str


class CourseIn(In):
    patient_id: int
    protocol: ProtocolCode
    start_date: date
    session_time: time
    weeks: int | None = Field(None, ge=1, le=156)
    chair_id: int | None = None
    dose_mg: int | None = Field(None, description="Esketamine dose for sessions after the first")
    dose_mg_per_kg: Decimal | None = Field(None, gt=0, max_digits=4, decimal_places=2)
    goals_note: str = Field("", max_length=4000)
    goals: list[GoalIn] = Field(default_factory=list, max_length=10)


class AppointmentOut(Schema):
    id: int
    course_id: int
    patient_id: int
    chair_id: int
    chair_name: str
    starts_at: datetime
    ends_at: datetime
    number: int
    phase: str
    dose_mg: int | None
    dose_mg_per_kg: Decimal | None
    infusion_minutes: int | None
    status: str
    status_reason: str
    booster_reason: str
    replaces_id: int | None

    @staticmethod
    def resolve_chair_name(obj: Any) -> str:
        return str(obj.chair.name)


class CourseOut(Schema):
    id: int
    patient_id: int
    clinic_id: int
    treatment: str
    protocol: str
    status: str
    status_reason: str
    phase: str
    start_date: date
    planned_weeks: int
    goals_note: str
    maintenance_cadence: str
    maintenance_interval_weeks: int | None
    eligibility_decision_id: int
    eligibility_override_id: int | None
    prescriber_id: int
    created_at: datetime


class MissedAdviceOut(Schema):
    appointment_id: int
    message: str
    source: str


class CourseDetailOut(Schema):
    course: CourseOut
    goals: list[GoalOut]
    appointments: list[AppointmentOut]
    start_blockers: list[ReasonOut]
    eligibility_status: str
    eligibility_override_reason: str | None
    missed_dose_suggestions: list[MissedAdviceOut]


class StatusIn(In):
    status: CourseStatus
    reason: str = Field("", max_length=500)


class MaintenanceIn(In):
    from_date: date
    cadence: MaintenanceCadence
    session_time: time
    weeks: int | None = Field(None, ge=1, le=156)
    interval_weeks: int | None = Field(None, ge=1, le=12)
    sessions: int | None = Field(None, ge=1, le=52)
    chair_id: int | None = None
    dose_mg: int | None = None
    dose_mg_per_kg: Decimal | None = Field(None, gt=0, max_digits=4, decimal_places=2)


class BoosterIn(In):
    day: date
    session_time: time
    reason: str = Field(..., min_length=1, max_length=500)
    chair_id: int | None = None
    dose_mg: int | None = None
    dose_mg_per_kg: Decimal | None = Field(None, gt=0, max_digits=4, decimal_places=2)


class RescheduleIn(In):
    day: date
    session_time: time
    reason: str = Field(..., min_length=1, max_length=500)
    chair_id: int | None = None


class ReasonIn(In):
    reason: str = Field("", max_length=500)


class DoseIn(In):
    reason: str = Field(..., min_length=1, max_length=500)
    dose_mg: int | None = None
    dose_mg_per_kg: Decimal | None = Field(None, gt=0, max_digits=4, decimal_places=2)


class AppointmentDetailOut(AppointmentOut):
    treatment: str
    missed_dose_suggestion: MissedAdviceOut | None
    eligibility_override_reason: str | None


class EstimateLineOut(Schema):
    kind: str
    description: str
    billing_codes: str
    quantity: int
    unit: str
    unit_price: Decimal | None
    total: Decimal | None


class EstimateOut(Schema):
    course_id: int
    sessions: int
    lines: list[EstimateLineOut]
    total: Decimal
    missing_prices: list[str]


class BoardAlertOut(Schema):
    code: str
    text: str
    level: str


class BoardRowOut(Schema):
    appointment: AppointmentOut
    patient_name: str
    mrn: str
    treatment: str
    alerts: list[BoardAlertOut]


class BoardChairOut(Schema):
    chair_id: int
    chair_name: str
    capacity: int
    rows: list[BoardRowOut]


class BoardOut(Schema):
    clinic_id: int
    day: date
    chairs: list[BoardChairOut]


class BoardQuery(Schema):
    clinic_id: int | None = None
    day: date | None = None


class ChairIn(In):
    clinic_id: int
    name: str = Field(..., min_length=1, max_length=60)
    capacity: int = Field(1, ge=1, le=20)
    is_active: bool = True
    notes: str = Field("", max_length=200)


class ChairOut(Schema):
    id: int
    clinic_id: int
    name: str
    capacity: int
    is_active: bool
    notes: str


class CourseFilters(Schema):
    status: str = Field("open", description="open, all, or a course status")
    patient_id: int | None = None
