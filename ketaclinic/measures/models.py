"""Measurement-based care: plans, enrolments, assignments, scored responses, check-ins, journal,
safety alerts and booster recommendations.

Writes go through `measures.services` only. Scored responses and check-ins are immutable
(ARCHITECTURE rule 8): `save()` refuses an update, `delete()` refuses, and on PostgreSQL a trigger
rejects UPDATE and DELETE (migration 0002). A response is the trendable observation: instrument
code and version, item answers, total, severity band and flags as `ketaclinic.clinical.score`
returned them, with the LOINC code of the total where one is known.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from ketaclinic.clinical import INSTRUMENTS
from ketaclinic.measures.choices import (
    AlertAction,
    AlertKind,
    AlertPriority,
    AssignmentStatus,
    BoosterResolution,
    Cadence,
    CheckInSource,
    EnrolmentStatus,
    Phase,
    Respondent,
    ResponseSource,
)


def instrument_title(code: str) -> str:
    definition = INSTRUMENTS.get(code)
    return definition.title if definition else code


class ImmutableRowError(RuntimeError):
    """Raised when code tries to change or delete a row that is append-only."""


class _Immutable(models.Model):
    """Rows written once: corrections are new rows, never edits (ARCHITECTURE rule 8)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRowError(f"{self._meta.label} rows are immutable once written")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableRowError(f"{self._meta.label} rows cannot be deleted")


class ClinicMeasurePolicy(models.Model):
    """A clinic's measurement-based-care choices; clinics without a row use the defaults."""

    clinic = models.OneToOneField(
        "accounts.Clinic", on_delete=models.CASCADE, related_name="measure_policy"
    )
    # Unacknowledged alerts go to every on-duty clinician after this long (clinic choice [U]).
    escalate_after_minutes = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(24 * 60)]
    )
    # Issue 7: up to two reminders per questionnaire.
    max_reminders = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(0), MaxValueValidator(2)]
    )
    # MADRS remission <=12 (US esketamine trials) or <=10 (ESCAPE-TRD): a clinic choice (ref §5).
    madrs_remission_max = models.PositiveSmallIntegerField(
        default=12, choices=[(12, "≤ 12 (US esketamine trials)"), (10, "≤ 10 (ESCAPE-TRD)")]
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Measurement policy of {self.clinic}"


class MeasurementPlan(models.Model):
    """Which questionnaires a clinic gives, in which course phase and how often."""

    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.PROTECT, related_name="measurement_plans"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="plan_name_per_clinic"),
            models.UniqueConstraint(
                fields=["clinic"], condition=Q(is_default=True), name="one_default_plan_per_clinic"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PlanItem(models.Model):
    """One instrument of a plan: phase, cadence, who answers it and how long it stays open."""

    plan = models.ForeignKey(MeasurementPlan, on_delete=models.CASCADE, related_name="items")
    # A code of ketaclinic.clinical.INSTRUMENTS (validated by the service, not a DB choice list,
    # so new instruments need no migration).
    instrument = models.CharField(max_length=32)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.ANY)
    cadence = models.CharField(max_length=24, choices=Cadence.choices)
    interval_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(2), MaxValueValidator(365)]
    )
    respondent = models.CharField(
        max_length=16, choices=Respondent.choices, default=Respondent.PATIENT
    )
    # How many hours the questionnaire is open: before a session it opens this long before it;
    # otherwise it closes this long after it opens.
    window_hours = models.PositiveSmallIntegerField(
        default=72, validators=[MinValueValidator(4), MaxValueValidator(30 * 24)]
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "phase", "instrument", "id"]

    def __str__(self) -> str:
        return f"{self.instrument} · {self.get_cadence_display()} · {self.get_phase_display()}"

    @property
    def instrument_title(self) -> str:
        return instrument_title(self.instrument)


