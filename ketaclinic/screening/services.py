"""The write paths of intake and screening (ARCHITECTURE rule 1).

Each public function checks the actor's permission at the patient's clinic, validates, writes,
re-runs eligibility when a fact may have changed, and records the audit event, all in one
transaction: bad input raises ValidationError and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import diff, record_event
from ketaclinic.clinical import (
    INSTRUMENTS,
    TREATMENTS,
    InvalidInput,
    VitalsReading,
    assess_eligibility,
    score,
)
from ketaclinic.core import clock
from ketaclinic.patients import services as patient_services
from ketaclinic.patients.models import Patient
from ketaclinic.screening.choices import (
    INTAKE_TRANSITIONS,
    KNOWN_MEDICATIONS,
    OPEN_INTAKE_STATUSES,
    ConsentKind,
    IntakeStatus,
    MedicationClass,
)
from ketaclinic.screening.consent_texts import DEFAULT_TEXTS
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.facts import gather_facts
from ketaclinic.screening.models import (
    Allergy,
    AntidepressantTrial,
    BaselineMeasure,
    BaselineVitals,
    ConsentText,
    Diagnosis,
    EligibilityDecision,
    EligibilityOverride,
    HistoryItem,
    Intake,
    MedicalHistory,
    Medication,
    OtherTreatment,
    PdmpCheck,
    PsychiatricHistory,
    RemsEnrolment,
    SignedConsent,
    SubstanceUse,
    TransportPlan,
)

# Questionnaires that can be recorded as a baseline at intake (issue 5: PHQ-9, GAD-7, C-SSRS
# screener; PCL-5 for PTSD; Y-BOCS for OCD; clinician-rated scales and pain as needed).
BASELINE_INSTRUMENTS = (
    "phq9",
    "gad7",
    "cssrs_screener",
    "pcl5",
    "ybocs",
    "madrs",
    "qids_sr16",
    "hamd17",
    "pain_nrs",
)
MIN_OVERRIDE_REASON_CHARS = 20
OVERRIDE_SOURCE = (
    "Needs review: a prescriber documents why to proceed (issue 3; reference §10 rule 9)"
)


# --- Small shared steps ---------------------------------------------------------------------


def clinic_today(patient: Patient) -> date:
    return clock.today_in(patient.clinic.timezone)


def _require(actor: Any, permission: str, patient: Patient) -> None:
    if not access.has_permission(actor, permission, patient.clinic_id):
        raise PermissionDenied


def _lock(patient: Patient) -> Patient:
    """Serialise writes about one patient (eligibility re-runs, bookings) on the patient row."""
    return (
        Patient.objects.select_for_update(of=("self",)).select_related("clinic").get(pk=patient.pk)
    )


def _values(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _assign(
    obj: models.Model,
    data: Mapping[str, Any],
    allowed: Iterable[str],
    *,
    today: date,
    past_dates: Iterable[str] = (),
) -> None:
    """Set the allowed fields from data and validate the model; ValidationError by field."""
    allowed = tuple(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError({name: ["This field cannot be set."] for name in unknown})
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        if isinstance(value, str):
            if "\x00" in value:
                errors[name] = ["Remove the null character from this field."]
                continue
            value = value.strip()
        field = obj._meta.get_field(name)
        if value is None and not getattr(field, "null", True):
            value = "" if isinstance(field, models.CharField | models.TextField) else value
        setattr(obj, name, value)
    if errors:
        raise ValidationError(errors)
    try:
        obj.full_clean(exclude=[f.name for f in obj._meta.fields if f.name not in allowed])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    for name in past_dates:
        value = getattr(obj, name, None)
        if isinstance(value, date) and name not in errors and value > today:
            errors[name] = ["This date is in the future."]
    if errors:
        raise ValidationError(errors)


def _audit(
    actor: Any,
    patient: Patient,
    action: Action,
    obj: models.Model,
    *,
    changes: Mapping[str, Any] | None = None,
    detail: str = "",
) -> None:
    record_event(
        action=action,
        user=actor,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=obj,
        changes=changes,
        detail=detail,
    )


# --- Referral and intake --------------------------------------------------------------------

INTAKE_FIELDS = (
    "referral_source",
    "referred_on",
    "referring_clinician_name",
    "referring_clinician_practice",
    "referring_clinician_phone",
    "referring_clinician_npi",
    "reason_for_referral",
    "intended_treatment",
)


def _assign_intake(intake: Intake, data: Mapping[str, Any], today: date) -> None:
    """Set and validate the referral fields, reporting every bad field at once."""
    errors: dict[str, list[str]] = {}
    try:
        _assign(intake, data, INTAKE_FIELDS, today=today, past_dates=["referred_on"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        _validate_intake(intake)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, messages)
    if errors:
        raise ValidationError(errors)


def _validate_intake(intake: Intake) -> None:
    errors: dict[str, list[str]] = {}
    if intake.intended_treatment and intake.intended_treatment not in TREATMENTS:
        errors["intended_treatment"] = ["Choose a treatment from the list."]
    npi = intake.referring_clinician_npi
    if npi and not (npi.isdigit() and len(npi) == 10):
        errors["referring_clinician_npi"] = ["An NPI is 10 digits."]
    if errors:
        raise ValidationError(errors)


def open_intake(patient: Patient) -> Intake | None:
    return (
        Intake.objects.filter(patient_id=patient.pk, status__in=OPEN_INTAKE_STATUSES)
        .order_by("-created_at", "-id")
        .first()
    )


def referral_create(
    *,
    actor: Any,
    clinic_id: Any,
    data: Mapping[str, Any],
    patient: Patient | None = None,
    patient_data: Mapping[str, Any] | None = None,
) -> Intake:
    """Register a referral for an existing patient, or register the patient and the referral."""
    try:
        clinic_pk = int(clinic_id)
    except (TypeError, ValueError):
        raise ValidationError({"clinic": ["Choose a clinic."]}) from None
    if not access.has_permission(actor, "referral.manage"):
        raise PermissionDenied
    if not access.has_permission(actor, "referral.manage", clinic_pk):
        raise ValidationError({"clinic": ["You cannot register referrals at that clinic."]})
    if (patient is None) == (patient_data is None):
        raise ValidationError({"patient": ["Give either an existing patient or new details."]})
    with transaction.atomic():
        if patient is None:
            assert patient_data is not None
            patient = patient_services.patient_create(
                actor=actor, clinic_id=clinic_pk, data=patient_data
            )
        elif patient.clinic_id != clinic_pk:
            raise ValidationError({"patient": ["This patient is registered at another clinic."]})
        patient = _lock(patient)
        if open_intake(patient) is not None:
            raise ValidationError(
                {"patient": ["This patient already has an open referral; update that one."]}
            )
        intake = Intake(
            patient=patient, clinic_id=patient.clinic_id, created_by=actor, status="referred"
        )
        _assign_intake(intake, data, clinic_today(patient))
        intake.save(force_insert=True)
        _, effects = _refresh(actor, patient, trigger="referral registered")
        _audit(
            actor,
            patient,
            Action.CREATE,
            intake,
            changes={**diff({}, _values(intake, INTAKE_FIELDS)), **effects},
            detail="referral registered",
        )
    return intake


def intake_update(*, actor: Any, intake: Intake, data: Mapping[str, Any]) -> Intake:
    """Change the referral details (source, referring clinician, intended treatment)."""
    patient = intake.patient
    _require(actor, "referral.manage", patient)
    with transaction.atomic():
        patient = _lock(patient)
        locked = Intake.objects.select_for_update().get(pk=intake.pk)
        before = _values(locked, INTAKE_FIELDS)
        _assign_intake(locked, data, clinic_today(patient))
        changes = diff(before, _values(locked, INTAKE_FIELDS))
        if changes:
            locked.save()
            _, effects = _refresh(actor, patient, trigger="referral changed")
            _audit(
                actor,
                patient,
                Action.UPDATE,
                locked,
                changes={**changes, **effects},
                detail="referral",
            )
    return locked


def intake_change_status(*, actor: Any, intake: Intake, status: str, reason: str = "") -> Intake:
    """Move an intake along its state machine; declining is a prescriber's decision."""
    patient = intake.patient
    permission = "course.manage" if status == IntakeStatus.DECLINED else "referral.manage"
    _require(actor, permission, patient)
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = Intake.objects.select_for_update().get(pk=intake.pk)
        if status not in INTAKE_TRANSITIONS.get(locked.status, frozenset()):
            raise ValidationError(
                {
                    "status": [
                        f"A {locked.get_status_display().lower()} intake cannot become {status}."
                    ]
                }
            )
        if status in {IntakeStatus.DECLINED, IntakeStatus.WITHDRAWN} and not reason:
            raise ValidationError({"reason": ["Give the reason."]})
        if len(reason) > 300:
            raise ValidationError({"reason": ["Keep the reason under 300 characters."]})
        before = {"status": locked.status, "status_reason": locked.status_reason}
        locked.status, locked.status_reason = status, reason
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        _audit(
            actor,
            patient,
            Action.UPDATE,
            locked,
            changes=diff(before, {"status": status, "status_reason": reason}),
            detail="intake status",
        )
    return locked


