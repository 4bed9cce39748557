"""BPRS, Brief Psychiatric Rating Scale, 18 items (clinician-rated 1-7, total 18-126).

Items and order: Overall & Gorham 1962 (Psychol Rep 10:799); public domain (CamCOPS notes)
[V]. The positive-symptom subscale (BPRS+) sums conceptual disorganization (item 4),
suspiciousness (11), hallucinatory behaviour (12) and unusual thought content (15), range 4-28
[M]. The flag ``emergent_psychosis`` is raised when any positive item reaches
``ClinicalSettings.bprs_emergent_psychosis_item_min`` (default 4, "moderate") [U].
"""

from __future__ import annotations

from ketaclinic.clinical.instruments.base import (
    Answers,
    Instrument,
    Score,
    make_score,
    normalize_answers,
    numbered_items,
    score_options,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["INSTRUMENT", "POSITIVE_ITEMS", "score"]

_OPTIONS = score_options(
    1,
    7,
    (
        "Not present",
        "Very mild",
        "Mild",
        "Moderate",
        "Moderately severe",
        "Severe",
        "Extremely severe",
    ),
)

_WORDINGS = (
    "Somatic concern",
    "Anxiety",
    "Emotional withdrawal",
    "Conceptual disorganization",
    "Guilt feelings",
    "Tension",
    "Mannerisms and posturing",
    "Grandiosity",
    "Depressive mood",
    "Hostility",
    "Suspiciousness",
    "Hallucinatory behaviour",
    "Motor retardation",
    "Uncooperativeness",
    "Unusual thought content",
    "Blunted affect",
    "Excitement",
    "Disorientation",
)

# BPRS+ items (reference §5) [M].
POSITIVE_ITEMS: tuple[str, ...] = ("q4", "q11", "q12", "q15")

INSTRUMENT = Instrument(
    code="bprs",
    title="BPRS",
    items=numbered_items(18, _OPTIONS, _WORDINGS),
    score_range=(18, 126),
    source="Overall & Gorham 1962, Psychol Rep 10:799 (reference §5) [V]",
    version="BPRS 18-item, 1-7 ratings",
    licence="Public domain (CamCOPS notes) [V]",
    respondent="clinician",
)


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the 18 ratings, give the ``positive`` subscore and flag ``emergent_psychosis``."""
    values = normalize_answers(INSTRUMENT, answers)
    positive = [values[item_id] for item_id in POSITIVE_ITEMS]
    flags = (
        frozenset({"emergent_psychosis"})
        if max(positive) >= settings.bprs_emergent_psychosis_item_min
        else frozenset()
    )
    return make_score(
        INSTRUMENT, sum(values.values()), values, flags=flags, subscores={"positive": sum(positive)}
    )
