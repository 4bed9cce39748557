"""The eligibility facts of a patient, gathered from the intake records, with where each came from.

`assess_eligibility` (ketaclinic.clinical) decides; this module only collects what it needs:
every fact key it knows is filled from a recorded field, so nothing is typed twice and the
decision page can say which record made a fact true.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ketaclinic.clinical import FACT_KEYS, assess_eligibility
from ketaclinic.patients.models import Patient
from ketaclinic.screening.choices import DIAGNOSES
from ketaclinic.screening.models import (
    Allergy,
    AntidepressantTrial,
    Diagnosis,
    MedicalHistory,
    Medication,
    PsychiatricHistory,
    SubstanceUse,
)

# Medical-history fields that are eligibility facts of the same name.
MEDICAL_FACTS = (
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
)
# Medication flag -> eligibility fact. Benzodiazepines and opioids are CNS depressants (PI §7).
MEDICATION_FACTS = (
    ("is_maoi", "maoi"),
    ("is_psychostimulant", "psychostimulant"),
    ("is_cns_depressant", "cns_depressant"),
    ("is_benzodiazepine", "cns_depressant"),
    ("is_opioid", "cns_depressant"),
    ("is_oral_antidepressant", "taking_oral_antidepressant"),
)


@dataclass
class FactSheet:
    """Facts for `assess_eligibility` and, per fact, the records that set it."""

    facts: dict[str, Any]
    provenance: dict[str, list[str]] = field(default_factory=dict)

    def note(self, key: str, source: str) -> None:
        self.provenance.setdefault(key, []).append(source)

    def snapshot(self) -> dict[str, Any]:
        """The facts as JSON values (dates as ISO text)."""
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.facts.items()}

    @property
    def digest(self) -> str:
        text = json.dumps(self.snapshot(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def gather_facts(patient: Patient) -> FactSheet:
    """Read every record that feeds an eligibility fact (a fixed number of queries)."""
    facts: dict[str, Any] = {key: False for key in FACT_KEYS}
    facts["date_of_birth"] = patient.date_of_birth
    facts["failed_antidepressant_trials"] = 0
    sheet = FactSheet(facts)
    sheet.note("date_of_birth", "Patient details: date of birth")

    medical = MedicalHistory.objects.filter(patient_id=patient.pk).first()
    if medical is not None:
        for key in MEDICAL_FACTS:
            if getattr(medical, key):
                facts[key] = True
                label = MedicalHistory._meta.get_field(key).verbose_name  # type: ignore[union-attr]
                sheet.note(key, f"Medical history: {label}")

    psychiatric = PsychiatricHistory.objects.filter(patient_id=patient.pk).first()
    if psychiatric is not None and psychiatric.psychosis_history:
        facts["psychosis_history"] = True
        sheet.note("psychosis_history", "Psychiatric history: history of psychosis")

    for diagnosis in Diagnosis.objects.filter(patient_id=patient.pk, entered_in_error=False):
        entry = DIAGNOSES.get(diagnosis.icd10_code)
        if entry is None:
            continue
        if entry.psychotic_features:
            facts["psychosis_history"] = True
            sheet.note("psychosis_history", f"Diagnosis {entry.code} {entry.label}")
        if entry.substance_use_disorder:
            facts["substance_use_disorder"] = True
            sheet.note("substance_use_disorder", f"Diagnosis {entry.code} {entry.label}")

    for use in SubstanceUse.objects.filter(
        patient_id=patient.pk, entered_in_error=False, use_disorder=True
    ):
        facts["substance_use_disorder"] = True
        sheet.note("substance_use_disorder", f"Substance use: {use}, use disorder")

    for allergy in Allergy.objects.filter(patient_id=patient.pk, entered_in_error=False):
        if allergy.is_ketamine:
            facts["hypersensitivity_ketamine"] = True
            sheet.note("hypersensitivity_ketamine", f"Allergy: {allergy.substance}")

    for medication in Medication.objects.filter(
        patient_id=patient.pk, entered_in_error=False, stopped_on__isnull=True
    ):
        for flag, key in MEDICATION_FACTS:
            if getattr(medication, flag):
                facts[key] = True
                sheet.note(key, f"Current medication: {medication.name}")

    failed = [
        trial
        for trial in AntidepressantTrial.objects.filter(
            patient_id=patient.pk, entered_in_error=False
        )
        if trial.counts_as_failed
    ]
    facts["failed_antidepressant_trials"] = len(failed)
    for trial in failed:
        sheet.note(
            "failed_antidepressant_trials",
            f"Adequate trial without response in the current episode: {trial}",
        )
    return sheet


def is_treatment_resistant(failed_trials: int, as_of: date, date_of_birth: date) -> bool:
    """Whether the count meets the TRD definition, asked of the clinical rules (not re-coded)."""
    result = assess_eligibility(
        {"failed_antidepressant_trials": failed_trials, "date_of_birth": date_of_birth},
        treatment="esketamine_trd",
        as_of=as_of,
    )
    return "fewer_than_two_failed_trials" not in result.codes