def _mark_screening(patient: Patient) -> dict[str, Any]:
    """The first clinical record moves a referred intake into screening (reported in the
    caller's audit row)."""
    intake = open_intake(patient)
    if intake is not None and intake.status == IntakeStatus.REFERRED:
        intake.status = IntakeStatus.SCREENING
        intake.save(update_fields=["status", "updated_at"])
        return {"intake_status": {"old": "referred", "new": "screening", "intake": intake.pk}}
    return {}


def _after_write(actor: Any, patient: Patient, trigger: str) -> dict[str, Any]:
    """What a clinical record changes besides itself: intake status and eligibility."""
    effects = _mark_screening(patient)
    _, eligibility = _refresh(actor, patient, trigger=trigger)
    return {**effects, **eligibility}


def intake_accept_for_course(*, patient: Patient) -> dict[str, Any]:
    """Called by course creation (inside its transaction, which audits it): the open intake is
    accepted. Returns the change for the caller's audit row."""
    intake = open_intake(patient)
    if intake is None:
        return {}
    before = intake.status
    intake.status = IntakeStatus.ACCEPTED
    intake.save(update_fields=["status", "updated_at"])
    return {"intake_status": {"old": before, "new": "accepted", "intake": intake.pk}}


# --- History lists --------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemKind:
    """One list of the history: its model, editable fields and names for pages and the API."""

    slug: str
    model: type[HistoryItem]
    fields: tuple[str, ...]
    title: str
    plural: str
    past_dates: tuple[str, ...] = ()


