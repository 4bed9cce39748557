"""Roles a user can hold at a clinic."""

from django.db import models


class Role(models.TextChoices):
    PRESCRIBER = "prescriber", "Prescriber"
    NURSE = "nurse", "Nurse"
    FRONT_DESK = "front_desk", "Front desk"
    CLINIC_ADMIN = "clinic_admin", "Clinic administrator"
    AUDITOR = "auditor", "Auditor"
    PATIENT = "patient", "Patient"


STAFF_ROLES = frozenset(
    {Role.PRESCRIBER, Role.NURSE, Role.FRONT_DESK, Role.CLINIC_ADMIN, Role.AUDITOR}
)
CLINICIAN_ROLES = frozenset({Role.PRESCRIBER, Role.NURSE})
