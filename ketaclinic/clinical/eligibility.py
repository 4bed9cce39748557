"""Who may start a treatment: contraindications (ineligible) and warnings (needs review).

Sources: the Spravato label has only three contraindications (PI §4: aneurysmal vascular
disease or arteriovenous malformation, history of intracerebral hemorrhage, hypersensitivity to
esketamine/ketamine) [V]; its warnings (PI §5, §8) are reasons for a prescriber to document why
to proceed, not stops (reference §0, §2, §10 rule 9). The same screen applies to racemic
ketamine routes, whose label adds little beyond it (reference §2) [M].

``needs_review`` means a prescriber must document why to proceed; ``ineligible`` means do not
treat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Literal

from ketaclinic.clinical.errors import InvalidInput
from ketaclinic.clinical.results import Reason
from ketaclinic.clinical.settings import ClinicalSettings, resolve
from ketaclinic.clinical.treatments import get_treatment
from ketaclinic.clinical.validation import require_bool, require_date, require_int

__all__ = [
    "BOOLEAN_FACTS",
    "CONTRAINDICATION_FACTS",
    "ELIGIBILITY_STATUSES",
    "FACT_KEYS",
    "WARNING_FACTS",
    "Eligibility",
    "EligibilityStatus",
    "assess_eligibility",
]

EligibilityStatus = Literal["eligible", "needs_review", "ineligible"]
ELIGIBILITY_STATUSES: tuple[EligibilityStatus, ...] = ("eligible", "needs_review", "ineligible")

_LABEL_CONTRAINDICATION = "Spravato PI §4 contraindications (reference §2) [V]"

# fact key -> (message when present, source); all are hard stops on every route.
CONTRAINDICATION_FACTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "aneurysmal_vascular_disease": (
            "Aneurysmal vascular disease (aortic, intracranial or peripheral arterial)",
            _LABEL_CONTRAINDICATION,
        ),
        "arteriovenous_malformation": ("Arteriovenous malformation", _LABEL_CONTRAINDICATION),
        "intracerebral_hemorrhage_history": (
            "History of intracerebral hemorrhage",
            _LABEL_CONTRAINDICATION,
        ),
        "hypersensitivity_ketamine": (
            "Hypersensitivity to ketamine, esketamine or an excipient",
            _LABEL_CONTRAINDICATION,
        ),
    }
)

# fact key -> (message when present, source); each needs a documented prescriber decision.
WARNING_FACTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "psychosis_history": (
            "History of psychosis: assess and treat only if the benefit outweighs the risk",
            "Spravato PI §5 (psychosis); APA consensus caution (reference §2) [V]",
        ),
        "substance_use_disorder": (
            "Substance use disorder, including alcohol: consider carefully and monitor for abuse",
            "Spravato PI §5 abuse and misuse (reference §2) [V]",
        ),
        "pregnant": (
            "Pregnancy: may cause fetal harm, not recommended",
            "Spravato PI §8 pregnancy (reference §2) [V]",
        ),
        "breastfeeding": (
            "Breastfeeding: not recommended",
            "Spravato PI §8 lactation (reference §2) [V]",
        ),
        "uncontrolled_hypertension": (
            "Uncontrolled hypertension: blood pressure rises after dosing",
            "Spravato PI §5.6 increase in blood pressure (reference §2, §3) [V]",
        ),
        "cardiovascular_disease": (
            "Cardiovascular or cerebrovascular disease: assess benefit against risk",
            "Spravato PI §5.6 (reference §2) [V]",
        ),
        "severe_hepatic_impairment": (
            "Severe hepatic impairment (Child-Pugh C): no experience, not recommended",
            "Spravato PI §8 hepatic impairment; ASRA 2018: avoid if severe (reference §2) [V]",
        ),
        "raised_intracranial_pressure": (
            "Raised intracranial pressure: do not give where a rise in pressure is a serious risk",
            "Spravato PI §5.6; ASRA 2018 avoid with raised ICP (reference §1d, §3) [V]",
        ),
        "maoi": (
            "Taking an MAOI: blood pressure may rise; monitor closely",
            "Spravato PI §7 drug interactions (reference §2) [V]",
        ),
        "psychostimulant": (
            "Taking a psychostimulant: blood pressure may rise; monitor closely",
            "Spravato PI §7 drug interactions (reference §2) [V]",
        ),
        "cns_depressant": (
            "Taking a CNS depressant (e.g. benzodiazepine, opioid): sedation may increase",
            "Spravato PI §7 drug interactions (reference §2) [V]",
        ),
    }
)

# Yes/no facts a caller may also pass without triggering anything on their own.
_OTHER_BOOLEAN_FACTS = ("taking_oral_antidepressant",)

BOOLEAN_FACTS: frozenset[str] = frozenset(
    (*CONTRAINDICATION_FACTS, *WARNING_FACTS, *_OTHER_BOOLEAN_FACTS)
)
FACT_KEYS: frozenset[str] = BOOLEAN_FACTS | {"date_of_birth", "failed_antidepressant_trials"}

# TRD: inadequate response to >=2 antidepressants in the current episode (Spravato PI §1) [V].
_TRD_MIN_FAILED_TRIALS = 2


@dataclass(frozen=True)
class Eligibility:
    """The screening decision with every reason found, contraindications first."""

    status: EligibilityStatus
    reasons: tuple[Reason, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes in order."""
        return tuple(reason.code for reason in self.reasons)


