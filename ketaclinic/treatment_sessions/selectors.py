"""Reads of treatment sessions, scoped to the user's clinics (ARCHITECTURE rule 3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from ketaclinic.accounts import access
from ketaclinic.clinical import get_treatment
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


@dataclass(frozen=True)
class SessionExposure:
    session_id: int
    dosed_at: datetime
    route: str
    dose_mg: Decimal
    dose_mg_per_kg: Decimal | None


@dataclass(frozen=True)
class Exposure:
    """Cumulative ketamine/esketamine exposure for the chart (clinical.md §10)."""

    sessions: list[SessionExposure]
    rolling_28_day_mg: Decimal
    sessions_last_30_days: int
    lifetime_mg_by_route: dict[str, Decimal]


def cumulative_exposure(patient_id: int, as_of: datetime) -> Exposure:
    """mg and mg/kg per session (from the ledger's administrations and the same-day weight),
    rolling 28-day total, sessions in the last 30 days and lifetime total per route."""
    from ketaclinic.controlled_substances.choices import EntryKind
    from ketaclinic.controlled_substances.models import LedgerEntry

    sessions = list(
        TreatmentSession.objects.filter(patient_id=patient_id, dosing_started_at__isnull=False)
        .prefetch_related("pre_dose_checks")
        .order_by("dosing_started_at", "id")
    )
    drawn: dict[int, Decimal] = {}
    for session_id, quantity in LedgerEntry.objects.filter(
        treatment_session_id__in=[s.pk for s in sessions], kind=EntryKind.ADMINISTER
    ).values_list("treatment_session_id", "quantity_mg"):
        if session_id is not None:
            drawn[session_id] = drawn.get(session_id, Decimal(0)) - quantity
    rows: list[SessionExposure] = []
    for session in sessions:
        if session.pk not in drawn or session.dosing_started_at is None:
            continue
        checks = sorted(session.pre_dose_checks.all(), key=lambda c: (c.recorded_at, c.pk))
        weight = checks[-1].weight_kg if checks else None
        dose = drawn[session.pk]
        rows.append(
            SessionExposure(
                session_id=session.pk,
                dosed_at=session.dosing_started_at,
                route=get_treatment(session.treatment).route,
                dose_mg=dose,
                dose_mg_per_kg=(dose / weight).quantize(Decimal("0.01")) if weight else None,
            )
        )
    lifetime: dict[str, Decimal] = {}
    for row in rows:
        lifetime[row.route] = lifetime.get(row.route, Decimal(0)) + row.dose_mg
    return Exposure(
        sessions=rows,
        rolling_28_day_mg=sum(
            (r.dose_mg for r in rows if as_of - timedelta(days=28) < r.dosed_at <= as_of),
            Decimal(0),
        ),
        sessions_last_30_days=sum(
            1 for r in rows if as_of - timedelta(days=30) < r.dosed_at <= as_of
        ),
        lifetime_mg_by_route=lifetime,
    )
