"""PHQ-9, Patient Health Questionnaire depression module (9 items, 0-3 each, total 0-27).

Scoring and bands: Kroenke, Spitzer & Williams 2001 (J Gen Intern Med 16:606); public domain
(Pfizer; no permission needed, reference §5). Item 9 (thoughts of death or self-harm) above 0
adds the flag ``suicidal_ideation`` for a same-day risk assessment (reference §10 rule 15).
"""

from __future__ import annotations

from ketaclinic.clinical.instruments.base import (
    Answers,
    Band,
    Instrument,
    Item,
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
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself - or that you are a failure or have let yourself or your "
    "family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite - "
    "being so fidgety or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead or of hurting yourself in some way",
)

_ITEMS: tuple[Item, ...] = (
    *numbered_items(8, _OPTIONS, _WORDINGS[:8]),
    # LOINC 44260-8 is the item-9 code (reference §5) [V].
    Item("q9", _WORDINGS[8], _OPTIONS, loinc="44260-8"),
)

INSTRUMENT = Instrument(
    code="phq9",
    title="PHQ-9",
    items=_ITEMS,
    score_range=(0, 27),
    source="Kroenke, Spitzer & Williams 2001, J Gen Intern Med 16:606 (reference §5) [V]",
    version="PHQ-9 (Pfizer 1999), past 2 weeks",
    licence="Public domain; no permission needed to reproduce or use (CamCOPS notes) [V]",
    respondent="patient",
    preamble=(
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    ),
    # Kroenke 2001 bands (reference §5) [V].
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 19, "moderately severe"),
        Band(20, 27, "severe"),
    ),
    bands_source="Kroenke 2001 severity bands (reference §5) [V]",
    moderate_threshold=10,
    moderate_threshold_source="PHQ-9 moderate band starts at 10, Kroenke 2001 (reference §5) [V]",
    loinc_panel="44249-1",
    loinc_total="44261-6",
)

# Any answer above "Not at all" on item 9 triggers same-day review (reference §10 rule 15) [U].
_ITEM9_FLAG_ABOVE = 0


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the nine items; flag ``suicidal_ideation`` when item 9 is above 0."""
    values = normalize_answers(INSTRUMENT, answers)
    flags = frozenset({"suicidal_ideation"}) if values["q9"] > _ITEM9_FLAG_ABOVE else frozenset()
    return make_score(INSTRUMENT, sum(values.values()), values, flags=flags)
