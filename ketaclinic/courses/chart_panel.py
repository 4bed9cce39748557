"""The courses panel of the patient chart: each course's status, phase and next sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ketaclinic.accounts import access
from ketaclinic.courses import selectors
from ketaclinic.patients.models import Patient


def courses_panel(user: Any, patient: Patient) -> Mapping[str, Any] | None:
    if not access.has_permission(user, "course.view", patient.clinic_id):
        return None
    return {
        "patient": patient,
        "tz": patient.clinic.timezone,
        "courses": selectors.patient_courses(patient),
        "can_plan": access.has_permission(user, "course.manage", patient.clinic_id),
        "can_record_sessions": access.has_permission(user, "session.record", patient.clinic_id),
    }
