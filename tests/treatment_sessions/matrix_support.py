"""What the authorization matrix (tests/test_authz_matrix.py) needs for the session pages
(issue 6): sessions in a given state for the own/other/missing scopes, request bodies, a
snapshot of session state and the effects a successful page write must have.

Kept here so the matrix itself only declares outcomes. Nothing here imports the matrix.
"""

from __future__ import annotations

from typing import Any

from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus as S
from ketaclinic.treatment_sessions.models import (
    NoteAmendment,
    NoteSignature,
    PreDoseCheck,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)
from tests.screening.matrix_support import _staff_of, _target_patients
from tests.treatment_sessions.builders import force_state

KEY = "treatment_session_pages"
# Targets: a session of the scope's patient in the named state, or an open vital-sign alert.
STATES = {
    "tsp_scheduled": S.SCHEDULED,
    "tsp_checked_in": S.CHECKED_IN,
    "tsp_gate_passed": S.GATE_PASSED,
    "tsp_dosing": S.DOSING,
    "tsp_observing": S.OBSERVING,
    "tsp_discharged": S.DISCHARGED,
    "tsp_signed": S.SIGNED,
}
TARGETS = {**{name: ("session_id",) for name in STATES}, "tsp_alert": ("alert_id",)}
FIXED_VALUES: dict[str, Any] = {}


def _session(patient: Any, world: Any, state: str) -> TreatmentSession:
    session = services.session_create(
        actor=_staff_of(patient, world), patient=patient, treatment="iv_ketamine",
        planned_dose_mg=35,
    )  # fmt: skip
    return force_state(world, session, state)


def _missing(model: type[Any]) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return last + 1000


def fill(target: str, scope: str, persona: str, world: Any, ctx: Any) -> None:
    own, other = _target_patients(world, persona)
    patient = own if scope == "own" else other
    if target == "tsp_alert":
        session = _session(patient, world, S.DOSING)
        _, alerts = services.session_record_vitals(
            actor=_staff_of(patient, world), session=session,
            data={"systolic_mmhg": 190, "diastolic_mmhg": 95},
        )  # fmt: skip
        ctx.values["alert_id"] = alerts[0].pk if scope != "missing" else _missing(VitalAlert)
        ctx.values["session_id"] = session.pk
    else:
        session = _session(patient, world, STATES[target])
        ctx.values["session_id"] = session.pk if scope != "missing" else _missing(TreatmentSession)
    ctx.patient = patient if scope != "missing" else None
    ctx.patient_id = patient.pk if scope != "missing" else None


def bodies() -> dict[str, Any]:
    return {
        "tsp_pre_dose_form": lambda ctx: {
            "weight_kg": "72.5",
            "systolic_mmhg": 128,
            "diastolic_mmhg": 78,
            "heart_rate_bpm": 72,
            "spo2_pct": 98,
            "fasting_confirmed": "on",
            "ride_home_confirmed": "on",
            "pregnancy_status": "not_pregnant",
        },  # fmt: skip
        "tsp_vitals_form": lambda ctx: {"systolic_mmhg": 124, "diastolic_mmhg": 78},
        "tsp_reason_form": lambda ctx: {"reason": "Patient unwell today"},
        "tsp_sign_form": lambda ctx: {"meaning": "Reviewed and approved"},
    }


def state() -> dict[str, Any]:
    return {
        "sessions": sorted(TreatmentSession.objects.values_list("pk", "status", "appointment_id")),
        "pre_dose": sorted(PreDoseCheck.objects.values_list("pk", "session_id")),
        "vitals": sorted(VitalSign.objects.values_list("pk", "session_id")),
        "alerts": sorted(VitalAlert.objects.values_list("pk", "acknowledged_by_id")),
        "signatures": sorted(NoteSignature.objects.values_list("pk", "session_id")),
        "amendments": sorted(NoteAmendment.objects.values_list("pk", "session_id")),
    }


def _only(before: dict, after: dict, *changed: str) -> None:
    for key in before[KEY]:
        if key not in changed:
            assert after[KEY][key] == before[KEY][key], key


def ctx_value(ctx: Any) -> int:
    return int(ctx.values["session_id"])


def _status_now(expected: str) -> Any:
    def check(before: dict, after: dict, ctx: Any, response: Any) -> None:
        statuses = {pk: status for pk, status, _ in after[KEY]["sessions"]}
        assert statuses[ctx_value(ctx)] == expected
        _only(before, after, "sessions")

    return check


def _one_new(key: str) -> Any:
    def check(before: dict, after: dict, ctx: Any, response: Any) -> None:
        new = sorted(set(after[KEY][key]) - set(before[KEY][key]))
        assert len(new) == 1 and new[0][1] == ctx_value(ctx), new
        _only(before, after, key, "alerts")

    return check


def _session_created(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = sorted(set(after[KEY]["sessions"]) - set(before[KEY]["sessions"]))
    assert len(new) == 1 and new[0][2] == int(ctx.values["appointment_id"]), new
    assert new[0][1] == S.SCHEDULED
    _only(before, after, "sessions")


def effects() -> dict[str, Any]:
    def signed(before: dict, after: dict, ctx: Any, response: Any) -> None:
        statuses = {pk: status for pk, status, _ in after[KEY]["sessions"]}
        assert statuses[ctx_value(ctx)] == S.SIGNED
        new = sorted(set(after[KEY]["signatures"]) - set(before[KEY]["signatures"]))
        assert [row[1] for row in new] == [ctx_value(ctx)]
        _only(before, after, "sessions", "signatures")

    return {
        "tsp_session_created": _session_created,
        "tsp_checked_in": _status_now(S.CHECKED_IN),
        "tsp_cancelled": _status_now(S.CANCELLED),
        "tsp_pre_dose_recorded": _one_new("pre_dose"),
        "tsp_vitals_recorded": _one_new("vitals"),
        "tsp_signed": signed,
    }
