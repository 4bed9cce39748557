"""Asking a questionnaire one item at a time: which items apply, progress, and the answers in
the shape `clinical.score` expects.

Scoring stays in `ketaclinic.clinical`; this module only decides what to ask next. The C-SSRS
screener's skip logic follows its administration rules (questions 3-5 only when question 2 is
yes; the 3-month question only when question 6 is yes; Posner 2011, reference §5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ketaclinic.clinical import INSTRUMENTS, Instrument, Item

# Instruments a measurement plan may use: outcome and risk scales. MOAA/S and CADSS are
# in-session observations (treatment sessions), not questionnaires to schedule.
PLAN_INSTRUMENTS = (
    "phq9",
    "gad7",
    "cssrs_screener",
    "pcl5",
    "madrs",
    "qids_sr16",
    "hamd17",
    "ybocs",
    "bprs",
    "pain_nrs",
)

_CSSRS_ASKED_IF = {"q3": "q2", "q4": "q2", "q5": "q2", "q6_past_3_months": "q6"}


def instrument(code: str) -> Instrument:
    return INSTRUMENTS[code]


def patient_can_answer(code: str) -> bool:
    """Licensed instruments (MADRS, QIDS, Y-BOCS, CADSS) ship no item wording (reference §10
    rule 17), so patients cannot be shown them; clinicians enter their item scores."""
    return INSTRUMENTS[code].has_item_wording


def patient_prompt(definition: Instrument, item: Item) -> str | None:
    """The lead-in shown above an item to a patient. The C-SSRS screener's preamble is written
    for the interviewer, so a patient reads its time frames instead (past month for questions
    1-5; question 6 asks about ever, then the past 3 months)."""
    if definition.code == "cssrs_screener":
        return "In the past month:" if item.id in {"q1", "q2", "q3", "q4", "q5"} else None
    return definition.preamble


def applicable_items(definition: Instrument, answers: Mapping[str, int]) -> list[Item]:
    """The items to ask, given the answers so far."""
    if definition.code != "cssrs_screener":
        return list(definition.items)
    return [
        item
        for item in definition.items
        if item.id not in _CSSRS_ASKED_IF or answers.get(_CSSRS_ASKED_IF[item.id]) == 1
    ]


@dataclass(frozen=True)
class Progress:
    """Where a patient is in a questionnaire."""

    item: Item | None  # the next unanswered item; None when every applicable item is answered
    position: int  # 1-based position of `item` among the applicable items
    total: int

    @property
    def percent(self) -> int:
        return round(100 * (self.position - 1) / self.total) if self.total else 100


def progress(definition: Instrument, answers: Mapping[str, int]) -> Progress:
    items = applicable_items(definition, answers)
    for position, item in enumerate(items, start=1):
        if item.id not in answers:
            return Progress(item, position, len(items))
    return Progress(None, len(items) + 1, len(items))


def item_position(definition: Instrument, answers: Mapping[str, int], item_id: str) -> int:
    """1-based position of `item_id` among the applicable items; 0 when it does not apply."""
    for position, item in enumerate(applicable_items(definition, answers), start=1):
        if item.id == item_id:
            return position
    return 0


def with_answer(
    definition: Instrument, answers: Mapping[str, int], item_id: str, value: int
) -> dict[str, int]:
    """The answers after answering `item_id`; answers to items that no longer apply are
    dropped (changing C-SSRS question 2 to no removes questions 3-5)."""
    updated = {**answers, item_id: value}
    keep = {item.id for item in applicable_items(definition, updated)}
    return {key: val for key, val in updated.items() if key in keep}


def scoring_answers(definition: Instrument, answers: Mapping[str, int]) -> dict[str, object]:
    """Answers keyed by item id, yes/no items as booleans, as `clinical.score` takes them."""
    kinds = {item.id: item.kind for item in definition.items}
    return {
        key: bool(value) if kinds.get(key) == "yes_no" else value for key, value in answers.items()
    }