ITEM_KINDS: dict[str, ItemKind] = {
    kind.slug: kind
    for kind in (
        ItemKind(
            "diagnosis",
            Diagnosis,
            ("icd10_code", "is_primary", "diagnosed_on", "notes"),
            "Diagnosis",
            "Diagnoses",
            ("diagnosed_on",),
        ),
        ItemKind(
            "antidepressant-trial",
            AntidepressantTrial,
            (
                "drug_name",
                "dose_mg",
                "weeks",
                "adequate",
                "outcome",
                "current_episode",
                "started_on",
                "notes",
            ),
            "Antidepressant trial",
            "Antidepressant trials",
            ("started_on",),
        ),
        ItemKind(
            "other-treatment",
            OtherTreatment,
            (
                "kind",
                "description",
                "sessions",
                "started_on",
                "ended_on",
                "outcome",
                "current_episode",
            ),
            "Other treatment",
            "ECT, TMS and psychotherapy",
            ("started_on", "ended_on"),
        ),
        ItemKind(
            "medication",
            Medication,
            (
                "name",
                "dose",
                "frequency",
                "is_oral_antidepressant",
                "is_maoi",
                "is_psychostimulant",
                "is_cns_depressant",
                "is_benzodiazepine",
                "is_opioid",
                "started_on",
                "stopped_on",
                "notes",
            ),
            "Medication",
            "Medications",
            ("started_on", "stopped_on"),
        ),
        ItemKind("allergy", Allergy, ("substance", "reaction", "severity"), "Allergy", "Allergies"),
        ItemKind(
            "substance-use",
            SubstanceUse,
            ("substance", "pattern", "use_disorder", "last_used_on", "details"),
            "Substance use",
            "Substance use",
            ("last_used_on",),
        ),
    )
}

_CLASS_FLAGS = {
    MedicationClass.ORAL_ANTIDEPRESSANT: "is_oral_antidepressant",
    MedicationClass.MAOI: "is_maoi",
    MedicationClass.PSYCHOSTIMULANT: "is_psychostimulant",
    MedicationClass.CNS_DEPRESSANT: "is_cns_depressant",
    MedicationClass.BENZODIAZEPINE: "is_benzodiazepine",
    MedicationClass.OPIOID: "is_opioid",
}


def known_medication_flags(name: str) -> list[str]:
    """Flags a listed drug always carries (its interacting classes)."""
    classes = KNOWN_MEDICATIONS.get((name or "").strip().lower(), frozenset())
    return sorted(_CLASS_FLAGS[MedicationClass(c)] for c in classes)


def _item_rules(item: HistoryItem) -> None:
    errors: dict[str, list[str]] = {}
    if isinstance(item, Medication):
        for flag in known_medication_flags(item.name):
            setattr(item, flag, True)
        if item.started_on and item.stopped_on and item.stopped_on < item.started_on:
            errors["stopped_on"] = ["The stop date is before the start date."]
    if (
        isinstance(item, OtherTreatment)
        and item.started_on
        and item.ended_on
        and item.ended_on < item.started_on
    ):
        errors["ended_on"] = ["The end date is before the start date."]
    if errors:
        raise ValidationError(errors)


def _clear_other_primary(item: HistoryItem) -> list[int]:
    if isinstance(item, Diagnosis) and item.is_primary:
        others = Diagnosis.objects.filter(patient_id=item.patient_id, is_primary=True).exclude(
            pk=item.pk
        )
        ids = list(others.values_list("pk", flat=True))
        others.update(is_primary=False)
        return ids
    return []


def get_kind(slug: str) -> ItemKind:
    try:
        return ITEM_KINDS[slug]
    except KeyError:
        raise ValidationError({"kind": ["Unknown history list."]}) from None


def history_item_add(
    *, actor: Any, patient: Patient, kind: str, data: Mapping[str, Any]
) -> HistoryItem:
    """Add a diagnosis, antidepressant trial, other treatment, medication, allergy or substance."""
    spec = get_kind(kind)
    _require(actor, "intake.edit", patient)
    with transaction.atomic():
        patient = _lock(patient)
        item = spec.model(patient=patient, clinic_id=patient.clinic_id, recorded_by=actor)
        _assign(item, data, spec.fields, today=clinic_today(patient), past_dates=spec.past_dates)
        _item_rules(item)
        item.save(force_insert=True)
        demoted = _clear_other_primary(item)
        effects = _after_write(actor, patient, f"{spec.title.lower()} added")
        _audit(
            actor,
            patient,
            Action.CREATE,
            item,
            changes={**diff({}, _values(item, spec.fields)), **effects},
            detail=f"{spec.title.lower()} added"
            + (f"; primary moved from diagnosis {demoted}" if demoted else ""),
        )
    return item


