"""Patients in chairs for the room board and the REMS worklist tests."""

from __future__ import annotations

from typing import Any

from ketaclinic.courses.models import Chair
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import TreatmentSession
from tests.factories import PatientFactory
from tests.treatment_sessions.builders import force_state


def chair(clinic: Any, name: str, capacity: int = 1) -> Chair:
    return Chair.objects.create(clinic=clinic, name=name, capacity=capacity)


def seated(
    world: Any,
    seat: Chair | None,
    *,
    patient: Any = None,
    treatment: str = "esketamine_trd",
    state: str = SessionStatus.DOSING,
    last_name: str = "",
) -> TreatmentSession:
    """A session of `patient` (or a new patient of the chair's clinic) walked to `state`, in
    `seat` (the chair comes from the appointment in real use; set here directly)."""
    clinic = seat.clinic if seat is not None else world.clinic_a
    if patient is None:
        patient = PatientFactory(clinic=clinic, last_name=last_name or f"Seat{clinic.pk}")
    nurse = world.users["other_clinic_nurse" if clinic == world.clinic_b else "nurse"]
    session = services.session_create(
        actor=nurse, patient=patient, treatment=treatment, planned_dose_mg=56
    )
    if seat is not None:
        TreatmentSession.objects.filter(pk=session.pk).update(chair=seat)
        session.refresh_from_db()
    return force_state(world, session, state)
