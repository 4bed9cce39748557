"""Choices and curated code lists for intake and screening.

The diagnosis list is data: ICD-10-CM codes for the conditions ketamine clinics treat (ASKP
basics, reference §2), each tagged with what it tells the eligibility screen. The medication
list pre-flags the interacting classes the Spravato label names (PI §7: CNS depressants,
psychostimulants, MAOIs; reference §2); a clinician can always flag a drug that is not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from django.db import models

from ketaclinic.clinical import TREATMENTS


class IntakeStatus(models.TextChoices):
    REFERRED = "referred", "Referred"
    SCREENING = "screening", "Screening"
    ACCEPTED = "accepted", "Accepted for treatment"
    DECLINED = "declined", "Not accepted"
    WITHDRAWN = "withdrawn", "Withdrawn"


# Allowed status changes (ARCHITECTURE rule 6). "accepted" is set when a course is created.
INTAKE_TRANSITIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        IntakeStatus.REFERRED: frozenset(
            {IntakeStatus.SCREENING, IntakeStatus.DECLINED, IntakeStatus.WITHDRAWN}
        ),
        IntakeStatus.SCREENING: frozenset(
            {IntakeStatus.ACCEPTED, IntakeStatus.DECLINED, IntakeStatus.WITHDRAWN}
        ),
        IntakeStatus.ACCEPTED: frozenset({IntakeStatus.WITHDRAWN}),
        IntakeStatus.DECLINED: frozenset({IntakeStatus.SCREENING}),
        IntakeStatus.WITHDRAWN: frozenset({IntakeStatus.SCREENING}),
    }
)
OPEN_INTAKE_STATUSES = frozenset({IntakeStatus.REFERRED, IntakeStatus.SCREENING})


class ReferralSource(models.TextChoices):
    SELF = "self", "Self-referred"
    PRIMARY_CARE = "primary_care", "Primary care clinician"
    PSYCHIATRIST = "psychiatrist", "Psychiatrist"
    THERAPIST = "therapist", "Therapist / psychologist"
    PAIN_SPECIALIST = "pain_specialist", "Pain specialist"
    HOSPITAL = "hospital", "Hospital / emergency department"
    OTHER_CLINIC = "other_clinic", "Another ketamine clinic"
    OTHER = "other", "Other"


TREATMENT_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (code, treatment.title) for code, treatment in TREATMENTS.items()
)


@dataclass(frozen=True)
class DiagnosisCode:
    code: str
    label: str
    group: str
    psychotic_features: bool = False
    substance_use_disorder: bool = False


DIAGNOSIS_GROUPS = MappingProxyType(
    {
        "mdd_single": "Major depressive disorder, single episode",
        "mdd_recurrent": "Major depressive disorder, recurrent",
        "bipolar_depression": "Bipolar disorder, current episode depressed",
        "ptsd": "Post-traumatic stress disorder",
        "ocd": "Obsessive-compulsive disorder",
        "anxiety": "Generalised anxiety disorder",
        "chronic_pain": "Chronic pain",
        "substance_use": "Alcohol use disorder",
    }
)

# ICD-10-CM (FY2025 code set). Psychotic features feed the psychosis fact and alcohol use
# disorder (current or in remission) feeds the substance-use fact of the eligibility screen.
_DIAGNOSES = (
    DiagnosisCode("F32.0", "Major depressive disorder, single episode, mild", "mdd_single"),
    DiagnosisCode("F32.1", "Major depressive disorder, single episode, moderate", "mdd_single"),
    DiagnosisCode(
        "F32.2",
        "Major depressive disorder, single episode, severe without psychotic features",
        "mdd_single",
    ),
    DiagnosisCode(
        "F32.3",
        "Major depressive disorder, single episode, severe with psychotic features",
        "mdd_single",
        psychotic_features=True,
    ),
    DiagnosisCode(
        "F32.4", "Major depressive disorder, single episode, in partial remission", "mdd_single"
    ),
    DiagnosisCode("F32.9", "Major depressive disorder, single episode, unspecified", "mdd_single"),
    DiagnosisCode("F33.0", "Major depressive disorder, recurrent, mild", "mdd_recurrent"),
    DiagnosisCode("F33.1", "Major depressive disorder, recurrent, moderate", "mdd_recurrent"),
    DiagnosisCode(
        "F33.2",
        "Major depressive disorder, recurrent, severe without psychotic features",
        "mdd_recurrent",
    ),
    DiagnosisCode(
        "F33.3",
        "Major depressive disorder, recurrent, severe with psychotic symptoms",
        "mdd_recurrent",
        psychotic_features=True,
    ),
    DiagnosisCode(
        "F33.41", "Major depressive disorder, recurrent, in partial remission", "mdd_recurrent"
    ),
    DiagnosisCode("F33.9", "Major depressive disorder, recurrent, unspecified", "mdd_recurrent"),
    DiagnosisCode(
        "F31.30",
        "Bipolar disorder, current episode depressed, mild or moderate severity, unspecified",
        "bipolar_depression",
    ),
    DiagnosisCode(
        "F31.31", "Bipolar disorder, current episode depressed, mild", "bipolar_depression"
    ),
    DiagnosisCode(
        "F31.32", "Bipolar disorder, current episode depressed, moderate", "bipolar_depression"
    ),
    DiagnosisCode(
        "F31.4",
        "Bipolar disorder, current episode depressed, severe, without psychotic features",
        "bipolar_depression",
    ),
    DiagnosisCode(
        "F31.5",
        "Bipolar disorder, current episode depressed, severe, with psychotic features",
        "bipolar_depression",
        psychotic_features=True,
    ),
    DiagnosisCode("F31.81", "Bipolar II disorder", "bipolar_depression"),
    DiagnosisCode("F43.10", "Post-traumatic stress disorder, unspecified", "ptsd"),
    DiagnosisCode("F43.11", "Post-traumatic stress disorder, acute", "ptsd"),
    DiagnosisCode("F43.12", "Post-traumatic stress disorder, chronic", "ptsd"),
    DiagnosisCode("F42.2", "Mixed obsessional thoughts and acts", "ocd"),
    DiagnosisCode("F42.9", "Obsessive-compulsive disorder, unspecified", "ocd"),
    DiagnosisCode("F41.1", "Generalized anxiety disorder", "anxiety"),
    DiagnosisCode("G90.50", "Complex regional pain syndrome I, unspecified", "chronic_pain"),
    DiagnosisCode(
        "G90.511", "Complex regional pain syndrome I of right upper limb", "chronic_pain"
    ),
    DiagnosisCode("G90.512", "Complex regional pain syndrome I of left upper limb", "chronic_pain"),
    DiagnosisCode(
        "G90.521", "Complex regional pain syndrome I of right lower limb", "chronic_pain"
    ),
    DiagnosisCode("G90.522", "Complex regional pain syndrome I of left lower limb", "chronic_pain"),
    DiagnosisCode(
        "G90.59", "Complex regional pain syndrome I of other specified site", "chronic_pain"
    ),
    DiagnosisCode("M79.7", "Fibromyalgia", "chronic_pain"),
    DiagnosisCode(
        "F10.10",
        "Alcohol abuse, uncomplicated (mild alcohol use disorder)",
        "substance_use",
        substance_use_disorder=True,
    ),
    DiagnosisCode(
        "F10.11", "Alcohol abuse, in remission", "substance_use", substance_use_disorder=True
    ),
    DiagnosisCode(
        "F10.20",
        "Alcohol dependence, uncomplicated (moderate or severe alcohol use disorder)",
        "substance_use",
        substance_use_disorder=True,
    ),
    DiagnosisCode(
        "F10.21", "Alcohol dependence, in remission", "substance_use", substance_use_disorder=True
    ),
)

DIAGNOSES: MappingProxyType[str, DiagnosisCode] = MappingProxyType({d.code: d for d in _DIAGNOSES})
DIAGNOSIS_CHOICES: list[tuple[str, list[tuple[str, str]]]] = [
    (
        group_label,
        [(d.code, f"{d.code} {d.label}") for d in _DIAGNOSES if d.group == group],
    )
    for group, group_label in DIAGNOSIS_GROUPS.items()
]


class TrialOutcome(models.TextChoices):
    NO_RESPONSE = "no_response", "No response"
    PARTIAL_RESPONSE = "partial_response", "Partial response"
    RESPONSE = "response", "Response"
    REMISSION = "remission", "Remission"
    NOT_TOLERATED = "not_tolerated", "Stopped: not tolerated"
    ONGOING = "ongoing", "Ongoing"


# An inadequate response to an adequate trial is what counts towards treatment resistance
# (Spravato PI §1 TRD wording, reference §2); intolerance and ongoing trials do not.
FAILED_OUTCOMES = frozenset({TrialOutcome.NO_RESPONSE, TrialOutcome.PARTIAL_RESPONSE})


class OtherTreatmentKind(models.TextChoices):
    ECT = "ect", "Electroconvulsive therapy (ECT)"
    TMS = "tms", "Transcranial magnetic stimulation (TMS)"
    PSYCHOTHERAPY = "psychotherapy", "Psychotherapy"
    OTHER = "other", "Other"


class AllergySeverity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"
    ANAPHYLAXIS = "anaphylaxis", "Anaphylaxis"
    UNKNOWN = "unknown", "Unknown"


class Substance(models.TextChoices):
    ALCOHOL = "alcohol", "Alcohol"
    CANNABIS = "cannabis", "Cannabis"
    OPIOIDS = "opioids", "Opioids"
    STIMULANTS = "stimulants", "Stimulants (cocaine, methamphetamine)"
    SEDATIVES = "sedatives", "Sedatives / benzodiazepines"
    KETAMINE_PCP = "ketamine_pcp", "Ketamine or PCP"
    HALLUCINOGENS = "hallucinogens", "Hallucinogens"
    TOBACCO = "tobacco", "Tobacco / nicotine"
    OTHER = "other", "Other"


class UsePattern(models.TextChoices):
    CURRENT = "current", "Current use"
    PAST = "past", "Past use only"


class ConsentKind(models.TextChoices):
    KETAMINE_OFF_LABEL = "ketamine_off_label", "Racemic ketamine (off-label use)"
    ESKETAMINE = "esketamine", "Esketamine (Spravato) treatment"


class MedicationClass(models.TextChoices):
    ORAL_ANTIDEPRESSANT = "oral_antidepressant", "Oral antidepressant"
    MAOI = "maoi", "MAOI"
    PSYCHOSTIMULANT = "psychostimulant", "Psychostimulant"
    CNS_DEPRESSANT = "cns_depressant", "Other CNS depressant"
    BENZODIAZEPINE = "benzodiazepine", "Benzodiazepine"
    OPIOID = "opioid", "Opioid"


_AD = MedicationClass.ORAL_ANTIDEPRESSANT
_CNS = MedicationClass.CNS_DEPRESSANT

# Generic name (lower case) -> classes it belongs to. Spravato PI §7 examples: psychostimulants
# (amphetamines, methylphenidate, modafinil, armodafinil), MAOIs, CNS depressants
# (benzodiazepines, opioids, alcohol). Oral MAOIs are also oral antidepressants.
KNOWN_MEDICATIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        **{
            name: frozenset({_AD})
            for name in (
                "sertraline",
                "fluoxetine",
                "paroxetine",
                "citalopram",
                "escitalopram",
                "fluvoxamine",
                "venlafaxine",
                "desvenlafaxine",
                "duloxetine",
                "levomilnacipran",
                "bupropion",
                "mirtazapine",
                "trazodone",
                "vilazodone",
                "vortioxetine",
                "amitriptyline",
                "nortriptyline",
                "imipramine",
                "desipramine",
                "clomipramine",
                "doxepin",
                "protriptyline",
                "trimipramine",
                "nefazodone",
                "gepirone",
                "dextromethorphan-bupropion",
            )
        },
        **{
            name: frozenset({_AD, MedicationClass.MAOI})
            for name in ("phenelzine", "tranylcypromine", "isocarboxazid")
        },
        "selegiline": frozenset({MedicationClass.MAOI}),
        **{
            name: frozenset({MedicationClass.PSYCHOSTIMULANT})
            for name in (
                "methylphenidate",
                "dexmethylphenidate",
                "amphetamine",
                "dextroamphetamine",
                "lisdexamfetamine",
                "methamphetamine",
                "modafinil",
                "armodafinil",
            )
        },
        **{
            name: frozenset({MedicationClass.BENZODIAZEPINE})
            for name in (
                "alprazolam",
                "clonazepam",
                "diazepam",
                "lorazepam",
                "temazepam",
                "chlordiazepoxide",
                "clorazepate",
                "oxazepam",
                "triazolam",
                "midazolam",
            )
        },
        **{
            name: frozenset({MedicationClass.OPIOID})
            for name in (
                "oxycodone",
                "hydrocodone",
                "morphine",
                "hydromorphone",
                "fentanyl",
                "methadone",
                "buprenorphine",
                "tramadol",
                "tapentadol",
                "codeine",
                "oxymorphone",
            )
        },
        **{
            name: frozenset({_CNS})
            for name in (
                "zolpidem",
                "eszopiclone",
                "zaleplon",
                "gabapentin",
                "pregabalin",
                "phenobarbital",
                "butalbital",
                "carisoprodol",
                "cyclobenzaprine",
                "baclofen",
            )
        },
    }
)
