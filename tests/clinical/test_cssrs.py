"""C-SSRS screener: branching rules, risk levels, flags and every answer error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ketaclinic.clinical import INSTRUMENTS, InvalidAnswers, score
from ketaclinic.clinical.instruments.cssrs_screener import RISK_LEVEL_LOINC, SEVERITIES

NO = {"q1": False, "q2": False, "q6": False}


def screen(**answers: bool | None) -> dict[str, bool | None]:
    return {**NO, **answers}


def test_items_and_order() -> None:
    instrument = INSTRUMENTS["cssrs_screener"]
    assert instrument.item_ids == ("q1", "q2", "q3", "q4", "q5", "q6", "q6_past_3_months")
    assert all(item.kind == "yes_no" for item in instrument.items)
    assert RISK_LEVEL_LOINC == "93374-7"


@pytest.mark.parametrize(
    ("answers", "total", "severity", "flags"),
    [
        (screen(), 0, "none", set()),
        (screen(q1=True), 1, "low", {"suicidal_ideation"}),
        (screen(q2=True, q3=False, q4=False, q5=False), 1, "low", {"suicidal_ideation"}),
        (
            screen(q1=True, q2=True, q3=False, q4=False, q5=False),
            2,
            "low",
            {"suicidal_ideation"},
        ),
        (screen(q2=True, q3=True, q4=False, q5=False), 2, "moderate", {"suicidal_ideation"}),
        (
            screen(q6=True, q6_past_3_months=False),
            1,
            "moderate",
            {"suicidal_ideation"},
        ),
        (
            screen(q1=True, q6=True, q6_past_3_months=False),
            2,
            "moderate",
            {"suicidal_ideation"},
        ),
        (
            screen(q2=True, q3=False, q4=True, q5=False),
            2,
            "high",
            {"suicidal_ideation", "high_suicide_risk"},
        ),
        (
            screen(q2=True, q3=False, q4=False, q5=True),
            2,
            "high",
            {"suicidal_ideation", "high_suicide_risk"},
        ),
        (
            screen(q6=True, q6_past_3_months=True),
            1,
            "high",
            {"suicidal_ideation", "high_suicide_risk"},
        ),
        (
            screen(q1=True, q2=True, q3=True, q4=True, q5=True, q6=True, q6_past_3_months=True),
            6,
            "high",
            {"suicidal_ideation", "high_suicide_risk"},
        ),
    ],
)
def test_risk_levels(
    answers: dict[str, bool | None], total: int, severity: str, flags: set[str]
) -> None:
    result = score("cssrs_screener", answers)
    assert result.total == total
    assert result.severity == severity
    assert result.flags == flags


def test_unasked_questions_may_be_given_as_none() -> None:
    result = score("cssrs_screener", screen(q3=None, q4=None, q5=None, q6_past_3_months=None))
    assert result.severity == "none"
    assert dict(result.answers) == NO


@pytest.mark.parametrize("item", ["q3", "q4", "q5"])
@pytest.mark.parametrize("value", [True, False])
def test_q3_to_q5_answered_when_q2_is_no(item: str, value: bool) -> None:
    with pytest.raises(InvalidAnswers, match=f"{item} is asked only when q2 is yes"):
        score("cssrs_screener", screen(**{item: value}))


@pytest.mark.parametrize("item", ["q3", "q4", "q5"])
def test_q3_to_q5_required_when_q2_is_yes(item: str) -> None:
    answers = screen(q2=True, q3=False, q4=False, q5=False)
    del answers[item]
    with pytest.raises(InvalidAnswers, match=f"{item} is missing"):
        score("cssrs_screener", answers)


def test_past_3_months_required_when_q6_is_yes() -> None:
    with pytest.raises(InvalidAnswers, match="q6_past_3_months is missing"):
        score("cssrs_screener", screen(q6=True))


@pytest.mark.parametrize("value", [True, False])
def test_past_3_months_refused_when_q6_is_no(value: bool) -> None:
    with pytest.raises(InvalidAnswers, match="q6_past_3_months is asked only when q6 is yes"):
        score("cssrs_screener", screen(q6_past_3_months=value))


@pytest.mark.parametrize("item", ["q1", "q2", "q6"])
def test_always_asked_questions_are_required(item: str) -> None:
    answers = screen()
    del answers[item]
    with pytest.raises(InvalidAnswers, match=f"{item} is missing"):
        score("cssrs_screener", answers)


@pytest.mark.parametrize("bad", [1, 0, "yes", 1.0])
def test_answers_must_be_bools(bad: object) -> None:
    with pytest.raises(InvalidAnswers, match="q1 must be yes or no"):
        score("cssrs_screener", {**NO, "q1": bad})


def test_sequence_answers_are_refused() -> None:
    with pytest.raises(InvalidAnswers, match="mapping"):
        score("cssrs_screener", [False, False, False])


def test_unknown_item_is_refused() -> None:
    with pytest.raises(InvalidAnswers, match="unknown item 'q7'"):
        score("cssrs_screener", {**NO, "q7": False})


@st.composite
def valid_screens(draw: st.DrawFn) -> dict[str, bool]:
    answers = {"q1": draw(st.booleans()), "q2": draw(st.booleans()), "q6": draw(st.booleans())}
    if answers["q2"]:
        answers.update({item: draw(st.booleans()) for item in ("q3", "q4", "q5")})
    if answers["q6"]:
        answers["q6_past_3_months"] = draw(st.booleans())
    return answers


@hsettings(database=None, max_examples=200)
@given(answers=valid_screens())
def test_property_valid_screens_score_consistently(answers: dict[str, bool]) -> None:
    result = score("cssrs_screener", answers)
    yes = [item for item in ("q1", "q2", "q3", "q4", "q5", "q6") if answers.get(item)]
    assert result.total == len(yes)
    assert 0 <= result.total <= 6
    assert result.severity in SEVERITIES
    assert ("suicidal_ideation" in result.flags) is bool(yes)
    assert ("high_suicide_risk" in result.flags) is (result.severity == "high")
    assert (result.severity == "none") is (not yes)
