"""QIDS-SR16, Quick Inventory of Depressive Symptomatology, self-report (16 items, 0-3 each).

The total (0-27) is built from nine DSM symptom domains (Rush et al. 2003, Biol Psychiatry
54:573; reference §5) [V]: the highest of the sleep items 1-4, item 5 (sad mood), the highest of
the appetite/weight items 6-9, items 10-14 singly (concentration, self-view, suicidal ideation,
interest, energy) and the highest of the psychomotor items 15-16. Bands none 0-5, mild 6-10,
moderate 11-15, severe 16-20, very severe 21-27 [V]. Item wording is not shipped (copyright UT
Southwestern, terms at ids-qids.org unverified [U]). Item 12 (thoughts of death or suicide)
above 0 adds ``suicidal_ideation`` (reference §5 safety item) [U].
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

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

__all__ = ["DOMAINS", "INSTRUMENT", "score"]

# Domain -> items whose highest value counts (Rush 2003) [V].
DOMAINS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "sleep": ("q1", "q2", "q3", "q4"),
        "sad_mood": ("q5",),
        "appetite_weight": ("q6", "q7", "q8", "q9"),
        "concentration": ("q10",),
        "self_view": ("q11",),
        "suicidal_ideation": ("q12",),
        "interest": ("q13",),
        "energy": ("q14",),
        "psychomotor": ("q15", "q16"),
    }
)

INSTRUMENT = Instrument(
    code="qids_sr16",
    title="QIDS-SR16",
    items=numbered_items(16, score_options(0, 3)),
    score_range=(0, 27),
    source="Rush et al. 2003, Biol Psychiatry 54:573 (reference §5) [V]",
    version="QIDS-SR16",
    licence="Copyright UT Southwestern (IDS/QIDS); item wording not distributed, use terms to "
    "be checked at ids-qids.org [U]",
    respondent="patient",
    bands=(
        Band(0, 5, "none"),
        Band(6, 10, "mild"),
        Band(11, 15, "moderate"),
        Band(16, 20, "severe"),
        Band(21, 27, "very severe"),
    ),
    bands_source="QIDS-SR16 severity bands, ids-qids.org (reference §5) [V]",
    moderate_threshold=11,
    moderate_threshold_source="QIDS-SR16 moderate band starts at 11 (reference §5) [V]",
)

_SUICIDE_ITEM_FLAG_ABOVE = 0  # reference §10 rule 15, same rule as PHQ-9 item 9 [U]


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the nine domain scores; each domain score is also a subscore."""
    values = normalize_answers(INSTRUMENT, answers)
    domains = {
        name: max(values[item_id] for item_id in item_ids) for name, item_ids in DOMAINS.items()
    }
    flags = (
        frozenset({"suicidal_ideation"})
        if values["q12"] > _SUICIDE_ITEM_FLAG_ABOVE
        else frozenset()
    )
    return make_score(INSTRUMENT, sum(domains.values()), values, flags=flags, subscores=domains)
