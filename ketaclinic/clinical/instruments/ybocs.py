"""Y-BOCS, Yale-Brown Obsessive Compulsive Scale (10 items, 0-4 each, total 0-40).

Subscores: obsessions items 1-5, compulsions items 6-10. Bands subclinical 0-7, mild 8-15,
moderate 16-23, severe 24-31, extreme 32-40 (Goodman et al. 1989, Arch Gen Psychiatry 46:1006;
reference §5) [M]. Item wording is not shipped: © Goodman, distribution needs authorization
(CamCOPS notes) [V].
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
    code="ybocs",
    title="Y-BOCS",
    items=numbered_items(10, score_options(0, 4)),
    score_range=(0, 40),
    source="Goodman et al. 1989, Arch Gen Psychiatry 46:1006 (reference §5) [M]",
    version="Y-BOCS 10-item severity scale",
    licence="© Wayne K. Goodman; item wording not distributed, distribution needs "
    "authorization [V]",
    respondent="clinician",
    bands=(
        Band(0, 7, "subclinical"),
        Band(8, 15, "mild"),
        Band(16, 23, "moderate"),
        Band(24, 31, "severe"),
        Band(32, 40, "extreme"),
    ),
    bands_source="Y-BOCS severity bands (reference §5) [M]",
)

_OBSESSIONS = ("q1", "q2", "q3", "q4", "q5")
_COMPULSIONS = ("q6", "q7", "q8", "q9", "q10")


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the ten ratings with ``obsessions`` and ``compulsions`` subscores."""
    values = normalize_answers(INSTRUMENT, answers)
    subscores = {
        "obsessions": sum(values[item_id] for item_id in _OBSESSIONS),
        "compulsions": sum(values[item_id] for item_id in _COMPULSIONS),
    }
    return make_score(INSTRUMENT, sum(values.values()), values, subscores=subscores)