def _age_years(date_of_birth: date, as_of: date) -> int:
    before_birthday = (as_of.month, as_of.day) < (date_of_birth.month, date_of_birth.day)
    return as_of.year - date_of_birth.year - int(before_birthday)


def assess_eligibility(
    facts: Mapping[str, object],
    *,
    treatment: str,
    as_of: date,
    settings: ClinicalSettings | None = None,
) -> Eligibility:
    """Screen ``facts`` about a patient for ``treatment`` on the date ``as_of``.

    Yes/no facts are bools; an absent (or None) yes/no fact means no, an absent
    ``failed_antidepressant_trials`` means 0 and an absent ``date_of_birth`` needs review
    (age unknown). Unknown keys and wrongly typed values raise ``InvalidInput``.
    """
    chosen = get_treatment(treatment)
    config = resolve(settings)
    today = require_date(as_of, "as_of")
    if not isinstance(facts, Mapping):
        raise InvalidInput("facts must be a mapping of fact name to value")
    for key in facts:
        if key not in FACT_KEYS:
            raise InvalidInput(
                f"unknown fact {key!r}; expected one of: {', '.join(sorted(FACT_KEYS))}"
            )

    def yes(key: str) -> bool:
        value = facts.get(key)
        return False if value is None else require_bool(value, f"fact {key}")

    present = {key: yes(key) for key in sorted(BOOLEAN_FACTS)}

    reasons: list[Reason] = [
        Reason(key, message, source, "contraindication")
        for key, (message, source) in CONTRAINDICATION_FACTS.items()
        if present[key]
    ]
    reasons += [
        Reason(key, message, source, "warning")
        for key, (message, source) in WARNING_FACTS.items()
        if present[key]
    ]

    age_source = (
        f"Minimum age {config.minimum_age_years}: {ClinicalSettings.source_of('minimum_age_years')}"
    )
    date_of_birth = facts.get("date_of_birth")
    if date_of_birth is None:
        reasons.append(
            Reason("age_unknown", "Date of birth not recorded: age unknown", age_source, "warning")
        )
    else:
        born = require_date(date_of_birth, "fact date_of_birth")
        if born > today:
            raise InvalidInput("fact date_of_birth is after the assessment date")
        age = _age_years(born, today)
        if age < config.minimum_age_years:
            reasons.append(
                Reason(
                    "age_under_minimum",
                    f"Age {age} is under {config.minimum_age_years}",
                    age_source,
                    "warning",
                )
            )

    trials_value = facts.get("failed_antidepressant_trials")
    trials = (
        0
        if trials_value is None
        else require_int(trials_value, "fact failed_antidepressant_trials", minimum=0)
    )
    if chosen.code == "esketamine_trd" and trials < _TRD_MIN_FAILED_TRIALS:
        reasons.append(
            Reason(
                "fewer_than_two_failed_trials",
                f"{trials} failed antidepressant trial(s) recorded; treatment-resistant "
                f"depression needs at least {_TRD_MIN_FAILED_TRIALS} in the current episode",
                "Spravato PI §1 indication (TRD: >=2 antidepressants) (reference §2) [V]",
                "warning",
            )
        )
    if chosen.code == "esketamine_mdsi" and not present["taking_oral_antidepressant"]:
        reasons.append(
            Reason(
                "no_oral_antidepressant",
                "No oral antidepressant recorded; esketamine for depression with acute suicidal "
                "ideation is given with an oral antidepressant",
                "Spravato PI §1 MDSI indication; J&J 2025 (reference §0, §10 rule 8) [V]",
                "warning",
            )
        )

    status: EligibilityStatus
    if any(reason.severity == "contraindication" for reason in reasons):
        status = "ineligible"
    elif reasons:
        status = "needs_review"
    else:
        status = "eligible"
    return Eligibility(status=status, reasons=tuple(reasons))
