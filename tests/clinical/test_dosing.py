"""iv_infusion and esketamine_administration: arithmetic, rounding, safety limits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ketaclinic.clinical import (
    ClinicalSettings,
    InvalidInput,
    UnsafeOrder,
    esketamine_administration,
    iv_infusion,
)

WORKED = {"weight_kg": 80, "dose_mg_per_kg": 0.5, "minutes": 40, "concentration_mg_per_ml": 1}


def test_worked_example_from_the_reference() -> None:
    result = iv_infusion(**WORKED)  # type: ignore[arg-type]
    assert result.dose_mg == Decimal("40.0")
    assert result.volume_ml == Decimal("40.0")
    assert result.rate_ml_per_h == Decimal("60.0")
    assert result.vtbi_ml == Decimal("40.0")
    assert result.mg_per_kg_per_h == Decimal("0.75")
    assert str(result.dose_mg) == "40.0" and str(result.mg_per_kg_per_h) == "0.75"


def test_decimal_inputs_give_the_same_answer() -> None:
    result = iv_infusion(
        weight_kg=Decimal("80"),
        dose_mg_per_kg=Decimal("0.5"),
        minutes=Decimal("40"),
        concentration_mg_per_ml=Decimal("1"),
    )
    assert result == iv_infusion(**WORKED)  # type: ignore[arg-type]


def test_rounding_is_half_up() -> None:
    # 70.5 kg x 0.5 = 35.25 mg -> 35.3 (half-even would give 35.2)
    result = iv_infusion(weight_kg=70.5, dose_mg_per_kg=0.5, minutes=40, concentration_mg_per_ml=2)
    assert result.dose_mg == Decimal("35.3")
    assert result.volume_ml == Decimal("17.6")  # 17.625 -> 17.6
    assert result.rate_ml_per_h == Decimal("26.4")  # 26.4375 -> 26.4
    assert result.vtbi_ml == result.volume_ml
    # 0.35 mg/kg over 8 min = 2.625 mg/kg/h -> 2.63 (half-even would give 2.62)
    fast = iv_infusion(weight_kg=60, dose_mg_per_kg=0.35, minutes=8, concentration_mg_per_ml=1)
    assert fast.mg_per_kg_per_h == Decimal("2.63")
    # 0.5 mg/kg over 45 min = 0.666.. -> 0.67
    slow = iv_infusion(weight_kg=80, dose_mg_per_kg=0.5, minutes=45, concentration_mg_per_ml=1)
    assert slow.mg_per_kg_per_h == Decimal("0.67")
    assert slow.rate_ml_per_h == Decimal("53.3")


def test_crps_style_long_infusion() -> None:
    result = iv_infusion(weight_kg=70, dose_mg_per_kg=1.4, minutes=240, concentration_mg_per_ml=2)
    assert result.dose_mg == Decimal("98.0")
    assert result.volume_ml == Decimal("49.0")
    assert result.rate_ml_per_h == Decimal("12.3")  # 12.25 -> 12.3
    assert result.mg_per_kg_per_h == Decimal("0.35")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("concentration_mg_per_ml", 50, "vial strength"),
        ("concentration_mg_per_ml", 100, "vial strength"),
        ("concentration_mg_per_ml", 0, "concentration_mg_per_ml must be above 0"),
        ("concentration_mg_per_ml", -1, "concentration_mg_per_ml must be above 0"),
        ("dose_mg_per_kg", 2.01, "above the limit of 2 mg/kg"),
        ("dose_mg_per_kg", 0, "dose_mg_per_kg must be above 0"),
        ("weight_kg", 19.9, "weight_kg 19.9 is outside 20-350"),
        ("weight_kg", 350.1, "weight_kg 350.1 is outside 20-350"),
        ("minutes", 0, "minutes must be above 0"),
        ("minutes", -40, "minutes must be above 0"),
        ("weight_kg", True, "weight_kg must be a number"),
        ("minutes", "40", "minutes must be a number"),
        ("dose_mg_per_kg", float("nan"), "dose_mg_per_kg must be a finite number"),
        ("weight_kg", float("inf"), "weight_kg must be a finite number"),
        ("concentration_mg_per_ml", None, "concentration_mg_per_ml must be a number"),
    ],
)
def test_unsafe_orders(field: str, value: object, match: str) -> None:
    with pytest.raises(UnsafeOrder, match=match) as caught:
        iv_infusion(**{**WORKED, field: value})  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidInput)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concentration_mg_per_ml", 49.9),
        ("dose_mg_per_kg", 2),
        ("weight_kg", 20),
        ("weight_kg", 350),
        ("minutes", 1),
    ],
)
def test_limits_are_inclusive_where_the_issue_says_so(field: str, value: float) -> None:
    assert iv_infusion(**{**WORKED, field: value}).dose_mg > 0  # type: ignore[arg-type]


def test_dose_and_weight_limits_are_configurable() -> None:
    config = ClinicalSettings(iv_max_dose_mg_per_kg=Decimal("3"), iv_max_weight_kg=Decimal("400"))
    result = iv_infusion(
        weight_kg=380, dose_mg_per_kg=2.5, minutes=60, concentration_mg_per_ml=2, settings=config
    )
    assert result.dose_mg == Decimal("950.0")
    with pytest.raises(UnsafeOrder):
        iv_infusion(**{**WORKED, "dose_mg_per_kg": 3.1}, settings=config)


@pytest.mark.parametrize(("dose", "devices"), [(28, 1), (56, 2), (84, 3)])
def test_esketamine_devices(dose: int, devices: int) -> None:
    result = esketamine_administration(dose)
    assert result.devices == devices
    assert result.minutes_between_devices == 5
    assert result.dose_mg == dose
    assert result.minimum_minutes == (devices - 1) * 5


@pytest.mark.parametrize("dose", [0, 14, 42, 112, -56, 56.0, "56", True, None, Decimal("56")])
def test_other_esketamine_doses_are_unsafe(dose: object) -> None:
    with pytest.raises(UnsafeOrder, match="esketamine dose_mg must be one of 28, 56, 84"):
        esketamine_administration(dose)  # type: ignore[arg-type]


@hsettings(database=None, max_examples=300)
@given(
    weight=st.decimals(min_value=20, max_value=350, places=1),
    dose=st.decimals(min_value=Decimal("0.05"), max_value=2, places=2),
    minutes=st.integers(1, 600),
    concentration=st.decimals(min_value=Decimal("0.1"), max_value=Decimal("49.9"), places=1),
)
def test_property_pump_figures_agree(
    weight: Decimal, dose: Decimal, minutes: int, concentration: Decimal
) -> None:
    result = iv_infusion(
        weight_kg=weight,
        dose_mg_per_kg=dose,
        minutes=minutes,
        concentration_mg_per_ml=concentration,
    )
    exact_dose = weight * dose
    assert abs(result.dose_mg - exact_dose) <= Decimal("0.05")
    assert abs(result.volume_ml - exact_dose / concentration) <= Decimal("0.05")
    assert abs(result.rate_ml_per_h - exact_dose / concentration * 60 / minutes) <= Decimal("0.05")
    assert result.vtbi_ml == result.volume_ml
    assert result.dose_mg.as_tuple().exponent == -1
    assert result.mg_per_kg_per_h.as_tuple().exponent == -2
