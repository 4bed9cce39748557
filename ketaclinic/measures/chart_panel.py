"""The "Measures and outcomes" panel of the patient chart, and the views shared by the printable
progress report: trajectories with charts, course status, booster recommendation, late-responder
label, alerts, open questionnaires, check-ins and shared journal entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from html import escape
from typing import Any, NamedTuple

from django.conf import settings
from django.template.defaultfilters import pluralize
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]

from ketaclinic.accounts import access
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_ID,
    CompiledModelQuery,
    CompiledValuesQuery,
)
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.templates import text
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
# An em dash for an empty cell, as a reference: the tables join the page's longest strings,
# which one character beyond Latin-1 would make Python keep at two bytes a character (see
# charts.escape).
_DASH = "&#8212;"
_FLAGGED = '<span class="kc-danger">safety item positive</span>'
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
        flag = _FLAGGED if p.suicidal_ideation else _DASH
        severity = escape(p.severity) if p.severity else _DASH
        lines.append(f"<tr><td>{day}</td><td>{p.total}</td><td>{severity}</td><td>{flag}</td></tr>")
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
    response_url = _response_url(outcomes.patient.pk) if link_responses else None
    width, height = (
        (charts.COMPACT_WIDTH, charts.COMPACT_HEIGHT) if compact else (charts.WIDTH, charts.HEIGHT)
    )
    views = []
    # One time axis for the page's charts, so they read across from one to the next; with it
    # they share their session markers, month ticks and the place of each day.
    memo = charts.SharedParts()
    charted = [t for t in outcomes.trajectories if t.instrument not in NOT_CHARTED]
    span = charts.chart_span(charted, outcomes.timeline, today=today)
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
                    memo=memo,
                    span=span,
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
    days = [c.recorded_at.astimezone(tz).date() for c in checkins]
    points = sorted(
        (day, c.mood_0_to_10, f"{day.isoformat()}: mood {c.mood_0_to_10}/10", c.urgent)
        for day, c in zip(days, checkins, strict=True)
    )
    return charts.line_chart(
        chart_id="chart-mood",
        title=f"Mood check-ins, last {MOOD_DAYS} days",
        description=f"{len(points)} check-ins; 0 is the worst mood, 10 the best.",
        series=charts.Series(points, 0, 10),
        start=today - timedelta(days=MOOD_DAYS),
        end=today + timedelta(days=1),
    )


def _when(value: Any, fmt: str) -> str:
    """`{{ value|date:... }}` for the formats the panel uses (Y-m-d, Y-m-d H:i): "" for
    nothing, a datetime in the template's current time zone."""
    if value in (None, ""):
        return ""
    return f"{template_localtime(value):{fmt}}"


def _ago(value: Any, until: Any = None) -> str:
    """`{{ value|timesince }}` and `{{ value|timesince:until }}`."""
    if not value:
        return ""
    try:
        return timesince(value, until) if until else timesince(value)
    except (ValueError, TypeError):
        return ""


_ENTER_SCORE = (
    ("score_madrs", "MADRS (clinician)"),
    ("score_phq9", "PHQ-9 (on paper)"),
    ("score_cssrs_screener", "C-SSRS screener"),
    ("score_gad7", "GAD-7"),
    ("score_qids_sr16", "QIDS-SR16 (item scores)"),
    ("score_ybocs", "Y-BOCS (item scores)"),
    ("score_pcl5", "PCL-5"),
)


