"""Course and appointment states, their allowed transitions, phases and price-list items."""

from __future__ import annotations

from types import MappingProxyType

from django.db import models


class CourseStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    STOPPED = "stopped", "Stopped"


# ARCHITECTURE rule 6: the allowed transitions in one table. A completed course becomes active
# again only when a booster is added to it.
COURSE_TRANSITIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        CourseStatus.PLANNED: frozenset({CourseStatus.ACTIVE, CourseStatus.STOPPED}),
        CourseStatus.ACTIVE: frozenset(
            {CourseStatus.PAUSED, CourseStatus.COMPLETED, CourseStatus.STOPPED}
        ),
        CourseStatus.PAUSED: frozenset({CourseStatus.ACTIVE, CourseStatus.STOPPED}),
        CourseStatus.COMPLETED: frozenset({CourseStatus.ACTIVE}),
        CourseStatus.STOPPED: frozenset(),
    }
)
OPEN_COURSE_STATUSES = frozenset({CourseStatus.PLANNED, CourseStatus.ACTIVE, CourseStatus.PAUSED})
# Transitions that need a written reason.
REASON_REQUIRED = frozenset({CourseStatus.PAUSED, CourseStatus.STOPPED})


class CoursePhase(models.TextChoices):
    INDUCTION = "induction", "Induction"
    MAINTENANCE = "maintenance", "Maintenance"
    BOOSTER = "booster", "Booster"


# plan_course phase names -> the course phase they belong to.
PLAN_PHASES = MappingProxyType(
    {
        "induction": CoursePhase.INDUCTION,
        "acute": CoursePhase.INDUCTION,
        "treatment": CoursePhase.INDUCTION,
        "maintenance_weekly": CoursePhase.MAINTENANCE,
        "maintenance_every_2_weeks": CoursePhase.MAINTENANCE,
    }
)


class AppointmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    MISSED = "missed", "Missed"
    RESCHEDULED = "rescheduled", "Rescheduled"


APPOINTMENT_TRANSITIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        AppointmentStatus.SCHEDULED: frozenset(
            {
                AppointmentStatus.COMPLETED,
                AppointmentStatus.CANCELLED,
                AppointmentStatus.MISSED,
                AppointmentStatus.RESCHEDULED,
            }
        ),
        # A missed session can still be rebooked (the new appointment replaces it).
        AppointmentStatus.MISSED: frozenset({AppointmentStatus.RESCHEDULED}),
        AppointmentStatus.COMPLETED: frozenset(),
        AppointmentStatus.CANCELLED: frozenset(),
        AppointmentStatus.RESCHEDULED: frozenset(),
    }
)
# Appointments that occupy a chair and the patient's time.
BOOKED_STATUSES = frozenset({AppointmentStatus.SCHEDULED, AppointmentStatus.COMPLETED})


class MaintenanceCadence(models.TextChoices):
    LABEL = "label", "Label schedule (weekly weeks 5-8, then every 2 weeks)"
    WEEKLY = "weekly", "Weekly"
    EVERY_N_WEEKS = "every_n_weeks", "Every N weeks"


class GoalKind(models.TextChoices):
    TARGET_SCORE = "target_score", "Target score"
    PERSONAL = "personal", "Personal goal (in the patient's words)"


class PriceKind(models.TextChoices):
    CONSULT = "consult", "Initial consultation and evaluation"
    IV_INFUSION = "iv_infusion", "IV ketamine infusion (first hour, drug and supplies)"
    IV_EXTRA_HOUR = "iv_extra_hour", "IV infusion, each additional hour"
    IM_SESSION = "im_session", "IM ketamine session"
    ORAL_SESSION = "oral_session", "Supervised oral ketamine session"
    ESKETAMINE_UP_TO_56 = "esketamine_up_to_56", "Esketamine session up to 56 mg, 2 h observation"
    ESKETAMINE_OVER_56 = "esketamine_over_56", "Esketamine session over 56 mg, 2 h observation"
    ESKETAMINE_DRUG_PER_MG = "esketamine_drug_per_mg", "Esketamine drug, per mg (buy and bill)"


# Billing codes (reference §9): G2082/G2083 for supervised esketamine sessions with 2 h of
# observation (≤56 mg / >56 mg); CPT 96365/96366 for IV infusion hours with J3490 for the drug;
# S0013 per mg of esketamine for non-Medicare payers (reported as J0013 from 2026).
DEFAULT_BILLING_CODES = MappingProxyType(
    {
        PriceKind.CONSULT: "90792",
        PriceKind.IV_INFUSION: "96365, J3490",
        PriceKind.IV_EXTRA_HOUR: "96366",
        PriceKind.IM_SESSION: "96372, J3490",
        PriceKind.ORAL_SESSION: "J3490",
        PriceKind.ESKETAMINE_UP_TO_56: "G2082",
        PriceKind.ESKETAMINE_OVER_56: "G2083",
        PriceKind.ESKETAMINE_DRUG_PER_MG: "S0013 / J0013",
    }
)

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