def history_item_update(
    *, actor: Any, item: HistoryItem, kind: str, data: Mapping[str, Any]
) -> HistoryItem:
    spec = get_kind(kind)
    if not isinstance(item, spec.model):
        raise ValidationError({"kind": ["This record is not in that list."]})
    patient = item.patient
    _require(actor, "intake.edit", patient)
    with transaction.atomic():
        patient = _lock(patient)
        locked = spec.model.objects.select_for_update().get(pk=item.pk)  # type: ignore[attr-defined]
        if locked.entered_in_error:
            raise ValidationError({"__all__": ["This record was removed as entered in error."]})
        before = _values(locked, spec.fields)
        _assign(locked, data, spec.fields, today=clinic_today(patient), past_dates=spec.past_dates)
        _item_rules(locked)
        changes = diff(before, _values(locked, spec.fields))
        if changes:
            locked.save()
            _clear_other_primary(locked)
            effects = _after_write(actor, patient, f"{spec.title.lower()} changed")
            _audit(
                actor,
                patient,
                Action.UPDATE,
                locked,
                changes={**changes, **effects},
                detail=f"{spec.title.lower()} changed",
            )
    return locked


def history_item_remove(*, actor: Any, item: HistoryItem, kind: str, reason: str) -> HistoryItem:
    """Mark a record entered in error (it stays, struck through, with the reason)."""
    spec = get_kind(kind)
    if not isinstance(item, spec.model):
        raise ValidationError({"kind": ["This record is not in that list."]})
    patient = item.patient
    _require(actor, "intake.edit", patient)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why this record is wrong."]})
    if len(reason) > 300:
        raise ValidationError({"reason": ["Keep the reason under 300 characters."]})
    with transaction.atomic():
        patient = _lock(patient)
        locked = spec.model.objects.select_for_update().get(pk=item.pk)  # type: ignore[attr-defined]
        if locked.entered_in_error:
            raise ValidationError({"__all__": ["This record was already removed."]})
        locked.entered_in_error, locked.removed_reason = True, reason
        locked.save(update_fields=["entered_in_error", "removed_reason", "updated_at"])
        _, effects = _refresh(actor, patient, trigger=f"{spec.title.lower()} removed")
        _audit(
            actor,
            patient,
            Action.UPDATE,
            locked,
            changes={
                "entered_in_error": {"old": False, "new": True},
                "reason": reason,
                **effects,
            },
            detail=f"{spec.title.lower()} removed as entered in error",
        )
    return locked


# --- Psychiatric and medical history --------------------------------------------------------

PSYCHIATRIC_FIELDS = (
    "psychosis_history",
    "mania_history",
    "suicide_attempt_history",
    "self_harm_history",
    "psychiatric_hospitalisations",
    "current_episode_began_on",
    "notes",
)
MEDICAL_FIELDS = (
    "aneurysmal_vascular_disease",
    "arteriovenous_malformation",
    "intracerebral_hemorrhage_history",
    "hypersensitivity_ketamine",
    "uncontrolled_hypertension",
    "cardiovascular_disease",
    "severe_hepatic_impairment",
    "raised_intracranial_pressure",
    "pregnant",
    "breastfeeding",
    "pregnancy_status_checked_on",
    "hypertension",
    "hypertensive_encephalopathy_history",
    "raised_intraocular_pressure",
    "seizure_disorder",
    "urinary_symptoms",
    "sleep_apnea",
    "takes_no_medications",
    "no_known_allergies",
    "notes",
)


def _singleton_update(
    *,
    actor: Any,
    patient: Patient,
    model: type[models.Model],
    fields: tuple[str, ...],
    data: Mapping[str, Any],
    label: str,
    permission: str,
    past_dates: tuple[str, ...] = (),
    user_field: str = "updated_by",
    refresh: bool = True,
) -> Any:
    _require(actor, permission, patient)
    with transaction.atomic():
        patient = _lock(patient)
        record = model.objects.select_for_update().filter(patient_id=patient.pk).first()  # type: ignore[attr-defined]
        created = record is None
        if record is None:
            record = model(patient=patient, clinic_id=patient.clinic_id)
        before = {} if created else _values(record, fields)
        setattr(record, user_field, actor)
        _assign(record, data, fields, today=clinic_today(patient), past_dates=past_dates)
        after = _values(record, fields)
        changes = diff(before, after)
        if created or changes:
            record.save()
            effects = _after_write(actor, patient, f"{label} updated") if refresh else {}
            _audit(
                actor,
                patient,
                Action.CREATE if created else Action.UPDATE,
                record,
                changes={**changes, **effects},
                detail=label,
            )
    return record


def psychiatric_history_update(
    *, actor: Any, patient: Patient, data: Mapping[str, Any]
) -> PsychiatricHistory:
    record: PsychiatricHistory = _singleton_update(
        actor=actor,
        patient=patient,
        model=PsychiatricHistory,
        fields=PSYCHIATRIC_FIELDS,
        data=data,
        label="psychiatric history",
        permission="intake.edit",
        past_dates=("current_episode_began_on",),
    )
    return record


def medical_history_update(
    *, actor: Any, patient: Patient, data: Mapping[str, Any]
) -> MedicalHistory:
    record: MedicalHistory = _singleton_update(
        actor=actor,
        patient=patient,
        model=MedicalHistory,
        fields=MEDICAL_FIELDS,
        data=data,
        label="medical history",
        permission="intake.edit",
        past_dates=("pregnancy_status_checked_on",),
    )
    return record


