"""Score a questionnaire: ``score(instrument, answers) -> Score``."""

from __future__ import annotations

from ketaclinic.clinical.instruments import SCORERS, get_instrument
from ketaclinic.clinical.instruments.base import Answers, Score
from ketaclinic.clinical.settings import ClinicalSettings, resolve

__all__ = ["score"]


def score(instrument: str, answers: Answers, *, settings: ClinicalSettings | None = None) -> Score:
    """Score ``answers`` for ``instrument``.

    ``answers`` is a sequence of item values in item order or a mapping of item id to value
    (the C-SSRS screener takes a mapping only). A wrong item count, an unknown item, a value out
    of range, a bool where a number is expected or a missing required item raise
    ``InvalidAnswers``; an unknown instrument code raises ``InvalidInput``.
    """
    definition = get_instrument(instrument)
    return SCORERS[definition.code](answers, resolve(settings))