class MeasurementEnrolment(models.Model):
    """A patient measured under a plan for one treatment course.

    With a course on file (`course`), sessions and phases come from its appointments; without
    one, the enrolment's protocol and first session day are laid out by `clinical.plan_course`
    (see `measures.timeline`). `prescriber` receives the patient's safety alerts and booster
    recommendations.
    """

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="measurement_enrolments"
    )
    plan = models.ForeignKey(MeasurementPlan, on_delete=models.PROTECT, related_name="enrolments")
    course = models.ForeignKey(
        "courses.TreatmentCourse",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="measurement_enrolments",
    )
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="measurement_enrolments",
    )
    # A code of ketaclinic.clinical.PROTOCOLS.
    protocol = models.CharField(max_length=48)
    first_session_on = models.DateField()
    plan_weeks = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(156)]
    )
    status = models.CharField(
        max_length=8, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )
    notify_by_email = models.BooleanField(default=True)
    notify_by_sms = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status="active"),
                name="one_active_enrolment_per_patient",
            )
        ]
        indexes = [models.Index(fields=["status", "clinic"])]

    def __str__(self) -> str:
        return f"{self.patient} on {self.plan}"


class Assignment(models.Model):
    """A questionnaire a patient (or a clinician, for licensed scales) is asked to complete.

    The one-time link is stored only as a SHA-256 digest; the raw token exists in the message
    sent to the patient. Answers given so far while completing it item by item are kept in
    `draft_answers` until the scored, immutable `Response` is written.
    """

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="measure_assignments"
    )
    enrolment = models.ForeignKey(
        MeasurementEnrolment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assignments",
    )
    plan_item = models.ForeignKey(
        PlanItem, null=True, blank=True, on_delete=models.PROTECT, related_name="assignments"
    )
    occurrence_key = models.CharField(max_length=40, blank=True)
    # The course, and for a pre-session questionnaire the appointment, it belongs to.
    course = models.ForeignKey(
        "courses.TreatmentCourse",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="measure_assignments",
    )
    appointment = models.ForeignKey(
        "courses.Appointment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="measure_assignments",
    )
    instrument = models.CharField(max_length=32)
    respondent = models.CharField(max_length=16, choices=Respondent.choices)
    course_phase = models.CharField(max_length=16, blank=True)
    session_number = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=AssignmentStatus.choices, default=AssignmentStatus.PENDING
    )
    available_at = models.DateTimeField()
    due_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    link_token_digest = models.CharField(max_length=64, blank=True, db_index=True)
    link_sent_at = models.DateTimeField(null=True, blank=True)
    link_opened_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    next_reminder_at = models.DateTimeField(null=True, blank=True)
    draft_answers = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "plan_item", "occurrence_key"],
                condition=Q(plan_item__isnull=False),
                name="one_assignment_per_plan_occurrence",
            ),
            models.CheckConstraint(
                condition=Q(reminders_sent__lte=2), name="at_most_two_reminders"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gte=models.F("available_at")),
                name="assignment_expires_after_it_opens",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "status", "due_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["status", "next_reminder_at"]),
            models.Index(fields=["clinic", "status", "respondent", "due_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} for {self.patient_id} due {self.due_at:%Y-%m-%d}"

    @property
    def instrument_title(self) -> str:
        return instrument_title(self.instrument)


class Response(_Immutable):
    """A completed, scored questionnaire: immutable, the trendable observation of the score."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="measure_responses"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.PROTECT, related_name="response"
    )
    instrument = models.CharField(max_length=32)
    instrument_version = models.CharField(max_length=120)
    answers = models.JSONField()
    total = models.SmallIntegerField()
    severity = models.CharField(max_length=32, blank=True)
    flags = models.JSONField(default=list)
    subscores = models.JSONField(default=dict)
    loinc_total = models.CharField(max_length=16, blank=True)
    completed_at = models.DateTimeField()
    source = models.CharField(max_length=12, choices=ResponseSource.choices)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A baseline questionnaire taken at intake (screening), adopted as a pre-course score.
    adopted_from = models.OneToOneField(
        "screening.BaselineMeasure",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="measures_response",
    )

    class Meta:
        ordering = ["completed_at", "id"]
        indexes = [
            models.Index(fields=["patient", "instrument", "completed_at"]),
            models.Index(fields=["clinic", "instrument", "completed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} {self.total} ({self.completed_at:%Y-%m-%d})"

    @property
    def instrument_title(self) -> str:
        return instrument_title(self.instrument)

    @property
    def has_suicidal_ideation(self) -> bool:
        return "suicidal_ideation" in self.flags

    @property
    def is_high_risk(self) -> bool:
        return "high_suicide_risk" in self.flags


class CheckIn(_Immutable):
    """A patient's daily mood check-in: 0 (worst) to 10 (best), an optional note."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="measure_checkins"
    )
    mood_0_to_10 = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    note = models.TextField(blank=True, max_length=2000)
    urgent = models.BooleanField(default=False)
    recorded_at = models.DateTimeField()
    source = models.CharField(
        max_length=8, choices=CheckInSource.choices, default=CheckInSource.PORTAL
    )

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["patient", "recorded_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(mood_0_to_10__gte=0, mood_0_to_10__lte=10), name="mood_0_to_10"
            )
        ]

    def __str__(self) -> str:
        return f"mood {self.mood_0_to_10}/10 ({self.recorded_at:%Y-%m-%d})"


