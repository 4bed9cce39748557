"""pre_dose_check, vitals_alerts, vitals_due and discharge_check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ketaclinic.clinical import (
    ClinicalSettings,
    InvalidInput,
    VitalsReading,
    discharge_check,
    pre_dose_check,
    vitals_alerts,
    vitals_due,
)

ALL_TREATMENTS = (
    "iv_ketamine",
    "im_ketamine",
    "oral_ketamine",
    "esketamine_trd",
    "esketamine_mdsi",
)
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# ---------------------------------------------------------------- pre-dose gate


@pytest.mark.parametrize(
    ("systolic", "diastolic", "status", "codes"),
    [
        (120, 80, "proceed", ()),
        (140, 90, "proceed", ()),
        (141, 80, "review", ("systolic_review",)),
        (120, 91, "review", ("diastolic_review",)),
        (179, 109, "review", ("systolic_review", "diastolic_review")),
        (180, 80, "hold", ("systolic_hold",)),
        (120, 110, "hold", ("diastolic_hold",)),
        (185, 95, "hold", ("systolic_hold", "diastolic_review")),
        (200, 120, "hold", ("systolic_hold", "diastolic_hold")),
    ],
)
@pytest.mark.parametrize("treatment", ALL_TREATMENTS)
def test_pre_dose_blood_pressure(
    systolic: int, diastolic: int, status: str, codes: tuple[str, ...], treatment: str
) -> None:
    gate = pre_dose_check(treatment=treatment, systolic_mmhg=systolic, diastolic_mmhg=diastolic)
    assert gate.status == status
    assert gate.codes == codes
    assert gate.proceed is (status == "proceed")
    for reason in gate.reasons:
        assert reason.severity == ("hold" if reason.code.endswith("hold") else "review")


@pytest.mark.parametrize(
    ("heart_rate", "spo2", "status", "codes"),
    [
        (110, 92, "proceed", ()),
        (111, 92, "review", ("heart_rate_review",)),
        (110, 91, "hold", ("spo2_hold",)),
        (130, 88, "hold", ("heart_rate_review", "spo2_hold")),
        (None, None, "proceed", ()),
    ],
)
def test_pre_dose_heart_rate_and_spo2(
    heart_rate: int | None, spo2: int | None, status: str, codes: tuple[str, ...]
) -> None:
    gate = pre_dose_check(
        treatment="iv_ketamine",
        systolic_mmhg=120,
        diastolic_mmhg=80,
        heart_rate_bpm=heart_rate,
        spo2_pct=spo2,
    )
    assert (gate.status, gate.codes) == (status, codes)


def test_pre_dose_reasons_name_the_value_and_cite_the_source() -> None:
    esk = pre_dose_check(treatment="esketamine_trd", systolic_mmhg=150, diastolic_mmhg=80)
    reason = esk.reasons[0]
    assert "Systolic BP 150 mmHg is above 140 mmHg" in reason.message
    assert "Spravato PI §5.6" in reason.source
    iv = pre_dose_check(treatment="iv_ketamine", systolic_mmhg=150, diastolic_mmhg=80)
    assert iv.reasons[0].source.startswith("Clinic default for racemic ketamine")
    hold = pre_dose_check(
        treatment="iv_ketamine", systolic_mmhg=120, diastolic_mmhg=80, spo2_pct=90
    )
    assert hold.reasons[0].message == "SpO2 90% is below 92%: hold the dose"
    assert "[U]" in hold.reasons[0].source


def test_pre_dose_thresholds_are_configurable() -> None:
    config = ClinicalSettings(
        pre_dose_review_systolic_above_mmhg=150,
        pre_dose_hold_systolic_at_or_above_mmhg=170,
        pre_dose_review_heart_rate_above_bpm=100,
        pre_dose_hold_spo2_below_pct=94,
    )
    gate = pre_dose_check(
        treatment="iv_ketamine", systolic_mmhg=145, diastolic_mmhg=80, settings=config
    )
    assert gate.status == "proceed"
    gate = pre_dose_check(
        treatment="iv_ketamine",
        systolic_mmhg=170,
        diastolic_mmhg=80,
        heart_rate_bpm=101,
        spo2_pct=93,
        settings=config,
    )
    assert gate.codes == ("systolic_hold", "heart_rate_review", "spo2_hold")


def test_decimal_readings_are_shown_as_typed() -> None:
    gate = pre_dose_check(treatment="iv_ketamine", systolic_mmhg=140.5, diastolic_mmhg=80)
    assert gate.reasons[0].message.startswith("Systolic BP 140.5 mmHg")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"systolic_mmhg": 80, "diastolic_mmhg": 90}, "systolic_mmhg 80 must be above diastolic"),
        ({"systolic_mmhg": 90, "diastolic_mmhg": 90}, "must be above diastolic"),
        (
            {"systolic_mmhg": 400, "diastolic_mmhg": 90},
            "systolic_mmhg: Systolic BP 400 mmHg is not",
        ),
        ({"systolic_mmhg": 120, "diastolic_mmhg": 10}, "diastolic_mmhg"),
        ({"systolic_mmhg": 120, "diastolic_mmhg": 80, "heart_rate_bpm": 10}, "heart_rate_bpm"),
        ({"systolic_mmhg": 120, "diastolic_mmhg": 80, "spo2_pct": 101}, "spo2_pct"),
        ({"systolic_mmhg": 120, "diastolic_mmhg": 80, "spo2_pct": 30}, "spo2_pct"),
        ({"systolic_mmhg": True, "diastolic_mmhg": 80}, "systolic_mmhg must be a number"),
        ({"systolic_mmhg": "120", "diastolic_mmhg": 80}, "systolic_mmhg must be a number"),
        ({"systolic_mmhg": float("nan"), "diastolic_mmhg": 80}, "finite"),
        ({"systolic_mmhg": None, "diastolic_mmhg": 80}, "required before every dose"),
    ],
)
def test_impossible_pre_dose_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        pre_dose_check(treatment="iv_ketamine", **kwargs)  # type: ignore[arg-type]


def test_pre_dose_unknown_treatment() -> None:
    with pytest.raises(InvalidInput, match="unknown treatment"):
        pre_dose_check(treatment="spravato", systolic_mmhg=120, diastolic_mmhg=80)


# ---------------------------------------------------------------- alerts


@pytest.mark.parametrize(
    ("reading", "codes"),
    [
        (VitalsReading(120, 80, 80, 98, 14), ()),
        (VitalsReading(180, 80), ("hypertension",)),
        (VitalsReading(179, 80), ()),
        (VitalsReading(150, 110), ("hypertension",)),
        (VitalsReading(150, 109), ()),
        (VitalsReading(89, 60), ("hypotension",)),
        (VitalsReading(90, 60), ()),
        (VitalsReading(heart_rate_bpm=121), ("tachycardia",)),
        (VitalsReading(heart_rate_bpm=120), ()),
        (VitalsReading(heart_rate_bpm=49), ("bradycardia",)),
        (VitalsReading(heart_rate_bpm=50), ()),
        (VitalsReading(spo2_pct=91), ("desaturation",)),
        (VitalsReading(spo2_pct=92), ()),
        (VitalsReading(respiratory_rate=9), ("low_respiratory_rate",)),
        (VitalsReading(respiratory_rate=0), ("low_respiratory_rate",)),
        (VitalsReading(respiratory_rate=10), ()),
        (VitalsReading(), ()),
        (
            VitalsReading(85, 50, 45, 88, 6),
            ("hypotension", "bradycardia", "desaturation", "low_respiratory_rate"),
        ),
        (VitalsReading(190, 115, 130), ("hypertension", "tachycardia")),
    ],
)
@pytest.mark.parametrize("treatment", ["iv_ketamine", "esketamine_trd"])
def test_alert_boundaries(reading: VitalsReading, codes: tuple[str, ...], treatment: str) -> None:
    alerts = vitals_alerts(treatment=treatment, reading=reading)
    assert tuple(alert.code for alert in alerts) == codes
    for alert in alerts:
        assert alert.source and alert.message


def test_alert_severities() -> None:
    alerts = vitals_alerts(treatment="iv_ketamine", reading=VitalsReading(190, 100, 45, 85, 8))
    assert {a.code: a.severity for a in alerts} == {
        "hypertension": "urgent",
        "bradycardia": "warning",
        "desaturation": "urgent",
        "low_respiratory_rate": "urgent",
    }
    low = vitals_alerts(treatment="iv_ketamine", reading=VitalsReading(85, 50, 125))
    assert {a.code: a.severity for a in low} == {"hypotension": "warning", "tachycardia": "warning"}


def test_hypertension_names_both_values_and_the_baseline() -> None:
    (alert,) = vitals_alerts(
        treatment="esketamine_trd",
        reading=VitalsReading(185, 112),
        baseline=VitalsReading(135, 85),
    )
    assert "Systolic BP 185 mmHg (baseline 135 mmHg)" in alert.message
    assert "Diastolic BP 112 mmHg (baseline 85 mmHg)" in alert.message
    (spo2,) = vitals_alerts(
        treatment="iv_ketamine", reading=VitalsReading(spo2_pct=90), baseline=VitalsReading(120, 80)
    )
    assert spo2.message == "SpO2 90% is below 92%"


def test_alert_thresholds_are_configurable() -> None:
    config = ClinicalSettings(alert_tachycardia_above_bpm=100, alert_desaturation_below_pct=94)
    alerts = vitals_alerts(
        treatment="iv_ketamine",
        reading=VitalsReading(heart_rate_bpm=101, spo2_pct=93),
        settings=config,
    )
    assert tuple(a.code for a in alerts) == ("tachycardia", "desaturation")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reading": {"systolic_mmhg": 120}}, "reading must be a VitalsReading"),
        ({"reading": VitalsReading(), "baseline": (120, 80)}, "baseline must be a VitalsReading"),
    ],
)
def test_alert_argument_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        vitals_alerts(treatment="iv_ketamine", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"systolic_mmhg": 70, "diastolic_mmhg": 80}, "must be above diastolic"),
        ({"respiratory_rate": -1}, "respiratory_rate"),
        ({"respiratory_rate": 90}, "respiratory_rate"),
        ({"heart_rate_bpm": 301}, "heart_rate_bpm"),
        ({"spo2_pct": False}, "spo2_pct must be a number"),
    ],
)
def test_impossible_readings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        VitalsReading(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- schedule


def offsets(times: list[datetime]) -> list[int]:
    return [int((t - T0).total_seconds() // 60) for t in times]


def test_iv_schedule_every_10_during_then_every_15_for_60() -> None:
    due = vitals_due(treatment="iv_ketamine", dose_started_at=T0, infusion_minutes=40)
    assert offsets(due) == [0, 10, 20, 30, 40, 55, 70, 85, 100]
    assert all(t.tzinfo is UTC for t in due)


def test_iv_schedule_includes_the_end_of_an_uneven_infusion() -> None:
    due = vitals_due(treatment="iv_ketamine", dose_started_at=T0, infusion_minutes=45)
    assert offsets(due) == [0, 10, 20, 30, 40, 45, 60, 75, 90, 105]


def test_iv_schedule_is_configurable() -> None:
    config = ClinicalSettings(
        iv_vitals_every_minutes_during=5,
        post_dose_vitals_every_minutes=30,
        post_dose_vitals_for_minutes=90,
    )
    due = vitals_due(
        treatment="iv_ketamine", dose_started_at=T0, infusion_minutes=20, settings=config
    )
    assert offsets(due) == [0, 5, 10, 15, 20, 50, 80, 110]


@pytest.mark.parametrize("treatment", ["esketamine_trd", "esketamine_mdsi"])
def test_esketamine_schedule(treatment: str) -> None:
    assert offsets(vitals_due(treatment=treatment, dose_started_at=T0)) == [0, 40, 120]
    longer = ClinicalSettings(esketamine_min_observation_minutes=150)
    due = vitals_due(treatment=treatment, dose_started_at=T0, settings=longer)
    assert offsets(due) == [0, 40, 150]


@pytest.mark.parametrize("treatment", ["im_ketamine", "oral_ketamine"])
def test_im_and_oral_schedule(treatment: str) -> None:
    assert offsets(vitals_due(treatment=treatment, dose_started_at=T0)) == [0, 15, 30, 45, 60]


def test_schedule_keeps_the_callers_timezone() -> None:
    eastern = timezone(timedelta(hours=-5))
    start = datetime(2025, 3, 3, 9, 0, tzinfo=eastern)
    due = vitals_due(treatment="esketamine_trd", dose_started_at=start)
    assert due[1] == datetime(2025, 3, 3, 9, 40, tzinfo=eastern)
    assert all(t.tzinfo is eastern for t in due)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"treatment": "iv_ketamine"}, "infusion_minutes is required"),
        (
            {"treatment": "iv_ketamine", "infusion_minutes": 0},
            "infusion_minutes must be at least 1",
        ),
        (
            {"treatment": "iv_ketamine", "infusion_minutes": True},
            "infusion_minutes must be a whole",
        ),
        ({"treatment": "esketamine_trd", "infusion_minutes": 40}, "applies only to IV"),
        ({"treatment": "im_ketamine", "infusion_minutes": 40}, "applies only to IV"),
        (
            {"treatment": "esketamine_trd", "dose_started_at": datetime(2025, 3, 3, 9)},
            "timezone-aware",
        ),
        ({"treatment": "esketamine_trd", "dose_started_at": T0.date()}, "must be a datetime"),
        ({"treatment": "ketamine"}, "unknown treatment"),
    ],
)
def test_schedule_errors(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {"dose_started_at": T0, **kwargs}
    with pytest.raises(InvalidInput, match=match):
        vitals_due(**arguments)  # type: ignore[arg-type]


# ---------------------------------------------------------------- discharge

READY: dict[str, Any] = {
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "vitals_acceptable": True,
    "escort_present": True,
}


@pytest.mark.parametrize("treatment", ["esketamine_trd", "esketamine_mdsi"])
def test_esketamine_never_ready_before_120_minutes(treatment: str) -> None:
    early = discharge_check(treatment=treatment, first_dose_at=T0, now=minutes(119), **READY)
    assert early.status == "hold"
    assert early.codes == ("observation_incomplete",)
    assert "120 min from the first device" in early.reasons[0].message
    assert "1 min remain" in early.reasons[0].message
    on_time = discharge_check(treatment=treatment, first_dose_at=T0, now=minutes(120), **READY)
    assert on_time.status == "proceed"
    assert on_time.reasons == ()


def test_racemic_minimum_does_not_shorten_esketamine() -> None:
    quick = ClinicalSettings(racemic_min_observation_minutes=0)
    gate = discharge_check(
        treatment="esketamine_trd", first_dose_at=T0, now=minutes(60), settings=quick, **READY
    )
    assert gate.status == "hold"
    with pytest.raises(InvalidInput, match="esketamine_min_observation_minutes"):
        ClinicalSettings(esketamine_min_observation_minutes=119)


def test_iv_minimum_is_30_minutes_after_the_infusion() -> None:
    def gate_at(elapsed: float) -> str:
        return discharge_check(
            treatment="iv_ketamine",
            first_dose_at=T0,
            now=minutes(elapsed),
            infusion_minutes=40,
            **READY,
        ).status

    assert gate_at(69) == "hold"
    assert gate_at(69.9) == "hold"
    assert gate_at(70) == "proceed"


@pytest.mark.parametrize("treatment", ["im_ketamine", "oral_ketamine"])
def test_other_routes_observe_30_minutes_from_the_dose(treatment: str) -> None:
    early = discharge_check(treatment=treatment, first_dose_at=T0, now=minutes(29), **READY)
    assert early.codes == ("observation_incomplete",)
    assert "from the start of the dose" in early.reasons[0].message
    late = discharge_check(treatment=treatment, first_dose_at=T0, now=minutes(30), **READY)
    assert late.status == "proceed"
    config = ClinicalSettings(racemic_min_observation_minutes=60)
    longer = discharge_check(
        treatment=treatment, first_dose_at=T0, now=minutes(45), settings=config, **READY
    )
    assert longer.status == "hold"


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        ("sedation_resolved", "sedation_not_resolved"),
        ("dissociation_resolved", "dissociation_not_resolved"),
        ("vitals_acceptable", "vitals_not_acceptable"),
        ("escort_present", "no_escort"),
    ],
)
def test_each_unmet_condition_gives_one_reason(condition: str, code: str) -> None:
    answers = {**READY, condition: False}
    gate = discharge_check(
        treatment="esketamine_trd", first_dose_at=T0, now=minutes(150), **answers
    )
    assert gate.status == "hold"
    assert gate.codes == (code,)
    assert gate.reasons[0].severity == "hold"
    assert gate.reasons[0].source


def test_every_unmet_condition_is_reported() -> None:
    gate = discharge_check(
        treatment="esketamine_mdsi",
        first_dose_at=T0,
        now=minutes(100.5),
        sedation_resolved=False,
        dissociation_resolved=False,
        vitals_acceptable=False,
        escort_present=False,
    )
    assert gate.codes == (
        "observation_incomplete",
        "sedation_not_resolved",
        "dissociation_not_resolved",
        "vitals_not_acceptable",
        "no_escort",
    )
    assert "20 min remain" in gate.reasons[0].message
    assert "2025-03-03T11:00:00+00:00" in gate.reasons[0].message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"now": minutes(-1)}, "now is before first_dose_at"),
        ({"now": datetime(2025, 3, 3, 12, 0)}, "now must be timezone-aware"),
        ({"first_dose_at": datetime(2025, 3, 3, 9, 0)}, "first_dose_at must be timezone-aware"),
        ({"escort_present": "yes"}, "escort_present must be yes or no"),
        ({"sedation_resolved": 1}, "sedation_resolved must be yes or no"),
        ({"infusion_minutes": 40}, "applies only to IV"),
        ({"treatment": "iv_ketamine"}, "infusion_minutes is required"),
        ({"treatment": "esketamine"}, "unknown treatment"),
    ],
)
def test_discharge_errors(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "treatment": "esketamine_trd",
        "first_dose_at": T0,
        "now": minutes(150),
        **READY,
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=match):
        discharge_check(**arguments)  # type: ignore[arg-type]
