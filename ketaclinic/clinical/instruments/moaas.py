"""MOAA/S, Modified Observer's Assessment of Alertness/Sedation (one rating, 0-5).

5 means awake and responding readily; 0 means no response to a painful squeeze (Chernik et al.
1990, J Clin Psychopharmacol 10:244; reference §3) [V]. A rating of 0 adds the flag
``loss_of_consciousness``, the event counted in the Spravato label (reference §3) [V]. There are
no severity bands; the option label describes the level.
"""

from __future__ import annotations

from ketaclinic.clinical.instruments.base import (
    Answers,
    Instrument,
    Item,
    Score,
    make_score,
    normalize_answers,
    score_options,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["INSTRUMENT", "score"]

_OPTIONS = score_options(
    0,
    5,
    (
        "No response after painful trapezius squeeze",
        "Responds only after painful trapezius squeeze",
        "Responds only after mild prodding or shaking",
        "Responds only after name is called loudly and/or repeatedly",
        "Lethargic response to name spoken in normal tone",
        "Responds readily to name spoken in normal tone (awake)",
    ),
)

INSTRUMENT = Instrument(
    code="moaas",
    title="MOAA/S",
    items=(Item("q1", "Responsiveness (observer rating)", _OPTIONS),),
    score_range=(0, 5),
    source="Chernik et al. 1990, J Clin Psychopharmacol 10:244 (reference §3) [V]",
    version="MOAA/S 0-5",
    licence="Published scale, free to use in clinical records",
    respondent="clinician",
)

# MOAA/S 0 = loss of consciousness as counted in the Spravato label (reference §3) [V].
_LOSS_OF_CONSCIOUSNESS = 0


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """The total is the rating; 0 adds ``loss_of_consciousness``."""
    values = normalize_answers(INSTRUMENT, answers)
    flags = (
        frozenset({"loss_of_consciousness"})
        if values["q1"] == _LOSS_OF_CONSCIOUSNESS
        else frozenset()
    )
    return make_score(INSTRUMENT, values["q1"], values, flags=flags)