TRANSPORT_FIELDS = ("escort_name", "escort_relationship", "escort_phone", "notes")


def transport_plan_update(
    *, actor: Any, patient: Patient, data: Mapping[str, Any]
) -> TransportPlan:
    record: TransportPlan = _singleton_update(
        actor=actor,
        patient=patient,
        model=TransportPlan,
        fields=TRANSPORT_FIELDS,
        data=data,
        label="transport plan",
        permission="transport.record",
        refresh=False,
    )
    return record


REMS_FIELDS = ("enrolment_id", "enrolled_on")


def rems_enrolment_record(
    *, actor: Any, patient: Patient, data: Mapping[str, Any]
) -> RemsEnrolment:
    """The patient's Spravato REMS enrolment ID and date (needed before a first esketamine dose)."""
    record: RemsEnrolment = _singleton_update(
        actor=actor,
        patient=patient,
        model=RemsEnrolment,
        fields=REMS_FIELDS,
        data=data,
        label="REMS patient enrolment",
        permission="rems.record",
        past_dates=("enrolled_on",),
        user_field="recorded_by",
        refresh=False,
    )
    return record


# --- Checks and measurements ----------------------------------------------------------------

PDMP_FIELDS = ("checked_on", "state", "concerns_found", "findings")


def pdmp_check_record(*, actor: Any, patient: Patient, data: Mapping[str, Any]) -> PdmpCheck:
    _require(actor, "intake.edit", patient)
    with transaction.atomic():
        patient = _lock(patient)
        check = PdmpCheck(patient=patient, clinic_id=patient.clinic_id, recorded_by=actor)
        _assign(check, data, PDMP_FIELDS, today=clinic_today(patient), past_dates=["checked_on"])
        check.state = check.state.upper()
        if check.state and not (len(check.state) == 2 and check.state.isalpha()):
            raise ValidationError({"state": ["Use the two-letter state code, e.g. MA."]})
        check.save(force_insert=True)
        _audit(
            actor,
            patient,
            Action.CREATE,
            check,
            changes={**diff({}, _values(check, PDMP_FIELDS)), **_mark_screening(patient)},
            detail="PDMP check",
        )
    return check


VITALS_FIELDS = (
    "measured_on",
    "height_cm",
    "weight_kg",
    "systolic_mmhg",
    "diastolic_mmhg",
    "heart_rate_bpm",
    "spo2_pct",
    "respiratory_rate",
)
_READING_FIELDS = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "heart_rate_bpm",
    "spo2_pct",
    "respiratory_rate",
)


def _check_reading(vitals: BaselineVitals) -> None:
    """Plausibility through the clinical rules' VitalsReading, naming the field."""
    values = {name: getattr(vitals, name) for name in _READING_FIELDS}
    errors: dict[str, list[str]] = {}
    if (values["systolic_mmhg"] is None) != (values["diastolic_mmhg"] is None):
        errors["diastolic_mmhg"] = ["Record both systolic and diastolic blood pressure."]
    if not any(getattr(vitals, name) is not None for name in VITALS_FIELDS[1:]):
        errors["__all__"] = ["Record at least one measurement."]
    if errors:
        raise ValidationError(errors)
    try:
        VitalsReading(**{k: v for k, v in values.items() if v is not None})
    except InvalidInput as exc:
        message = str(exc)
        field = message.split(":", 1)[0] if ":" in message else "__all__"
        if field not in _READING_FIELDS:
            field = "systolic_mmhg" if "systolic" in message else "__all__"
        raise ValidationError({field: [message.split(": ", 1)[-1]]}) from None


def baseline_vitals_record(
    *, actor: Any, patient: Patient, data: Mapping[str, Any]
) -> BaselineVitals:
    """Height, weight (BMI) and vital signs at intake."""
    _require(actor, "intake.edit", patient)
    with transaction.atomic():
        patient = _lock(patient)
        vitals = BaselineVitals(patient=patient, clinic_id=patient.clinic_id, recorded_by=actor)
        _assign(
            vitals, data, VITALS_FIELDS, today=clinic_today(patient), past_dates=["measured_on"]
        )
        _check_reading(vitals)
        vitals.save(force_insert=True)
        _audit(
            actor,
            patient,
            Action.CREATE,
            vitals,
            changes={**diff({}, _values(vitals, VITALS_FIELDS)), **_mark_screening(patient)},
            detail="baseline vitals",
        )
    return vitals


def baseline_measure_record(
    *,
    actor: Any,
    patient: Patient,
    instrument: str,
    answers: Any,
    administered_on: date,
) -> BaselineMeasure:
    """Score a baseline questionnaire with `ketaclinic.clinical.score` and keep it (immutable)."""
    _require(actor, "intake.edit", patient)
    if instrument not in BASELINE_INSTRUMENTS:
        raise ValidationError({"instrument": ["Choose a baseline questionnaire from the list."]})
    if not isinstance(administered_on, date):
        raise ValidationError({"administered_on": ["Enter the date it was completed."]})
    if administered_on > clinic_today(patient):
        raise ValidationError({"administered_on": ["This date is in the future."]})
    try:
        result = score(instrument, answers)
    except InvalidInput as exc:
        raise ValidationError({"answers": [str(exc)]}) from None
    with transaction.atomic():
        patient = _lock(patient)
        measure = BaselineMeasure.objects.create(
            patient=patient,
            clinic_id=patient.clinic_id,
            instrument=instrument,
            administered_on=administered_on,
            answers=dict(result.answers),
            total=result.total,
            severity=result.severity or "",
            flags=sorted(result.flags),
            subscores=dict(result.subscores),
            recorded_by=actor,
        )
        _audit(
            actor,
            patient,
            Action.CREATE,
            measure,
            changes={
                "instrument": instrument,
                "total": result.total,
                "severity": result.severity,
                "flags": sorted(result.flags),
                **_mark_screening(patient),
            },
            detail=f"baseline {INSTRUMENTS[instrument].title}",
        )
    return measure


