"""Definitions shared by every instrument: items, answer options, severity bands, scores.

An instrument definition is data (what to ask, how answers are scored, where the rules come
from and under which licence); each instrument module pairs one definition with a scoring
function ``score(answers, settings) -> Score``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

from ketaclinic.clinical.errors import InvalidAnswers, InvalidInput

__all__ = [
    "AnswerOption",
    "Answers",
    "Band",
    "Instrument",
    "Item",
    "Score",
    "make_score",
    "normalize_answers",
    "numbered_items",
    "score_options",
]

# A sequence of item values in item order, or a mapping of item id to value.
Answers = Sequence[object] | Mapping[str, object]


@dataclass(frozen=True)
class AnswerOption:
    """One allowed answer: the stored value and, where free to use, its wording."""

    value: int
    label: str | None = None


@dataclass(frozen=True)
class Item:
    """One question or rating. ``wording`` is None for licensed instruments."""

    id: str
    wording: str | None
    options: tuple[AnswerOption, ...]
    kind: Literal["score", "yes_no"] = "score"
    loinc: str | None = None

    @property
    def min_value(self) -> int:
        """Lowest allowed value."""
        return min(option.value for option in self.options)

    @property
    def max_value(self) -> int:
        """Highest allowed value."""
        return max(option.value for option in self.options)


class Band(NamedTuple):
    """A severity band: totals ``low``..``high`` inclusive are labelled ``label``."""

    low: int
    high: int
    label: str


@dataclass(frozen=True)
class Instrument:
    """A questionnaire or rating scale as data.

    ``score_range`` is the (min, max) of the total. ``bands`` cover that range without gaps
    (empty when the scale has no validated bands). ``moderate_threshold`` is the total at or
    above which a score counts as moderate for relapse detection (None when not defined).
    """

    code: str
    title: str
    items: tuple[Item, ...]
    score_range: tuple[int, int]
    source: str
    version: str
    licence: str
    respondent: Literal["patient", "clinician"]
    bands: tuple[Band, ...] = ()
    bands_source: str | None = None
    moderate_threshold: int | None = None
    moderate_threshold_source: str | None = None
    loinc_panel: str | None = None
    loinc_total: str | None = None
    preamble: str | None = None

    def __post_init__(self) -> None:
        low, high = self.score_range
        if low > high:
            raise InvalidInput(f"{self.code}: score range {self.score_range} is reversed")
        if len({item.id for item in self.items}) != len(self.items):
            raise InvalidInput(f"{self.code}: item ids are not unique")
        if self.bands:
            expected_low = low
            for band in self.bands:
                if band.low != expected_low or band.high < band.low:
                    raise InvalidInput(f"{self.code}: severity bands must be contiguous")
                expected_low = band.high + 1
            if expected_low != high + 1:
                raise InvalidInput(f"{self.code}: severity bands must cover the score range")
        if self.moderate_threshold is not None and not low < self.moderate_threshold <= high:
            raise InvalidInput(f"{self.code}: moderate threshold outside the score range")

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Item ids in item order."""
        return tuple(item.id for item in self.items)

    @property
    def has_item_wording(self) -> bool:
        """False for licensed instruments, whose item text is not shipped."""
        return any(item.wording is not None for item in self.items)

    @property
    def severity_labels(self) -> tuple[str, ...]:
        """Band labels from least to most severe."""
        return tuple(band.label for band in self.bands)

    def severity_for(self, total: int) -> str | None:
        """The band label for ``total``; None for an instrument without bands."""
        low, high = self.score_range
        if isinstance(total, bool) or not isinstance(total, int) or not low <= total <= high:
            raise InvalidInput(f"{self.title} total must be a whole number from {low} to {high}")
        for band in self.bands:
            if band.low <= total <= band.high:
                return band.label
        return None


@dataclass(frozen=True)
class Score:
    """A scored questionnaire. ``answers`` holds the normalised item values by item id."""

    instrument: str
    total: int
    severity: str | None
    flags: frozenset[str] = frozenset()
    subscores: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    answers: Mapping[str, int | bool] = field(default_factory=lambda: MappingProxyType({}))


def score_options(
    low: int, high: int, labels: Sequence[str] | None = None
) -> tuple[AnswerOption, ...]:
    """Answer options ``low``..``high``; ``labels`` (if given) word each value in order."""
    values = range(low, high + 1)
    if labels is None:
        return tuple(AnswerOption(value) for value in values)
    if len(labels) != len(values):
        raise InvalidInput("one label is needed per answer value")
    return tuple(AnswerOption(value, label) for value, label in zip(values, labels, strict=True))


def numbered_items(
    count: int,
    options: tuple[AnswerOption, ...],
    wordings: Sequence[str] | None = None,
) -> tuple[Item, ...]:
    """Items ``q1``..``q<count>`` sharing one set of options."""
    if wordings is not None and len(wordings) != count:
        raise InvalidInput("one wording is needed per item")
    return tuple(
        Item(f"q{number}", None if wordings is None else wordings[number - 1], options)
        for number in range(1, count + 1)
    )


def answer_values(instrument: Instrument, answers: object) -> dict[str, object]:
    """Map item id to the raw answer, from a sequence in item order or a mapping by item id.

    Unknown item ids and a wrong count raise ``InvalidAnswers``; missing mapping keys come back
    as None so the caller decides whether the item was required.
    """
    ids = instrument.item_ids
    if isinstance(answers, Mapping):
        for key in answers:
            if key not in ids:
                raise InvalidAnswers(
                    f"{instrument.title}: unknown item {key!r}; items are {', '.join(ids)}"
                )
        return {item_id: answers.get(item_id) for item_id in ids}
    if isinstance(answers, Sequence) and not isinstance(answers, str | bytes | bytearray):
        if len(answers) != len(ids):
            raise InvalidAnswers(
                f"{instrument.title} expects {len(ids)} answers in item order, got {len(answers)}"
            )
        return dict(zip(ids, answers, strict=True))
    raise InvalidAnswers(
        f"{instrument.title} answers must be a list in item order or a mapping of item id to value"
    )


def normalize_answers(instrument: Instrument, answers: object) -> dict[str, int]:
    """Validate numeric answers: every item present, a whole number, one of its options."""
    raw = answer_values(instrument, answers)
    values: dict[str, int] = {}
    for item in instrument.items:
        value = raw[item.id]
        if value is None:
            raise InvalidAnswers(f"{instrument.title} item {item.id} is missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidAnswers(
                f"{instrument.title} item {item.id} must be a whole number, got {value!r}"
            )
        if value not in {option.value for option in item.options}:
            raise InvalidAnswers(
                f"{instrument.title} item {item.id} must be from {item.min_value} to "
                f"{item.max_value}, got {value}"
            )
        values[item.id] = value
    return values


def make_score(
    instrument: Instrument,
    total: int,
    answers: Mapping[str, int | bool],
    *,
    flags: frozenset[str] = frozenset(),
    subscores: Mapping[str, int] | None = None,
) -> Score:
    """Build a ``Score`` with the band label for ``total``."""
    return Score(
        instrument=instrument.code,
        total=total,
        severity=instrument.severity_for(total),
        flags=flags,
        subscores=MappingProxyType(dict(subscores or {})),
        answers=MappingProxyType(dict(answers)),
    )
