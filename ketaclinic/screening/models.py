"""Intake and screening: referral, history, baseline measures, eligibility, consent and REMS.

Every row belongs to one patient and that patient's clinic. Rows are written only through
`screening.services` (permission, validation, write, eligibility re-run and audit in one
transaction). Scored questionnaires, eligibility decisions and overrides are append-only (on
PostgreSQL a trigger rejects UPDATE and DELETE; migration 0002).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ketaclinic.screening.choices import (
    DIAGNOSES,
    DIAGNOSIS_CHOICES,
    FAILED_OUTCOMES,
    AllergySeverity,
    ConsentKind,
    IntakeStatus,
    OtherTreatmentKind,
    ReferralSource,
    Substance,
    TrialOutcome,
    UsePattern,
)

_USER = settings.AUTH_USER_MODEL


class PatientScoped(models.Model):
    """Owned by one patient at one clinic (the patient's clinic, copied for scoping queries)."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class Intake(PatientScoped):
    """A referral and the screening that follows it. A patient may be referred more than once."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="intakes"
    )
    status = models.CharField(
        max_length=20, choices=IntakeStatus.choices, default=IntakeStatus.REFERRED
    )
    status_reason = models.CharField(max_length=300, blank=True)
    referral_source = models.CharField(max_length=20, choices=ReferralSource.choices)
    referred_on = models.DateField()
    referring_clinician_name = models.CharField(max_length=200, blank=True)
    referring_clinician_practice = models.CharField(max_length=200, blank=True)
    referring_clinician_phone = models.CharField(max_length=40, blank=True)
    referring_clinician_npi = models.CharField("Referring clinician NPI", max_length=10, blank=True)
    reason_for_referral = models.TextField(blank=True, max_length=4000)
    # The treatment the patient is being screened for; eligibility is assessed for it.
    intended_treatment = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "status", "referred_on"]),
            models.Index(fields=["patient", "-created_at"]),
        ]
        ordering = ["-referred_on", "-id"]

    def __str__(self) -> str:
        return f"Intake {self.pk} ({self.get_status_display()})"


class HistoryItem(PatientScoped):
    """A list entry of the history. Mistakes are marked entered-in-error, never deleted."""

    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    entered_in_error = models.BooleanField(default=False)
    removed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True


class Diagnosis(HistoryItem):
    icd10_code = models.CharField("Diagnosis", max_length=10, choices=DIAGNOSIS_CHOICES)
    is_primary = models.BooleanField("Primary diagnosis", default=False)
    diagnosed_on = models.DateField(null=True, blank=True)
    notes = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "entered_in_error"])]
        ordering = ["-is_primary", "icd10_code", "id"]

    def __str__(self) -> str:
        return f"{self.icd10_code} {self.label}"

    @property
    def label(self) -> str:
        entry = DIAGNOSES.get(self.icd10_code)
        return entry.label if entry else self.icd10_code


class AntidepressantTrial(HistoryItem):
    """One antidepressant tried. Treatment resistance is computed from these, never typed."""

    drug_name = models.CharField(max_length=100)
    dose_mg = models.DecimalField(
        "Highest daily dose (mg)",
        max_digits=7,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("10000"))],
    )
    weeks = models.PositiveSmallIntegerField(
        "Weeks at that dose", validators=[MinValueValidator(0), MaxValueValidator(520)]
    )
    adequate = models.BooleanField(
        "Adequate dose and duration",
        default=False,
        help_text="The prescriber's judgement that the dose was therapeutic and given long enough "
        "(commonly 4-6 weeks or more).",
    )
    outcome = models.CharField(max_length=20, choices=TrialOutcome.choices)
    current_episode = models.BooleanField("In the current episode", default=True)
    started_on = models.DateField(null=True, blank=True)
    notes = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "entered_in_error"])]
        ordering = ["started_on", "id"]

    def __str__(self) -> str:
        return f"{self.drug_name} {self.dose_mg} mg × {self.weeks} wk"

    @property
    def counts_as_failed(self) -> bool:
        """An adequate trial in the current episode with an inadequate response."""
        return (
            not self.entered_in_error
            and self.adequate
            and self.current_episode
            and self.outcome in FAILED_OUTCOMES
        )


class OtherTreatment(HistoryItem):
    """ECT, TMS, psychotherapy and other treatments tried."""

    kind = models.CharField(max_length=20, choices=OtherTreatmentKind.choices)
    description = models.CharField(max_length=200, blank=True)
    sessions = models.PositiveSmallIntegerField(null=True, blank=True)
    started_on = models.DateField(null=True, blank=True)
    ended_on = models.DateField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=TrialOutcome.choices)
    current_episode = models.BooleanField("In the current episode", default=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "entered_in_error"])]
        ordering = ["started_on", "id"]

    def __str__(self) -> str:
        return self.get_kind_display()


class Medication(HistoryItem):
    """A medication the patient takes (or took). Interacting classes are flagged on each row."""

    name = models.CharField(max_length=100)
    dose = models.CharField(max_length=60, blank=True, help_text="e.g. 20 mg")
    frequency = models.CharField(max_length=60, blank=True, help_text="e.g. once daily")
    is_oral_antidepressant = models.BooleanField("Oral antidepressant", default=False)
    is_maoi = models.BooleanField("MAOI", default=False)
    is_psychostimulant = models.BooleanField("Psychostimulant", default=False)
    is_cns_depressant = models.BooleanField("Other CNS depressant", default=False)
    is_benzodiazepine = models.BooleanField("Benzodiazepine", default=False)
    is_opioid = models.BooleanField("Opioid", default=False)
    started_on = models.DateField(null=True, blank=True)
    stopped_on = models.DateField(null=True, blank=True, help_text="Leave blank while taken.")
    notes = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "entered_in_error"])]
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return " ".join(part for part in (self.name, self.dose, self.frequency) if part)

    @property
    def is_current(self) -> bool:
        return self.stopped_on is None and not self.entered_in_error

    @property
    def class_labels(self) -> list[str]:
        flags = (
            (self.is_oral_antidepressant, "oral antidepressant"),
            (self.is_maoi, "MAOI"),
            (self.is_psychostimulant, "psychostimulant"),
            (self.is_benzodiazepine, "benzodiazepine"),
            (self.is_opioid, "opioid"),
            (self.is_cns_depressant, "CNS depressant"),
        )
        return [label for flagged, label in flags if flagged]


class Allergy(HistoryItem):
    substance = models.CharField(max_length=100)
    reaction = models.CharField(max_length=200, blank=True)
    severity = models.CharField(
        max_length=20, choices=AllergySeverity.choices, default=AllergySeverity.UNKNOWN
    )

    class Meta:
        indexes = [models.Index(fields=["patient", "entered_in_error"])]
        ordering = ["substance", "id"]

    def __str__(self) -> str:
        return self.substance

    @property
    def is_ketamine(self) -> bool:
        """A reaction to ketamine or esketamine (a label contraindication)."""
        return "ketamine" in self.substance.lower()


class SubstanceUse(HistoryItem):
    substance = models.CharField(max_length=20, choices=Substance.choices)
    pattern = models.CharField(max_length=10, choices=UsePattern.choices)
    use_disorder = models.BooleanField(
        "Meets criteria for a use disorder (now or in the past)", default=False
    )
    last_used_on = models.DateField(null=True, blank=True)
    details = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "entered_in_error"])]
        ordering = ["substance", "id"]

    def __str__(self) -> str:
        return f"{self.get_substance_display()} ({self.get_pattern_display().lower()})"


class PsychiatricHistory(PatientScoped):
    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, related_name="psychiatric_history"
    )
    psychosis_history = models.BooleanField("History of psychosis", default=False)
    mania_history = models.BooleanField("History of mania or hypomania", default=False)
    suicide_attempt_history = models.BooleanField("Past suicide attempt", default=False)
    self_harm_history = models.BooleanField("Past self-harm", default=False)
    psychiatric_hospitalisations = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(200)]
    )
    current_episode_began_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=4000)
    updated_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Psychiatric history of patient {self.patient_id}"


class MedicalHistory(PatientScoped):
    """Medical facts; the first eight fields are the label's contraindications and warnings."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, related_name="medical_history"
    )
    aneurysmal_vascular_disease = models.BooleanField(
        "Aneurysmal vascular disease (aortic, intracranial or peripheral arterial)", default=False
    )
    arteriovenous_malformation = models.BooleanField("Arteriovenous malformation", default=False)
    intracerebral_hemorrhage_history = models.BooleanField(
        "History of intracerebral hemorrhage", default=False
    )
    hypersensitivity_ketamine = models.BooleanField(
        "Hypersensitivity to ketamine or esketamine", default=False
    )
    uncontrolled_hypertension = models.BooleanField("Uncontrolled hypertension", default=False)
    cardiovascular_disease = models.BooleanField(
        "Cardiovascular or cerebrovascular disease", default=False
    )
    severe_hepatic_impairment = models.BooleanField(
        "Severe hepatic impairment (Child-Pugh C)", default=False
    )
    raised_intracranial_pressure = models.BooleanField(
        "Raised intracranial pressure", default=False
    )
    pregnant = models.BooleanField("Pregnant", default=False)
    breastfeeding = models.BooleanField("Breastfeeding", default=False)
    pregnancy_status_checked_on = models.DateField(null=True, blank=True)
    # Recorded for the prescriber; not label warnings on their own (reference §2 checklist).
    hypertension = models.BooleanField("Hypertension (controlled)", default=False)
    hypertensive_encephalopathy_history = models.BooleanField(
        "History of hypertensive encephalopathy", default=False
    )
    raised_intraocular_pressure = models.BooleanField(
        "Raised intraocular pressure / glaucoma", default=False
    )
    seizure_disorder = models.BooleanField("Seizure disorder", default=False)
    urinary_symptoms = models.BooleanField("Urinary symptoms at baseline", default=False)
    sleep_apnea = models.BooleanField("Obstructive sleep apnea", default=False)
    # Explicit "none" answers, so an empty list means "not asked yet", never "none".
    takes_no_medications = models.BooleanField("Takes no medications", default=False)
    no_known_allergies = models.BooleanField("No known allergies", default=False)
    notes = models.TextField(blank=True, max_length=4000)
    updated_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Medical history of patient {self.patient_id}"


