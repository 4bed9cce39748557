"""classify_change and detect_relapse: the published cut-offs, edge cases and errors."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ketaclinic.clinical import (
    CHANGE_CATEGORIES,
    ClinicalSettings,
    InvalidInput,
    classify_change,
    classify_changes,
    detect_relapse,
    outcome_cutoffs,
)

START = date(2025, 1, 6)

# Written out from the issue: remission cut-off (<=), response reduction (%).
PUBLISHED = {
    "phq9": (4, 50, 27),
    "gad7": (4, 50, 21),
    "madrs": (12, 50, 60),
    "qids_sr16": (5, 50, 27),
    "hamd17": (7, 50, 52),
    "ybocs": (12, 35, 40),
}


def day(offset: int) -> date:
    return START + timedelta(days=offset)


@pytest.mark.parametrize(
    ("instrument", "baseline", "current", "expected"),
    [
        ("phq9", 20, 4, "remission"),
        ("phq9", 20, 5, "response"),
        ("phq9", 20, 10, "response"),
        ("phq9", 20, 11, "partial"),
        ("phq9", 20, 15, "partial"),
        ("phq9", 20, 16, "none"),
        ("phq9", 20, 20, "none"),
        ("phq9", 20, 24, "none"),
        ("phq9", 20, 25, "worsened"),
        ("phq9", 8, 6, "partial"),
        ("phq9", 8, 9, "none"),
        ("phq9", 8, 10, "worsened"),
        ("phq9", 2, 4, "remission"),  # remission is checked first
        ("gad7", 10, 4, "remission"),
        ("gad7", 10, 5, "response"),
        ("madrs", 30, 12, "remission"),
        ("madrs", 30, 13, "response"),
        ("madrs", 30, 15, "response"),
        ("madrs", 30, 16, "partial"),
        ("madrs", 30, 22, "partial"),
        ("madrs", 30, 23, "none"),
        ("madrs", 30, 37, "none"),
        ("madrs", 30, 38, "worsened"),
        ("madrs", 28, 35, "worsened"),
        ("qids_sr16", 20, 5, "remission"),
        ("qids_sr16", 20, 6, "response"),
        ("hamd17", 20, 7, "remission"),
        ("hamd17", 20, 8, "response"),
        ("hamd17", 20, 10, "response"),
        ("hamd17", 20, 11, "partial"),
        ("ybocs", 30, 12, "remission"),
        ("ybocs", 40, 26, "response"),  # 35% exactly
        ("ybocs", 40, 27, "partial"),  # 32.5%
        ("ybocs", 40, 30, "partial"),  # 25% exactly
        ("ybocs", 40, 31, "none"),
        ("ybocs", 20, 25, "worsened"),
    ],
)
def test_classify_change(instrument: str, baseline: int, current: int, expected: str) -> None:
    assert classify_change(instrument, baseline, current) == expected


def test_madrs_remission_is_configurable_to_10() -> None:
    escape = ClinicalSettings(madrs_remission_max=10)
    assert classify_change("madrs", 30, 12, settings=escape) == "response"
    assert classify_change("madrs", 30, 11, settings=escape) == "response"
    assert classify_change("madrs", 30, 10, settings=escape) == "remission"
    assert outcome_cutoffs("madrs", settings=escape).remission_max == 10


def test_gad7_remission_is_configurable() -> None:
    strict = ClinicalSettings(gad7_remission_max=3)
    assert classify_change("gad7", 8, 4, settings=strict) == "response"
    assert classify_change("gad7", 8, 3, settings=strict) == "remission"


def test_outcome_cutoffs_carry_their_source() -> None:
    cutoffs = outcome_cutoffs("ybocs")
    assert (cutoffs.remission_max, cutoffs.response_reduction_pct) == (12, 35)
    assert (cutoffs.partial_reduction_pct, cutoffs.worsened_increase_pct) == (25, 25)
    assert "Mataix-Cols" in cutoffs.source


@pytest.mark.parametrize("baseline", [0, -1, -20])
def test_baseline_not_above_zero_raises(baseline: int) -> None:
    with pytest.raises(InvalidInput, match="baseline must be above 0"):
        classify_change("phq9", baseline, 0)


@pytest.mark.parametrize("instrument", ["pcl5", "cadss", "bprs", "pain_nrs", "cssrs_screener"])
def test_instrument_without_cutoffs_raises(instrument: str) -> None:
    with pytest.raises(InvalidInput, match="no remission/response cut-offs"):
        classify_change(instrument, 10, 5)


@pytest.mark.parametrize(
    ("baseline", "current", "match"),
    [
        (28, 5, "baseline must be at most 27"),
        (20, 28, "score must be at most 27"),
        (20, -1, "score must be at least 0"),
        (True, 5, "baseline must be a whole number"),
        (20, 5.0, "score must be a whole number"),
        ("20", 5, "baseline must be a whole number"),
    ],
)
def test_bad_scores_raise(baseline: object, current: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        classify_change("phq9", baseline, current)  # type: ignore[arg-type]


def test_unknown_instrument_raises() -> None:
    with pytest.raises(InvalidInput, match="unknown instrument"):
        classify_change("phq8", 10, 5)


def _expected(instrument: str, baseline: int, current: int) -> str:
    remission, response, _ = PUBLISHED[instrument]
    change = Fraction(baseline - current, baseline)
    if current <= remission:
        return "remission"
    if change >= Fraction(response, 100):
        return "response"
    if change >= Fraction(25, 100):
        return "partial"
    if -change >= Fraction(25, 100):
        return "worsened"
    return "none"


@st.composite
def baseline_and_current(draw: st.DrawFn) -> tuple[str, int, int]:
    instrument = draw(st.sampled_from(sorted(PUBLISHED)))
    maximum = PUBLISHED[instrument][2]
    return (
        instrument,
        draw(st.integers(1, maximum)),
        draw(st.integers(0, maximum)),
    )


@hsettings(database=None, max_examples=500)
@given(case=baseline_and_current())
def test_property_classification_matches_the_percentages(case: tuple[str, int, int]) -> None:
    instrument, baseline, current = case
    result = classify_change(instrument, baseline, current)
    assert result in CHANGE_CATEGORIES
    assert result == _expected(instrument, baseline, current)


@st.composite
def baseline_and_scores(draw: st.DrawFn) -> tuple[str, int, list[int]]:
    instrument = draw(st.sampled_from(sorted(PUBLISHED)))
    maximum = PUBLISHED[instrument][2]
    scores = draw(st.lists(st.integers(0, maximum), max_size=30))
    return instrument, draw(st.integers(1, maximum)), scores


@hsettings(database=None, max_examples=300)
@given(case=baseline_and_scores())
def test_property_classify_changes_is_classify_change_of_each_score(
    case: tuple[str, int, list[int]],
) -> None:
    instrument, baseline, scores = case
    strict = ClinicalSettings(madrs_remission_max=10, gad7_remission_max=3)
    for settings in (None, strict):
        assert classify_changes(instrument, baseline, scores, settings=settings) == [
            classify_change(instrument, baseline, score, settings=settings) for score in scores
        ]


@pytest.mark.parametrize(
    ("baseline", "scores", "match"),
    [
        (0, [5], "baseline must be above 0"),
        (20, [5, 28], "score 2 must be at most 27"),
        (20, [5, -1], "score 2 must be at least 0"),
        (20, [5.0], "score 1 must be a whole number"),
        (20, [True], "score 1 must be a whole number"),
        (20, "12", "sequence of whole numbers"),
    ],
)
def test_classify_changes_rejects_bad_input(baseline: int, scores: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        classify_changes("phq9", baseline, scores)  # type: ignore[arg-type]


def test_classify_changes_of_an_instrument_without_cutoffs_raises() -> None:
    with pytest.raises(InvalidInput, match="no remission/response cut-offs"):
        classify_changes("pcl5", 40, [30])


# ---------------------------------------------------------------- relapse

RESPONDED = [(day(0), 18), (day(7), 8)]  # PHQ-9 baseline 20: 8 is a 60% reduction


@pytest.mark.parametrize(
    ("gap", "relapse"),
    [(4, False), (5, True), (7, True), (15, True), (16, False)],
)
def test_relapse_needs_two_scores_5_to_15_days_apart(gap: int, relapse: bool) -> None:
    scores = [*RESPONDED, (day(14), 12), (day(14 + gap), 13)]
    assert detect_relapse("phq9", 20, scores) == (day(14 + gap) if relapse else None)


def test_no_relapse_before_response_is_reached() -> None:
    scores = [(day(0), 12), (day(7), 13), (day(14), 14)]
    assert detect_relapse("phq9", 20, scores) is None


def test_scores_before_response_do_not_pair_with_later_ones() -> None:
    # 12 on day 0 fails response but comes before the response on day 7.
    scores = [(day(0), 12), (day(7), 8), (day(14), 12)]
    assert detect_relapse("phq9", 20, scores) is None


def test_unsorted_input_is_taken_in_date_order() -> None:
    scores = [*RESPONDED, (day(14), 12), (day(21), 13), (day(28), 15)]
    shuffled = scores[:]
    random.Random(4).shuffle(shuffled)
    assert shuffled != scores
    assert detect_relapse("phq9", 20, shuffled) == day(21)
    assert detect_relapse("phq9", 20, list(reversed(scores))) == day(21)


def test_relapse_scores_must_be_consecutive() -> None:
    scores = [*RESPONDED, (day(14), 12), (day(21), 8), (day(28), 12)]
    assert detect_relapse("phq9", 20, scores) is None


def test_scores_meeting_response_are_not_relapse() -> None:
    # Baseline 24: 12 is a 50% reduction (still response) although it is >= 10.
    scores = [(day(0), 6), (day(7), 12), (day(14), 12)]
    assert detect_relapse("phq9", 24, scores) is None
    scores.append((day(21), 13))
    assert detect_relapse("phq9", 24, scores) is None
    scores.append((day(28), 13))
    assert detect_relapse("phq9", 24, scores) == day(28)


def test_scores_below_the_moderate_threshold_are_not_relapse() -> None:
    scores = [(day(0), 8), (day(7), 9), (day(14), 9)]  # baseline 16: 9 fails response, < 10
    assert detect_relapse("phq9", 16, scores) is None


def test_first_relapse_is_returned() -> None:
    scores = [*RESPONDED, (day(14), 12), (day(21), 13), (day(28), 14), (day(35), 15)]
    assert detect_relapse("phq9", 20, scores) == day(21)


def test_response_reached_through_remission() -> None:
    scores = [(day(0), 4), (day(7), 10), (day(12), 10)]  # baseline 6: 4 is remission
    assert detect_relapse("phq9", 6, scores) == day(12)


@pytest.mark.parametrize(
    ("instrument", "baseline", "responded", "relapsing", "recovered"),
    [
        ("madrs", 34, 12, 22, 21),
        ("qids_sr16", 20, 5, 11, 10),
        ("gad7", 19, 4, 10, 9),
        ("phq9", 19, 4, 10, 9),
    ],
)
def test_moderate_thresholds_per_instrument(
    instrument: str, baseline: int, responded: int, relapsing: int, recovered: int
) -> None:
    relapse = [(day(0), responded), (day(7), relapsing), (day(14), relapsing)]
    assert detect_relapse(instrument, baseline, relapse) == day(14)
    below = [(day(0), responded), (day(7), recovered), (day(14), recovered)]
    assert detect_relapse(instrument, baseline, below) is None


def test_madrs_relapse_follows_remission_setting() -> None:
    # 11 is remission by default (<=12) but not with <=10; 11/30 is still a response (63%).
    scores = [(day(0), 11), (day(7), 22), (day(14), 22)]
    assert detect_relapse("madrs", 30, scores) == day(14)
    strict = ClinicalSettings(madrs_remission_max=10)
    assert detect_relapse("madrs", 30, scores, settings=strict) == day(14)


def test_same_day_scores_do_not_count_as_a_pair() -> None:
    scores = [*RESPONDED, (day(14), 12), (day(14), 13)]
    assert detect_relapse("phq9", 20, scores) is None


def test_empty_scores() -> None:
    assert detect_relapse("phq9", 20, []) is None


@pytest.mark.parametrize("instrument", ["hamd17", "ybocs", "pcl5", "cadss", "moaas"])
def test_instrument_without_moderate_threshold_raises(instrument: str) -> None:
    with pytest.raises(InvalidInput, match="no moderate threshold"):
        detect_relapse(instrument, 20, [])


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ("scores", "sequence of"),
        (5, "sequence of"),
        ([(day(0),)], "score 1 must be a"),
        ([(day(0), 5, 6)], "score 1 must be a"),
        ([{day(0): 5}], "score 1 must be a"),
        ([(datetime(2025, 1, 6, 9, 0), 5)], "date of score 1 must be a date"),
        ([("2025-01-06", 5)], "date of score 1 must be a date"),
        ([(day(0), 5), (day(7), 28)], "score 2 must be at most 27"),
        ([(day(0), True)], "score 1 must be a whole number"),
    ],
)
def test_bad_relapse_input(scores: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        detect_relapse("phq9", 20, scores)  # type: ignore[arg-type]


def test_lists_are_accepted_as_pairs() -> None:
    scores = [[day(0), 8], [day(7), 12], [day(14), 12]]
    assert detect_relapse("phq9", 20, scores) == day(14)  # type: ignore[arg-type]


def test_relapse_baseline_must_be_above_zero() -> None:
    with pytest.raises(InvalidInput, match="baseline must be above 0"):
        detect_relapse("phq9", 0, [])


@hsettings(database=None, max_examples=200)
@given(
    values=st.lists(st.integers(0, 27), min_size=0, max_size=8),
    gaps=st.lists(st.integers(0, 20), min_size=8, max_size=8),
    baseline=st.integers(1, 27),
    seed=st.integers(0, 1000),
)
def test_property_relapse_ignores_input_order(
    values: list[int], gaps: list[int], baseline: int, seed: int
) -> None:
    dates = [START + timedelta(days=sum(gaps[: index + 1]) + index) for index in range(8)]
    scores = list(zip(dates, values, strict=False))
    shuffled = scores[:]
    random.Random(seed).shuffle(shuffled)
    result = detect_relapse("phq9", baseline, scores)
    assert detect_relapse("phq9", baseline, shuffled) == result
    if result is not None:
        assert result in dates
        value = dict(scores)[result]
        assert value >= 10 and (baseline - value) * 2 < baseline
