"""The one write path for patient identity: permission, validation, write and audit together."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Organisation
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import diff, record_event
from ketaclinic.core import clock
from ketaclinic.patients.models import Patient

# Fields staff may set through pages and the API; everything else is managed by the system.
EDITABLE_FIELDS = (
    "mrn",
    "first_name",
    "last_name",
    "preferred_name",
    "date_of_birth",
    "sex_at_birth",
    "pronouns",
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "emergency_contact_name",
    "emergency_contact_relationship",
    "emergency_contact_phone",
)
MAX_AGE_YEARS = 130


def _snapshot(patient: Patient) -> dict[str, Any]:
    return {name: getattr(patient, name) for name in EDITABLE_FIELDS}


def _validate(patient: Patient, *, mrn_checked: bool = False) -> None:
    errors: dict[str, list[str]] = {}
    for name in EDITABLE_FIELDS:
        value = getattr(patient, name)
        if isinstance(value, str) and "\x00" in value:
            errors[name] = ["Remove the null character from this field."]
    if errors:
        raise ValidationError(errors)
    for name in ("first_name", "last_name", "mrn", "preferred_name", "pronouns", "city"):
        value = getattr(patient, name)
        if isinstance(value, str):
            setattr(patient, name, value.strip())
    try:
        patient.full_clean(exclude=["clinic", "organisation", "user"], validate_unique=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    born = patient.date_of_birth
    if isinstance(born, date) and "date_of_birth" not in errors:
        today = clock.now().date()
        if born > today:
            errors["date_of_birth"] = ["Date of birth cannot be in the future."]
        elif born < today - timedelta(days=365 * MAX_AGE_YEARS):
            errors["date_of_birth"] = [f"Date of birth is more than {MAX_AGE_YEARS} years ago."]
    if patient.mrn and "mrn" not in errors and not mrn_checked:
        clash = Patient.objects.filter(organisation_id=patient.organisation_id, mrn=patient.mrn)
        if patient.pk:
            clash = clash.exclude(pk=patient.pk)
        if clash.exists():
            errors["mrn"] = ["Another patient in this organisation already has this MRN."]
    if errors:
        raise ValidationError(errors)


def _next_mrn(organisation_id: int) -> str:
    """The organisation's next unused number; numbers already typed in by hand are skipped."""
    quote = connection.ops.quote_name
    table, counter = quote(Organisation._meta.db_table), quote("mrn_counter")
    prefix = quote("mrn_prefix")
    # The number as Python writes it below (f"{n:06d}": at least six digits, never cut).
    if connection.vendor == "postgresql":
        digits = f"lpad({counter}::text, greatest(6, length({counter}::text)), '0')"
    else:
        digits = f"printf('%%06d', {counter})"
    patients = quote(Patient._meta.db_table)
    # One statement takes the next number under the row's lock, reads it back (RETURNING:
    # PostgreSQL, and SQLite since 3.35) and says whether a hand-typed MRN already holds it.
    # Identifiers come from the models' meta; values are parameters.
    sql = (
        f"UPDATE {table} SET {counter} = {counter} + 1 WHERE {quote('id')} = %s "  # noqa: S608
        f"RETURNING {prefix}, {counter}, EXISTS (SELECT 1 FROM {patients} p "
        f"WHERE p.{quote('organisation_id')} = %s AND p.{quote('mrn')} = {prefix} || {digits})"
    )
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [organisation_id, organisation_id])
            prefix_value, number, taken = cursor.fetchone()
        mrn = f"{prefix_value}{number:06d}"
        if not taken:  # tests hold the SQL and Python formats of the number equal
            return mrn


def patient_create(*, actor: Any, clinic_id: Any, data: Mapping[str, Any]) -> Patient:
    """Register a patient at one of the actor's clinics; ValidationError maps field → message."""
    try:
        clinic_pk = int(clinic_id)
    except (TypeError, ValueError):
        raise ValidationError({"clinic": ["Choose a clinic."]}) from None
    if not access.has_permission(actor, "patient.create"):
        raise PermissionDenied
    if not access.has_permission(actor, "patient.create", clinic_pk):
        raise ValidationError({"clinic": ["You cannot register patients at that clinic."]})
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be set."] for name in sorted(unknown)})
    # The user holds a permission there, so the clinic's organisation came with the memberships.
    organisation_id = access.organisation_of(actor, clinic_pk)
    if organisation_id is None:  # has_permission above implies a membership there
        raise ValidationError({"clinic": ["You cannot register patients at that clinic."]})
    with transaction.atomic():
        patient = Patient(clinic_id=clinic_pk, organisation_id=organisation_id)
        for name, value in data.items():
            setattr(patient, name, value if value is not None else "")
        generated = not patient.mrn
        if generated:
            patient.mrn = _next_mrn(organisation_id)
        # A generated number was just found unused under the counter's lock.
        _validate(patient, mrn_checked=generated)
        patient.save(force_insert=True)
        record_event(
            action=Action.CREATE,
            user=actor,
            clinic_id=clinic_pk,
            patient_id=patient.pk,
            obj=patient,
            changes=diff({}, _snapshot(patient)),
        )
    return patient


def patient_update(*, actor: Any, patient: Patient, data: Mapping[str, Any]) -> Patient:
    """Change identity or contact fields; the audit row keeps old → new values."""
    access.require(actor, "patient.edit", patient.clinic_id)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        before = _snapshot(locked)
        for name, value in data.items():
            setattr(locked, name, value if value is not None else "")
        _validate(locked)
        changes = diff(before, _snapshot(locked))
        if changes:
            locked.save()
            record_event(
                action=Action.UPDATE,
                user=actor,
                clinic_id=locked.clinic_id,
                patient_id=locked.pk,
                obj=locked,
                changes=changes,
            )
    return locked
