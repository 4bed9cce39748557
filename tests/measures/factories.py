"""Measurement-based-care fixtures built through the services (the one write path), so tests
exercise the same code the pages do."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.measures import services
from ketaclinic.measures.choices import Cadence, Phase, Respondent, ResponseSource
from ketaclinic.measures.models import MeasurementEnrolment, MeasurementPlan, Response
from ketaclinic.patients.models import Patient

PHQ9_ANSWERS_TOTAL = {  # item values summing to the total, item 9 always 0
    total: [min(3, max(0, total - 3 * i)) for i in range(8)] + [0] for total in range(0, 25)
}


def phq9(total: int, *, item9: int = 0) -> dict[str, int]:
    """PHQ-9 answers with the given total (item 9 included in the total)."""
    values = PHQ9_ANSWERS_TOTAL[total - item9][:8] + [item9]
    return {f"q{i}": v for i, v in enumerate(values, start=1)}


def empty_plan(actor: User, clinic: Clinic, name: str = "Test plan") -> MeasurementPlan:
    return services.plan_create(actor=actor, clinic=clinic, name=name, is_default=True)


def plan_with(actor: User, clinic: Clinic, *items: dict[str, Any]) -> MeasurementPlan:
    plan = empty_plan(actor, clinic)
    for item in items:
        spec = {"phase": Phase.ANY, "respondent": Respondent.PATIENT, "window_hours": 72, **item}
        services.plan_item_add(actor=actor, plan=plan, **spec)
    return plan


def enrol(
    actor: User,
    patient: Patient,
    plan: MeasurementPlan,
    *,
    first_session_on: date,
    protocol: str = "iv_ketamine_induction",
    prescriber: User | None = None,
    as_of: datetime | None = None,
    **kwargs: Any,
) -> MeasurementEnrolment:
    return services.enrolment_start(
        actor=actor,
        patient=patient,
        plan=plan,
        protocol=protocol,
        first_session_on=first_session_on,
        prescriber=prescriber,
        as_of=as_of,
        **kwargs,
    )


def clinic_score(
    actor: User, patient: Patient, instrument: str, answers: dict[str, Any], *, at: datetime
) -> Response:
    """A clinician-entered score at a given moment."""
    return services.response_submit(
        actor=actor,
        answers=answers,
        source=ResponseSource.CLINIC,
        patient=patient,
        instrument=instrument,
        as_of=at,
    )


WEEKLY_PHQ9 = {"instrument": "phq9", "cadence": Cadence.WEEKLY}
