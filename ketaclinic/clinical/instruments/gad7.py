"""GAD-7, Generalized Anxiety Disorder scale (7 items, 0-3 each, total 0-21).

Scoring and bands: Spitzer, Kroenke, Williams & Löwe 2006 (Arch Intern Med 166:1092); public
domain (reference §5).
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

_OPTIONS = score_options(
    0, 3, ("Not at all", "Several days", "More than half the days", "Nearly every day")
)

_WORDINGS = (
    "Feeling nervous, anxious, or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid, as if something awful might happen",
)

INSTRUMENT = Instrument(
    code="gad7",
    title="GAD-7",
    items=numbered_items(7, _OPTIONS, _WORDINGS),
    score_range=(0, 21),
    source="Spitzer et al. 2006, Arch Intern Med 166:1092 (reference §5) [V]",
    version="GAD-7 (2006), past 2 weeks",
    licence="Public domain; no permission needed to reproduce or use [V]",
    respondent="patient",
    preamble=(
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    ),
    # Cut-points 5/10/15 = mild/moderate/severe, Spitzer 2006 (reference §5) [V].
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 21, "severe"),
    ),
    bands_source="Spitzer 2006 cut-points 5/10/15 (reference §5) [V]",
    moderate_threshold=10,
    moderate_threshold_source="GAD-7 >=10 is moderate and screen positive, Spitzer 2006 [V]",
    loinc_panel="69737-5",
    loinc_total="70274-6",
)


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the seven items."""
    values = normalize_answers(INSTRUMENT, answers)
    return make_score(INSTRUMENT, sum(values.values()), values)
