"""Treatment courses planned from a protocol, chairs, appointments and the clinic's price list.

Rows are written only through `courses.services`. Booking checks chair capacity and the
patient's other appointments inside the transaction, after locking the patient and chair rows,
so two requests can never book the same place twice.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ketaclinic.courses.choices import (
    AppointmentStatus,
    CoursePhase,
    CourseStatus,
    GoalKind,
    MaintenanceCadence,
    PriceKind,
)

_USER = settings.AUTH_USER_MODEL


class ClinicSchedule(models.Model):
    """A clinic's scheduling choices: opening days and hours, chair time per treatment.

    Chair-time floors are derived from the clinical rules in `courses.scheduling`; a clinic can
    only book longer, never shorter.
    """

    clinic = models.OneToOneField(
        "accounts.Clinic", on_delete=models.CASCADE, related_name="schedule"
    )
    clinic_days = models.CharField(
        max_length=20, default="0,1,2,3,4", help_text="Weekday numbers, 0 = Monday"
    )
    opens_at = models.TimeField(default=time(8, 0))
    closes_at = models.TimeField(default=time(18, 0))
    esketamine_chair_minutes = models.PositiveSmallIntegerField(default=135)
    iv_chair_minutes = models.PositiveSmallIntegerField(default=90)
    im_chair_minutes = models.PositiveSmallIntegerField(default=90)
    oral_chair_minutes = models.PositiveSmallIntegerField(default=120)
    updated_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Schedule of {self.clinic_id}"

    @property
    def weekdays(self) -> tuple[int, ...]:
        return tuple(sorted({int(d) for d in self.clinic_days.split(",") if d.strip()}))


class Chair(models.Model):
    """A treatment chair or room. Capacity is how many patients it holds at once."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="chairs")
    name = models.CharField(max_length=60)
    capacity = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    is_active = models.BooleanField(default=True)
    notes = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="chair_name_per_clinic")
        ]
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class TreatmentCourse(models.Model):
    """A series of sessions of one treatment, planned from a protocol by a prescriber."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="courses"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    treatment = models.CharField(max_length=40)
    protocol = models.CharField(max_length=60)
    status = models.CharField(
        max_length=20, choices=CourseStatus.choices, default=CourseStatus.PLANNED
    )
    status_reason = models.CharField(max_length=500, blank=True)
    phase = models.CharField(
        max_length=20, choices=CoursePhase.choices, default=CoursePhase.INDUCTION
    )
    start_date = models.DateField()
    planned_weeks = models.PositiveSmallIntegerField()
    goals_note = models.TextField("Goals", blank=True, max_length=4000)
    maintenance_cadence = models.CharField(
        max_length=20, choices=MaintenanceCadence.choices, blank=True
    )
    maintenance_interval_weeks = models.PositiveSmallIntegerField(null=True, blank=True)
    maintenance_started_on = models.DateField(null=True, blank=True)
    # The eligibility decision (and override, if it needed one) the course was created on.
    eligibility_decision = models.ForeignKey(
        "screening.EligibilityDecision", on_delete=models.PROTECT, related_name="+"
    )
    eligibility_override = models.ForeignKey(
        "screening.EligibilityOverride",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    prescriber = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient", "status"]),
            models.Index(fields=["clinic", "status"]),
        ]
        ordering = ["-start_date", "-id"]

    def __str__(self) -> str:
        return f"Course {self.pk} ({self.protocol}, {self.get_status_display()})"


class CourseGoal(models.Model):
    """A goal of the course: a target score, or a personal goal in the patient's own words."""

    course = models.ForeignKey(TreatmentCourse, on_delete=models.CASCADE, related_name="goals")
    kind = models.CharField(max_length=20, choices=GoalKind.choices)
    instrument = models.CharField(max_length=20, blank=True)
    target_total = models.PositiveSmallIntegerField(null=True, blank=True)
    text = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        if self.kind == GoalKind.TARGET_SCORE:
            return f"{self.instrument} ≤ {self.target_total}"
        return self.text


class Appointment(models.Model):
    """One booked session of a course in one chair. Rescheduling books a new row (`replaces`)."""

    course = models.ForeignKey(
        TreatmentCourse, on_delete=models.PROTECT, related_name="appointments"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    chair = models.ForeignKey(Chair, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    number = models.PositiveSmallIntegerField(help_text="Session number within the course")
    phase = models.CharField(max_length=20, choices=CoursePhase.choices)
    dose_mg = models.PositiveSmallIntegerField(null=True, blank=True)
    dose_mg_per_kg = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    infusion_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.SCHEDULED
    )
    status_reason = models.CharField(max_length=500, blank=True)
    booster_reason = models.CharField(max_length=500, blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    created_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["chair", "starts_at"]),
            models.Index(fields=["patient", "starts_at"]),
            models.Index(fields=["clinic", "starts_at"]),
            models.Index(fields=["course", "starts_at"]),
        ]
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="appointment_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return (
            f"Session {self.number} of course {self.course_id} at {self.starts_at:%Y-%m-%d %H:%M}"
        )

    @property
    def dose_label(self) -> str:
        if self.dose_mg is not None:
            return f"{self.dose_mg} mg"
        if self.dose_mg_per_kg is not None:
            minutes = f" over {self.infusion_minutes} min" if self.infusion_minutes else ""
            return f"{self.dose_mg_per_kg.normalize():f} mg/kg{minutes}"
        return "dose set by prescriber"


class PriceItem(models.Model):
    """One line of a clinic's price list, with its billing codes (reference §9)."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=PriceKind.choices)
    description = models.CharField(max_length=200)
    billing_codes = models.CharField(max_length=100, blank=True)
    unit_price = models.DecimalField(
        "Price (USD)", max_digits=9, decimal_places=2, validators=[MinValueValidator(0)]
    )
    updated_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "kind"], name="one_price_per_kind")
        ]
        ordering = ["kind"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.unit_price}"
