"""Session safety: the pre-dose gate, vital-sign alerts, the reading schedule and discharge.

Thresholds are ``ClinicalSettings`` fields (each names its source); the esketamine figures come
from the Spravato label and REMS, the racemic ketamine figures are clinic conventions
(reference §3, §10 rules 3-5 and 14). Times are passed in; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from types import MappingProxyType

from ketaclinic.clinical.errors import InvalidInput
from ketaclinic.clinical.results import Alert, AlertSeverity, Gate, GateStatus, Reason
from ketaclinic.clinical.settings import ClinicalSettings, resolve
from ketaclinic.clinical.treatments import Treatment, get_treatment
from ketaclinic.clinical.validation import (
    require_aware,
    require_bool,
    require_minutes,
    require_number,
)

__all__ = [
    "ESKETAMINE_BP_CHECK_MINUTES",
    "PLAUSIBLE_RANGES",
    "VitalsReading",
    "discharge_check",
    "pre_dose_check",
    "vitals_alerts",
    "vitals_due",
]

# Plausibility limits that catch typing and device errors; not clinical thresholds [U].
PLAUSIBLE_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "systolic_mmhg": (40, 300),
        "diastolic_mmhg": (20, 200),
        "heart_rate_bpm": (20, 300),
        "spo2_pct": (50, 100),
        "respiratory_rate": (0, 80),
    }
)

# field -> (plain name, unit as written after the number)
_LABELS = {
    "systolic_mmhg": ("Systolic BP", " mmHg"),
    "diastolic_mmhg": ("Diastolic BP", " mmHg"),
    "heart_rate_bpm": ("Heart rate", " bpm"),
    "spo2_pct": ("SpO2", "%"),
    "respiratory_rate": ("Respiratory rate", "/min"),
}

# Re-check BP about 40 min after an esketamine dose, at Cmax (Spravato PI §2; reference §3) [V].
ESKETAMINE_BP_CHECK_MINUTES = 40


def _check_vital(name: str, value: object) -> float | None:
    if value is None:
        return None
    number = require_number(value, name)
    low, high = PLAUSIBLE_RANGES[name]
    if not low <= number <= high:
        label, unit = _LABELS[name]
        raise InvalidInput(
            f"{name}: {label} {_show(number)}{unit} is not plausible "
            f"(expected {_show(low)}-{_show(high)}{unit}); re-measure"
        )
    return number


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class VitalsReading:
    """One set of vital signs; any may be missing. Impossible values raise ``InvalidInput``."""

    systolic_mmhg: float | None = None
    diastolic_mmhg: float | None = None
    heart_rate_bpm: float | None = None
    spo2_pct: float | None = None
    respiratory_rate: float | None = None  # breaths per minute

    def __post_init__(self) -> None:
        for item in fields(self):
            _check_vital(item.name, getattr(self, item.name))
        if (
            self.systolic_mmhg is not None
            and self.diastolic_mmhg is not None
            and self.systolic_mmhg <= self.diastolic_mmhg
        ):
            raise InvalidInput(
                f"systolic_mmhg {_show(self.systolic_mmhg)} must be above diastolic_mmhg "
                f"{_show(self.diastolic_mmhg)}; re-measure"
            )


def _source(setting: str, treatment: Treatment) -> str:
    source = ClinicalSettings.source_of(setting)
    if treatment.is_esketamine:
        return source
    return f"Clinic default for racemic ketamine, after: {source}"


def pre_dose_check(
    *,
    treatment: str,
    systolic_mmhg: float,
    diastolic_mmhg: float,
    heart_rate_bpm: float | None = None,
    spo2_pct: float | None = None,
    settings: ClinicalSettings | None = None,
) -> Gate:
    """Decide whether a dose may be given: ``proceed``, ``review`` or ``hold``.

    Defaults: systolic > 140 or diastolic > 90 mmHg -> review (Spravato PI §5.6); systolic
    >= 180 or diastolic >= 110 -> hold; heart rate > 110 -> review; SpO2 < 92% -> hold. Blood
    pressure is required before every dose (Spravato PI §2) [V]. Impossible values raise
    ``InvalidInput``.
    """
    chosen = get_treatment(treatment)
    config = resolve(settings)
    if systolic_mmhg is None or diastolic_mmhg is None:
        raise InvalidInput("systolic_mmhg and diastolic_mmhg are required before every dose")
    reading = VitalsReading(
        systolic_mmhg=systolic_mmhg,
        diastolic_mmhg=diastolic_mmhg,
        heart_rate_bpm=heart_rate_bpm,
        spo2_pct=spo2_pct,
    )
    reasons: list[Reason] = []

    def blood_pressure(field: str, value: float, review_above: str, hold_from: str) -> None:
        label, unit = _LABELS[field]
        short = field.removesuffix("_mmhg")
        hold_at = getattr(config, hold_from)
        review_over = getattr(config, review_above)
        if value >= hold_at:
            reasons.append(
                Reason(
                    f"{short}_hold",
                    f"{label} {_show(value)}{unit} is at or above {hold_at}{unit}: hold the dose",
                    _source(hold_from, chosen),
                    "hold",
                )
            )
        elif value > review_over:
            reasons.append(
                Reason(
                    f"{short}_review",
                    f"{label} {_show(value)}{unit} is above {review_over}{unit}: a prescriber "
                    "must weigh benefit and risk before dosing",
                    _source(review_above, chosen),
                    "review",
                )
            )

    blood_pressure(
        "systolic_mmhg",
        require_number(systolic_mmhg, "systolic_mmhg"),
        "pre_dose_review_systolic_above_mmhg",
        "pre_dose_hold_systolic_at_or_above_mmhg",
    )
    blood_pressure(
        "diastolic_mmhg",
        require_number(diastolic_mmhg, "diastolic_mmhg"),
        "pre_dose_review_diastolic_above_mmhg",
        "pre_dose_hold_diastolic_at_or_above_mmhg",
    )
    if (
        reading.heart_rate_bpm is not None
        and reading.heart_rate_bpm > config.pre_dose_review_heart_rate_above_bpm
    ):
        reasons.append(
            Reason(
                "heart_rate_review",
                f"Heart rate {_show(reading.heart_rate_bpm)} bpm is above "
                f"{config.pre_dose_review_heart_rate_above_bpm} bpm: a prescriber must review "
                "before dosing",
                _source("pre_dose_review_heart_rate_above_bpm", chosen),
                "review",
            )
        )
    if reading.spo2_pct is not None and reading.spo2_pct < config.pre_dose_hold_spo2_below_pct:
        reasons.append(
            Reason(
                "spo2_hold",
                f"SpO2 {_show(reading.spo2_pct)}% is below "
                f"{config.pre_dose_hold_spo2_below_pct}%: hold the dose",
                _source("pre_dose_hold_spo2_below_pct", chosen),
                "hold",
            )
        )
    status: GateStatus
    if any(reason.severity == "hold" for reason in reasons):
        status = "hold"
    elif reasons:
        status = "review"
    else:
        status = "proceed"
    return Gate(status=status, reasons=tuple(reasons))


def vitals_alerts(
    *,
    treatment: str,
    reading: VitalsReading,
    baseline: VitalsReading | None = None,
    settings: ClinicalSettings | None = None,
) -> tuple[Alert, ...]:
    """Alerts for one reading taken during or after a dose (missing values raise nothing).

    Defaults: systolic >= 180 or diastolic >= 110 ``hypertension``; systolic < 90
    ``hypotension``; heart rate > 120 ``tachycardia``, < 50 ``bradycardia``; SpO2 < 92%
    ``desaturation``; respiratory rate < 10 ``low_respiratory_rate``. When ``baseline`` is given
    the message also shows the pre-dose value.
    """
    chosen = get_treatment(treatment)
    config = resolve(settings)
    if not isinstance(reading, VitalsReading):
        raise InvalidInput("reading must be a VitalsReading")
    if baseline is not None and not isinstance(baseline, VitalsReading):
        raise InvalidInput("baseline must be a VitalsReading or None")

    def describe(field: str) -> str:
        label, unit = _LABELS[field]
        value = getattr(reading, field)
        text = f"{label} {_show(value)}{unit}"
        before = None if baseline is None else getattr(baseline, field)
        if before is not None:
            text += f" (baseline {_show(before)}{unit})"
        return text

    alerts: list[Alert] = []
    systolic, diastolic = reading.systolic_mmhg, reading.diastolic_mmhg
    high: list[str] = []
    if systolic is not None and systolic >= config.alert_hypertension_systolic_at_or_above_mmhg:
        high.append(
            f"{describe('systolic_mmhg')} is at or above "
            f"{config.alert_hypertension_systolic_at_or_above_mmhg} mmHg"
        )
    if diastolic is not None and diastolic >= config.alert_hypertension_diastolic_at_or_above_mmhg:
        high.append(
            f"{describe('diastolic_mmhg')} is at or above "
            f"{config.alert_hypertension_diastolic_at_or_above_mmhg} mmHg"
        )
    if high:
        alerts.append(
            Alert(
                "hypertension",
                "; ".join(high) + ". Check for symptoms of hypertensive crisis or encephalopathy.",
                "urgent",
                _source("alert_hypertension_systolic_at_or_above_mmhg", chosen),
            )
        )
    checks: tuple[tuple[str, str, bool, str, AlertSeverity, str], ...] = (
        (
            "hypotension",
            "systolic_mmhg",
            systolic is not None and systolic < config.alert_hypotension_systolic_below_mmhg,
            f"below {config.alert_hypotension_systolic_below_mmhg} mmHg",
            "warning",
            "alert_hypotension_systolic_below_mmhg",
        ),
        (
            "tachycardia",
            "heart_rate_bpm",
            reading.heart_rate_bpm is not None
            and reading.heart_rate_bpm > config.alert_tachycardia_above_bpm,
            f"above {config.alert_tachycardia_above_bpm} bpm",
            "warning",
            "alert_tachycardia_above_bpm",
        ),
        (
            "bradycardia",
            "heart_rate_bpm",
            reading.heart_rate_bpm is not None
            and reading.heart_rate_bpm < config.alert_bradycardia_below_bpm,
            f"below {config.alert_bradycardia_below_bpm} bpm",
            "warning",
            "alert_bradycardia_below_bpm",
        ),
        (
            "desaturation",
            "spo2_pct",
            reading.spo2_pct is not None and reading.spo2_pct < config.alert_desaturation_below_pct,
            f"below {config.alert_desaturation_below_pct}%",
            "urgent",
            "alert_desaturation_below_pct",
        ),
        (
            "low_respiratory_rate",
            "respiratory_rate",
            reading.respiratory_rate is not None
            and reading.respiratory_rate < config.alert_low_respiratory_rate_below_per_min,
            f"below {config.alert_low_respiratory_rate_below_per_min}/min",
            "urgent",
            "alert_low_respiratory_rate_below_per_min",
        ),
    )
    for code, field, triggered, limit, severity, setting in checks:
        if triggered:
            alerts.append(
                Alert(
                    code,
                    f"{describe(field)} is {limit}",
                    severity,
                    _source(setting, chosen),
                )
            )
    return tuple(alerts)


def _infusion_minutes(chosen: Treatment, infusion_minutes: object) -> int | None:
    if chosen.route == "iv":
        if infusion_minutes is None:
            raise InvalidInput("infusion_minutes is required for an IV infusion")
        return require_minutes(infusion_minutes, "infusion_minutes")
    if infusion_minutes is not None:
        raise InvalidInput(f"infusion_minutes applies only to IV infusions, not {chosen.code}")
    return None


def vitals_due(
    *,
    treatment: str,
    dose_started_at: datetime,
    infusion_minutes: int | None = None,
    settings: ClinicalSettings | None = None,
) -> list[datetime]:
    """When vital signs are due, in time order.

    IV: at the start and every 10 min during the infusion, at its end, then every 15 min for
    60 min after it (Emory practice; configurable) [U defaults]. Esketamine: at the dose, at
    40 min and at the end of the minimum observation, 120 min (Spravato PI §2, REMS) [V].
    IM and oral: at the dose, then on the post-infusion cadence (clinic convention) [U].
    """
    chosen = get_treatment(treatment)
    config = resolve(settings)
    started = require_aware(dose_started_at, "dose_started_at")
    infusion = _infusion_minutes(chosen, infusion_minutes)
    minutes: list[int]
    if chosen.is_esketamine:
        minutes = [0, ESKETAMINE_BP_CHECK_MINUTES, config.esketamine_min_observation_minutes]
    else:
        end = infusion or 0
        minutes = [*range(0, end, config.iv_vitals_every_minutes_during), end]
        step = config.post_dose_vitals_every_minutes
        minutes += [
            end + after for after in range(step, config.post_dose_vitals_for_minutes + 1, step)
        ]
    return [started + timedelta(minutes=minute) for minute in sorted(set(minutes))]


# (argument, reason code, message when unmet, source), in the order reasons are reported.
_DISCHARGE_CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "sedation_resolved",
        "sedation_not_resolved",
        "Sedation has not resolved",
        "Spravato boxed warning and REMS [V]; Ketalar label: discharge after full recovery [V]",
    ),
    (
        "dissociation_resolved",
        "dissociation_not_resolved",
        "Dissociation has not resolved",
        "Spravato boxed warning and REMS: dissociation resolved before discharge [V]",
    ),
    (
        "vitals_acceptable",
        "vitals_not_acceptable",
        "Vital signs are not yet acceptable",
        "REMS Patient Monitoring Form: vital signs acceptable before completion [V]",
    ),
    (
        "escort_present",
        "no_escort",
        "No responsible adult escort is present",
        "Ketalar label: leave with a responsible adult; Spravato PI §17: arrange transport [V]",
    ),
)


def discharge_check(
    *,
    treatment: str,
    first_dose_at: datetime,
    now: datetime,
    sedation_resolved: bool,
    dissociation_resolved: bool,
    vitals_acceptable: bool,
    escort_present: bool,
    infusion_minutes: int | None = None,
    settings: ClinicalSettings | None = None,
) -> Gate:
    """Decide whether the patient may leave: ``proceed`` or ``hold`` with one reason per gap.

    Esketamine: never before 120 min from the first device (boxed warning, REMS) [V].
    Other treatments: 30 min (configurable) from ``first_dose_at``, plus ``infusion_minutes``
    for an IV infusion [U]. All of sedation resolved, dissociation resolved, acceptable vital
    signs and an escort present are required (REMS goals; Ketalar label) [V].
    """
    chosen = get_treatment(treatment)
    config = resolve(settings)
    first = require_aware(first_dose_at, "first_dose_at")
    current = require_aware(now, "now")
    if current < first:
        raise InvalidInput("now is before first_dose_at")
    infusion = _infusion_minutes(chosen, infusion_minutes)

    if chosen.is_esketamine:
        minimum = config.esketamine_min_observation_minutes
        setting = "esketamine_min_observation_minutes"
        clock = "the first device"
    else:
        minimum = config.racemic_min_observation_minutes + (infusion or 0)
        setting = "racemic_min_observation_minutes"
        clock = "the start of the dose"
    ready_at = first + timedelta(minutes=minimum)

    reasons: list[Reason] = []
    if current < ready_at:
        remaining = ready_at - current
        remaining_minutes = -(-remaining // timedelta(minutes=1))  # round up
        reasons.append(
            Reason(
                "observation_incomplete",
                f"Minimum observation of {minimum} min from {clock} is not complete: "
                f"{remaining_minutes} min remain (earliest {ready_at.isoformat()})",
                ClinicalSettings.source_of(setting),
                "hold",
            )
        )
    answers = {
        "sedation_resolved": sedation_resolved,
        "dissociation_resolved": dissociation_resolved,
        "vitals_acceptable": vitals_acceptable,
        "escort_present": escort_present,
    }
    for field, code, message, source in _DISCHARGE_CONDITIONS:
        if not require_bool(answers[field], field):
            reasons.append(Reason(code, message, source, "hold"))
    return Gate(status="hold" if reasons else "proceed", reasons=tuple(reasons))
