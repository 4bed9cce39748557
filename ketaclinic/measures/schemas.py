"""Input and output schemas of /api/v1/measures: one In and one Out per endpoint, never a whole
model."""

from datetime import date, datetime

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field


class AssignmentOut(Schema):
    id: int
    patient_id: int
    instrument: str
    respondent: str
    status: str
    course_phase: str
    session_number: int | None
    available_at: datetime
    due_at: datetime
    expires_at: datetime
    delivered_at: datetime | None
    reminders_sent: int
    completed_at: datetime | None


class AssignmentFilters(Schema):
    patient_id: int | None = None
    status: str | None = Field(None, pattern="^(pending|completed|expired|cancelled)$")


class AssignmentCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    patient_id: int
    instrument: str = Field(..., max_length=32)
    respondent: str = Field("patient", pattern="^(patient|clinician)$")
    open_hours: int = Field(72, ge=4, le=720)


class ResponseOut(Schema):
    id: int
    patient_id: int
    assignment_id: int | None
    instrument: str
    instrument_version: str
    answers: dict[str, int]
    total: int
    severity: str
    flags: list[str]
    subscores: dict[str, int]
    loinc_total: str
    completed_at: datetime
    source: str


class CrisisResources(Schema):
    call_or_text: str
    emergency: str
    message: str


class ResponseSubmitted(ResponseOut):
    crisis_resources: CrisisResources | None = None


class ResponseFilters(Schema):
    patient_id: int | None = None
    instrument: str | None = Field(None, max_length=32)


class ResponseSubmit(Schema):
    model_config = ConfigDict(extra="forbid")

    assignment_id: int | None = None
    patient_id: int | None = None
    instrument: str | None = Field(None, max_length=32)
    answers: dict[str, int | bool] = Field(..., max_length=64)


# A plain pydantic model, not a ninja Schema: the points are dicts, and Schema's per-object ORM
# wrapper cost more than the rest of a two-year trajectory's response.
class ScorePointOut(BaseModel):
    date: date
    total: int
    severity: str
    suicidal_ideation: bool


class TrajectoryOut(Schema):
    instrument: str
    title: str
    baseline: int | None
    baseline_date: date | None
    latest: int | None
    status: str | None
    change_pct: int | None
    relapse_on: date | None
    first_response_after_sessions: int | None
    late_responder: bool
    end_of_induction_status: str | None
    points: list[ScorePointOut]


class ScoresOut(Schema):
    patient_id: int
    sessions_planned: int
    first_session_on: date | None
    trajectories: list[TrajectoryOut]


class ScoresFilters(Schema):
    instrument: str | None = Field(None, max_length=32)


class CheckInOut(Schema):
    id: int
    patient_id: int
    mood_0_to_10: int
    note: str
    urgent: bool
    recorded_at: datetime


class CheckInFilters(Schema):
    patient_id: int | None = None


class CheckInCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    mood_0_to_10: int = Field(..., ge=0, le=10)
    note: str = Field("", max_length=2000)
    urgent: bool = False


class AlertOut(Schema):
    id: int
    patient_id: int
    clinic_id: int
    kind: str
    priority: str
    cssrs_risk: str
    summary: str
    assigned_to_id: int | None
    created_at: datetime
    escalated_at: datetime | None
    escalation_count: int
    acknowledged_at: datetime | None
    acknowledged_by_id: int | None
    action: str
    action_note: str
    waited_minutes: int

    @staticmethod
    def resolve_waited_minutes(obj: object) -> int:
        """Minutes from creation to acknowledgement, or to now while it waits."""
        from ketaclinic.core import clock

        created = obj.created_at  # type: ignore[attr-defined]
        end = obj.acknowledged_at or clock.now()  # type: ignore[attr-defined]
        return int((end - created).total_seconds() // 60)


class AlertFilters(Schema):
    status: str = Field("open", pattern="^(open|acknowledged|all)$")
    patient_id: int | None = None
    mine: bool = False


class AlertAcknowledge(Schema):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(..., pattern="^(called_patient|safety_plan|emergency_referral|other)$")
    note: str = Field("", max_length=2000)
