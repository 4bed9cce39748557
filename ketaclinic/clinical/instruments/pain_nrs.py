"""Pain NRS, 11-point numeric rating scale for pain intensity (one item, 0-10).

Bands none 0, mild 1-3, moderate 4-6, severe 7-10 are a common convention (reference §5) [U];
change thresholds follow IMMPACT (Dworkin et al. 2008, J Pain 9:105) [V]. Free to use.
"""

from __future__ import annotations

from ketaclinic.clinical.instruments.base import (
    AnswerOption,
    Answers,
    Band,
    Instrument,
    Item,
    Score,
    make_score,
    normalize_answers,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["INSTRUMENT", "score"]

_OPTIONS = tuple(
    AnswerOption(value, {0: "No pain", 10: "Worst pain imaginable"}.get(value))
    for value in range(11)
)

INSTRUMENT = Instrument(
    code="pain_nrs",
    title="Pain NRS",
    items=(
        Item(
            "q1",
            "On a scale from 0 to 10, where 0 is no pain and 10 is the worst pain imaginable, "
            "how would you rate your pain right now?",
            _OPTIONS,
        ),
    ),
    score_range=(0, 10),
    source="11-point NRS; IMMPACT recommendations, Dworkin et al. 2008 (reference §5) [V]",
    version="NRS-11",
    licence="Free to use",
    respondent="patient",
    bands=(
        Band(0, 0, "none"),
        Band(1, 3, "mild"),
        Band(4, 6, "moderate"),
        Band(7, 10, "severe"),
    ),
    bands_source="Common NRS convention mild 1-3, moderate 4-6, severe 7-10 (reference §5) [U]",
    # LOINC 72514-3 "Pain severity 0-10 verbal numeric rating" (reference §5) [M].
    loinc_total="72514-3",
)


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """The total is the single rating."""
    values = normalize_answers(INSTRUMENT, answers)
    return make_score(INSTRUMENT, values["q1"], values)
