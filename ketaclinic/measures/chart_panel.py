"""The "Measures and outcomes" panel of the patient chart, and the views shared by the printable
progress report: trajectories with charts, course status, booster recommendation, late-responder
label, alerts, open questionnaires, check-ins and shared journal entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from html import escape
from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

from ketaclinic.accounts import access
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_ID,
    CompiledModelQuery,
)
from ketaclinic.measures import charts, selectors
from ketaclinic.measures.choices import Respondent
from ketaclinic.measures.selectors import PatientOutcomes
from ketaclinic.measures.trajectories import ScorePoint
from ketaclinic.patients import chart
from ketaclinic.patients.models import Patient

MOOD_DAYS = chart.RECENT_DAYS
# The C-SSRS screener is a risk screen, not a score to trend.
NOT_CHARTED = frozenset({"cssrs_screener"})


TABLE_ROWS = 8
_ID_MARK = "918273645"


def table_rows(points: Sequence[ScorePoint], response_url: str | None) -> SafeString:
    """The rows of a trajectory's table (newest first) as HTML, each date linking to the
    response when `response_url` (a response_detail URL with the id _ID_MARK) is given.

    Built here, not in the template: a chart shows a table per instrument, and a `{% url %}`
    and date filter per cell cost more than the rest of the table."""
    lines = []
    for p in points:
        day = p.day.isoformat()  # YYYY-MM-DD, as strftime gives it but cheaper
        if response_url is not None:
            href = response_url.replace(_ID_MARK, str(p.response_id))
            day = f'<a href="{href}">{day}</a>'
        flag = '<span class="kc-danger">safety item positive</span>' if p.suicidal_ideation else "—"
        lines.append(
            f"<tr><td>{day}</td><td>{p.total}</td><td>{escape(p.severity or '—')}</td>"
            f"<td>{flag}</td></tr>"
        )
    # Safe: dates, numbers and ids are formatted here, the severity label is escaped.
    return mark_safe("".join(lines))  # noqa: S308


def _day(value: date) -> str:
    return f"{value:%Y-%m-%d}"


def trajectory_section(view: Mapping[str, Any], *, expanded: bool = False) -> SafeString:
    """One instrument's section as HTML: heading with status, the chart and the same numbers as
    a table (accessible, printable); the table is open when `expanded` or there is no chart.

    Written here, not as a template include: the chart shows one section per instrument and the
    include's variable lookups cost more than the rest of the section. The output is the one
    the former `measures/includes/trajectory.html` gave, byte for byte."""
    t = view["trajectory"]
    chart = view["chart"]
    anchor = escape(chart.chart_id if chart is not None else t.instrument)
    instrument = escape(t.instrument)
    out = [
        f'\n\n<section class="kc-trajectory" aria-labelledby="{anchor}-h">\n'
        f'  <h3 id="{anchor}-h">{escape(t.title)}\n    '
    ]
    if t.status:
        out.append(
            f'<span class="kc-status kc-status-{escape(t.status)}" '
            f'data-testid="status-{instrument}">{escape(t.status_words)}</span>'
        )
    out.append("\n    ")
    if t.late_responder:
        out.append(
            f'<span class="kc-status kc-status-late" data-testid="late-{instrument}">Late '
            f"responder: first response after {t.first_response_after_sessions} sessions</span>"
        )
    out.append('\n  </h3>\n  <p class="muted">\n    ')
    if t.baseline:
        out.append(f"Baseline {t.baseline.total} ({_day(t.baseline.day)})")
    out.append("\n    ")
    if t.latest and t.latest != t.baseline:
        latest = t.latest
        out.append(f" · latest {latest.total}")
        if latest.severity:
            out.append(f" ({escape(latest.severity)})")
        out.append(f" on {_day(latest.day)}")
        if t.change_pct is not None:
            sign = "" if t.change_pct <= 0 else "+"
            out.append(f" · {sign}{t.change_pct}% from baseline")
    out.append("\n    ")
    if t.status_note:
        out.append(f" · {escape(t.status_note)}")
    out.append("\n    ")
    if t.end_of_induction_status:
        out.append(f" · end of induction: {t.end_of_induction.total}")
    out.append("\n    ")
    if t.relapse_on:
        out.append(f' · <strong class="kc-danger">relapse confirmed {_day(t.relapse_on)}</strong>')
    out.append("\n  </p>\n  ")
    if chart:
        out.append(f'\n<figure class="kc-chart">{chart.svg()}</figure>\n')
    out.append(
        '\n  <details class="kc-table-toggle"'
        + (" open" if expanded or not chart else "")
        + f">\n    <summary>Latest {len(view['recent'])} of {len(t.points)} scores as a table"
        "</summary>\n"
        '    <table class="striped">\n'
        '      <thead><tr><th scope="col">Date</th><th scope="col">Total</th>'
        '<th scope="col">Severity</th><th scope="col">Flags</th></tr></thead>\n'
        f"      <tbody>{view['table_rows']}</tbody>\n"
        "    </table>\n  </details>\n</section>\n\n"
    )
    # Safe: the texts are escaped above, the chart and table rows are SafeStrings, the rest are
    # numbers and dates formatted here.
    return mark_safe("".join(out))  # noqa: S308


def trajectory_views(
    outcomes: PatientOutcomes,
    today: date,
    *,
    compact: bool = False,
    link_responses: bool = False,
    expanded: bool = False,
) -> list[dict[str, Any]]:
    """One entry per instrument: the trajectory, its chart, the rows of its table (dates
    linking to each response when `link_responses`, for staff) and the whole section as HTML
    (`trajectory_section`, the table open when `expanded`)."""
    response_url = (
        reverse("measures:response_detail", args=[outcomes.patient.pk, int(_ID_MARK)])
        if link_responses
        else None
    )
    width, height = (
        (charts.COMPACT_WIDTH, charts.COMPACT_HEIGHT) if compact else (charts.WIDTH, charts.HEIGHT)
    )
    views = []
    for index, item in enumerate(outcomes.trajectories):
        views.append(
            {
                "trajectory": item,
                "chart": None
                if item.instrument in NOT_CHARTED
                else charts.trajectory_chart(
                    item,
                    outcomes.timeline,
                    today=today,
                    chart_id=f"chart-{item.instrument}-{index}",
                    width=width,
                    height=height,
                ),
                "recent": (recent := list(reversed(item.points[-TABLE_ROWS:]))),
                "table_rows": table_rows(recent, response_url),
            }
        )
        views[-1]["html"] = trajectory_section(views[-1], expanded=expanded)
    return views


def mood_chart(checkins: list[Any], tz: Any, today: date) -> charts.LineChart | None:
    if not checkins:
        return None
    points = sorted(
        (
            c.recorded_at.astimezone(tz).date(),
            c.mood_0_to_10,
            f"{c.recorded_at.astimezone(tz):%Y-%m-%d}: mood {c.mood_0_to_10}/10",
            c.urgent,
        )
        for c in checkins
    )
    return charts.line_chart(
        chart_id="chart-mood",
        title=f"Mood check-ins, last {MOOD_DAYS} days",
        description=f"{len(points)} check-ins; 0 is the worst mood, 10 the best.",
        series=charts.Series(points, 0, 10),
        start=today - timedelta(days=MOOD_DAYS),
        end=today + timedelta(days=1),
    )


# The panel's links to the patient's measures pages: (key, URL name, extra arguments).
_PATIENT_LINKS = (
    ("enrol", "measures:enrol", ()),
    ("assign", "measures:assign", ()),
    ("report", "measures:report", ()),
    ("scores_csv", "measures:scores_csv", ()),
    ("shared_journal", "measures:shared_journal", ()),
    *(
        (f"score_{code}", "measures:score_entry", (code,))
        for code in ("madrs", "phq9", "cssrs_screener", "gad7", "qids_sr16", "ybocs", "pcl5")
    ),
)


@lru_cache(maxsize=8)
def _patient_link_patterns(urlconf: Any, prefix: str) -> tuple[tuple[str, str], ...]:
    """The links reversed once per URLconf and script prefix for the id _ID_MARK."""
    return tuple(
        (key, reverse(name, urlconf=urlconf, args=[int(_ID_MARK), *args]))
        for key, name, args in _PATIENT_LINKS
    )


def patient_links(patient_id: int) -> dict[str, str]:
    """The panel's links for one patient (a dozen `{% url %}` tags cost more than the rest of
    the panel's header)."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    patterns = _patient_link_patterns(urlconf, get_script_prefix())
    return {key: url.replace(_ID_MARK, str(patient_id)) for key, url in patterns}