# --- Eligibility ----------------------------------------------------------------------------


def _tracked_treatments(patient: Patient) -> set[str]:
    intended = set(
        Intake.objects.filter(patient_id=patient.pk)
        .exclude(intended_treatment="")
        .exclude(status__in=[IntakeStatus.DECLINED, IntakeStatus.WITHDRAWN])
        .values_list("intended_treatment", flat=True)
    )
    decided = set(
        EligibilityDecision.objects.filter(patient_id=patient.pk)
        .values_list("treatment", flat=True)
        .distinct()
    )
    return intended | decided


def _latest_decision(patient: Patient, treatment: str) -> EligibilityDecision | None:
    return (
        EligibilityDecision.objects.filter(patient_id=patient.pk, treatment=treatment)
        .order_by("-decided_at", "-id")
        .first()
    )


def _refresh(
    actor: Any, patient: Patient, *, trigger: str, treatments: Iterable[str] = ()
) -> tuple[dict[str, EligibilityDecision], dict[str, Any]]:
    """Re-run `assess_eligibility` for every tracked treatment; write a row where it changed.

    Called inside the caller's transaction, after its write, so the decision always matches the
    facts in the same commit. Returns the decisions and, for the caller's single audit row,
    {"eligibility": {treatment: {"old": status, "new": status, "decision": id}}} when any
    decision row was written.
    """
    wanted = _tracked_treatments(patient) | set(treatments)
    if not wanted:
        return {}, {}
    changed: dict[str, Any] = {}
    sheet = gather_facts(patient)
    as_of = clinic_today(patient)
    decisions: dict[str, EligibilityDecision] = {}
    for treatment in sorted(wanted):
        result = assess_eligibility(sheet.facts, treatment=treatment, as_of=as_of)
        reasons = [asdict(reason) for reason in result.reasons]
        latest = _latest_decision(patient, treatment)
        if (
            latest is not None
            and latest.facts_digest == sheet.digest
            and latest.status == result.status
            and latest.reasons == reasons
        ):
            decisions[treatment] = latest
            continue
        decision = EligibilityDecision.objects.create(
            patient=patient,
            clinic_id=patient.clinic_id,
            treatment=treatment,
            status=result.status,
            previous_status=latest.status if latest else "",
            reasons=reasons,
            facts=sheet.snapshot(),
            provenance=sheet.provenance,
            facts_digest=sheet.digest,
            as_of=as_of,
            decided_at=clock.now(),
            triggered_by=actor,
            trigger=trigger[:200],
        )
        changed[treatment] = {
            "old": latest.status if latest else None,
            "new": result.status,
            "decision": decision.pk,
            "reasons": [r["code"] for r in reasons],
        }
        decisions[treatment] = decision
    return decisions, ({"eligibility": changed} if changed else {})


def _check_treatment(treatment: str) -> None:
    if treatment not in TREATMENTS:
        raise ValidationError({"treatment": ["Choose a treatment from the list."]})


def eligibility_check(*, actor: Any, patient: Patient, treatment: str) -> EligibilityDecision:
    """Assess (or re-assess) eligibility for one treatment now; a row is kept if it changed."""
    _check_treatment(treatment)
    _require(actor, "intake.view", patient)
    with transaction.atomic():
        patient = _lock(patient)
        decisions, effects = _refresh(
            actor, patient, trigger="eligibility checked", treatments=[treatment]
        )
        decision = decisions[treatment]
        _audit(
            actor,
            patient,
            Action.CREATE if effects else Action.READ,
            decision,
            changes=effects,
            detail=f"eligibility checked for {treatment}: {decision.status}"
            + ("" if effects else " (unchanged)"),
        )
    return decision


def override_covering(
    decision: EligibilityDecision, overrides: Iterable[EligibilityOverride] | None = None
) -> EligibilityOverride | None:
    """The newest override that covers every reason of this needs-review decision."""
    if decision.status != "needs_review":
        return None
    if overrides is None:
        overrides = EligibilityOverride.objects.filter(
            patient_id=decision.patient_id, treatment=decision.treatment
        ).select_related("prescriber")
    for override in sorted(overrides, key=lambda o: (o.signed_at, o.pk), reverse=True):
        if override.covers(decision):
            return override
    return None


