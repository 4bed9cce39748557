"""Sessions in a given state, built through the services (so the builders exercise them too)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.db import transaction

from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus as S
from ketaclinic.treatment_sessions.models import TreatmentSession

# The path from `scheduled` to each state, along the table.
PATH_TO: dict[str, list[str]] = {
    S.SCHEDULED: [],
    S.CHECKED_IN: [S.CHECKED_IN],
    S.GATE_PASSED: [S.CHECKED_IN, S.GATE_PASSED],
    S.DOSING: [S.CHECKED_IN, S.GATE_PASSED, S.DOSING],
    S.OBSERVING: [S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING],
    S.READY_FOR_DISCHARGE: [
        S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE,
    ],
    S.DISCHARGED: [
        S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE, S.DISCHARGED,
    ],
    S.SIGNED: [
        S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE, S.DISCHARGED,
        S.SIGNED,
    ],
    S.CANCELLED: [S.CANCELLED],
    S.STOPPED_EARLY: [S.CHECKED_IN, S.STOPPED_EARLY],
}  # fmt: skip


def new_session(
    world: Any, treatment: str = "iv_ketamine", patient: Any = None
) -> TreatmentSession:
    return services.session_create(
        actor=world.users["nurse"],
        patient=patient or world.patient_a2,
        treatment=treatment,
        planned_dose_mg=35,
    )


def force_state(world: Any, session: TreatmentSession, state: str) -> TreatmentSession:
    """Walk the session to `state` along the table with the clinical gates switched off (they
    have their own tests); the state machine, history and audit still run."""
    done = PATH_TO[session.status]
    steps = PATH_TO[state]
    assert steps[: len(done)] == done, (session.status, state)
    for step in steps[len(done) :]:
        actor = world.users["prescriber" if step == S.SIGNED else "nurse"]
        with mock.patch.dict(services.GUARDS, clear=True), transaction.atomic():
            session = services.apply_transition(
                actor, services.locked(session), step, reason="test"
            )
    session.refresh_from_db()
    return session
