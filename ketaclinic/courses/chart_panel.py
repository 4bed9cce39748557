"""The courses panel of the patient chart: each course's status, phase and next sessions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef

from ketaclinic.accounts import access
from ketaclinic.courses import selectors
from ketaclinic.courses.models import TreatmentCourse
from ketaclinic.patients.models import Patient


def courses_facts(since: datetime) -> Mapping[str, Any]:
    """Read with the other panels' facts (patients.chart): most patients have no course."""
    return {"has_courses": Exists(TreatmentCourse.objects.filter(patient_id=OuterRef("pk")))}


def courses_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> Mapping[str, Any] | None:
    """The panel's reads, asked for with the other panels' (patients.chart); None hides it."""
    if not access.has_permission(user, "course.view", patient.clinic_id):
        return None
    has_courses = facts.get("has_courses", True)
    return {
        "has_courses": has_courses,
        "read": selectors.patient_courses_reads(patient.pk, reads) if has_courses else None,
    }


def courses_panel(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Any],
    prepared: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    if prepared is None:
        if not access.has_permission(user, "course.view", patient.clinic_id):
            return None
        prepared = {"has_courses": facts.get("has_courses", True), "read": None}
    return {
        "patient": patient,
        "tz": patient.clinic.timezone,
        "courses": selectors.patient_courses(patient, read=prepared["read"])
        if prepared["has_courses"]
        else [],
        "can_plan": access.has_permission(user, "course.manage", patient.clinic_id),
        "can_record_sessions": access.has_permission(user, "session.record", patient.clinic_id),
    }
