"""A treatment session: one patient in one chair, from check-in to the signed note.

Rows are written only through `treatment_sessions.services`; the state column moves only along
`choices.SESSION_TRANSITIONS`, and every move is audited with actor and time.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketaclinic.treatment_sessions.choices import (
    AdverseEventCode,
    EventOutcome,
    GateStatus,
    InterventionKind,
    PregnancyStatus,
    SessionStatus,
    Severity,
    SubmissionMethod,
    VitalsSource,
)

_USER = settings.AUTH_USER_MODEL


class TreatmentSession(models.Model):
    """One session of a treatment, usually a booked appointment of a course."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="treatment_sessions"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    appointment = models.OneToOneField(
        "courses.Appointment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="treatment_session",
    )
    course = models.ForeignKey(
        "courses.TreatmentCourse",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="treatment_sessions",
    )
    chair = models.ForeignKey(
        "courses.Chair", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    treatment = models.CharField(max_length=40)
    planned_dose_mg = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    status = models.CharField(
        max_length=24, choices=SessionStatus.choices, default=SessionStatus.SCHEDULED
    )
    status_reason = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField()
    checked_in_at = models.DateTimeField(null=True, blank=True)
    gate_passed_at = models.DateTimeField(null=True, blank=True)
    dosing_started_at = models.DateTimeField(null=True, blank=True)
    observing_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    discharged_at = models.DateTimeField(null=True, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "status"]),
            models.Index(fields=["patient", "scheduled_at"]),
            models.Index(fields=["clinic", "scheduled_at"]),
        ]
        ordering = ["scheduled_at", "id"]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.treatment}, {self.get_status_display()})"


class SessionTransition(models.Model):
    """Append-only history of the session's state: who moved it, when, and why."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="transitions"
    )
    from_status = models.CharField(max_length=24, choices=SessionStatus.choices)
    to_status = models.CharField(max_length=24, choices=SessionStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class PreDoseCheck(models.Model):
    """Check-in measurements and confirmations, with the `pre_dose_check` result they gave.

    Append-only: a re-measured blood pressure is a new row; the newest row is the one the gate
    reads. A `review` result needs a prescriber's acknowledgement and a `hold` a prescriber's
    override, each with a reason, recorded on the row they answer.
    """

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="pre_dose_checks"
    )
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    systolic_mmhg = models.PositiveSmallIntegerField()
    diastolic_mmhg = models.PositiveSmallIntegerField()
    heart_rate_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    respiratory_rate_per_min = models.PositiveSmallIntegerField(null=True, blank=True)
    fasting_confirmed = models.BooleanField(default=False)
    ride_home_confirmed = models.BooleanField(default=False)
    pregnancy_status = models.CharField(
        max_length=20, choices=PregnancyStatus.choices, default=PregnancyStatus.NOT_APPLICABLE
    )
    medications_changed = models.BooleanField(default=False)
    medication_changes = models.CharField(max_length=1000, blank=True)
    # Esketamine only (REMS): the patient's enrolment was checked and a prescriber is on site.
    rems_enrolment_verified = models.BooleanField(default=False)
    prescriber_on_site = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    gate_status = models.CharField(max_length=10, choices=GateStatus.choices)
    gate_reasons = models.JSONField(default=list)
    acknowledged_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_reason = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"Pre-dose check {self.pk}: {self.gate_status}"

    @property
    def cleared(self) -> bool:
        """Proceed, or review/hold answered by a prescriber."""
        return self.gate_status == GateStatus.PROCEED or self.acknowledged_by_id is not None


class InfusionOrder(models.Model):
    """An IV ketamine infusion as computed by `clinical.iv_infusion` from today's weight.

    It may not start until a second clinician has checked it independently (they re-enter their
    password, and code when enrolled). A changed order is a new row; the newest one counts.
    """

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="infusion_orders"
    )
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    dose_mg_per_kg = models.DecimalField(max_digits=4, decimal_places=2)
    minutes = models.PositiveSmallIntegerField()
    concentration_mg_per_ml = models.DecimalField(max_digits=5, decimal_places=2)
    dose_mg = models.DecimalField(max_digits=7, decimal_places=2)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=2)
    rate_ml_per_h = models.DecimalField(max_digits=7, decimal_places=2)
    vtbi_ml = models.DecimalField(max_digits=7, decimal_places=2)
    ordered_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    ordered_at = models.DateTimeField()
    checked_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ordered_at", "id"]

    def __str__(self) -> str:
        return f"{self.dose_mg} mg over {self.minutes} min at {self.rate_ml_per_h} mL/h"


class EsketamineDevice(models.Model):
    """One 28 mg nasal spray device used, with its time (the next not before 5 minutes)."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="esketamine_devices"
    )
    number = models.PositiveSmallIntegerField()
    dose_mg = models.PositiveSmallIntegerField(default=28)
    administered_at = models.DateTimeField()
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["session", "number"], name="one_device_number")
        ]

    def __str__(self) -> str:
        return f"Device {self.number} at {self.administered_at:%H:%M}"