def panel_body_html(c: Mapping[str, Any]) -> SafeString:
    """The panel below its booster callouts (alerts, plan and course status, actions, open
    questionnaires, trajectories, check-ins, journal, alert history) as HTML.

    Written here, not in `measures/chart_panel.html`: the chart renders it on every read, and
    the template's lookups, filters and `{% url %}` tags cost more than the rest of the panel.
    The output is the one the template gave, byte for byte (tests/measures/test_chart_panel_html.py
    renders the former template beside it)."""
    t = text
    urls = c["urls"]
    out = ["\n\n  "]
    alerts = c["alerts"]
    for a in alerts:
        if a.is_open:
            href = reverse_with_id("measures:alert_detail", a.pk)
            out.append(
                '\n  <div class="kc-callout kc-callout-danger" role="alert">\n'
                f"    <strong>{t(a.get_priority_display())}:</strong> {t(a.summary)} · waiting "
                f"since {_when(a.created_at, '%Y-%m-%d %H:%M')} ({t(_ago(a.created_at))})\n"
                f'    <a href="{t(href)}">'
                + ("Acknowledge" if c["can_acknowledge"] else "Open")
                + "</a>\n  </div>\n  "
            )
    out.append('\n\n  <div class="grid kc-course">\n    <div>\n      ')
    outcomes = c["outcomes"]
    e = outcomes.enrolment
    if e:
        out.append(f"\n      <p><strong>{t(e.plan.name)}</strong>")
        if e.status != "active":
            out.append(f" (ended {_when(e.ended_at, '%Y-%m-%d')}: {t(e.ended_reason)})")
        out.append('<br>\n      <span class="muted">')
        if e.course_id:
            out.append(
                f"Treatment course {t(e.course_id)} "
                f"({t(e.course.get_status_display().lower())}, {t(e.protocol)})"
            )
        else:
            out.append(f"Protocol {t(e.protocol)} (no course on file)")
        timeline = c["timeline"]
        out.append(
            f" · first session {_when(e.first_session_on, '%Y-%m-%d')} · "
            f"{t(c['sessions_given'])} of {len(timeline.sessions) if timeline else 0} "
            "planned sessions given"
        )
        if c["phase_today"]:
            out.append(f" · now in {t(c['phase_today'])}")
        if e.prescriber:
            out.append(f" · alerts to {t(e.prescriber)}")
        out.append("</span></p>\n      ")
    else:
        out.append('\n      <p class="muted">Not on a measurement plan.</p>\n      ')
    out.append("\n      ")
    primary = c["primary"]
    if primary:
        out.append(
            f'\n      <p data-testid="course-status">Course status ({t(primary.title)}): '
            f'<span class="kc-status kc-status-{t(primary.status or "none")}">'
            f"{t(primary.status_words or 'baseline only')}</span>"
            + (
                ' <span class="kc-status kc-status-late">Late responder</span>'
                if outcomes.late_responder
                else ""
            )
            + "</p>\n      "
        )
    out.append('\n    </div>\n    <div class="kc-actions">\n      ')
    if c["can_manage"]:
        out.append("\n        ")
        if not e or e.status != "active":
            out.append(f'<a role="button" href="{t(urls["enrol"])}">Start measurement plan</a>')
        out.append(
            f'\n        <a role="button" class="secondary outline" href="{t(urls["assign"])}">'
            "Send a questionnaire</a>\n"
            '        <details class="dropdown"><summary>Enter a score</summary><ul>\n'
            + "".join(
                f'          <li><a href="{t(urls[key])}">{label}</a></li>\n'
                for key, label in _ENTER_SCORE
            )
            + "        </ul></details>\n      "
        )
    out.append(
        f'\n      <a role="button" class="secondary outline" href="{t(urls["report"])}">'
        "Progress report</a>\n"
        f'      <a href="{t(urls["scores_csv"])}">Scores (CSV)</a>\n    </div>\n  </div>\n\n  '
    )
    clinician, patient_side = c["clinician_assignments"], c["patient_assignments"]
    if clinician or patient_side:
        out.append("\n  <h3>Open questionnaires</h3>\n  <ul>\n    ")
        for a in clinician:
            out.append(
                f"<li>{t(a.instrument_title)} to be entered by a clinician, due "
                f"{_when(a.due_at, '%Y-%m-%d')}"
            )
            if c["can_manage"]:
                href = reverse("measures:score_entry", args=[c["patient"].pk, a.instrument])
                out.append(f' · <a href="{t(href)}?assignment={t(a.pk)}">Enter now</a>')
            out.append("</li>")
        out.append("\n    ")
        for a in patient_side:
            out.append(
                f"<li>{t(a.instrument_title)} for the patient, due "
                f"{_when(a.due_at, '%Y-%m-%d %H:%M')}"
            )
            if a.delivered_at:
                out.append(" · sent")
                if a.reminders_sent:
                    out.append(f", {t(a.reminders_sent)} reminder{pluralize(a.reminders_sent)}")
            out.append("</li>")
        out.append("\n  </ul>\n  ")
    out.append("\n\n  ")
    views = c["trajectories"]
    if views:
        out.extend(v["html"] for v in views)
    else:
        out.append('<p class="muted">No questionnaire scores yet.</p>')
    out.append("\n\n  ")
    mood = c["mood_chart"]
    if mood:
        out.append(
            '\n  <section class="kc-trajectory"><h3>Mood check-ins</h3>\n'
            f'<figure class="kc-chart">{mood.svg()}</figure>\n\n  <ul class="kc-compact">'
        )
        for ch in c["checkins"]:
            out.append(
                f"<li>{_when(ch.recorded_at, '%Y-%m-%d %H:%M')} · mood {t(ch.mood_0_to_10)}/10"
                + (' <strong class="kc-danger">urgent</strong>' if ch.urgent else "")
                + (f" — {t(Truncator(ch.note).chars(140))}" if ch.note else "")
                + "</li>"
            )
        out.append("</ul></section>\n  ")
    out.append("\n\n  ")
    journal = c["journal"]
    if journal:
        out.append('\n  <h3>Journal entries the patient shared</h3>\n  <ul class="kc-compact">')
        for j in journal:
            out.append(
                f"<li>{_when(j.created_at, '%Y-%m-%d')}"
                + (' <strong class="kc-danger">urgent</strong>' if j.urgent else "")
                + f" — {t(Truncator(str(j.body)).chars(200))}</li>"
            )
        out.append(
            f'</ul>\n  <p><a href="{t(urls["shared_journal"])}">All shared entries</a></p>\n  '
        )
    out.append("\n\n  ")
    if alerts:
        out.append(
            f"\n  <details><summary>Safety alerts ({len(alerts)} most recent)</summary>\n"
            '  <ul class="kc-compact">'
        )
        for a in alerts:
            out.append(
                f"<li>{_when(a.created_at, '%Y-%m-%d %H:%M')} · {t(a.get_kind_display())} · "
            )
            if a.is_open:
                out.append("<strong>waiting</strong>")
            else:
                out.append(
                    f"acknowledged by {t(a.acknowledged_by)} after "
                    f"{t(_ago(a.created_at, a.acknowledged_at))} ({t(a.get_action_display())})"
                )
            out.append("</li>")
        out.append("</ul></details>\n  ")
    out.append("\n")
    # Safe: every text and number went through conditional_escape(); the trajectories and
    # the mood chart are SafeStrings written with escaping of their own.
    return mark_safe("".join(out))  # noqa: S308


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


