"""The cumulative exposure panel of the patient chart (clinical.md §10): mg and mg/kg per
session, the rolling 28-day total, sessions in the last 30 days and the lifetime total per
route. One query whatever the number of sessions (selectors.cumulative_exposure), none for a
patient without a dosed session (the chart's facts say so)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts import access
from ketaclinic.core import clock
from ketaclinic.patients.models import Patient
from ketaclinic.treatment_sessions import selectors
from ketaclinic.treatment_sessions.models import TreatmentSession

ROUTE_LABELS = {"iv": "IV", "intranasal": "Intranasal", "im": "IM", "oral": "Oral"}
# The newest sessions shown in the table (totals count every session).
SHOWN_SESSIONS = 12


def mg_text(value: Decimal) -> str:
    """36.300 -> "36.3", 56.000 -> "56" (ledger quantities carry three decimals)."""
    return f"{value.normalize():f}"


def exposure_facts(since: datetime) -> Mapping[str, Any]:
    """Read with the other panels' facts (patients.chart): most patients have no dosed
    session, and the panel is hidden for them."""
    from django.db.models import Exists, OuterRef

    dosed = TreatmentSession.objects.filter(
        patient_id=OuterRef("pk"), dosing_started_at__isnull=False
    )
    return {"has_dosed": Exists(dosed)}


def exposure_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> Any | None:
    """The panel's read, asked for with the other panels' (patients.chart); None hides it."""
    if not access.has_permission(user, "course.view", patient.clinic_id):
        return None
    if not facts.get("has_dosed", True):
        return None
    return selectors.exposure_read(patient.pk, reads)


def exposure_panel(
    user: Any, patient: Patient, facts: Mapping[str, Any] | None = None, prepared: Any = None
) -> Mapping[str, Any] | None:
    if prepared is None:
        if not access.has_permission(user, "course.view", patient.clinic_id):
            return None
        if not (facts or {}).get("has_dosed", True):
            return None
    now = clock.now()
    exposure = selectors.cumulative_exposure(patient.pk, now, read=prepared)
    if not exposure.sessions:
        return None
    return {
        "tz": patient.clinic.timezone,
        "exposure": exposure,
        "chart": dose_chart(exposure, ZoneInfo(patient.clinic.timezone), now),
        "rolling_28_day_mg": mg_text(exposure.rolling_28_day_mg),
        "recent": [
            {
                "dosed_at": row.dosed_at,
                "route": ROUTE_LABELS.get(row.route, row.route),
                "mg": mg_text(row.dose_mg),
                "mg_per_kg": row.dose_mg_per_kg,
            }
            for row in reversed(exposure.sessions[-SHOWN_SESSIONS:])
        ],
        "hidden": max(0, len(exposure.sessions) - SHOWN_SESSIONS),
        "lifetime": [
            (ROUTE_LABELS.get(route, route), mg_text(mg))
            for route, mg in sorted(exposure.lifetime_mg_by_route.items())
        ],
    }


def dose_chart(exposure: selectors.Exposure, tz: ZoneInfo, now: Any) -> Any:
    """mg per session over time, the same inline SVG charts the measures panel draws (so it
    prints too)."""
    from ketaclinic.measures import charts

    points = [
        (
            row.dosed_at.astimezone(tz).date(),
            int(row.dose_mg),
            f"{row.dosed_at.astimezone(tz):%Y-%m-%d}: {row.dose_mg} mg "
            f"({ROUTE_LABELS.get(row.route, row.route)})",
            False,
        )
        for row in exposure.sessions
    ]
    high = max(p[1] for p in points)
    top = max(50, -(-high // 50) * 50)  # the next 50 mg above the largest dose
    today = now.astimezone(tz).date()
    return charts.line_chart(
        chart_id="chart-exposure",
        title="Dose per session (mg)",
        description=f"{len(points)} sessions with a dose drawn from the ledger.",
        series=charts.Series(points, 0, top),
        start=min(points[0][0], today - timedelta(days=28)),
        end=today + timedelta(days=1),
        width=charts.COMPACT_WIDTH,
        height=charts.COMPACT_HEIGHT,
    )


def register() -> None:
    from ketaclinic.patients import chart

    chart.register(
        chart.Panel(
            key="exposure",
            title="Cumulative ketamine exposure",
            order=40,
            template="treatment_sessions/chart_panel_exposure.html",
            context=exposure_panel,
            facts=exposure_facts,
            prepare=exposure_prepare,
        )
    )
