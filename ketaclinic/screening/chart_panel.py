"""The intake panel of the patient chart: referral, eligibility with reasons and override."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ketaclinic.accounts import access
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors


def intake_panel(user: Any, patient: Patient) -> Mapping[str, Any] | None:
    clinical = access.has_permission(user, "intake.view", patient.clinic_id)
    can_refer = access.has_permission(user, "referral.manage", patient.clinic_id)
    if not (clinical or can_refer):
        return None
    return {
        "patient": patient,
        "summary": selectors.chart_summary(patient, clinical=clinical),
        "clinical": clinical,
        "can_refer": can_refer,
        "can_transport": access.has_permission(user, "transport.record", patient.clinic_id),
    }