class PdmpCheck(PatientScoped):
    """A prescription drug monitoring program look-up (reference §7: at intake and periodically)."""

    checked_on = models.DateField()
    state = models.CharField(max_length=2, blank=True, help_text="Two-letter state code")
    concerns_found = models.BooleanField(default=False)
    findings = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-checked_on", "-id"]

    def __str__(self) -> str:
        return f"PDMP check {self.checked_on}"


class BaselineVitals(PatientScoped):
    """Height, weight and vital signs taken at intake."""

    measured_on = models.DateField()
    height_cm = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("50")), MaxValueValidator(Decimal("250"))],
    )
    weight_kg = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("20")), MaxValueValidator(Decimal("350"))],
    )
    systolic_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2_pct = models.PositiveSmallIntegerField("SpO₂ (%)", null=True, blank=True)
    respiratory_rate = models.PositiveSmallIntegerField(
        "Respiratory rate (/min)", null=True, blank=True
    )
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-measured_on", "-id"]
        verbose_name_plural = "baseline vitals"

    def __str__(self) -> str:
        return f"Vitals {self.measured_on}"

    @property
    def bmi(self) -> Decimal | None:
        """Body-mass index, kg/m², to one decimal."""
        if not self.height_cm or not self.weight_kg:
            return None
        metres = Decimal(self.height_cm) / 100
        return (Decimal(self.weight_kg) / (metres * metres)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )


class BaselineMeasure(PatientScoped):
    """A baseline questionnaire or rating, scored by `ketaclinic.clinical.score`. Immutable.

    Kept deliberately plain (instrument code, item answers, the score's total, severity, flags
    and subscores) so the measures app can later adopt these rows as pre-course responses.
    """

    instrument = models.CharField(max_length=20)
    administered_on = models.DateField()
    answers = models.JSONField()
    total = models.IntegerField()
    severity = models.CharField(max_length=30, blank=True)
    flags = models.JSONField(default=list)
    subscores = models.JSONField(default=dict)
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "instrument", "-administered_on", "-id"])]
        ordering = ["-administered_on", "-id"]

    def __str__(self) -> str:
        return f"{self.instrument} {self.total} on {self.administered_on}"


class EligibilityDecision(PatientScoped):
    """One run of `assess_eligibility` for one treatment, kept with the facts it used.

    A new row is written whenever the facts or the outcome change, so the history shows when
    and why the status moved. Append-only.
    """

    treatment = models.CharField(max_length=40)
    status = models.CharField(max_length=20)
    previous_status = models.CharField(max_length=20, blank=True)
    reasons = models.JSONField(default=list)
    facts = models.JSONField(default=dict)
    provenance = models.JSONField(default=dict)
    facts_digest = models.CharField(max_length=64)
    as_of = models.DateField()
    decided_at = models.DateTimeField()
    triggered_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    trigger = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "treatment", "-decided_at", "-id"])]
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.treatment}: {self.status} ({self.as_of})"

    @property
    def reason_codes(self) -> frozenset[str]:
        return frozenset(reason["code"] for reason in self.reasons)

    @property
    def status_changed(self) -> bool:
        return bool(self.previous_status) and self.previous_status != self.status