class VitalSign(models.Model):
    """One timed reading on the flowsheet; device readings carry the device's own id so a
    re-sent batch is recorded once."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="vitals")
    taken_at = models.DateTimeField()
    systolic_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    respiratory_rate_per_min = models.PositiveSmallIntegerField(null=True, blank=True)
    moaas = models.PositiveSmallIntegerField("MOAA/S", null=True, blank=True)
    source = models.CharField(max_length=10, choices=VitalsSource.choices)
    client_id = models.CharField(max_length=80, blank=True)
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["taken_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "client_id"],
                condition=~models.Q(client_id=""),
                name="one_reading_per_client_id",
            )
        ]

    def __str__(self) -> str:
        return f"Vitals at {self.taken_at:%H:%M}"


class VitalAlert(models.Model):
    """An out-of-range reading (`clinical.vitals_alerts`) that a nurse must acknowledge with
    the action taken."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="alerts")
    reading = models.ForeignKey(VitalSign, on_delete=models.PROTECT, related_name="alerts")
    code = models.CharField(max_length=40)
    message = models.CharField(max_length=300)
    severity = models.CharField(max_length=20)
    source = models.CharField(max_length=300)
    acknowledged_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.message


class DissociationScore(models.Model):
    """CADSS total entered by the clinician (item wording is licensed and not shipped)."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="cadss_scores"
    )
    total = models.PositiveSmallIntegerField()
    scored_at = models.DateTimeField()
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["scored_at", "id"]

    def __str__(self) -> str:
        return f"CADSS {self.total}"


class AdverseEvent(models.Model):
    """An adverse event from the coded list, with severity and outcome."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="adverse_events"
    )
    code = models.CharField(max_length=30, choices=AdverseEventCode.choices)
    other_text = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    outcome = models.CharField(max_length=20, choices=EventOutcome.choices)
    onset_at = models.DateTimeField()
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["onset_at", "id"]

    def __str__(self) -> str:
        return self.other_text or self.get_code_display()


class DischargeAssessment(models.Model):
    """The nurse's discharge criteria and the `discharge_check` result at that moment.

    Append-only; the newest row counts, and the gate is checked again, with the clock, when the
    patient is marked ready to leave.
    """

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="discharge_assessments"
    )
    sedation_resolved = models.BooleanField(default=False)
    dissociation_resolved = models.BooleanField(default=False)
    respiratory_depression_resolved = models.BooleanField(default=False)
    vitals_acceptable = models.BooleanField(default=False)
    escort_present = models.BooleanField(default=False)
    escort_name = models.CharField(max_length=200, blank=True)
    gate_status = models.CharField(max_length=10, choices=GateStatus.choices)
    gate_reasons = models.JSONField(default=list)
    assessed_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField()

    class Meta:
        ordering = ["assessed_at", "id"]

    def __str__(self) -> str:
        return f"Discharge assessment {self.pk}: {self.gate_status}"


class NoteSignature(models.Model):
    """The prescriber's signature of the session note: name, time, meaning, and the SHA-256 of
    the exact note text signed. Any later change to the text (or to the session data the note is
    made from) no longer verifies; corrections are amendments."""

    session = models.OneToOneField(
        TreatmentSession, on_delete=models.PROTECT, related_name="signature"
    )
    content = models.TextField()
    content_sha256 = models.CharField(max_length=64)
    signed_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=200)
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"Signed by {self.signer_name} at {self.signed_at:%Y-%m-%d %H:%M}"


class NoteAmendment(models.Model):
    """A later addition to a signed note; the signed original is never changed."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="amendments"
    )
    text = models.TextField(max_length=4000)
    content_sha256 = models.CharField(max_length=64)
    author = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField()

    class Meta:
        ordering = ["written_at", "id"]

    def __str__(self) -> str:
        return f"Amendment {self.pk}"


class Intervention(models.Model):
    """Something done for the patient during the session: a drug given, the infusion slowed,
    stopped or resumed, oxygen. Timed, so the note and the flowsheet read in order."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="interventions"
    )
    kind = models.CharField(max_length=24, choices=InterventionKind.choices)
    detail = models.CharField(max_length=500, blank=True)
    given_at = models.DateTimeField()
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["given_at", "id"]

    def __str__(self) -> str:
        text = self.get_kind_display()
        return f"{text}: {self.detail}" if self.detail else text


class RemsSubmission(models.Model):
    """The REMS Patient Monitoring Form as sent for one esketamine session: when, how, the
    confirmation the REMS gave, and a snapshot of the form (with its version) as submitted."""

    session = models.OneToOneField(
        TreatmentSession, on_delete=models.PROTECT, related_name="rems_submission"
    )
    submitted_on = models.DateField()
    method = models.CharField(max_length=10, choices=SubmissionMethod.choices)
    confirmation = models.CharField(max_length=100)
    form = models.JSONField()
    form_version = models.CharField(max_length=40)
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"REMS form submitted {self.submitted_on} ({self.get_method_display()})"
