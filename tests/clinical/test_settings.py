"""ClinicalSettings: sources for every default, and validation of clinic overrides."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from decimal import Decimal

import pytest

from ketaclinic.clinical import DEFAULT_SETTINGS, ClinicalSettings, InvalidInput
from ketaclinic.clinical.settings import resolve


def test_every_setting_names_its_source() -> None:
    for item in fields(ClinicalSettings):
        source = ClinicalSettings.source_of(item.name)
        assert source.strip(), item.name
        assert any(tag in source for tag in ("[V]", "[M]", "[U")), item.name


def test_published_defaults() -> None:
    config = ClinicalSettings()
    assert config == DEFAULT_SETTINGS
    assert config.madrs_remission_max == 12
    assert config.pcl5_probable_ptsd_min_total == 33
    assert config.esketamine_min_observation_minutes == 120
    assert config.racemic_min_observation_minutes == 30
    assert config.iv_max_dose_mg_per_kg == Decimal("2")
    assert (
        config.pre_dose_review_systolic_above_mmhg,
        config.pre_dose_review_diastolic_above_mmhg,
    ) == (140, 90)


def test_settings_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        DEFAULT_SETTINGS.madrs_remission_max = 10  # type: ignore[misc]


def test_source_of_unknown_setting() -> None:
    with pytest.raises(InvalidInput, match="unknown setting"):
        ClinicalSettings.source_of("nothing")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"madrs_remission_max": 61}, "madrs_remission_max must be between 0 and 60"),
        ({"gad7_remission_max": 22}, "gad7_remission_max"),
        ({"pcl5_probable_ptsd_min_total": 30}, "between 31 and 33"),
        ({"pcl5_probable_ptsd_min_total": 34}, "between 31 and 33"),
        ({"bprs_emergent_psychosis_item_min": 1}, "between 2 and 7"),
        ({"esketamine_min_observation_minutes": 90}, "between 120 and 1440"),
        ({"iv_vitals_every_minutes_during": 0}, "iv_vitals_every_minutes_during"),
        ({"post_dose_vitals_every_minutes": 61}, "post_dose_vitals_every_minutes"),
        ({"minimum_age_years": -1}, "whole number >= 0"),
        ({"minimum_age_years": True}, "whole number >= 0"),
        ({"minimum_age_years": 18.0}, "whole number >= 0"),
        ({"iv_max_dose_mg_per_kg": 2}, "positive Decimal"),
        ({"iv_max_dose_mg_per_kg": Decimal("0")}, "positive Decimal"),
        ({"pre_dose_review_systolic_above_mmhg": 180}, "must be below pre_dose_hold_systolic"),
        ({"pre_dose_hold_diastolic_at_or_above_mmhg": 90}, "must be below pre_dose_hold_diastolic"),
        ({"alert_bradycardia_below_bpm": 130}, "must be below alert_tachycardia"),
        ({"alert_hypotension_systolic_below_mmhg": 180}, "must be below alert_hypertension"),
        ({"iv_min_weight_kg": Decimal("400")}, "must be below iv_max_weight_kg"),
    ],
)
def test_bad_overrides_raise(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        ClinicalSettings(**overrides)  # type: ignore[arg-type]


def test_resolve() -> None:
    custom = ClinicalSettings(madrs_remission_max=10)
    assert resolve(None) is DEFAULT_SETTINGS
    assert resolve(custom) is custom
    with pytest.raises(InvalidInput, match="ClinicalSettings"):
        resolve({"madrs_remission_max": 10})  # type: ignore[arg-type]
