"""C-SSRS screener (Columbia Suicide Severity Rating Scale, screen version).

Six yes/no questions about the past month plus, when question 6 (suicidal behaviour, lifetime)
is yes, whether that behaviour was within the past 3 months. Questions 1, 2 and 6 are always
asked; 3-5 only when question 2 is yes (Posner et al. 2011, Am J Psychiatry 168:1266; Columbia
Lighthouse Project screener and triage guidelines, reference §5) [V].

Risk level (C-SSRS triage guidelines, reference §5 and §10 rule 15) [V]:

* ``high``: question 4 or 5 yes, or suicidal behaviour within the past 3 months;
* ``moderate``: question 3 yes, or suicidal behaviour more than 3 months ago;
* ``low``: only question 1 and/or 2 yes;
* ``none``: every answer no.

The total is the number of yes answers to questions 1-6. Any yes adds the flag
``suicidal_ideation``; a high risk level adds ``high_suicide_risk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ketaclinic.clinical.errors import InvalidAnswers
from ketaclinic.clinical.instruments.base import (
    AnswerOption,
    Answers,
    Instrument,
    Item,
    Score,
    answer_values,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["INSTRUMENT", "RISK_LEVEL_LOINC", "SEVERITIES", "score"]

# LOINC code for the screener's risk level (reference §5) [V].
RISK_LEVEL_LOINC = "93374-7"

SEVERITIES = ("none", "low", "moderate", "high")

_YES_NO = (AnswerOption(0, "No"), AnswerOption(1, "Yes"))

_ITEMS = (
    Item(
        "q1",
        "Have you wished you were dead or wished you could go to sleep and not wake up?",
        _YES_NO,
        "yes_no",
    ),
    Item("q2", "Have you actually had any thoughts of killing yourself?", _YES_NO, "yes_no"),
    Item("q3", "Have you been thinking about how you might do this?", _YES_NO, "yes_no"),
    Item(
        "q4",
        "Have you had these thoughts and had some intention of acting on them?",
        _YES_NO,
        "yes_no",
    ),
    Item(
        "q5",
        "Have you started to work out or worked out the details of how to kill yourself? "
        "Do you intend to carry out this plan?",
        _YES_NO,
        "yes_no",
    ),
    Item(
        "q6",
        "Have you ever done anything, started to do anything, or prepared to do anything "
        "to end your life?",
        _YES_NO,
        "yes_no",
    ),
    Item("q6_past_3_months", "Was this within the past 3 months?", _YES_NO, "yes_no"),
)

INSTRUMENT = Instrument(
    code="cssrs_screener",
    title="C-SSRS screener",
    items=_ITEMS,
    score_range=(0, 6),
    source="Posner et al. 2011; Columbia Lighthouse Project screener and triage guidelines [V]",
    version="C-SSRS Screen Version, past month with lifetime/3-month behaviour question",
    licence="Free to use (Columbia Lighthouse Project); training advised [V]",
    respondent="clinician",
    preamble="Ask questions 1 and 2. If question 2 is yes, ask questions 3, 4 and 5. "
    "Always ask question 6.",
    loinc_panel="93373-9",
    loinc_total=None,
)

_ALWAYS_ASKED = ("q1", "q2", "q6")
_ASKED_IF_Q2 = ("q3", "q4", "q5")


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Count yes answers and grade the risk level (see the module docstring)."""
    if not isinstance(answers, Mapping):
        raise InvalidAnswers(
            "C-SSRS screener answers must be a mapping of q1..q6 (and q6_past_3_months) to yes/no"
        )
    raw = answer_values(INSTRUMENT, answers)
    given: dict[str, bool] = {}
    for item_id, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, bool):
            raise InvalidAnswers(f"C-SSRS screener {item_id} must be yes or no, got {value!r}")
        given[item_id] = value

    for item_id in _ALWAYS_ASKED:
        if item_id not in given:
            raise InvalidAnswers(f"C-SSRS screener {item_id} is missing (always asked)")
    for item_id in _ASKED_IF_Q2:
        if given["q2"] and item_id not in given:
            raise InvalidAnswers(f"C-SSRS screener {item_id} is missing (asked when q2 is yes)")
        if not given["q2"] and item_id in given:
            raise InvalidAnswers(
                f"C-SSRS screener {item_id} is asked only when q2 is yes; q2 is no"
            )
    if given["q6"] and "q6_past_3_months" not in given:
        raise InvalidAnswers("C-SSRS screener q6_past_3_months is missing (asked when q6 is yes)")
    if not given["q6"] and "q6_past_3_months" in given:
        raise InvalidAnswers(
            "C-SSRS screener q6_past_3_months is asked only when q6 is yes; q6 is no"
        )

    def yes(item_id: str) -> bool:
        return given.get(item_id, False)

    recent_behaviour = yes("q6") and yes("q6_past_3_months")
    if yes("q4") or yes("q5") or recent_behaviour:
        severity = "high"
    elif yes("q3") or yes("q6"):
        severity = "moderate"
    elif yes("q1") or yes("q2"):
        severity = "low"
    else:
        severity = "none"

    total = sum(1 for item_id in ("q1", "q2", "q3", "q4", "q5", "q6") if yes(item_id))
    flags: set[str] = set()
    if total:
        flags.add("suicidal_ideation")
    if severity == "high":
        flags.add("high_suicide_risk")
    return Score(
        instrument=INSTRUMENT.code,
        total=total,
        severity=severity,
        flags=frozenset(flags),
        answers=MappingProxyType(given),
    )
