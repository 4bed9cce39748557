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


def intake_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> Mapping[str, Any] | None:
    """The panel's reads, asked for with the other panels' (patients.chart); None hides it."""
    clinical = access.has_permission(user, "intake.view", patient.clinic_id)
    can_refer = access.has_permission(user, "referral.manage", patient.clinic_id)
    if not (clinical or can_refer):
        return None
    return {
        "clinical": clinical,
        "can_refer": can_refer,
        "read": selectors.chart_reads(patient.pk, facts, reads) if clinical else None,
    }


def intake_panel(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Any] | None = None,
    prepared: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    if prepared is None:
        prepared = {
            "clinical": access.has_permission(user, "intake.view", patient.clinic_id),
            "can_refer": access.has_permission(user, "referral.manage", patient.clinic_id),
            "read": None,
        }
    clinical, can_refer = prepared["clinical"], prepared["can_refer"]
    if not (clinical or can_refer):
        return None
    return {
        "patient": patient,
        "summary": selectors.chart_summary(
            patient, clinical=clinical, facts=facts, read=prepared["read"]
        ),
        "clinical": clinical,
        "can_refer": can_refer,
        "can_transport": access.has_permission(user, "transport.record", patient.clinic_id),
    }