_PATIENT_MARK = "918273646"


@lru_cache(maxsize=8)
def _response_url_pattern(urlconf: Any, prefix: str) -> str:
    return reverse(
        "measures:response_detail", urlconf=urlconf, args=[int(_PATIENT_MARK), int(_ID_MARK)]
    )


def _response_url(patient_id: int) -> str:
    """A patient's response_detail URL for the response id _ID_MARK, reversed once per
    URLconf and script prefix."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    pattern = _response_url_pattern(urlconf, get_script_prefix())
    return pattern.replace(_PATIENT_MARK, str(int(patient_id)))


def patient_links(patient_id: int) -> dict[str, str]:
    """The panel's links for one patient (a dozen `{% url %}` tags cost more than the rest of
    the panel's header)."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    patterns = _patient_link_patterns(urlconf, get_script_prefix())
    return {key: url.replace(_ID_MARK, str(patient_id)) for key, url in patterns}


class CheckInRow(NamedTuple):
    """What the panel shows of a check-in (a month of daily check-ins is read on every chart:
    a model instance each costs more than the mood chart drawn from them)."""

    recorded_at: datetime
    mood_0_to_10: int
    urgent: bool
    note: str


# The panel's lists, compiled to SQL once (core.compiled_query).
_CHECKINS = CompiledValuesQuery(
    lambda patient_id, since: selectors.checkins(patient_id, since=since).values(
        *CheckInRow._fields
    ),
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


def panel_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> Mapping[str, Any] | None:
    """The panel's reads, asked for with the other panels' (patients.chart); None hides it."""
    if not access.has_permission(user, "measures.view", patient.clinic_id):
        return None
    now = clock.now()
    since = now - timedelta(days=MOOD_DAYS)
    present = selectors.presence_from(facts)
    return {
        "now": now,
        "present": present,
        "outcomes": selectors.outcomes_reads(patient, present, reads),
        "checkins": reads.add(_CHECKINS, patient_id=patient.pk, since=since)
        if present.checkins
        else None,
        "open_items": reads.add(_OPEN_ITEMS, patient_id=patient.pk)
        if present.assignments
        else None,
        "journal": reads.add(_JOURNAL, patient_id=patient.pk) if present.journal else None,
    }


def panel_context(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Any] | None = None,
    prepared: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    if prepared is not None:
        return _context(user, patient, prepared)
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
    return _context(
        user,
        patient,
        {
            "now": now,
            "present": present,
            "outcomes": None,
            "checkins": _CHECKINS.tuples(patient_id=patient.pk, since=since)
            if present.checkins
            else [],
            "open_items": _OPEN_ITEMS.objects(patient_id=patient.pk) if present.assignments else [],
            "journal": _JOURNAL.objects(patient_id=patient.pk) if present.journal else [],
        },
    )


def _rows(value: Any) -> list[Any]:
    """Rows read already, or the rows behind a chart read's handle (None: no rows)."""
    if value is None:
        return []
    return value if isinstance(value, list) else value.rows()


def _context(user: Any, patient: Patient, prepared: Mapping[str, Any]) -> dict[str, Any]:
    now, present, read = prepared["now"], prepared["present"], prepared["outcomes"]
    outcomes = selectors.patient_outcomes(patient, present=present, read=read)
    today = now.astimezone(outcomes.tz).date()
    recent_checkins = [CheckInRow._make(row) for row in _rows(prepared["checkins"])]
    open_items = _rows(prepared["open_items"])
    boosters = (
        list(selectors.booster_recommendations(user).filter(patient_id=patient.pk)[:3])
        if present.boosters
        else []
    )
    timeline = outcomes.timeline
    context: dict[str, Any] = {
        "outcomes": outcomes,
        "primary": outcomes.primary,
        "trajectories": trajectory_views(outcomes, today, link_responses=True),
        "timeline": timeline,
        "phase_today": timeline.phase_on(today) if timeline else None,
        "sessions_given": timeline.sessions_before(today + timedelta(days=1)) if timeline else 0,
        "alerts": (
            _rows(read["alerts"])
            if read is not None
            else selectors.patient_alerts(patient.pk)
            if present.alerts
            else []
        ),
        "boosters": boosters,
        "patient_assignments": [a for a in open_items if a.respondent == Respondent.PATIENT],
        "clinician_assignments": [a for a in open_items if a.respondent == Respondent.CLINICIAN],
        "checkins": recent_checkins[:5],
        "mood_chart": mood_chart(recent_checkins, outcomes.tz, today),
        "journal": _rows(prepared["journal"]),
        "can_manage": access.has_permission(user, "measures.manage", patient.clinic_id),
        "can_acknowledge": access.has_permission(user, "alerts.acknowledge", patient.clinic_id),
        "can_resolve_booster": access.has_permission(user, "booster.resolve", patient.clinic_id),
        "patient": patient,
        "urls": patient_links(patient.pk),
    }
    context["body_html"] = panel_body_html(context)
    return context


def panel_page_html(ctx: Mapping[str, Any]) -> SafeString | None:
    """What `measures/chart_panel.html` writes for the panel's context (Panel.html), or None
    to write the template: when there are booster recommendations, with their forms."""
    if ctx["boosters"]:
        return None
    # Safe: body_html is a SafeString written with escaping of its own.
    return mark_safe(  # noqa: S308
        '\n<div class="kc-measures" data-testid="measures-panel">\n  '
        f"{conditional_escape(ctx['body_html'])}</div>\n\n"
    )


def register() -> None:
    chart.register(
        chart.Panel(
            key="measures",
            title="Measures and outcomes",
            template="measures/chart_panel.html",
            context=panel_context,
            order=50,
            facts=panel_facts,
            prepare=panel_prepare,
            html=panel_page_html,
        )
    )
