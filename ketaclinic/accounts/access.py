"""The only way to fetch patient-scoped objects for a user (ARCHITECTURE rule 3: deny by default).

A permission is a name mapped to the roles that hold it. A user holds it at a clinic when their
active membership there has one of those roles. Objects of a clinic where the user does not hold
the permission answer 404, exactly like a missing object, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.functional import LazyObject, empty

from ketaclinic.accounts.choices import CLINICIAN_ROLES, STAFF_ROLES, Role
from ketaclinic.accounts.models import Clinic, Membership
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_ID,
    CompiledModelQuery,
    CompiledValuesQuery,
    objects_together,
)

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ketaclinic.patients.models import Patient

_WRITERS = frozenset({Role.PRESCRIBER, Role.NURSE, Role.FRONT_DESK, Role.CLINIC_ADMIN})

PERMISSIONS: dict[str, frozenset[str]] = {
    "patient.view": STAFF_ROLES,
    "patient.create": _WRITERS,
    "patient.edit": _WRITERS,
    "audit.view": frozenset({Role.CLINIC_ADMIN, Role.AUDITOR}),
    # Intake and screening (issue 5). Referrals are registered at the front desk; the clinical
    # history, baseline questionnaires and eligibility are for clinicians only (minimum necessary).
    "referral.manage": _WRITERS,
    "intake.view": CLINICIAN_ROLES,
    "intake.edit": CLINICIAN_ROLES,
    "consent.record": CLINICIAN_ROLES,
    "rems.record": CLINICIAN_ROLES,
    "transport.record": _WRITERS,
    # Proceeding despite a needs-review eligibility decision is a prescriber's signed decision.
    "eligibility.override": frozenset({Role.PRESCRIBER}),
    "consent_text.manage": frozenset({Role.CLINIC_ADMIN}),
    # Treatment courses and scheduling.
    "course.view": STAFF_ROLES,
    "course.manage": frozenset({Role.PRESCRIBER}),
    "session.record": CLINICIAN_ROLES,
    # Treatment sessions (issue 6): the session note is signed by a prescriber.
    "session.sign": frozenset({Role.PRESCRIBER}),
    "schedule.view": _WRITERS,
    "schedule.manage": _WRITERS,
    "clinic.configure": frozenset({Role.CLINIC_ADMIN}),
    # Controlled-substance ledger (issue 4). Auditors read and run reports, never record.
    "cs.view": frozenset({Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN, Role.AUDITOR}),
    "cs.record": frozenset({Role.PRESCRIBER, Role.NURSE}),  # administer, waste
    "cs.stock": frozenset({Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN}),  # receive, move, count
    "cs.manage": frozenset({Role.CLINIC_ADMIN}),  # dispose, adjust, loss, reverse, investigate
    "cs.witness": frozenset({Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN}),
    "cs.report": frozenset({Role.CLINIC_ADMIN, Role.AUDITOR}),
    # Measurement-based care (issue 7): scores, trajectories, check-ins and shared journal
    # entries are clinical data for clinicians; the outcome summary is for prescribers and
    # administrators (aggregates only); plans and alert timing are set by prescribers and admins.
    "measures.view": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "measures.manage": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "measures.configure": frozenset({Role.PRESCRIBER, Role.CLINIC_ADMIN}),
    "alerts.acknowledge": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "booster.resolve": frozenset({Role.PRESCRIBER}),
    "outcomes.view": frozenset({Role.PRESCRIBER, Role.CLINIC_ADMIN}),
    # A patient's own record through the portal.
    "portal.own": frozenset({Role.PATIENT}),
}


# Read on every signed-in request: compiled to SQL once (core.compiled_query).
_ACTIVE_MEMBERSHIPS = CompiledValuesQuery(
    lambda user_id: Membership.objects.filter(user_id=user_id, is_active=True).values(
        "clinic_id", "role", "clinic__organisation_id"
    ),
    user_id=PLACEHOLDER_ID,
)


def _unwrapped(user: Any) -> Any:
    """The user behind request.user's lazy wrappers (Django's, and django-otp's around it):
    every attribute read through them costs several calls, and a page checks permissions
    dozens of times."""
    while isinstance(user, LazyObject):
        # Read past LazyObject.__getattribute__, itself a Python call per read.
        wrapped = object.__getattribute__(user, "_wrapped")
        if wrapped is empty:
            object.__getattribute__(user, "_setup")()
            wrapped = object.__getattribute__(user, "_wrapped")
        user = wrapped
    return user


def _memberships(user: Any) -> list[tuple[int, str]]:
    """(clinic id, role) of the user's active memberships, cached on the user for the request."""
    user = _unwrapped(user)
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_kc_memberships", None)
    if cached is None:
        rows = _ACTIVE_MEMBERSHIPS.rows(user_id=user.pk)
        remember_memberships(
            user, [(r["clinic_id"], r["role"], r["clinic__organisation_id"]) for r in rows]
        )
        cached = user._kc_memberships
    return cached


def remember_memberships(user: Any, memberships: list[tuple[int, str, int]]) -> None:
    """Cache (clinic id, role, organisation id) of the user's active memberships for the
    request; the API token query reads them together with the user."""
    user._kc_memberships = [(clinic_id, role) for clinic_id, role, _ in memberships]
    user._kc_organisations = {clinic_id: org_id for clinic_id, _, org_id in memberships}


