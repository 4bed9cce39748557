"""Clinic-configurable defaults of the clinical rules, in one frozen dataclass.

Every field is a published default or a clinic convention; its source is in the field's
``metadata["source"]`` (read it with :meth:`ClinicalSettings.source_of`). Evidence tags follow
the reference: [V] verified, [M] from memory of a known source, [U] clinic convention. A clinic
overrides a default by building its own instance, e.g.
``ClinicalSettings(madrs_remission_max=10)``, and passing it as ``settings=``.

Naming: ``*_above_*`` means strictly greater than, ``*_below_*`` strictly less than and
``*_at_or_above_*`` greater than or equal to the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import TypeVar

from ketaclinic.clinical.errors import InvalidInput

__all__ = ["DEFAULT_SETTINGS", "ClinicalSettings", "resolve"]


_T = TypeVar("_T")


def _setting(default: _T, source: str) -> _T:
    """A dataclass field whose metadata names the source of its default."""
    return field(default=default, metadata={"source": source})


@dataclass(frozen=True, kw_only=True)
class ClinicalSettings:
    """The clinic-choice thresholds used by scoring, outcomes, eligibility, dosing and vitals."""

    # Outcomes and instruments
    madrs_remission_max: int = _setting(
        12, "MADRS remission <=12 in US esketamine trials; <=10 in ESCAPE-TRD (reference §5) [V]"
    )
    gad7_remission_max: int = _setting(4, "GAD-7 remission <5 is a convention (reference §5) [U]")
    pcl5_probable_ptsd_min_total: int = _setting(
        33,
        "PCL-5 provisional PTSD at a total of 31-33, National Center for PTSD (reference §5) [V]",
    )
    bprs_emergent_psychosis_item_min: int = _setting(
        4, "BPRS positive item >=4 flags emergent psychosis, clinic convention (reference §5) [U]"
    )

    # Eligibility
    minimum_age_years: int = _setting(
        18,
        "Spravato PI: not approved under 18 [V]; racemic routes by clinic convention [U]",
    )

    # Pre-dose gate
    pre_dose_review_systolic_above_mmhg: int = _setting(
        140, "Spravato PI §5.6: BP >140/90 before dosing, weigh benefit and risk [V]"
    )
    pre_dose_review_diastolic_above_mmhg: int = _setting(
        90, "Spravato PI §5.6: BP >140/90 before dosing, weigh benefit and risk [V]"
    )
    pre_dose_hold_systolic_at_or_above_mmhg: int = _setting(
        180, "Hold level set by the clinic, APA-consensus-derived figures (reference §3) [U]"
    )
    pre_dose_hold_diastolic_at_or_above_mmhg: int = _setting(
        110, "Hold level set by the clinic, APA-consensus-derived figures (reference §3) [U]"
    )
    pre_dose_review_heart_rate_above_bpm: int = _setting(
        110, "HR >110 quoted from APA-consensus-derived figures (reference §3) [U]"
    )
    pre_dose_hold_spo2_below_pct: int = _setting(
        92, "Pre-dose SpO2 floor, clinic convention (reference §3: add HR and SpO2) [U]"
    )

    # Alerts during monitoring
    alert_hypertension_systolic_at_or_above_mmhg: int = _setting(
        180, "Severe hypertension during monitoring, clinic convention (reference §3, Yale) [U]"
    )
    alert_hypertension_diastolic_at_or_above_mmhg: int = _setting(
        110, "Severe hypertension during monitoring, clinic convention (reference §3, Yale) [U]"
    )
    alert_hypotension_systolic_below_mmhg: int = _setting(
        90, "Hypotension alert, clinic convention [U]"
    )
    alert_tachycardia_above_bpm: int = _setting(120, "Tachycardia alert, clinic convention [U]")
    alert_bradycardia_below_bpm: int = _setting(50, "Bradycardia alert, clinic convention [U]")
    alert_desaturation_below_pct: int = _setting(
        92, "Desaturation alert; pulse oximetry is required each session (REMS) [V], level [U]"
    )
    alert_low_respiratory_rate_below_per_min: int = _setting(
        10, "Respiratory depression (Spravato boxed warning) [V], alert level clinic convention [U]"
    )

    # Vitals schedule: IV during the infusion; after the infusion ends (IV) or the dose (IM, oral)
    iv_vitals_every_minutes_during: int = _setting(
        10,
        "BP every 10 min during the infusion, Emory practice (reference §3, §10 #14) [U default]",
    )
    post_dose_vitals_every_minutes: int = _setting(
        15, "BP every 15 min after an infusion, Emory practice (reference §3, §10 #14) [U default]"
    )
    post_dose_vitals_for_minutes: int = _setting(
        60, "Readings for 60 min after the infusion or dose, clinic convention (reference §3) [U]"
    )

    # Discharge
    esketamine_min_observation_minutes: int = _setting(
        120, "Spravato boxed warning and REMS: observe >=2 h from administration [V]"
    )
    racemic_min_observation_minutes: int = _setting(
        30, "Racemic ketamine: observe 30-60+ min after the dose/infusion ends (reference §3) [U]"
    )

    # IV dosing limits
    iv_max_dose_mg_per_kg: Decimal = _setting(
        Decimal("2"), "Upper IV dose limit, clinic convention; usual 0.5-1 mg/kg (ASKP) [U]"
    )
    iv_min_weight_kg: Decimal = _setting(
        Decimal("20"), "Plausible adult weight range for a dose calculation, clinic convention [U]"
    )
    iv_max_weight_kg: Decimal = _setting(
        Decimal("350"), "Plausible adult weight range for a dose calculation, clinic convention [U]"
    )

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidInput(f"setting {item.name} must be a whole number >= 0")
            elif isinstance(value, bool) or not isinstance(value, Decimal) or value <= 0:
                raise InvalidInput(f"setting {item.name} must be a positive Decimal")
        self._check_range("madrs_remission_max", 0, 60)
        self._check_range("gad7_remission_max", 0, 21)
        self._check_range("pcl5_probable_ptsd_min_total", 31, 33)
        self._check_range("bprs_emergent_psychosis_item_min", 2, 7)
        # The label minimum cannot be shortened; a clinic may observe longer.
        self._check_range("esketamine_min_observation_minutes", 120, 24 * 60)
        self._check_range("iv_vitals_every_minutes_during", 1, 60)
        self._check_range("post_dose_vitals_every_minutes", 1, 60)
        self._check_order(
            "pre_dose_review_systolic_above_mmhg", "pre_dose_hold_systolic_at_or_above_mmhg"
        )
        self._check_order(
            "pre_dose_review_diastolic_above_mmhg", "pre_dose_hold_diastolic_at_or_above_mmhg"
        )
        self._check_order("alert_bradycardia_below_bpm", "alert_tachycardia_above_bpm")
        self._check_order(
            "alert_hypotension_systolic_below_mmhg", "alert_hypertension_systolic_at_or_above_mmhg"
        )
        self._check_order("iv_min_weight_kg", "iv_max_weight_kg")

    def _check_range(self, name: str, low: int, high: int) -> None:
        value = getattr(self, name)
        if not low <= value <= high:
            raise InvalidInput(f"setting {name} must be between {low} and {high}, got {value}")

    def _check_order(self, lower: str, higher: str) -> None:
        if getattr(self, lower) >= getattr(self, higher):
            raise InvalidInput(f"setting {lower} must be below {higher}")

    @classmethod
    def source_of(cls, name: str) -> str:
        """The published source or convention behind the setting ``name``."""
        for item in fields(cls):
            if item.name == name:
                return str(item.metadata["source"])
        raise InvalidInput(f"unknown setting {name!r}")


DEFAULT_SETTINGS = ClinicalSettings()


def resolve(settings: ClinicalSettings | None) -> ClinicalSettings:
    """Return ``settings`` or the published defaults; refuse anything else."""
    if settings is None:
        return DEFAULT_SETTINGS
    if not isinstance(settings, ClinicalSettings):
        raise InvalidInput("settings must be a ClinicalSettings instance")
    return settings
