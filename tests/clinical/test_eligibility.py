"""assess_eligibility: every fact key on every treatment, age, trials, oral AD and errors."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ketaclinic.clinical import (
    FACT_KEYS,
    TREATMENTS,
    ClinicalSettings,
    InvalidInput,
    assess_eligibility,
)

AS_OF = date(2025, 6, 15)
ALL_TREATMENTS = (
    "iv_ketamine",
    "im_ketamine",
    "oral_ketamine",
    "esketamine_trd",
    "esketamine_mdsi",
)
CONTRAINDICATIONS = (
    "aneurysmal_vascular_disease",
    "arteriovenous_malformation",
    "intracerebral_hemorrhage_history",
    "hypersensitivity_ketamine",
)
WARNINGS = (
    "psychosis_history",
    "substance_use_disorder",
    "pregnant",
    "breastfeeding",
    "uncontrolled_hypertension",
    "cardiovascular_disease",
    "severe_hepatic_impairment",
    "raised_intracranial_pressure",
    "maoi",
    "psychostimulant",
    "cns_depressant",
)
# An adult with two failed trials on an oral antidepressant: eligible for every treatment.
CLEAN: dict[str, object] = {
    "date_of_birth": date(1980, 1, 1),
    "failed_antidepressant_trials": 2,
    "taking_oral_antidepressant": True,
}


def test_fact_keys_are_exactly_those_of_the_issue() -> None:
    assert set(FACT_KEYS) == {
        "date_of_birth",
        *CONTRAINDICATIONS,
        *WARNINGS,
        "failed_antidepressant_trials",
        "taking_oral_antidepressant",
    }


def test_treatment_codes() -> None:
    assert set(TREATMENTS) == set(ALL_TREATMENTS)


@pytest.mark.parametrize("treatment", ALL_TREATMENTS)
def test_clean_facts_are_eligible(treatment: str) -> None:
    result = assess_eligibility(CLEAN, treatment=treatment, as_of=AS_OF)
    assert result.status == "eligible"
    assert result.reasons == ()


@pytest.mark.parametrize("treatment", ALL_TREATMENTS)
@pytest.mark.parametrize("fact", CONTRAINDICATIONS)
def test_contraindications_make_every_route_ineligible(fact: str, treatment: str) -> None:
    result = assess_eligibility({**CLEAN, fact: True}, treatment=treatment, as_of=AS_OF)
    assert result.status == "ineligible"
    assert result.codes == (fact,)
    reason = result.reasons[0]
    assert reason.severity == "contraindication"
    assert reason.message and "Spravato PI §4" in reason.source
    assert assess_eligibility({**CLEAN, fact: False}, treatment=treatment, as_of=AS_OF).status == (
        "eligible"
    )


@pytest.mark.parametrize("treatment", ALL_TREATMENTS)
@pytest.mark.parametrize("fact", WARNINGS)
def test_warnings_need_review_on_every_route(fact: str, treatment: str) -> None:
    result = assess_eligibility({**CLEAN, fact: True}, treatment=treatment, as_of=AS_OF)
    assert result.status == "needs_review"
    assert result.codes == (fact,)
    assert result.reasons[0].severity == "warning"
    assert result.reasons[0].source


def test_contraindication_outranks_warnings_and_all_reasons_are_kept() -> None:
    facts = {**CLEAN, "pregnant": True, "arteriovenous_malformation": True, "maoi": True}
    result = assess_eligibility(facts, treatment="iv_ketamine", as_of=AS_OF)
    assert result.status == "ineligible"
    assert result.codes == ("arteriovenous_malformation", "pregnant", "maoi")


@pytest.mark.parametrize("treatment", ALL_TREATMENTS)
def test_missing_date_of_birth_needs_review(treatment: str) -> None:
    facts = {key: value for key, value in CLEAN.items() if key != "date_of_birth"}
    result = assess_eligibility(facts, treatment=treatment, as_of=AS_OF)
    assert result.status == "needs_review"
    assert result.codes == ("age_unknown",)
    assert "age unknown" in result.reasons[0].message


@pytest.mark.parametrize(
    ("born", "status"),
    [
        (date(2007, 6, 16), "needs_review"),  # 18 tomorrow
        (date(2007, 6, 15), "eligible"),  # 18 today
        (date(2007, 6, 14), "eligible"),
        (date(2015, 1, 1), "needs_review"),
        (AS_OF, "needs_review"),
    ],
)
@pytest.mark.parametrize("treatment", ALL_TREATMENTS)
def test_age_under_18_on_as_of_needs_review(born: date, status: str, treatment: str) -> None:
    result = assess_eligibility({**CLEAN, "date_of_birth": born}, treatment=treatment, as_of=AS_OF)
    assert result.status == status
    if status == "needs_review":
        assert result.codes == ("age_under_minimum",)
        assert "under 18" in result.reasons[0].message


def test_leap_day_birthday_turns_18_on_1_march() -> None:
    facts = {**CLEAN, "date_of_birth": date(2008, 2, 29)}
    feb_28 = assess_eligibility(facts, treatment="iv_ketamine", as_of=date(2026, 2, 28))
    march_1 = assess_eligibility(facts, treatment="iv_ketamine", as_of=date(2026, 3, 1))
    assert feb_28.status == "needs_review"
    assert march_1.status == "eligible"


def test_minimum_age_is_configurable() -> None:
    facts = {**CLEAN, "date_of_birth": date(2005, 1, 1)}
    assert assess_eligibility(facts, treatment="iv_ketamine", as_of=AS_OF).status == "eligible"
    older = ClinicalSettings(minimum_age_years=21)
    result = assess_eligibility(facts, treatment="iv_ketamine", as_of=AS_OF, settings=older)
    assert result.codes == ("age_under_minimum",)
    assert "under 21" in result.reasons[0].message


@pytest.mark.parametrize(
    ("trials", "status"),
    [
        (None, "needs_review"),
        (0, "needs_review"),
        (1, "needs_review"),
        (2, "eligible"),
        (5, "eligible"),
    ],
)
def test_esketamine_trd_needs_two_failed_trials(trials: int | None, status: str) -> None:
    facts = {**CLEAN, "failed_antidepressant_trials": trials}
    if trials is None:
        del facts["failed_antidepressant_trials"]
    result = assess_eligibility(facts, treatment="esketamine_trd", as_of=AS_OF)
    assert result.status == status
    if status == "needs_review":
        assert result.codes == ("fewer_than_two_failed_trials",)


@pytest.mark.parametrize("treatment", [t for t in ALL_TREATMENTS if t != "esketamine_trd"])
def test_failed_trials_only_matter_for_esketamine_trd(treatment: str) -> None:
    facts = {**CLEAN, "failed_antidepressant_trials": 0}
    assert assess_eligibility(facts, treatment=treatment, as_of=AS_OF).status == "eligible"


@pytest.mark.parametrize("oral_ad", [False, None])
def test_esketamine_mdsi_needs_an_oral_antidepressant(oral_ad: bool | None) -> None:
    facts = {**CLEAN, "taking_oral_antidepressant": oral_ad}
    result = assess_eligibility(facts, treatment="esketamine_mdsi", as_of=AS_OF)
    assert result.status == "needs_review"
    assert result.codes == ("no_oral_antidepressant",)
    # TRD allows monotherapy since January 2025.
    assert assess_eligibility(facts, treatment="esketamine_trd", as_of=AS_OF).status == "eligible"


def test_absent_yes_no_facts_mean_no() -> None:
    facts = {"date_of_birth": date(1990, 5, 5)}
    assert assess_eligibility(facts, treatment="iv_ketamine", as_of=AS_OF).status == "eligible"
    with_none = {**facts, "pregnant": None}
    assert assess_eligibility(with_none, treatment="iv_ketamine", as_of=AS_OF).status == "eligible"


@pytest.mark.parametrize(
    ("facts", "match"),
    [
        ({"smoker": True}, "unknown fact 'smoker'"),
        ({"pregnant": "yes"}, "fact pregnant must be yes or no"),
        ({"maoi": 1}, "fact maoi must be yes or no"),
        ({"failed_antidepressant_trials": True}, "failed_antidepressant_trials must be a whole"),
        ({"failed_antidepressant_trials": -1}, "failed_antidepressant_trials must be at least 0"),
        ({"failed_antidepressant_trials": "2"}, "failed_antidepressant_trials must be a whole"),
        ({"date_of_birth": "1980-01-01"}, "date_of_birth must be a date"),
        ({"date_of_birth": datetime(1980, 1, 1, 0, 0)}, "date_of_birth must be a date"),
        ({"date_of_birth": date(2025, 6, 16)}, "date_of_birth is after the assessment date"),
    ],
)
def test_bad_facts_raise(facts: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        assess_eligibility(facts, treatment="iv_ketamine", as_of=AS_OF)


def test_unknown_treatment_raises() -> None:
    with pytest.raises(InvalidInput, match="unknown treatment 'ketamine'"):
        assess_eligibility(CLEAN, treatment="ketamine", as_of=AS_OF)


def test_as_of_must_be_a_date() -> None:
    with pytest.raises(InvalidInput, match="as_of must be a date"):
        assess_eligibility(CLEAN, treatment="iv_ketamine", as_of=datetime(2025, 6, 15, 9, 0))


def test_facts_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="facts must be a mapping"):
        assess_eligibility([("pregnant", True)], treatment="iv_ketamine", as_of=AS_OF)  # type: ignore[arg-type]
