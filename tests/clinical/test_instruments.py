"""Instrument definitions and scoring: every band boundary, flags, subscores, errors."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ketaclinic.clinical import (
    INSTRUMENTS,
    ClinicalSettings,
    InvalidAnswers,
    InvalidInput,
    score,
)
from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.clinical.instruments.base import (
    AnswerOption,
    Band,
    Instrument,
    Item,
    numbered_items,
    score_options,
)

ALL_CODES = {
    "phq9",
    "gad7",
    "cssrs_screener",
    "pcl5",
    "hamd17",
    "bprs",
    "pain_nrs",
    "moaas",
    "madrs",
    "qids_sr16",
    "ybocs",
    "cadss",
}
NUMERIC_CODES = sorted(ALL_CODES - {"cssrs_screener"})
LICENSED = ("madrs", "qids_sr16", "ybocs", "cadss")
FREE_WORDED = ("phq9", "gad7", "pcl5", "cssrs_screener", "hamd17")

# The published bands, written out from the issue/reference, independent of the code.
BANDS: dict[str, list[tuple[int, int, str]]] = {
    "phq9": [
        (0, 4, "minimal"),
        (5, 9, "mild"),
        (10, 14, "moderate"),
        (15, 19, "moderately severe"),
        (20, 27, "severe"),
    ],
    "gad7": [(0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 21, "severe")],
    "madrs": [(0, 6, "normal"), (7, 19, "mild"), (20, 34, "moderate"), (35, 60, "severe")],
    "qids_sr16": [
        (0, 5, "none"),
        (6, 10, "mild"),
        (11, 15, "moderate"),
        (16, 20, "severe"),
        (21, 27, "very severe"),
    ],
    "hamd17": [(0, 7, "none"), (8, 16, "mild"), (17, 23, "moderate"), (24, 52, "severe")],
    "ybocs": [
        (0, 7, "subclinical"),
        (8, 15, "mild"),
        (16, 23, "moderate"),
        (24, 31, "severe"),
        (32, 40, "extreme"),
    ],
    "pain_nrs": [(0, 0, "none"), (1, 3, "mild"), (4, 6, "moderate"), (7, 10, "severe")],
}
BOUNDARY_CASES = [
    (code, total, label)
    for code, bands in BANDS.items()
    for low, high, label in bands
    for total in {low, high}
]
SCORE_RANGES = {
    "phq9": (0, 27),
    "gad7": (0, 21),
    "cssrs_screener": (0, 6),
    "pcl5": (0, 80),
    "hamd17": (0, 52),
    "bprs": (18, 126),
    "pain_nrs": (0, 10),
    "moaas": (0, 5),
    "madrs": (0, 60),
    "qids_sr16": (0, 27),
    "ybocs": (0, 40),
    "cadss": (0, 92),
}
ITEM_COUNTS = {
    "phq9": 9,
    "gad7": 7,
    "cssrs_screener": 7,
    "pcl5": 20,
    "hamd17": 17,
    "bprs": 18,
    "pain_nrs": 1,
    "moaas": 1,
    "madrs": 10,
    "qids_sr16": 16,
    "ybocs": 10,
    "cadss": 23,
}
# One representative item per QIDS-SR16 domain (sleep, mood, appetite, 5 singles, psychomotor).
QIDS_DOMAIN_ITEMS = ("q1", "q5", "q6", "q10", "q11", "q12", "q13", "q14", "q15")


def answers_for_total(code: str, total: int) -> list[int]:
    """Item values, in order, whose total is ``total`` (filled from the first item on)."""
    instrument = INSTRUMENTS[code]
    if code == "qids_sr16":
        values = dict.fromkeys(instrument.item_ids, 0)
        remaining = total
        for item_id in QIDS_DOMAIN_ITEMS:
            values[item_id] = min(3, remaining)
            remaining -= values[item_id]
        assert remaining == 0
        return [values[item_id] for item_id in instrument.item_ids]
    values_list = [item.min_value for item in instrument.items]
    remaining = total - sum(values_list)
    for index, item in enumerate(instrument.items):
        added = min(item.max_value - values_list[index], remaining)
        values_list[index] += added
        remaining -= added
    assert remaining == 0
    return values_list


# ---------------------------------------------------------------- definitions


def test_registry_holds_exactly_the_twelve_instruments() -> None:
    assert set(INSTRUMENTS) == ALL_CODES
    assert all(INSTRUMENTS[code].code == code for code in INSTRUMENTS)
    with pytest.raises(TypeError):
        INSTRUMENTS["new"] = INSTRUMENTS["phq9"]  # type: ignore[index]


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_definition_has_range_items_source_version_licence(code: str) -> None:
    instrument = INSTRUMENTS[code]
    assert instrument.score_range == SCORE_RANGES[code]
    assert len(instrument.items) == ITEM_COUNTS[code]
    assert instrument.source and instrument.version and instrument.licence and instrument.title
    assert all(item.options for item in instrument.items)


@pytest.mark.parametrize("code", LICENSED)
def test_licensed_instruments_ship_no_item_wording(code: str) -> None:
    instrument = INSTRUMENTS[code]
    assert all(item.wording is None for item in instrument.items)
    assert all(option.label is None for item in instrument.items for option in item.options)
    assert instrument.has_item_wording is False


@pytest.mark.parametrize("code", FREE_WORDED)
def test_free_instruments_word_every_item(code: str) -> None:
    instrument = INSTRUMENTS[code]
    assert all(item.wording for item in instrument.items)
    assert instrument.has_item_wording is True


@pytest.mark.parametrize(
    ("code", "panel", "total"),
    [
        ("phq9", "44249-1", "44261-6"),
        ("gad7", "69737-5", "70274-6"),
        ("cssrs_screener", "93373-9", None),
        ("pain_nrs", None, "72514-3"),
        *[(code, None, None) for code in ("pcl5", "hamd17", "bprs", "moaas", *LICENSED)],
    ],
)
def test_loinc_codes(code: str, panel: str | None, total: str | None) -> None:
    assert INSTRUMENTS[code].loinc_panel == panel
    assert INSTRUMENTS[code].loinc_total == total


def test_phq9_item9_carries_its_loinc_code() -> None:
    assert INSTRUMENTS["phq9"].items[8].loinc == "44260-8"


@pytest.mark.parametrize(
    ("code", "threshold"),
    [("phq9", 10), ("madrs", 22), ("qids_sr16", 11), ("gad7", 10)]
    + [(code, None) for code in ("hamd17", "ybocs", "pcl5", "cadss", "bprs", "pain_nrs")],
)
def test_moderate_thresholds(code: str, threshold: int | None) -> None:
    assert INSTRUMENTS[code].moderate_threshold == threshold


@pytest.mark.parametrize("code", sorted(BANDS))
def test_bands_match_the_published_table(code: str) -> None:
    assert [tuple(band) for band in INSTRUMENTS[code].bands] == BANDS[code]
    assert INSTRUMENTS[code].severity_labels == tuple(label for _, _, label in BANDS[code])


@pytest.mark.parametrize("code", ["pcl5", "cadss", "bprs", "moaas", "cssrs_screener"])
def test_instruments_without_bands(code: str) -> None:
    assert INSTRUMENTS[code].bands == ()


def test_hamd17_item_ranges_follow_the_standard_scale() -> None:
    items = INSTRUMENTS["hamd17"].items
    zero_to_four = {1, 2, 3, 7, 8, 9, 10, 11, 15}
    for number, item in enumerate(items, start=1):
        assert item.min_value == 0
        assert item.max_value == (4 if number in zero_to_four else 2), item.id


def test_bprs_items_rate_one_to_seven() -> None:
    items = INSTRUMENTS["bprs"].items
    assert all((item.min_value, item.max_value) == (1, 7) for item in items)
    assert items[3].wording == "Conceptual disorganization"
    assert items[10].wording == "Suspiciousness"
    assert items[11].wording == "Hallucinatory behaviour"
    assert items[14].wording == "Unusual thought content"


def test_moaas_labels_follow_the_reference() -> None:
    options = INSTRUMENTS["moaas"].items[0].options
    assert [option.value for option in options] == [0, 1, 2, 3, 4, 5]
    assert options[5].label is not None and "awake" in options[5].label
    assert options[0].label is not None and "No response" in options[0].label
    assert options[3].label is not None and "loudly" in options[3].label


def test_cadss_is_23_items_scored_0_to_4() -> None:
    items = INSTRUMENTS["cadss"].items
    assert all((item.min_value, item.max_value) == (0, 4) for item in items)


def test_get_instrument_rejects_unknown_and_non_string_codes() -> None:
    assert get_instrument("phq9") is INSTRUMENTS["phq9"]
    for bad in ("phq-9", "", 9, None):
        with pytest.raises(InvalidInput, match="unknown instrument"):
            get_instrument(bad)


# ---------------------------------------------------------------- bands and totals


@pytest.mark.parametrize(("code", "total", "label"), BOUNDARY_CASES)
def test_every_band_boundary(code: str, total: int, label: str) -> None:
    result = score(code, answers_for_total(code, total))
    assert result.total == total
    assert result.severity == label
    assert result.instrument == code


@pytest.mark.parametrize("code", ["pcl5", "cadss", "bprs", "moaas"])
def test_no_severity_without_bands(code: str) -> None:
    low, high = SCORE_RANGES[code]
    assert score(code, answers_for_total(code, low)).severity is None
    assert score(code, answers_for_total(code, high)).total == high


def test_severity_for_checks_its_argument() -> None:
    phq9 = INSTRUMENTS["phq9"]
    assert phq9.severity_for(27) == "severe"
    for bad in (-1, 28, True, 3.0):
        with pytest.raises(InvalidInput):
            phq9.severity_for(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- per-instrument rules


def test_phq9_item9_flags_suicidal_ideation() -> None:
    assert score("phq9", [0] * 8 + [1]).flags == {"suicidal_ideation"}
    assert score("phq9", [3] * 8 + [0]).flags == frozenset()


def test_mapping_and_sequence_answers_score_the_same() -> None:
    values = [1, 2, 3, 0, 1, 2, 3, 0, 1]
    by_id = {f"q{n}": value for n, value in enumerate(values, start=1)}
    assert score("phq9", values) == score("phq9", by_id)
    assert score("phq9", tuple(values)).total == 13
    assert dict(score("phq9", values).answers) == by_id


def test_score_result_is_read_only() -> None:
    result = score("ybocs", [1] * 10)
    assert isinstance(result.subscores, MappingProxyType)
    with pytest.raises(TypeError):
        result.subscores["obsessions"] = 0  # type: ignore[index]


def test_qids_total_uses_domain_maxima() -> None:
    values = [2, 0, 1, 3, 2, 0, 1, 0, 2, 1, 0, 1, 2, 1, 0, 3]
    result = score("qids_sr16", values)
    assert dict(result.subscores) == {
        "sleep": 3,
        "sad_mood": 2,
        "appetite_weight": 2,
        "concentration": 1,
        "self_view": 0,
        "suicidal_ideation": 1,
        "interest": 2,
        "energy": 1,
        "psychomotor": 3,
    }
    assert result.total == 15
    assert result.severity == "moderate"
    assert result.flags == {"suicidal_ideation"}


def test_qids_all_items_at_maximum_is_27_not_48() -> None:
    assert score("qids_sr16", [3] * 16).total == 27


def test_pcl5_cluster_subscores() -> None:
    values = [2] * 5 + [1] * 15
    result = score("pcl5", values)
    assert dict(result.subscores) == {"B": 10, "C": 2, "D": 7, "E": 6}
    assert result.total == 25
    assert result.severity is None


@pytest.mark.parametrize(
    ("total", "minimum", "flagged"),
    [(32, 33, False), (33, 33, True), (31, 31, True), (30, 31, False), (32, 32, True)],
)
def test_pcl5_probable_ptsd_threshold_is_configurable(
    total: int, minimum: int, flagged: bool
) -> None:
    config = ClinicalSettings(pcl5_probable_ptsd_min_total=minimum)
    result = score("pcl5", answers_for_total("pcl5", total), settings=config)
    assert ("probable_ptsd" in result.flags) is flagged


def test_pcl5_default_flag_at_33() -> None:
    assert "probable_ptsd" in score("pcl5", answers_for_total("pcl5", 33)).flags
    assert score("pcl5", answers_for_total("pcl5", 32)).flags == frozenset()


@pytest.mark.parametrize("item", [4, 11, 12, 15])
def test_bprs_positive_item_at_4_flags_emergent_psychosis(item: int) -> None:
    values = [1] * 18
    values[item - 1] = 4
    result = score("bprs", values)
    assert result.flags == {"emergent_psychosis"}
    assert result.subscores["positive"] == 7
    values[item - 1] = 3
    assert score("bprs", values).flags == frozenset()


def test_bprs_non_positive_items_do_not_flag_and_threshold_is_configurable() -> None:
    values = [7] * 18
    for item in (4, 11, 12, 15):
        values[item - 1] = 1
    result = score("bprs", values)
    assert result.flags == frozenset()
    assert result.subscores["positive"] == 4
    assert result.total == 14 * 7 + 4
    raised = [1] * 18
    raised[11] = 4
    config = ClinicalSettings(bprs_emergent_psychosis_item_min=5)
    assert score("bprs", raised, settings=config).flags == frozenset()


def test_ybocs_subscores() -> None:
    result = score("ybocs", [4, 4, 4, 4, 4, 1, 1, 1, 1, 1])
    assert dict(result.subscores) == {"obsessions": 20, "compulsions": 5}
    assert result.total == 25
    assert result.severity == "severe"


@pytest.mark.parametrize(
    ("code", "item"), [("hamd17", "q3"), ("madrs", "q10"), ("qids_sr16", "q12")]
)
def test_suicide_items_flag_suicidal_ideation(code: str, item: str) -> None:
    values = dict.fromkeys(INSTRUMENTS[code].item_ids, 0)
    assert score(code, values).flags == frozenset()
    values[item] = 1
    assert score(code, values).flags == {"suicidal_ideation"}


def test_moaas_zero_flags_loss_of_consciousness() -> None:
    assert score("moaas", [0]).flags == {"loss_of_consciousness"}
    assert score("moaas", [5]).flags == frozenset()
    assert score("moaas", {"q1": 3}).total == 3


def test_pain_nrs_single_item() -> None:
    assert score("pain_nrs", [7]).severity == "severe"
    with pytest.raises(InvalidAnswers):
        score("pain_nrs", [11])


def test_hamd17_rejects_3_on_a_0_to_2_item() -> None:
    values = [0] * 17
    values[3] = 3
    with pytest.raises(InvalidAnswers, match="q4 must be from 0 to 2"):
        score("hamd17", values)
    values[3] = 2
    values[0] = 4
    assert score("hamd17", values).total == 6


# ---------------------------------------------------------------- error paths


def test_unknown_instrument() -> None:
    with pytest.raises(InvalidInput, match="unknown instrument 'phq10'"):
        score("phq10", [0] * 9)


def test_wrong_item_count() -> None:
    with pytest.raises(InvalidAnswers, match="expects 9 answers"):
        score("phq9", [0] * 8)
    with pytest.raises(InvalidAnswers, match="expects 9 answers"):
        score("phq9", [0] * 10)


def test_unknown_item_id() -> None:
    answers: dict[str, object] = {f"q{n}": 0 for n in range(1, 10)}
    answers["q10"] = 0
    with pytest.raises(InvalidAnswers, match="unknown item 'q10'"):
        score("phq9", answers)


def test_missing_item() -> None:
    answers = {f"q{n}": 0 for n in range(1, 9)}
    with pytest.raises(InvalidAnswers, match="item q9 is missing"):
        score("phq9", answers)
    with pytest.raises(InvalidAnswers, match="item q2 is missing"):
        score("gad7", [0, None, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("bad", [4, -1, 100])
def test_value_out_of_range(bad: int) -> None:
    with pytest.raises(InvalidAnswers, match="item q3 must be from 0 to 3"):
        score("phq9", [0, 0, bad, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("bad", [True, False, 1.0, "1", None])
def test_non_integer_values(bad: object) -> None:
    with pytest.raises(InvalidAnswers, match="q1"):
        score("gad7", [bad, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("bad", ["000000000", b"000000000", 0, None, {0, 1}])
def test_answers_of_the_wrong_shape(bad: object) -> None:
    with pytest.raises(InvalidAnswers):
        score("phq9", bad)  # type: ignore[arg-type]


def test_settings_must_be_clinical_settings() -> None:
    with pytest.raises(InvalidInput, match="settings"):
        score("phq9", [0] * 9, settings={"pcl5_probable_ptsd_min_total": 31})  # type: ignore[arg-type]


# ---------------------------------------------------------------- definition validation


def _instrument(**overrides: object) -> Instrument:
    fields: dict[str, object] = {
        "code": "x",
        "title": "X",
        "items": numbered_items(2, score_options(0, 2)),
        "score_range": (0, 4),
        "source": "s",
        "version": "v",
        "licence": "l",
        "respondent": "patient",
    }
    fields.update(overrides)
    return Instrument(**fields)  # type: ignore[arg-type]


def test_instrument_definitions_are_validated() -> None:
    assert _instrument(bands=(Band(0, 1, "a"), Band(2, 4, "b"))).severity_for(2) == "b"
    with pytest.raises(InvalidInput, match="reversed"):
        _instrument(score_range=(4, 0))
    with pytest.raises(InvalidInput, match="unique"):
        _instrument(items=(Item("q1", None, score_options(0, 1)),) * 2)
    with pytest.raises(InvalidInput, match="contiguous"):
        _instrument(bands=(Band(0, 1, "a"), Band(3, 4, "b")))
    with pytest.raises(InvalidInput, match="contiguous"):
        _instrument(bands=(Band(0, 1, "a"), Band(2, 1, "b")))
    with pytest.raises(InvalidInput, match="cover"):
        _instrument(bands=(Band(0, 1, "a"), Band(2, 3, "b")))
    with pytest.raises(InvalidInput, match="moderate threshold"):
        _instrument(moderate_threshold=5)


def test_option_and_item_builders_check_their_labels() -> None:
    assert score_options(0, 1, ("no", "yes")) == (AnswerOption(0, "no"), AnswerOption(1, "yes"))
    with pytest.raises(InvalidInput):
        score_options(0, 2, ("no", "yes"))
    with pytest.raises(InvalidInput):
        numbered_items(2, score_options(0, 1), ("only one",))


# ---------------------------------------------------------------- properties


def _answers(code: str) -> st.SearchStrategy[list[int]]:
    return st.tuples(
        *(st.sampled_from([o.value for o in item.options]) for item in INSTRUMENTS[code].items)
    ).map(list)


def _expected_label(code: str, total: int) -> str:
    return next(label for low, high, label in BANDS[code] if low <= total <= high)


@hsettings(database=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), code=st.sampled_from(NUMERIC_CODES))
def test_property_total_inside_score_range(data: st.DataObject, code: str) -> None:
    result = score(code, data.draw(_answers(code)))
    low, high = SCORE_RANGES[code]
    assert low <= result.total <= high


@hsettings(database=None, max_examples=300)
@given(data=st.data(), code=st.sampled_from(sorted(BANDS)))
def test_property_severity_matches_table_and_is_monotonic(data: st.DataObject, code: str) -> None:
    first = score(code, data.draw(_answers(code)))
    second = score(code, data.draw(_answers(code)))
    assert first.severity == _expected_label(code, first.total)
    labels = [label for _, _, label in BANDS[code]]
    assert first.severity is not None and second.severity is not None
    if first.total <= second.total:
        assert labels.index(first.severity) <= labels.index(second.severity)
    else:
        assert labels.index(first.severity) >= labels.index(second.severity)
