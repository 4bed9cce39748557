"""The questionnaires and rating scales, one module each, and the registry by code."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from ketaclinic.clinical.errors import InvalidInput
from ketaclinic.clinical.instruments import (
    bprs,
    cadss,
    cssrs_screener,
    gad7,
    hamd17,
    madrs,
    moaas,
    pain_nrs,
    pcl5,
    phq9,
    qids_sr16,
    ybocs,
)
from ketaclinic.clinical.instruments.base import (
    AnswerOption,
    Answers,
    Band,
    Instrument,
    Item,
    Score,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = [
    "INSTRUMENTS",
    "SCORERS",
    "AnswerOption",
    "Answers",
    "Band",
    "Instrument",
    "Item",
    "Score",
    "get_instrument",
]

Scorer = Callable[[Answers, ClinicalSettings], Score]

_MODULES = (
    phq9,
    gad7,
    cssrs_screener,
    pcl5,
    hamd17,
    bprs,
    pain_nrs,
    moaas,
    madrs,
    qids_sr16,
    ybocs,
    cadss,
)

INSTRUMENTS: MappingProxyType[str, Instrument] = MappingProxyType(
    {module.INSTRUMENT.code: module.INSTRUMENT for module in _MODULES}
)

SCORERS: MappingProxyType[str, Scorer] = MappingProxyType(
    {module.INSTRUMENT.code: module.score for module in _MODULES}
)


def get_instrument(code: object) -> Instrument:
    """Return the instrument for ``code`` or raise ``InvalidInput`` naming the known codes."""
    if not isinstance(code, str) or code not in INSTRUMENTS:
        raise InvalidInput(
            f"unknown instrument {code!r}; expected one of: {', '.join(INSTRUMENTS)}"
        )
    return INSTRUMENTS[code]
