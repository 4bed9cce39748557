"""Change from baseline: remission, response, partial response, no change, worsening; relapse.

Definitions (reference §5 "Standard definitions for analytics"):

* remission: the current score is at or below the instrument's remission cut-off;
* response: a reduction of at least 50% from baseline (Y-BOCS: 35%);
* partial: a reduction of at least 25% but short of response;
* worsened: an increase of at least 25% from baseline;
* none: anything else.

They are checked in that order, so a score at or below the remission cut-off is ``remission``
whatever the baseline. Percentages are compared exactly in whole numbers (no rounding).
The baseline is the last score before the first dose of a course (reference §10 rule 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from types import MappingProxyType
from typing import Literal

from ketaclinic.clinical.errors import InvalidInput
from ketaclinic.clinical.instruments import Instrument, get_instrument
from ketaclinic.clinical.settings import ClinicalSettings, resolve
from ketaclinic.clinical.validation import require_date, require_int

__all__ = [
    "CHANGE_CATEGORIES",
    "RELAPSE_MAX_GAP_DAYS",
    "RELAPSE_MIN_GAP_DAYS",
    "ChangeCategory",
    "OutcomeCutoffs",
    "classify_change",
    "detect_relapse",
    "outcome_cutoffs",
]

ChangeCategory = Literal["remission", "response", "partial", "none", "worsened"]
CHANGE_CATEGORIES: tuple[ChangeCategory, ...] = (
    "remission",
    "response",
    "partial",
    "none",
    "worsened",
)

# Response >=50% for depression scales (reference §5) [V].
_RESPONSE_PCT = 50
# Y-BOCS response >=35% and partial 25-35%, Mataix-Cols 2016 consensus (reference §5) [V].
_YBOCS_RESPONSE_PCT = 35
# Partial response from a 25% reduction: Y-BOCS consensus [V], same cut for depression [U].
_PARTIAL_PCT = 25
# Worsening at a 25% increase, mirror of partial response, clinic convention [U].
_WORSENED_PCT = 25

# SUSTAIN-1: two consecutive assessments 5-15 days apart (Daly 2019; reference §5) [M].
RELAPSE_MIN_GAP_DAYS = 5
RELAPSE_MAX_GAP_DAYS = 15


@dataclass(frozen=True)
class OutcomeCutoffs:
    """The cut-offs ``classify_change`` applies to one instrument, with their source."""

    instrument: str
    remission_max: int
    response_reduction_pct: int
    partial_reduction_pct: int
    worsened_increase_pct: int
    source: str


# (remission cut-off or the name of the setting holding it, response %, source)
_PUBLISHED: MappingProxyType[str, tuple[int | str, int, str]] = MappingProxyType(
    {
        "phq9": (
            4,
            _RESPONSE_PCT,
            "PHQ-9 remission <5 (McInnes 2022; SUSTAIN-3), response >=50% (reference §5) [V]",
        ),
        "gad7": (
            "gad7_remission_max",
            _RESPONSE_PCT,
            "GAD-7 remission <5 by convention [U], response >=50% (reference §5)",
        ),
        "madrs": (
            "madrs_remission_max",
            _RESPONSE_PCT,
            "MADRS remission <=12 (US trials) or <=10 (ESCAPE-TRD), response >=50% "
            "(reference §5) [V]",
        ),
        "qids_sr16": (
            5,
            _RESPONSE_PCT,
            "QIDS-SR16 remission <=5, response >=50% (reference §5) [V]",
        ),
        "hamd17": (
            7,
            _RESPONSE_PCT,
            "HAM-D17 remission <=7, response >=50% (reference §5) [V]",
        ),
        "ybocs": (
            12,
            _YBOCS_RESPONSE_PCT,
            "Y-BOCS remission <=12, response >=35%, partial 25-35% (Mataix-Cols 2016) [V]",
        ),
    }
)


def outcome_cutoffs(instrument: str, *, settings: ClinicalSettings | None = None) -> OutcomeCutoffs:
    """The remission/response/partial/worsened cut-offs for ``instrument``.

    Raises ``InvalidInput`` for an unknown instrument or one without outcome cut-offs.
    """
    definition = get_instrument(instrument)
    if definition.code not in _PUBLISHED:
        known = ", ".join(_PUBLISHED)
        raise InvalidInput(
            f"{definition.title} has no remission/response cut-offs; use one of: {known}"
        )
    remission, response_pct, source = _PUBLISHED[definition.code]
    remission_max = (
        remission if isinstance(remission, int) else int(getattr(resolve(settings), remission))
    )
    return OutcomeCutoffs(
        instrument=definition.code,
        remission_max=remission_max,
        response_reduction_pct=response_pct,
        partial_reduction_pct=_PARTIAL_PCT,
        worsened_increase_pct=_WORSENED_PCT,
        source=source,
    )


def _check_baseline(definition: Instrument, baseline: object) -> int:
    high = definition.score_range[1]
    value = require_int(baseline, f"{definition.title} baseline", maximum=high)
    if value <= 0:
        raise InvalidInput(
            f"{definition.title} baseline must be above 0 to measure change, got {value}"
        )
    return value


def _check_score(definition: Instrument, current: object, field: str) -> int:
    low, high = definition.score_range
    return require_int(current, f"{definition.title} {field}", minimum=low, maximum=high)


def _reduction_at_least(baseline: int, current: int, pct: int) -> bool:
    # Exact integer comparison: (baseline - current) / baseline >= pct / 100.
    return (baseline - current) * 100 >= pct * baseline


def classify_change(
    instrument: str,
    baseline: int,
    current: int,
    *,
    settings: ClinicalSettings | None = None,
) -> ChangeCategory:
    """Classify ``current`` against ``baseline``: remission, response, partial, none, worsened.

    See the module docstring for the definitions. A baseline <= 0, a score outside the
    instrument's range or an instrument without these cut-offs raise ``InvalidInput``.
    """
    cutoffs = outcome_cutoffs(instrument, settings=settings)
    definition = get_instrument(instrument)
    base = _check_baseline(definition, baseline)
    now = _check_score(definition, current, "score")
    return _category(cutoffs, base, now)


def classify_changes(
    instrument: str,
    baseline: int,
    scores: Sequence[int],
    *,
    settings: ClinicalSettings | None = None,
) -> list[ChangeCategory]:
    """``classify_change`` of each of ``scores`` against one baseline, in order: the same
    categories, with the instrument, the cut-offs and the baseline checked once (a two-year
    trajectory classifies a hundred scores). Raises as ``classify_change`` does, naming the
    position of a score that is not a whole number in the instrument's range."""
    cutoffs = outcome_cutoffs(instrument, settings=settings)
    definition = get_instrument(instrument)
    base = _check_baseline(definition, baseline)
    if isinstance(scores, str | bytes) or not isinstance(scores, Sequence):
        raise InvalidInput("scores must be a sequence of whole numbers")
    low, high = definition.score_range
    categories: list[ChangeCategory] = []
    for position, value in enumerate(scores, start=1):
        # The common case checked without building the field name of the error message.
        if type(value) is not int or not low <= value <= high:
            value = _check_score(definition, value, f"score {position}")
        categories.append(_category(cutoffs, base, value))
    return categories