class JournalEntry(models.Model):
    """A patient's journal entry: private unless the patient shares it with the care team.

    The text is never edited; only the sharing choice changes (and each change is audited).
    """

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="journal_entries"
    )
    body = models.TextField(max_length=10000)
    urgent = models.BooleanField(default=False)
    shared_with_care_team = models.BooleanField(default=False)
    shared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "shared_with_care_team", "created_at"])]
        constraints = [
            # An urgent entry goes to the care team, so it cannot be private.
            models.CheckConstraint(
                condition=Q(urgent=False) | Q(shared_with_care_team=True),
                name="urgent_journal_is_shared",
            )
        ]

    def __str__(self) -> str:
        return f"journal entry {self.pk} ({self.created_at:%Y-%m-%d})"


class SafetyAlert(models.Model):
    """A safety signal that a clinician must acknowledge, with the action taken."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="safety_alerts"
    )
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    priority = models.CharField(max_length=12, choices=AlertPriority.choices)
    # C-SSRS screener risk level (none/low/moderate/high) when the alert comes from one.
    cssrs_risk = models.CharField(max_length=12, blank=True)
    summary = models.CharField(max_length=300)
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    checkin = models.ForeignKey(
        CheckIn, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    journal_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_safety_alerts",
    )
    created_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_count = models.PositiveSmallIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=24, choices=AlertAction.choices, blank=True)
    action_note = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["clinic", "acknowledged_at", "created_at"]),
            models.Index(fields=["patient", "created_at"]),
            models.Index(fields=["acknowledged_at", "escalated_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | ~Q(action=""),
                name="acknowledged_alert_has_action",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None


class BoosterRecommendation(models.Model):
    """Relapse after response (`clinical.detect_relapse`): the prescriber should consider a
    booster. Raised once per relapse; resolved by the prescriber."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="booster_recommendations"
    )
    enrolment = models.ForeignKey(
        MeasurementEnrolment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    instrument = models.CharField(max_length=32)
    baseline_total = models.SmallIntegerField()
    latest_total = models.SmallIntegerField()
    relapse_on = models.DateField()
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.CharField(max_length=20, choices=BoosterResolution.choices, blank=True)
    note = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "instrument", "relapse_on"], name="one_booster_rec_per_relapse"
            )
        ]
        indexes = [models.Index(fields=["clinic", "resolved_at"])]

    def __str__(self) -> str:
        return f"booster recommendation ({self.instrument}, relapse {self.relapse_on})"

    @property
    def instrument_title(self) -> str:
        return instrument_title(self.instrument)


class OnDutyShift(models.Model):
    """A clinician on duty at a clinic; escalated alerts go to everyone on duty."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="duty_shifts"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["clinic", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gte=models.F("starts_at")), name="shift_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} on duty until {self.ends_at:%Y-%m-%d %H:%M}"
