"""What the authorization matrix (tests/test_authz_matrix.py) needs for the treatment session API
(issue 6): a session in the state each operation needs, request bodies, a snapshot of the
session tables and the effect each successful write must have.

Sessions are created directly (not through the services) so setup is quick and records no
audit rows; the matrix then checks the one row the request itself writes. The second-person
check, the dose drawn from the ledger and the REMS submission are refused by the service's own
checks for the roles that may call them (no such checker, no such storage location, an IV
session has no REMS form), so no witness password is ever hashed here; their successes are
tested in tests/treatment_sessions/test_api.py. Nothing here imports the matrix.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from ketaclinic.core import clock
from ketaclinic.patients.models import Patient
from ketaclinic.treatment_sessions.choices import SessionStatus as S
from ketaclinic.treatment_sessions.models import (
    AdverseEvent,
    DischargeAssessment,
    DissociationScore,
    EsketamineDevice,
    InfusionOrder,
    Intervention,
    NoteAmendment,
    NoteSignature,
    PreDoseCheck,
    RemsSubmission,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)

# Targets handled here: a session in a given state (and an alert on it).
TARGETS = {
    "ts_scheduled": ("session_id",),
    "ts_checked_in": ("session_id",),
    "ts_review": ("session_id",),
    "ts_gate_passed": ("session_id",),
    "ts_esk_dosing": ("session_id",),
    "ts_esk_observing": ("session_id",),
    "ts_alert": ("session_id", "alert_id"),
    "ts_discharged": ("session_id",),
    "ts_signed": ("session_id",),
}
FIXED_VALUES: dict[str, Any] = {}
KEY = "treatment_sessions_api"  # this module's key in the matrix's state()

_STATE_OF = {
    "ts_scheduled": S.SCHEDULED,
    "ts_checked_in": S.CHECKED_IN,
    "ts_review": S.CHECKED_IN,
    "ts_gate_passed": S.GATE_PASSED,
    "ts_esk_dosing": S.DOSING,
    "ts_esk_observing": S.OBSERVING,
    "ts_alert": S.CHECKED_IN,
    "ts_discharged": S.DISCHARGED,
    "ts_signed": S.SIGNED,
}
_PRE_DOSE = {
    "weight_kg": "72.5",
    "systolic_mmhg": 128,
    "diastolic_mmhg": 78,
    "heart_rate_bpm": 72,
    "spo2_pct": 98,
    "fasting_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_status": "not_pregnant",
}
_ALL_CLEAR = {
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "vitals_acceptable": True,
    "escort_present": True,
    "escort_name": "Sam",
}


def _target_patients(world: Any, persona: str) -> tuple[Patient, Patient]:
    """(own, other): the patient's own record; a patient of a clinician's own clinic."""
    if persona == "patient":
        return world.patient_a, world.patient_b
    if persona == "other_clinic_nurse":
        return world.patient_b, world.patient_a2
    return world.patient_a2, world.patient_b


def _nurse_of(patient: Patient, world: Any) -> Any:
    if patient.clinic_id == world.clinic_a.pk:
        return world.users["nurse"]
    return world.users["other_clinic_nurse"]


def _session(target: str, patient: Patient, world: Any) -> TreatmentSession:
    now = clock.now()
    esketamine = target.startswith("ts_esk")
    status = _STATE_OF[target]
    started = now - timedelta(minutes=30)
    reached = list(S).index(status)
    stamps = {
        field: started
        for field, state in (
            ("checked_in_at", S.CHECKED_IN),
            ("gate_passed_at", S.GATE_PASSED),
            ("dosing_started_at", S.DOSING),
            ("observing_started_at", S.OBSERVING),
            ("ready_at", S.READY_FOR_DISCHARGE),
            ("discharged_at", S.DISCHARGED),
            ("signed_at", S.SIGNED),
        )
        if list(S).index(state) <= reached
    }
    nurse = _nurse_of(patient, world)
    session = TreatmentSession.objects.create(
        patient=patient,
        clinic_id=patient.clinic_id,
        treatment="esketamine_trd" if esketamine else "iv_ketamine",
        planned_dose_mg=Decimal(56 if esketamine else 35),
        status=status,
        scheduled_at=started - timedelta(minutes=10),
        created_by=nurse,
        signed_by=world.users["prescriber"] if status == S.SIGNED else None,
        **stamps,
    )
    if target in {"ts_review", "ts_gate_passed"}:
        review = target == "ts_review"
        PreDoseCheck.objects.create(
            session=session,
            weight_kg=Decimal("72.5"),
            systolic_mmhg=150 if review else 128,
            diastolic_mmhg=85 if review else 78,
            fasting_confirmed=True,
            ride_home_confirmed=True,
            gate_status="review" if review else "proceed",
            gate_reasons=[{"code": "bp_review", "message": "BP to review"}] if review else [],
            recorded_by=nurse,
            recorded_at=now,
        )
    return session


def _alert(session: TreatmentSession, world: Any) -> VitalAlert:
    now = clock.now()
    reading = VitalSign.objects.create(
        session=session,
        taken_at=now,
        spo2_pct=86,
        source="manual",
        recorded_by=_nurse_of(session.patient, world),
        recorded_at=now,
    )
    return VitalAlert.objects.create(
        session=session,
        reading=reading,
        code="desaturation",
        message="SpO2 86%",
        severity="urgent",
        source="matrix",
    )


_MODELS = {"session_id": TreatmentSession, "alert_id": VitalAlert}


def _missing(key: str) -> int:
    last = _MODELS[key].objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return last + 1000


def fill(target: str, scope: str, persona: str, world: Any, ctx: Any) -> None:
    """Create the session the scope picks (of the persona's own clinic's patient, or of the
    other clinic's) and put its id in ctx.values; ctx.patient is whose record it is."""
    own, other = _target_patients(world, persona)
    patient: Patient | None = own if scope == "own" else other
    assert patient is not None
    session = _session(target, patient, world)
    values: dict[str, Any] = {"session_id": session.pk}
    if target == "ts_alert":
        values["alert_id"] = _alert(session, world).pk
    if scope == "missing":
        values = {key: _missing(key) for key in values}
        patient = None
    ctx.values.update(values)
    ctx.patient = patient


def _own_patient_id(ctx: Any) -> int:
    own, _ = _target_patients(ctx.world, ctx.persona)
    return int(own.pk)


def bodies() -> dict[str, Any]:
    return {
        "ts_create": lambda ctx: {
            "patient_id": _own_patient_id(ctx),
            "treatment": "iv_ketamine",
            "planned_dose_mg": "35",
        },
        "ts_check_in": lambda ctx: {"to": "checked_in"},
        "ts_pre_dose": lambda ctx: dict(_PRE_DOSE),
        "ts_reason": lambda ctx: {"reason": "Rechecked; white-coat."},
        "ts_order": lambda ctx: {
            "dose_mg_per_kg": "0.5",
            "minutes": 40,
            "concentration_mg_per_ml": "1",
        },
        # No such person: refused before any password is checked.
        "ts_checker": lambda ctx: {"checker": {"username": "no-such-matrix-user", "password": "x"}},
        # No such storage location at the session's clinic: refused before the ledger.
        "ts_administration": lambda ctx: {
            "location_id": 99999999,
            "lot_id": 99999999,
            "dose_mg": "35",
        },
        "ts_vitals": lambda ctx: {"systolic_mmhg": 130, "diastolic_mmhg": 80, "spo2_pct": 97},
        "ts_batch": lambda ctx: {
            "readings": [
                {"client_id": "matrix-1", "spo2_pct": 97},
                {"client_id": "matrix-2", "heart_rate_bpm": 72},
            ]
        },
        "ts_action": lambda ctx: {"action": "O2 2 L; recovered."},
        "ts_cadss": lambda ctx: {"total": 12},
        "ts_event": lambda ctx: {"code": "nausea", "severity": "mild", "outcome": "resolved"},
        "ts_discharge": lambda ctx: dict(_ALL_CLEAR),
        "ts_sign": lambda ctx: {"meaning": "Reviewed and approved"},
        "ts_amend": lambda ctx: {"text": "Late entry: patient called, doing well."},
        "ts_intervention": lambda ctx: {"kind": "infusion_slowed"},
        # An IV session has no REMS form: refused by the service (409), nothing written.
        "ts_rems_submission": lambda ctx: {
            "submitted_on": clock.now().date().isoformat(),
            "method": "online",
            "confirmation": "MATRIX-1",
        },
    }


def state() -> dict[str, Any]:
    return {
        "sessions": sorted(TreatmentSession.objects.values_list("pk", "patient_id", "status")),
        "checks": sorted(
            PreDoseCheck.objects.values_list("pk", "session_id", "acknowledged_by_id")
        ),
        "orders": sorted(InfusionOrder.objects.values_list("pk", "session_id", "checked_by_id")),
        "devices": sorted(EsketamineDevice.objects.values_list("pk", "session_id")),
        "vitals": sorted(VitalSign.objects.values_list("pk", "session_id")),
        "alerts": sorted(VitalAlert.objects.values_list("pk", "session_id", "acknowledged_by_id")),
        "cadss": sorted(DissociationScore.objects.values_list("pk", "session_id")),
        "events": sorted(AdverseEvent.objects.values_list("pk", "session_id")),
        "interventions": sorted(Intervention.objects.values_list("pk", "session_id")),
        "discharges": sorted(DischargeAssessment.objects.values_list("pk", "session_id")),
        "signatures": sorted(NoteSignature.objects.values_list("pk", "session_id")),
        "amendments": sorted(NoteAmendment.objects.values_list("pk", "session_id")),
        "rems": sorted(RemsSubmission.objects.values_list("pk", "session_id")),
    }


def _new(before: dict, after: dict, key: str) -> list[Any]:
    return sorted(set(after[KEY][key]) - set(before[KEY][key]))


def _only(before: dict, after: dict, *keys: str) -> None:
    """Nothing outside `keys` changed (patients, tokens and the other session tables)."""
    for name in ("patients", "tokens"):
        assert after[name] == before[name], name
    for key in after[KEY]:
        if key not in keys:
            assert after[KEY][key] == before[KEY][key], key


def _rows_added(key: str, count: int = 1) -> Any:
    def effect(before: dict, after: dict, ctx: Any, response: Any) -> None:
        new = _new(before, after, key)
        assert [row[1] for row in new] == [ctx.values["session_id"]] * count, new
        _only(before, after, key)

    return effect


def _created(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = _new(before, after, "sessions")
    assert [(row[1], row[2]) for row in new] == [(_own_patient_id(ctx), "scheduled")], new
    _only(before, after, "sessions")


def _checked_in(before: dict, after: dict, ctx: Any, response: Any) -> None:
    changed = _new(before, after, "sessions")
    assert [(row[0], row[2]) for row in changed] == [(ctx.values["session_id"], "checked_in")]
    _only(before, after, "sessions")


def _acknowledged(before: dict, after: dict, ctx: Any, response: Any) -> None:
    changed = _new(before, after, "checks")
    assert [(row[1], row[2]) for row in changed] == [(ctx.values["session_id"], ctx.user.pk)]
    _only(before, after, "checks")


def _alert_acknowledged(before: dict, after: dict, ctx: Any, response: Any) -> None:
    changed = _new(before, after, "alerts")
    assert [(row[0], row[2]) for row in changed] == [(ctx.values["alert_id"], ctx.user.pk)]
    _only(before, after, "alerts")


def _signed(before: dict, after: dict, ctx: Any, response: Any) -> None:
    changed = _new(before, after, "sessions")
    assert [(row[0], row[2]) for row in changed] == [(ctx.values["session_id"], "signed")]
    assert [row[1] for row in _new(before, after, "signatures")] == [ctx.values["session_id"]]
    _only(before, after, "sessions", "signatures")


def effects() -> dict[str, Any]:
    return {
        "ts_created": _created,
        "ts_checked_in": _checked_in,
        "ts_pre_dose_recorded": _rows_added("checks"),
        "ts_gate_acknowledged": _acknowledged,
        "ts_ordered": _rows_added("orders"),
        "ts_device_recorded": _rows_added("devices"),
        "ts_reading_recorded": _rows_added("vitals"),
        "ts_batch_recorded": _rows_added("vitals", count=2),
        "ts_alert_acknowledged": _alert_acknowledged,
        "ts_cadss_recorded": _rows_added("cadss"),
        "ts_event_recorded": _rows_added("events"),
        "ts_discharge_assessed": _rows_added("discharges"),
        "ts_signed": _signed,
        "ts_amended": _rows_added("amendments"),
        "ts_intervention_recorded": _rows_added("interventions"),
    }