def _category(cutoffs: OutcomeCutoffs, base: int, now: int) -> ChangeCategory:
    if now <= cutoffs.remission_max:
        return "remission"
    if _reduction_at_least(base, now, cutoffs.response_reduction_pct):
        return "response"
    if _reduction_at_least(base, now, cutoffs.partial_reduction_pct):
        return "partial"
    if (now - base) * 100 >= cutoffs.worsened_increase_pct * base:
        return "worsened"
    return "none"


def detect_relapse(
    instrument: str,
    baseline: int,
    scores: Sequence[tuple[date, int]],
    *,
    settings: ClinicalSettings | None = None,
) -> date | None:
    """The date relapse is confirmed, or None.

    Definition, adapted from SUSTAIN-1 (Daly et al. 2019, JAMA Psychiatry 76:893; reference §5)
    [M]: once a score has reached response or remission against ``baseline``, relapse is the
    date of the second of two consecutive later scores, 5 to 15 days apart (inclusive), that
    both fail the response criterion and are at or above the instrument's moderate threshold
    (``INSTRUMENTS[code].moderate_threshold``: PHQ-9 >= 10, MADRS >= 22 as in SUSTAIN-1,
    QIDS-SR16 >= 11, GAD-7 >= 10). Scores are taken in date order whatever the input order;
    scores on the same day keep their input order. Only the first relapse is returned.

    Instruments without a moderate threshold raise ``InvalidInput``, as do a baseline <= 0,
    a score out of range or an entry that is not a (date, score) pair.
    """
    definition = get_instrument(instrument)
    moderate = definition.moderate_threshold
    if moderate is None:
        raise InvalidInput(f"{definition.title} has no moderate threshold for relapse detection")
    cutoffs = outcome_cutoffs(instrument, settings=settings)
    base = _check_baseline(definition, baseline)
    if isinstance(scores, str | bytes) or not isinstance(scores, Sequence):
        raise InvalidInput("scores must be a sequence of (date, score) pairs")
    low, high = definition.score_range
    checked: list[tuple[date, int]] = []
    for position, entry in enumerate(scores, start=1):
        # The common case, a (date, int) tuple in range, taken as it is without building the
        # field names of the error messages (a two-year chart checks hundreds of scores);
        # anything else goes through the checks that name the field.
        if type(entry) is tuple and len(entry) == 2:
            when, value = entry
            if type(when) is date and type(value) is int and low <= value <= high:
                checked.append(entry)
                continue
        if not isinstance(entry, tuple | list) or len(entry) != 2:
            raise InvalidInput(f"score {position} must be a (date, score) pair, got {entry!r}")
        when, value = entry
        when = require_date(when, f"date of score {position}")
        value = _check_score(definition, value, f"score {position}")
        checked.append((when, value))
    checked.sort(key=itemgetter(0))

    def relapsing(value: int) -> bool:
        return value >= moderate and not _reduction_at_least(
            base, value, cutoffs.response_reduction_pct
        )

    responded = False
    previous: tuple[date, int] | None = None
    for when, value in checked:
        if not responded:
            responded = value <= cutoffs.remission_max or _reduction_at_least(
                base, value, cutoffs.response_reduction_pct
            )
            continue
        if previous is not None:
            gap_days = (when - previous[0]).days
            in_window = RELAPSE_MIN_GAP_DAYS <= gap_days <= RELAPSE_MAX_GAP_DAYS
            if in_window and relapsing(previous[1]) and relapsing(value):
                return when
        previous = (when, value)
    return None
