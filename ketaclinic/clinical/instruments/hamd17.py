"""HAM-D17, Hamilton Rating Scale for Depression, 17 items (clinician-rated, total 0-52).

Items 1, 2, 3, 7, 8, 9, 10, 11 and 15 are rated 0-4; items 4, 5, 6, 12, 13, 14, 16 and 17 are
rated 0-2 (Hamilton 1960, J Neurol Neurosurg Psychiatry 23:56). Bands: Zimmerman et al. 2013
(J Affect Disord 150:384) none 0-7, mild 8-16, moderate 17-23, severe 24+ (reference §5) [V].
Public domain (NINDS; CamCOPS notes) [V]. Item 3 (suicide) above 0 adds ``suicidal_ideation``,
as for PHQ-9 item 9 (reference §5 safety item, §10 rule 15) [U].
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
    score_options,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["INSTRUMENT", "score"]

# (label, highest rating) per item, Hamilton 1960.
_ITEM_SPECS: tuple[tuple[str, int], ...] = (
    ("Depressed mood", 4),
    ("Feelings of guilt", 4),
    ("Suicide", 4),
    ("Insomnia: early in the night", 2),
    ("Insomnia: middle of the night", 2),
    ("Insomnia: early hours of the morning", 2),
    ("Work and activities", 4),
    ("Retardation (slowness of thought and speech, impaired concentration, motor activity)", 4),
    ("Agitation", 4),
    ("Anxiety, psychic", 4),
    ("Anxiety, somatic", 4),
    ("Somatic symptoms, gastro-intestinal", 2),
    ("General somatic symptoms", 2),
    ("Genital symptoms", 2),
    ("Hypochondriasis", 4),
    ("Loss of weight", 2),
    ("Insight", 2),
)

INSTRUMENT = Instrument(
    code="hamd17",
    title="HAM-D17",
    items=tuple(
        Item(f"q{number}", label, score_options(0, highest))
        for number, (label, highest) in enumerate(_ITEM_SPECS, start=1)
    ),
    score_range=(0, 52),
    source="Hamilton 1960, J Neurol Neurosurg Psychiatry 23:56 (reference §5) [V]",
    version="HAM-D 17-item",
    licence="Public domain (NINDS; CamCOPS notes) [V]",
    respondent="clinician",
    bands=(
        Band(0, 7, "none"),
        Band(8, 16, "mild"),
        Band(17, 23, "moderate"),
        Band(24, 52, "severe"),
    ),
    bands_source="Zimmerman et al. 2013, J Affect Disord 150:384 (reference §5) [V]",
)

# Suicide item above 0 prompts same-day risk assessment (reference §10 rule 15) [U].
_SUICIDE_ITEM_FLAG_ABOVE = 0


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the 17 ratings; flag ``suicidal_ideation`` when item 3 is above 0."""
    values = normalize_answers(INSTRUMENT, answers)
    flags = (
        frozenset({"suicidal_ideation"}) if values["q3"] > _SUICIDE_ITEM_FLAG_ABOVE else frozenset()
    )
    return make_score(INSTRUMENT, sum(values.values()), values, flags=flags)