def override_hash(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def eligibility_override_sign(
    *, actor: Any, patient: Patient, treatment: str, reason: str
) -> EligibilityOverride:
    """A prescriber signs that treatment may proceed despite a needs-review decision."""
    _check_treatment(treatment)
    if not access.has_permission(actor, "intake.view", patient.clinic_id):
        raise PermissionDenied
    if not access.has_permission(actor, "eligibility.override", patient.clinic_id):
        raise PermissionDenied
    reason = (reason or "").strip()
    if len(reason) < MIN_OVERRIDE_REASON_CHARS:
        raise ValidationError(
            {
                "reason": [
                    "Write why the benefit outweighs the risks for this patient "
                    f"(at least {MIN_OVERRIDE_REASON_CHARS} characters)."
                ]
            }
        )
    if "\x00" in reason:
        raise ValidationError({"reason": ["Remove the null character from this field."]})
    with transaction.atomic():
        patient = _lock(patient)
        decisions, effects = _refresh(
            actor, patient, trigger="override requested", treatments=[treatment]
        )
        decision = decisions[treatment]
        if decision.status == "eligible":
            raise ValidationError(
                {"treatment": ["The patient is eligible; no override is needed."]}
            )
        if decision.status == "ineligible":
            raise Blocked(
                "The patient is ineligible: a contraindication cannot be overridden.",
                [r for r in decision.reasons if r["severity"] == "contraindication"],
                field="treatment",
            )
        if override_covering(decision) is not None:
            raise ValidationError(
                {"treatment": ["An override already covers every reason of this decision."]}
            )
        signed_at = clock.now()
        codes = sorted(decision.reason_codes)
        payload = {
            "patient_id": patient.pk,
            "treatment": treatment,
            "decision_id": decision.pk,
            "reason_codes": codes,
            "reason": reason,
            "prescriber_id": actor.pk,
            "signed_at": signed_at.isoformat(),
        }
        override = EligibilityOverride.objects.create(
            patient=patient,
            clinic_id=patient.clinic_id,
            treatment=treatment,
            decision=decision,
            covered_reason_codes=codes,
            reason=reason,
            prescriber=actor,
            signature=actor.signature_name[:260],
            signed_at=signed_at,
            content_hash=override_hash(payload),
        )
        _audit(
            actor,
            patient,
            Action.CREATE,
            override,
            changes={"treatment": treatment, "covers": codes, "reason": reason, **effects},
            detail=f"eligibility override signed for {treatment}",
        )
    return override


def eligibility_gate(
    *, actor: Any, patient: Patient, treatment: str
) -> tuple[EligibilityDecision, EligibilityOverride | None, dict[str, Any]]:
    """For course creation (inside its transaction): current decision, or Blocked with reasons.

    Ineligible blocks. Needs review passes only with a prescriber override covering every
    reason. Screening must be complete (required sections recorded) either way. The third
    value reports a re-run decision for the caller's audit row.
    """
    _check_treatment(treatment)
    gaps = [gap for gap in screening_gaps(patient) if gap.required]
    if gaps:
        raise Blocked(
            "Screening is incomplete: record these first.",
            [
                {"code": g.code, "message": g.message, "source": g.source, "severity": "block"}
                for g in gaps
            ],
        )
    decisions, effects = _refresh(actor, patient, trigger="course planning", treatments=[treatment])
    decision = decisions[treatment]
    if decision.status == "ineligible":
        raise Blocked(
            f"Ineligible for {TREATMENTS[treatment].title}: a course cannot be created.",
            decision.reasons,
        )
    override = override_covering(decision)
    if decision.status == "needs_review" and override is None:
        raise Blocked(
            "Needs review: a prescriber must sign an override with a written reason first.",
            decision.reasons,
        )
    return decision, override, effects


@dataclass(frozen=True)
class Gap:
    code: str
    message: str
    required: bool
    source: str = "KetaClinic pre-treatment evaluation checklist (reference §2)"


def screening_gaps(patient: Patient) -> list[Gap]:
    """What the pre-treatment evaluation still lacks; required gaps block course creation."""
    medical = MedicalHistory.objects.filter(patient_id=patient.pk).first()
    gaps: list[Gap] = []
    if medical is None:
        gaps.append(Gap("medical_history_missing", "Medical history not recorded", True))
    if not PsychiatricHistory.objects.filter(patient_id=patient.pk).exists():
        gaps.append(Gap("psychiatric_history_missing", "Psychiatric history not recorded", True))
    if not Diagnosis.objects.filter(patient_id=patient.pk, entered_in_error=False).exists():
        gaps.append(Gap("diagnosis_missing", "No diagnosis recorded", True))
    live = {"patient_id": patient.pk, "entered_in_error": False}
    if not Medication.objects.filter(**live).exists() and not (
        medical and medical.takes_no_medications
    ):
        gaps.append(
            Gap(
                "medications_not_reconciled",
                "Medications not recorded (or 'takes no medications' not ticked)",
                True,
            )
        )
    if not Allergy.objects.filter(**live).exists() and not (medical and medical.no_known_allergies):
        gaps.append(
            Gap(
                "allergies_not_recorded",
                "Allergies not recorded (or 'no known allergies' not ticked)",
                True,
            )
        )
    if not PdmpCheck.objects.filter(patient_id=patient.pk).exists():
        gaps.append(Gap("pdmp_not_checked", "No prescription-monitoring (PDMP) check", False))
    if not BaselineVitals.objects.filter(patient_id=patient.pk).exists():
        gaps.append(Gap("vitals_missing", "No baseline vitals, height or weight", False))
    if not BaselineMeasure.objects.filter(patient_id=patient.pk).exists():
        gaps.append(Gap("measures_missing", "No baseline questionnaire", False))
    return gaps


# --- Consent --------------------------------------------------------------------------------


def consent_text_current(organisation_id: int, kind: str) -> ConsentText:
    """The newest published version, or version 1 (built in, not yet stored) when none is."""
    text = (
        ConsentText.objects.filter(organisation_id=organisation_id, kind=kind)
        .order_by("-version")
        .first()
    )
    if text is None:
        title, body = DEFAULT_TEXTS[ConsentKind(kind)]
        text = ConsentText(
            organisation_id=organisation_id,
            kind=kind,
            version=1,
            title=title,
            body=body,
            published_at=clock.now(),
        )
    return text


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def consent_text_publish(
    *, actor: Any, clinic_id: int, kind: str, title: str, body: str
) -> ConsentText:
    """A clinic administrator publishes a new version; signed consents keep their version."""
    if not access.has_permission(actor, "consent_text.manage", clinic_id):
        raise PermissionDenied
    if kind not in ConsentKind.values:
        raise ValidationError({"kind": ["Choose a consent form."]})
    errors: dict[str, list[str]] = {}
    title, body = (title or "").strip(), (body or "").strip()
    if not title or len(title) > 200:
        errors["title"] = ["Give a title of up to 200 characters."]
    if len(body) < 100 or len(body) > 20000:
        errors["body"] = ["The consent wording must be 100 to 20,000 characters."]
    if "\x00" in title + body:
        errors["body"] = ["Remove the null character."]
    if errors:
        raise ValidationError(errors)
    from ketaclinic.accounts.models import Clinic

    organisation_id = Clinic.objects.only("organisation_id").get(pk=clinic_id).organisation_id
    with transaction.atomic():
        current = (
            ConsentText.objects.select_for_update()
            .filter(organisation_id=organisation_id, kind=kind)
            .order_by("-version")
            .first()
        )
        text = ConsentText.objects.create(
            organisation_id=organisation_id,
            kind=kind,
            version=(current.version + 1) if current else 1,
            title=title,
            body=body,
            published_by=actor,
            published_at=clock.now(),
        )
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=clinic_id,
            obj=text,
            changes={"kind": kind, "version": text.version, "sha256": sha256_text(body)},
            detail="consent text published",
        )
    return text


