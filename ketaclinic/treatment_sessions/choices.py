"""Session states and their allowed transitions, in one table (ARCHITECTURE rule 6)."""

from __future__ import annotations

from types import MappingProxyType

from django.db import models


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CHECKED_IN = "checked_in", "Checked in"
    GATE_PASSED = "gate_passed", "Pre-dose gate passed"
    DOSING = "dosing", "Dosing"
    OBSERVING = "observing", "Observing"
    READY_FOR_DISCHARGE = "ready_for_discharge", "Ready for discharge"
    DISCHARGED = "discharged", "Discharged"
    SIGNED = "signed", "Signed"
    CANCELLED = "cancelled", "Cancelled"
    STOPPED_EARLY = "stopped_early", "Stopped early"


S = SessionStatus

# THE table. A session that never reached the dose is cancelled; one stopped once the patient is
# in the chair is "stopped early" and still needs a signed note. Nothing leaves `signed` or
# `cancelled`: later changes to a signed note are amendments, never a new state.
SESSION_TRANSITIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        S.SCHEDULED: frozenset({S.CHECKED_IN, S.CANCELLED}),
        S.CHECKED_IN: frozenset({S.GATE_PASSED, S.CANCELLED, S.STOPPED_EARLY}),
        S.GATE_PASSED: frozenset({S.DOSING, S.CANCELLED, S.STOPPED_EARLY}),
        S.DOSING: frozenset({S.OBSERVING, S.STOPPED_EARLY}),
        S.OBSERVING: frozenset({S.READY_FOR_DISCHARGE, S.STOPPED_EARLY}),
        # A new alert while waiting to leave sends the patient back to observation.
        S.READY_FOR_DISCHARGE: frozenset({S.DISCHARGED, S.OBSERVING}),
        S.DISCHARGED: frozenset({S.SIGNED}),
        S.STOPPED_EARLY: frozenset({S.SIGNED}),
        S.SIGNED: frozenset(),
        S.CANCELLED: frozenset(),
    }
)

# Transitions that need a written reason.
REASON_REQUIRED = frozenset({S.CANCELLED, S.STOPPED_EARLY})
# Only a prescriber signs the note.
PRESCRIBER_ONLY = frozenset({S.SIGNED})
# States in which the patient is in the chair (room board, one open session per patient).
ACTIVE_STATUSES = frozenset(
    {S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE}
)
# The timestamp column each state sets when entered.
ENTERED_AT_FIELD: MappingProxyType[str, str] = MappingProxyType(
    {
        S.CHECKED_IN: "checked_in_at",
        S.GATE_PASSED: "gate_passed_at",
        S.DOSING: "dosing_started_at",
        S.OBSERVING: "observing_started_at",
        S.READY_FOR_DISCHARGE: "ready_at",
        S.DISCHARGED: "discharged_at",
        S.SIGNED: "signed_at",
        S.CANCELLED: "ended_at",
        S.STOPPED_EARLY: "ended_at",
    }
)


class GateStatus(models.TextChoices):
    """The result of `clinical.pre_dose_check`."""

    PROCEED = "proceed", "Proceed"
    REVIEW = "review", "Review by a prescriber"
    HOLD = "hold", "Hold"


class PregnancyStatus(models.TextChoices):
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    NOT_PREGNANT = "not_pregnant", "Not pregnant (reported or tested)"
    UNKNOWN = "unknown", "Unknown"
    PREGNANT = "pregnant", "Pregnant"


class AdverseEventCode(models.TextChoices):
    """The coded list of adverse events a session records (clinical.md §3)."""

    NAUSEA = "nausea", "Nausea"
    VOMITING = "vomiting", "Vomiting"
    HYPERTENSION = "hypertension", "Hypertension"
    DISSOCIATION = "dissociation", "Dissociation"
    ANXIETY = "anxiety", "Anxiety"
    HEADACHE = "headache", "Headache"
    DIZZINESS = "dizziness", "Dizziness"
    SEDATION = "sedation", "Sedation"
    RESPIRATORY_DEPRESSION = "respiratory_depression", "Respiratory depression"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


class EventOutcome(models.TextChoices):
    RESOLVED = "resolved", "Resolved"
    RESOLVING = "resolving", "Resolving"
    ONGOING = "ongoing", "Ongoing"
    TRANSFERRED = "transferred", "Transferred to emergency care"


class InterventionKind(models.TextChoices):
    """What the nurse or prescriber did during the session (clinical.md §3: antiemetic,
    antihypertensive, slowing or stopping the infusion)."""

    ANTIEMETIC = "antiemetic", "Antiemetic given"
    ANTIHYPERTENSIVE = "antihypertensive", "Antihypertensive given"
    INFUSION_SLOWED = "infusion_slowed", "Infusion slowed"
    INFUSION_STOPPED = "infusion_stopped", "Infusion stopped"
    INFUSION_RESUMED = "infusion_resumed", "Infusion resumed"
    OXYGEN = "oxygen", "Supplemental oxygen"
    OTHER = "other", "Other"


# Kinds that need the drug, dose or what was done in words.
INTERVENTION_DETAIL_REQUIRED = frozenset(
    {
        InterventionKind.ANTIEMETIC,
        InterventionKind.ANTIHYPERTENSIVE,
        InterventionKind.OXYGEN,
        InterventionKind.OTHER,
    }
)
INTERVENTION_STATUSES = frozenset({S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE})


class SubmissionMethod(models.TextChoices):
    """How the REMS Patient Monitoring Form reached the REMS (clinical.md §4)."""

    ONLINE = "online", "Online (REMS portal)"
    FAX = "fax", "Fax"
    PHONE = "phone", "Phone"


class VitalsSource(models.TextChoices):
    MANUAL = "manual", "Entered by a nurse"
    DEVICE = "device", "From a device (API)"


# States in which monitoring readings are taken.
MONITORING_STATUSES = frozenset(
    {S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE}
)
