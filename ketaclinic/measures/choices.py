"""Choices of measurement-based care: plan cadences, phases, assignment states, alerts."""

from __future__ import annotations

from django.db import models


class Phase(models.TextChoices):
    """Course phases a plan item applies to (the codes the courses app uses)."""

    ANY = "any", "Whole course"
    INDUCTION = "induction", "Induction"
    MAINTENANCE = "maintenance", "Maintenance"
    BOOSTER = "booster", "Booster"


class Cadence(models.TextChoices):
    BEFORE_EACH_SESSION = "before_each_session", "Before every session"
    WEEKLY = "weekly", "Weekly"
    EVERY_N_DAYS = "every_n_days", "Every N days"
    MONTHLY = "monthly", "Monthly"
    AT_BASELINE = "at_baseline", "At baseline (before the first session)"
    END_OF_INDUCTION = "end_of_induction", "At the end of induction"


class Respondent(models.TextChoices):
    PATIENT = "patient", "Patient-reported (portal, email link)"
    CLINICIAN = "clinician", "Clinician-entered"


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class AssignmentStatus(models.TextChoices):
    PENDING = "pending", "Due"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ResponseSource(models.TextChoices):
    PORTAL = "portal", "Patient portal"
    EMAIL_LINK = "email_link", "One-time link"
    CLINIC = "clinic", "Entered in clinic"
    API = "api", "API"
    SCREENING = "screening", "Intake baseline"


class AlertKind(models.TextChoices):
    PHQ9_ITEM9 = "phq9_item9", "PHQ-9 item 9 positive"
    CSSRS = "cssrs", "C-SSRS screener positive"
    URGENT_CHECKIN = "urgent_checkin", "Check-in marked urgent"
    URGENT_JOURNAL = "urgent_journal", "Journal entry marked urgent"


class AlertPriority(models.TextChoices):
    # Reference §10 rule 15: item 9 > 0 or C-SSRS yes → same-day review; C-SSRS high → now.
    IMMEDIATE = "immediate", "Immediate (high risk)"
    SAME_DAY = "same_day", "Same-day review"


class AlertAction(models.TextChoices):
    CALLED_PATIENT = "called_patient", "Called the patient"
    SAFETY_PLAN = "safety_plan", "Reviewed / made a safety plan"
    EMERGENCY_REFERRAL = "emergency_referral", "Emergency referral"
    OTHER = "other", "Other (describe)"


class BoosterResolution(models.TextChoices):
    BOOSTER_PLANNED = "booster_planned", "Booster planned"
    NOT_NEEDED = "not_needed", "Not needed now"


class CheckInSource(models.TextChoices):
    PORTAL = "portal", "Patient portal"
    API = "api", "API"