def organisation_of(user: Any, clinic_id: int) -> int | None:
    """The organisation of one of the user's clinics (None if not a member there)."""
    _memberships(user)
    return getattr(user, "_kc_organisations", {}).get(clinic_id)


def forget_memberships(user: Any) -> None:
    """Drop the per-request cache after memberships change."""
    if hasattr(user, "_kc_memberships"):
        del user._kc_memberships
    if hasattr(user, "_kc_organisations"):
        del user._kc_organisations


def roles_of(user: Any) -> set[str]:
    return {role for _, role in _memberships(user)}


def is_staff_member(user: Any) -> bool:
    return bool(roles_of(user) & STAFF_ROLES)


def clinic_ids_for(user: Any, permission: str) -> list[int]:
    """Clinics where the user holds the permission."""
    allowed = PERMISSIONS[permission]
    return sorted({clinic_id for clinic_id, role in _memberships(user) if role in allowed})


def clinics_for(user: Any, permission: str) -> QuerySet[Clinic]:
    return Clinic.objects.filter(pk__in=clinic_ids_for(user, permission)).order_by("name")


def role_at(user: Any, clinic_id: int) -> str | None:
    for member_clinic, role in _memberships(user):
        if member_clinic == clinic_id:
            return role
    return None


def has_permission(user: Any, permission: str, clinic_id: int | None = None) -> bool:
    allowed = PERMISSIONS[permission]
    return any(
        role in allowed and (clinic_id is None or member_clinic == clinic_id)
        for member_clinic, role in _memberships(user)
    )


def require(user: Any, permission: str, clinic_id: int | None = None) -> None:
    """403 unless the user holds the permission (at the clinic, when one is given)."""
    if not has_permission(user, permission, clinic_id):
        raise PermissionDenied


def require_clinic(user: Any, permission: str, clinic_id: int) -> Clinic:
    """The clinic, if the user holds the permission there; 404 otherwise."""
    if clinic_id not in clinic_ids_for(user, permission):
        raise Http404
    return Clinic.objects.get(pk=clinic_id)


def patients_for(user: Any, permission: str = "patient.view") -> QuerySet[Patient]:
    """Patients the user may see with this permission: their clinics', or only their own."""
    from ketaclinic.patients.models import Patient

    if permission == "portal.own":
        if not clinic_ids_for(user, permission):
            return Patient.objects.none()
        return Patient.objects.filter(user_id=user.pk)
    return Patient.objects.filter(clinic_id__in=clinic_ids_for(user, permission))


def get_patient(user: Any, patient_id: Any, permission: str = "patient.view") -> Patient:
    """One patient, or 404 when missing or outside the user's reach; 403 without the role at all."""
    pk = _patient_pk(user, patient_id, permission)
    found = _patient_with_clinic().objects(patient_id=pk)
    return _in_reach(user, found[0] if found else None, permission)


def get_patient_with(
    user: Any,
    patient_id: Any,
    reads: Callable[[int], Sequence[tuple[Any, dict[str, Any]]]],
    permission: str = "patient.view",
) -> tuple[Patient, list[list[Any]]]:
    """`get_patient`, with the compiled reads `reads(pk)` asks for made in the same round trip
    (core.compiled_query.objects_together): a page that reads more about the patient does not
    wait for the patient's row first. Their rows are dropped unseen when the patient is out of
    reach (the same 404)."""
    pk = _patient_pk(user, patient_id, permission)
    found, *rows = objects_together([(_patient_with_clinic(), {"patient_id": pk}), *reads(pk)])
    return _in_reach(user, found[0] if found else None, permission), rows


def _patient_pk(user: Any, patient_id: Any, permission: str) -> int:
    require(user, permission)
    try:
        pk = int(patient_id)
    except (TypeError, ValueError):
        raise Http404 from None
    if not 0 < pk < 2**63:  # outside any key column: no such patient (and no database error)
        raise Http404
    return pk


def _in_reach(user: Any, patient: Patient | None, permission: str) -> Patient:
    # The same scope as patients_for(): the user's own record through the portal, else a
    # patient of a clinic where they hold the permission.
    if patient is None or not (
        patient.user_id == user.pk
        if permission == "portal.own"
        else patient.clinic_id in clinic_ids_for(user, permission)
    ):
        raise Http404
    return patient


_PATIENT_WITH_CLINIC: list[CompiledModelQuery] = []


def _patient_with_clinic() -> CompiledModelQuery:
    """One patient with its clinic, by primary key: on every chart and API read, compiled to
    SQL once (core.compiled_query). Built on first use: patients imports this module."""
    if not _PATIENT_WITH_CLINIC:
        from ketaclinic.patients.models import Patient

        _PATIENT_WITH_CLINIC.append(
            CompiledModelQuery(
                lambda patient_id: Patient.objects.select_related("clinic").filter(pk=patient_id),
                patient_id=PLACEHOLDER_ID,
            )
        )
    return _PATIENT_WITH_CLINIC[0]
