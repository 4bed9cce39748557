"""The intake panel of the patient chart: referral, eligibility with reasons and override."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ketaclinic.accounts import access
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors


def intake_facts(since: datetime) -> Mapping[str, Any]:
    """The chart summary's row, read with the other panels' facts (patients.chart)."""
    return selectors.summary_facts()


def intake_panel(
    user: Any, patient: Patient, facts: Mapping[str, Any] | None = None
) -> Mapping[str, Any] | None:
    clinical = access.has_permission(user, "intake.view", patient.clinic_id)
    can_refer = access.has_permission(user, "referral.manage", patient.clinic_id)
    if not (clinical or can_refer):
        return None
    return {
        "patient": patient,
        "summary": selectors.chart_summary(patient, clinical=clinical, facts=facts),
        "clinical": clinical,
        "can_refer": can_refer,
        "can_transport": access.has_permission(user, "transport.record", patient.clinic_id),
    }