CONSENT_FIELDS = ("patient_signature", "patient_signed_on")


def consent_sign(
    *, actor: Any, patient: Patient, kind: str, data: Mapping[str, Any]
) -> SignedConsent:
    """Record the patient's signature on the current consent text, countersigned by the actor."""
    _require(actor, "consent.record", patient)
    if kind not in ConsentKind.values:
        raise ValidationError({"kind": ["Choose a consent form."]})
    with transaction.atomic():
        patient = _lock(patient)
        text = consent_text_current(patient.organisation_id, kind)
        if text.pk is None:
            text.save(force_insert=True)
        consent = SignedConsent(
            patient=patient,
            clinic_id=patient.clinic_id,
            consent_text=text,
            kind=kind,
            text_sha256=sha256_text(text.body),
            clinician=actor,
            clinician_signature=actor.signature_name[:260],
            clinician_signed_at=clock.now(),
        )
        _assign(
            consent,
            data,
            CONSENT_FIELDS,
            today=clinic_today(patient),
            past_dates=["patient_signed_on"],
        )
        if patient.last_name.lower() not in consent.patient_signature.lower():
            raise ValidationError(
                {"patient_signature": ["Type the patient's full name as they signed it."]}
            )
        active = SignedConsent.objects.filter(
            patient_id=patient.pk, kind=kind, withdrawn_at__isnull=True, consent_text=text
        )
        if active.exists():
            raise ValidationError(
                {"__all__": ["This consent (same version) is already signed and in force."]}
            )
        consent.save(force_insert=True)
        _audit(
            actor,
            patient,
            Action.CREATE,
            consent,
            changes={
                "kind": kind,
                "version": text.version,
                "text_sha256": consent.text_sha256,
                "patient_signed_on": consent.patient_signed_on,
            },
            detail="consent signed",
        )
    return consent


def consent_withdraw(*, actor: Any, consent: SignedConsent, reason: str) -> SignedConsent:
    patient = consent.patient
    _require(actor, "consent.record", patient)
    reason = (reason or "").strip()
    if not reason or len(reason) > 300:
        raise ValidationError({"reason": ["Give the reason (up to 300 characters)."]})
    with transaction.atomic():
        locked = SignedConsent.objects.select_for_update().get(pk=consent.pk)
        if locked.withdrawn_at is not None:
            raise ValidationError({"__all__": ["This consent was already withdrawn."]})
        locked.withdrawn_at, locked.withdrawn_reason, locked.withdrawn_by = (
            clock.now(),
            reason,
            actor,
        )
        locked.save(update_fields=["withdrawn_at", "withdrawn_reason", "withdrawn_by"])
        _audit(
            actor,
            patient,
            Action.UPDATE,
            locked,
            changes={"withdrawn": {"old": False, "new": True}, "reason": reason},
            detail="consent withdrawn",
        )
    return locked