class EligibilityOverride(PatientScoped):
    """A prescriber's signed decision to proceed despite a needs-review decision. Append-only.

    It covers the reasons of the decision it was signed against; a reason that appears later
    needs a new override. `content_hash` seals what was signed.
    """

    treatment = models.CharField(max_length=40)
    decision = models.ForeignKey(EligibilityDecision, on_delete=models.PROTECT, related_name="+")
    covered_reason_codes = models.JSONField(default=list)
    reason = models.TextField(max_length=4000)
    prescriber = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    signature = models.CharField(max_length=260)
    signed_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["patient", "treatment", "-signed_at"])]
        ordering = ["-signed_at", "-id"]

    def __str__(self) -> str:
        return f"Override {self.treatment} by {self.signature}"

    def covers(self, decision: EligibilityDecision) -> bool:
        return (
            decision.treatment == self.treatment
            and decision.status == "needs_review"
            and decision.reason_codes <= frozenset(self.covered_reason_codes)
        )


class ConsentText(models.Model):
    """A version of a consent form's wording, per organisation. Published versions never change."""

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=30, choices=ConsentKind.choices)
    version = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=20000)
    published_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "version"], name="consent_text_version_unique"
            )
        ]
        ordering = ["kind", "-version"]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class SignedConsent(PatientScoped):
    """Informed consent signed by the patient and the clinician for one consent-text version."""

    consent_text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=30, choices=ConsentKind.choices)
    text_sha256 = models.CharField(max_length=64)
    patient_signature = models.CharField("Patient signature (full name as signed)", max_length=200)
    patient_signed_on = models.DateField()
    clinician = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    clinician_signature = models.CharField(max_length=260)
    clinician_signed_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=300, blank=True)
    withdrawn_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["patient", "kind", "-clinician_signed_at"])]
        ordering = ["-clinician_signed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} consent v{self.consent_text_id}"

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None


class RemsEnrolment(PatientScoped):
    """The patient's Spravato REMS enrolment (reference §4, §10 rule 1)."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, related_name="rems_enrolment"
    )
    enrolment_id = models.CharField("REMS patient enrolment ID", max_length=40)
    enrolled_on = models.DateField()
    recorded_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"REMS {self.enrolment_id}"


class TransportPlan(PatientScoped):
    """Who takes the patient home after each session (no driving until the next day)."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, related_name="transport_plan"
    )
    escort_name = models.CharField("Driver / escort name", max_length=200)
    escort_relationship = models.CharField(max_length=60, blank=True)
    escort_phone = models.CharField(max_length=40, blank=True)
    notes = models.CharField(max_length=300, blank=True)
    updated_by = models.ForeignKey(_USER, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Ride home with {self.escort_name}"
