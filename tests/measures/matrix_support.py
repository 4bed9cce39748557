"""What the authorization matrix (tests/test_authz_matrix.py) needs for the measures and portal
routes: the objects the own/other/missing scopes pick, request bodies, a snapshot of measures
state and the effects a successful write must have.

Kept here so the matrix itself only declares outcomes. Nothing here imports the matrix.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ketaclinic.measures import services
from ketaclinic.measures.models import (
    Assignment,
    BoosterRecommendation,
    CheckIn,
    ClinicMeasurePolicy,
    JournalEntry,
    MeasurementEnrolment,
    MeasurementPlan,
    OnDutyShift,
    PlanItem,
    Response,
    SafetyAlert,
)
from ketaclinic.patients.models import Patient

# Targets handled here: which object ids go in the path.
TARGETS = {
    "alert": ("alert_id",),
    "booster": ("recommendation_id",),
    "plan": ("plan_id",),
    "plan_item": ("plan_id", "item_id"),
    "assignment": ("assignment_id",),
    "response": ("response_id",),
    "patient_response": ("patient_id", "response_id"),
    "enrolled_patient": ("patient_id",),
    "journal_entry": ("entry_id",),
    "link": ("token",),
}
# Path parameters that are not objects.
FIXED_VALUES = {"instrument": "madrs"}

_PHQ9_FIVE = {"q1": 1, "q2": 1, "q3": 1, "q4": 1, "q5": 1, "q6": 0, "q7": 0, "q8": 0, "q9": 0}


def _clinician_of(patient: Patient, world: Any) -> Any:
    if patient.clinic_id == world.clinic_a.pk:
        return world.users["prescriber"]
    return world.users["other_clinic_nurse"]


def _plan(clinic: Any, world: Any) -> MeasurementPlan:
    plan = MeasurementPlan.objects.filter(clinic=clinic).first()
    if plan is None:
        plan = MeasurementPlan.objects.create(clinic=clinic, name="Matrix plan", is_default=True)
        plan.items.create(instrument="phq9", cadence="weekly", phase="any", respondent="patient")
    return plan


def _enrolment(patient: Patient, world: Any) -> MeasurementEnrolment:
    existing = MeasurementEnrolment.objects.filter(patient=patient, status="active").first()
    return existing or services.enrolment_start(
        actor=_clinician_of(patient, world),
        patient=patient,
        plan=_plan(patient.clinic, world),
        protocol="iv_ketamine_induction",
        first_session_on=services.clock.now().date(),
        prescriber=world.users["prescriber"] if patient.clinic_id == world.clinic_a.pk else None,
    )


def _assignment(patient: Patient, world: Any) -> Assignment:
    return services.assignment_create(
        actor=_clinician_of(patient, world), patient=patient, instrument="phq9"
    )


def _response(patient: Patient, world: Any, **answers: Any) -> Response:
    return services.response_submit(
        actor=_clinician_of(patient, world),
        answers=answers or _PHQ9_FIVE,
        source="clinic",
        patient=patient,
        instrument="phq9",
    )


def _alert(patient: Patient) -> SafetyAlert:
    return services.alert_raise(
        patient,
        kind="urgent_checkin",
        priority="same_day",
        summary="matrix alert",
        now=services.clock.now() - timedelta(minutes=5),
    )


def _target_patients(world: Any, persona: str) -> tuple[Patient, Patient]:
    """(own, other): the patient's own record; a patient of a clinician's own clinic."""
    if persona == "patient":
        return world.patient_a, world.patient_b
    if persona == "other_clinic_nurse":
        return world.patient_b, world.patient_a2
    return world.patient_a2, world.patient_b


def fill(target: str, scope: str, persona: str, world: Any, ctx: Any) -> None:
    """Create the object the scope picks and put its id(s) in ctx.values (ctx.patient set to
    whose record it is, for the audit checks). Setup is recorded before the request is timed,
    so its audit rows are not counted."""
    own, other = _target_patients(world, persona)
    patient = own if scope == "own" else other
    missing = scope == "missing"
    clinic = world.clinic_b if persona == "other_clinic_nurse" else world.clinic_a
    if scope == "other":
        clinic = world.clinic_a if persona == "other_clinic_nurse" else world.clinic_b
    values: dict[str, Any] = {}
    if target in {"alert", "booster"}:
        alert = _alert(patient)
        values["patient_id"] = patient.pk
        if target == "alert":
            values["alert_id"] = alert.pk
        else:
            rec = BoosterRecommendation.objects.create(
                clinic=patient.clinic,
                patient=patient,
                instrument="phq9",
                baseline_total=20,
                latest_total=14,
                relapse_on=services.clock.now().date(),
                created_at=services.clock.now(),
            )
            values["recommendation_id"] = rec.pk
    elif target in {"plan", "plan_item"}:
        plan = _plan(clinic, world)
        values["plan_id"] = plan.pk
        values["item_id"] = plan.items.first().pk  # type: ignore[union-attr]
        patient = None  # type: ignore[assignment]
    elif target == "assignment":
        values["assignment_id"] = _assignment(patient, world).pk
    elif target in {"response", "patient_response"}:
        values["response_id"] = _response(patient, world).pk
        values["patient_id"] = patient.pk
    elif target == "enrolled_patient":
        _enrolment(patient, world)
        values["patient_id"] = patient.pk
    elif target == "journal_entry":
        entry = JournalEntry.objects.create(
            clinic=patient.clinic, patient=patient, body="matrix", created_at=services.clock.now()
        )
        values["entry_id"] = entry.pk
    elif target == "link":
        assignment = _assignment(patient, world)
        raw = f"matrix-link-{assignment.pk}"
        assignment.link_token_digest = services.digest(raw)
        assignment.save(update_fields=["link_token_digest"])
        values["token"] = raw
    if missing:
        values = {key: _missing(key, value) for key, value in values.items()}
        patient = None  # type: ignore[assignment]
    ctx.values.update(values)
    ctx.patient = patient
    if "patient_id" in values:
        ctx.patient_id = values["patient_id"]


_MODELS = {
    "alert_id": SafetyAlert,
    "recommendation_id": BoosterRecommendation,
    "plan_id": MeasurementPlan,
    "item_id": PlanItem,
    "assignment_id": Assignment,
    "response_id": Response,
    "patient_id": Patient,
    "entry_id": JournalEntry,
}


def _missing(key: str, value: Any) -> Any:
    if key == "token":
        return "no-such-link"
    last = _MODELS[key].objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return last + 1000


def bodies() -> dict[str, Any]:
    return {
        "ack_form": lambda ctx: {"action": "called_patient", "note": "matrix"},
        "ack_json": lambda ctx: {"action": "safety_plan"},
        "duty_form": lambda ctx: {"clinic": ctx.world.clinic_a.pk, "hours": 4},
        "booster_form": lambda ctx: {"resolution": "not_needed"},
        "end_form": lambda ctx: {"reason": "matrix"},
        "plan_item_form": lambda ctx: {
            "instrument": "gad7",
            "phase": "any",
            "cadence": "monthly",
            "respondent": "patient",
            "window_hours": 72,
        },
        "policy_form": lambda ctx: {
            f"c{ctx.clinic_id}-escalate_after_minutes": 30,
            f"c{ctx.clinic_id}-max_reminders": 1,
            f"c{ctx.clinic_id}-madrs_remission_max": 10,
        },
        "share_form": lambda ctx: {"share": "1"},
        "assign_json": lambda ctx: {"patient_id": ctx.patient_id, "instrument": "pcl5"},
        "submit_json": lambda ctx: {
            "assignment_id": ctx.values["assignment_id"],
            "answers": _PHQ9_FIVE,
        },
        "checkin_json": lambda ctx: {"mood_0_to_10": 6},
    }


def state() -> dict[str, Any]:
    return {
        "alerts": sorted(SafetyAlert.objects.values_list("pk", "acknowledged_by_id", "action")),
        "enrolments": sorted(MeasurementEnrolment.objects.values_list("pk", "status")),
        "assignments": sorted(Assignment.objects.values_list("pk", "patient_id", "status")),
        "responses": sorted(Response.objects.values_list("pk", "patient_id")),
        "items": sorted(PlanItem.objects.values_list("pk", "plan_id", "is_active")),
        "policies": sorted(
            ClinicMeasurePolicy.objects.values_list(
                "clinic_id", "escalate_after_minutes", "max_reminders", "madrs_remission_max"
            )
        ),
        "shifts": sorted(OnDutyShift.objects.values_list("pk", "user_id")),
        "boosters": sorted(BoosterRecommendation.objects.values_list("pk", "resolution")),
        "journal": sorted(JournalEntry.objects.values_list("pk", "shared_with_care_team")),
        "checkins": sorted(CheckIn.objects.values_list("pk", "patient_id")),
    }


def _changed(before: dict, after: dict, key: str) -> list[Any]:
    return sorted(set(after["measures"][key]) - set(before["measures"][key]))


def _only(before: dict, after: dict, *keys: str) -> None:
    """Nothing outside `keys` changed (patients, tokens and the other measures tables)."""
    for name in ("patients", "tokens"):
        assert after[name] == before[name], name
    for key in after["measures"]:
        if key not in keys:
            assert after["measures"][key] == before["measures"][key], key


def _alert_acknowledged(before: dict, after: dict, ctx: Any, response: Any) -> None:
    changed = _changed(before, after, "alerts")
    assert [(row[0], row[1]) for row in changed] == [(ctx.values["alert_id"], ctx.user.pk)]
    _only(before, after, "alerts")


def _duty_started(before: dict, after: dict, ctx: Any, response: Any) -> None:
    assert [row[1] for row in _changed(before, after, "shifts")] == [ctx.user.pk]
    _only(before, after, "shifts")


def _booster_resolved(before: dict, after: dict, ctx: Any, response: Any) -> None:
    changed = _changed(before, after, "boosters")
    assert changed == [(ctx.values["recommendation_id"], "not_needed")]
    _only(before, after, "boosters")


def _enrolment_ended(before: dict, after: dict, ctx: Any, response: Any) -> None:
    assert [row[1] for row in _changed(before, after, "enrolments")] == ["ended"]
    _only(before, after, "enrolments", "assignments")


def _plan_item_added(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = _changed(before, after, "items")
    assert [(row[1], row[2]) for row in new] == [(ctx.values["plan_id"], True)]
    _only(before, after, "items")


def _plan_item_retired(before: dict, after: dict, ctx: Any, response: Any) -> None:
    assert _changed(before, after, "items") == [(ctx.values["item_id"], ctx.values["plan_id"],
                                                 False)]  # fmt: skip
    _only(before, after, "items")


def _policy_updated(before: dict, after: dict, ctx: Any, response: Any) -> None:
    assert _changed(before, after, "policies") == [(ctx.clinic_id, 30, 1, 10)]
    _only(before, after, "policies")


def _journal_shared(before: dict, after: dict, ctx: Any, response: Any) -> None:
    assert _changed(before, after, "journal") == [(ctx.values["entry_id"], True)]
    _only(before, after, "journal")


def _assignment_created(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = _changed(before, after, "assignments")
    assert [(row[1], row[2]) for row in new] == [(ctx.patient_id, "pending")]
    _only(before, after, "assignments")


def _response_created(before: dict, after: dict, ctx: Any, response: Any) -> None:
    assert len(_changed(before, after, "responses")) == 1
    done = _changed(before, after, "assignments")
    assert [(row[0], row[2]) for row in done] == [(ctx.values["assignment_id"], "completed")]
    _only(before, after, "responses", "assignments")


def _checkin_created(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = _changed(before, after, "checkins")
    assert [row[1] for row in new] == [ctx.world.patient_a.pk]
    _only(before, after, "checkins")


def effects() -> dict[str, Any]:
    return {
        "alert_acknowledged": _alert_acknowledged,
        "duty_started": _duty_started,
        "booster_resolved": _booster_resolved,
        "enrolment_ended": _enrolment_ended,
        "plan_item_added": _plan_item_added,
        "plan_item_retired": _plan_item_retired,
        "policy_updated": _policy_updated,
        "journal_shared": _journal_shared,
        "assignment_created": _assignment_created,
        "response_created": _response_created,
        "checkin_created": _checkin_created,
    }