# The panel's lists, compiled to SQL once (core.compiled_query).
_CHECKINS = CompiledModelQuery(
    lambda patient_id, since: selectors.checkins(patient_id, since=since),
    patient_id=PLACEHOLDER_ID,
    since=PLACEHOLDER_DATETIME,
)
_OPEN_ITEMS = CompiledModelQuery(selectors.open_assignments, patient_id=PLACEHOLDER_ID)
_JOURNAL = CompiledModelQuery(
    lambda patient_id: selectors.shared_journal(patient_id)[:5], patient_id=PLACEHOLDER_ID
)


def panel_facts(since: datetime) -> Mapping[str, Any]:
    """Which lists the patient has, read with the other panels' facts (patients.chart)."""
    return selectors.presence_facts(since)


def panel_context(
    user: Any, patient: Patient, facts: Mapping[str, Any] | None = None
) -> Mapping[str, Any] | None:
    if not access.has_permission(user, "measures.view", patient.clinic_id):
        return None
    now = clock.now()
    since = now - timedelta(days=MOOD_DAYS)
    # The chart's facts window starts a moment earlier than `since`: a superset, so a flag
    # never hides a check-in this panel would show.
    present = (
        selectors.presence_from(facts)
        if facts
        else selectors.presence(patient.pk, checkins_since=since)
    )
    outcomes = selectors.patient_outcomes(patient, present=present)
    today = now.astimezone(outcomes.tz).date()
    recent_checkins = (
        _CHECKINS.objects(patient_id=patient.pk, since=since) if present.checkins else []
    )
    open_items = _OPEN_ITEMS.objects(patient_id=patient.pk) if present.assignments else []
    boosters = (
        list(selectors.booster_recommendations(user).filter(patient_id=patient.pk)[:3])
        if present.boosters
        else []
    )
    timeline = outcomes.timeline
    return {
        "outcomes": outcomes,
        "primary": outcomes.primary,
        "trajectories": trajectory_views(outcomes, today, link_responses=True),
        "timeline": timeline,
        "phase_today": timeline.phase_on(today) if timeline else None,
        "sessions_given": timeline.sessions_before(today + timedelta(days=1)) if timeline else 0,
        "alerts": selectors.patient_alerts(patient.pk) if present.alerts else [],
        "boosters": boosters,
        "patient_assignments": [a for a in open_items if a.respondent == Respondent.PATIENT],
        "clinician_assignments": [a for a in open_items if a.respondent == Respondent.CLINICIAN],
        "checkins": recent_checkins[:5],
        "mood_chart": mood_chart(recent_checkins, outcomes.tz, today),
        "journal": _JOURNAL.objects(patient_id=patient.pk) if present.journal else [],
        "can_manage": access.has_permission(user, "measures.manage", patient.clinic_id),
        "can_acknowledge": access.has_permission(user, "alerts.acknowledge", patient.clinic_id),
        "can_resolve_booster": access.has_permission(user, "booster.resolve", patient.clinic_id),
        "patient": patient,
        "urls": patient_links(patient.pk),
    }


def register() -> None:
    chart.register(
        chart.Panel(
            key="measures",
            title="Measures and outcomes",
            template="measures/chart_panel.html",
            context=panel_context,
            order=50,
            facts=panel_facts,
        )
    )
