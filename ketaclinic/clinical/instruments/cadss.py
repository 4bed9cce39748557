"""CADSS, Clinician-Administered Dissociative States Scale, 23 subjective items (0-4 each).

Ketamine and esketamine research uses the 23 subjective items, total 0-92 (Bremner et al. 1998,
J Trauma Stress 11:125; reference §3) [V]. No cut-off separates a dissociation adverse event
from none (2023 IJNP analysis), so there are no bands and no flags [V]. Item wording is not
shipped: the scale is obtained from the author and redistribution rights are unverified [U].
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

__all__ = ["INSTRUMENT", "score"]

INSTRUMENT = Instrument(
    code="cadss",
    title="CADSS",
    items=numbered_items(23, score_options(0, 4)),
    score_range=(0, 92),
    source="Bremner et al. 1998, J Trauma Stress 11:125 (reference §3) [V]",
    version="CADSS 23 subjective items",
    licence="Obtained from the author; redistribution unverified, item wording not distributed [U]",
    respondent="clinician",
)


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the 23 ratings."""
    values = normalize_answers(INSTRUMENT, answers)
    return make_score(INSTRUMENT, sum(values.values()), values)
