"""Reads of treatment sessions, scoped to the user's clinics (ARCHITECTURE rule 3)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from ketaclinic.accounts import access
from ketaclinic.treatment_sessions.models import TreatmentSession


def sessions_for(user: Any, permission: str = "course.view") -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(
        clinic_id__in=access.clinic_ids_for(user, permission)
    ).select_related("patient", "clinic", "chair")


def get_session(user: Any, session_id: Any, permission: str = "course.view") -> TreatmentSession:
    """One session, or 404 when missing or at a clinic where the user lacks the permission."""
    access.require(user, permission)
    try:
        pk = int(session_id)
    except (TypeError, ValueError):
        raise Http404 from None
    session = sessions_for(user, permission).filter(pk=pk).first()
    if session is None:
        raise Http404
    return session
