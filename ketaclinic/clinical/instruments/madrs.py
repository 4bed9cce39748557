"""MADRS, Montgomery-Åsberg Depression Rating Scale (10 items, 0-6 each, total 0-60).

Item wording is not shipped: © Royal College of Psychiatrists, and permission was refused to an
open-source project (CamCOPS; reference §5) [V]. The system stores clinician-entered item
ratings only. Bands normal 0-6, mild 7-19, moderate 20-34, severe 35-60 (reference §5) [V].
Relapse uses MADRS >= 22 as in SUSTAIN-1 (Daly et al. 2019, JAMA Psychiatry) [M]. Item 10
(suicidal thoughts) above 0 adds ``suicidal_ideation`` (reference §5 safety item) [U].
"""

from __future__ import annotations

from ketaclinic.clinical.instruments.base import (
    Answers,
    Band,
    Instrument,
    Score,
    make_score,
    normalize_answers,
    numbered_items,
    score_options,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["INSTRUMENT", "score"]

INSTRUMENT = Instrument(
    code="madrs",
    title="MADRS",
    items=numbered_items(10, score_options(0, 6)),
    score_range=(0, 60),
    source="Montgomery & Åsberg 1979, Br J Psychiatry 134:382 (reference §5) [V]",
    version="MADRS 10-item",
    licence="© Royal College of Psychiatrists; item wording not distributed. Enter item "
    "ratings from a licensed form [V]",
    respondent="clinician",
    bands=(
        Band(0, 6, "normal"),
        Band(7, 19, "mild"),
        Band(20, 34, "moderate"),
        Band(35, 60, "severe"),
    ),
    bands_source="MADRS severity bands (reference §5) [V]",
    moderate_threshold=22,
    moderate_threshold_source="SUSTAIN-1 relapse: MADRS >=22, Daly et al. 2019 (reference §5) [M]",
)

# Suicidal thoughts item above 0 prompts same-day risk assessment (reference §10 rule 15) [U].
_SUICIDE_ITEM_FLAG_ABOVE = 0


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the ten ratings; flag ``suicidal_ideation`` when item 10 is above 0."""
    values = normalize_answers(INSTRUMENT, answers)
    flags = (
        frozenset({"suicidal_ideation"})
        if values["q10"] > _SUICIDE_ITEM_FLAG_ABOVE
        else frozenset()
    )
    return make_score(INSTRUMENT, sum(values.values()), values, flags=flags)
