"""Trajectory charts as server-rendered SVG: geometry computed here, markup in a template
(`measures/includes/line_chart.svg.html`).

Why SVG from Python: it needs no JavaScript and no Node build, fits the strict CSP (colours are
SVG presentation attributes, not inline styles), prints exactly as shown, and is accessible (a
title, a description and, next to each chart, the same numbers as a table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape as _escape  # the standard library's: Django's is lazy-aware, dearer
from typing import NamedTuple

from django.utils.safestring import SafeString, mark_safe

from ketaclinic.clinical import INSTRUMENTS
from ketaclinic.core.templates import ascii_html
from ketaclinic.measures.scheduling import add_months
from ketaclinic.measures.timeline import CareTimeline
from ketaclinic.measures.trajectories import SAFETY_FLAG, Trajectory

WIDTH = 720
HEIGHT = 260
# Phones: a narrower drawing keeps the text readable when the SVG scales to the screen.
COMPACT_WIDTH = 400
COMPACT_HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 22, 34

# Band fills from least to most severe (colour-blind-safe ramp, light enough to print).
_BAND_FILLS = ("#e6f4ea", "#fbf3d5", "#fde5cc", "#fbd3c4", "#f6c1c1", "#f0b0b0")
_PHASE_FILLS = {"induction": "#dbe7fb", "maintenance": "#e8e2f6", "booster": "#f9e1ef"}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    label: str


@dataclass(frozen=True)
class HLine:
    y: float
    label: str
    kind: str  # "baseline", "response", "remission"


class Tick(NamedTuple):
    pos: float
    label: str


class Dot(NamedTuple):
    """One score on the chart. A named tuple, not a frozen dataclass: a two-year chart draws
    hundreds, and a frozen dataclass costs several times as much to build."""

    x: float
    y: float
    title: str  # as written in the chart: escaped HTML
    flagged: bool


class Marker(NamedTuple):
    """A session or an event (a named tuple, as Dot: a year of sessions is dozens per chart)."""

    x: float
    title: str


@dataclass(frozen=True)
class LineChart:
    """Everything the SVG template draws, in pixels."""

    chart_id: str
    title: str
    description: str
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    bands: tuple[Rect, ...]
    phases: tuple[Rect, ...]
    lines: tuple[HLine, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    dots: tuple[Dot, ...]
    polyline: str
    sessions: tuple[Marker, ...]
    events: tuple[Marker, ...]  # e.g. relapse
    # The dots' markup, written by line_chart in the same pass over the scores as the polyline
    # (a two-year chart has hundreds of dots, each once).
    dots_svg: str = field(default="", compare=False, repr=False)
    # The session markers' markup, shared by the charts of one page drawn over the same days;
    # empty: render_svg writes them itself.
    sessions_svg: str = field(default="", compare=False, repr=False)

    @property
    def tick_bottom(self) -> float:
        return self.plot_bottom + 4

    def svg(self) -> SafeString:
        """The chart as inline SVG (see `render_svg`)."""
        return render_svg(self)


@dataclass(frozen=True)
class Series:
    """Values over days to draw: (day, value, title, flagged). `escaped`: the titles are HTML
    already, escaped and in ASCII (as trajectory_chart writes them from dates, numbers and
    escaped labels), so each is not escaped again per dot."""

    points: Sequence[tuple[date, int, str, bool]]
    low: int
    high: int
    escaped: bool = False


@dataclass
class SharedParts:
    """What the charts of one page share, so charts over the same days (a PHQ-9 and a GAD-7
    chart of the same two years) place and write their session markers and month ticks once.
    Keyed by the timeline's identity: it must not outlive the page."""

    # (id(timeline), start, end, width, top, bottom) -> the markers and their SVG
    sessions: dict[tuple[int, date, date, int, float, float], tuple[list[Marker], str]] = field(
        default_factory=dict
    )
    # (start, end, width) -> the month ticks
    ticks: dict[tuple[date, date, int], tuple[Tick, ...]] = field(default_factory=dict)
    # (start, end, width) -> {day's ordinal: its x, and the x as written}: instruments scored
    # on the same days (a PHQ-9 and a GAD-7 before each session) place each day once
    xs: dict[tuple[date, date, int], dict[int, tuple[float, str]]] = field(default_factory=dict)


def escape(text: str) -> str:
    """`text` escaped for HTML, in ASCII ("−" as &#8722;, see core.templates.ascii_html): the
    charts are the longest strings of the chart page."""
    return ascii_html(_escape(text))


class _Scale:
    def __init__(
        self, start: date, end: date, low: int, high: int, width: int, height: int
    ) -> None:
        self.start, self.days = start, max((end - start).days, 1)
        self.low, self.span = low, max(high - low, 1)
        self.width, self.height = width, height

    def x(self, day: date) -> float:
        plot = self.width - LEFT - RIGHT
        return round(LEFT + plot * (day - self.start).days / self.days, 1)

    def y(self, value: float) -> float:
        plot = self.height - TOP - BOTTOM
        return round(TOP + plot * (1 - (value - self.low) / self.span), 1)


def _x_ticks(scale: _Scale, start: date, end: date) -> tuple[Tick, ...]:
    days = (end - start).days
    most = 8 if scale.width >= 600 else 4
    if days <= 70:
        step_days = 7 if days <= 6 * most else 14
        first = start + timedelta(days=(7 - start.weekday()) % 7)  # Mondays
        return tuple(
            Tick(scale.x(day), f"{day:%b} {day.day}")
            for day in (first + timedelta(days=k) for k in range(0, days + 1, step_days))
            if day <= end
        )
    months = max(1, round(days / 30 / most))  # about `most` ticks
    first = date(start.year, start.month, 1)
    if first < start:
        first = add_months(first, 1)
    ticks = []
    day = first
    while day <= end:
        ticks.append(Tick(scale.x(day), f"{day:%b %Y}" if day.month == 1 else f"{day:%b}"))
        day = add_months(day, months)
    return tuple(ticks)


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    series: Series,
    start: date,
    end: date,
    bands: Sequence[tuple[int, int, str]] = (),
    lines: Sequence[tuple[float, str, str]] = (),
    timeline: CareTimeline | None = None,
    events: Sequence[tuple[date, str]] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
    memo: SharedParts | None = None,
) -> LineChart:
    """Lay out a chart of `series` from `start` to `end` (days) with optional severity bands,
    horizontal reference lines, session markers and phase strips from `timeline`.

    `memo`: the parts the charts of one page share (`SharedParts`)."""
    scale = _Scale(start, end, series.low, series.high, width, height)
    top, bottom = scale.y(series.high), scale.y(series.low)
    band_rects = []
    for index, (low, high, label) in enumerate(bands):
        upper = min(high + 1, series.high) if index < len(bands) - 1 else series.high
        lower = low if index else series.low
        band_rects.append(
            Rect(
                LEFT,
                scale.y(upper),
                width - LEFT - RIGHT,
                round(scale.y(lower) - scale.y(upper), 1),
                _BAND_FILLS[min(index, len(_BAND_FILLS) - 1)],
                label,
            )
        )
    phase_rects = []
    sessions = []
    if timeline is not None:
        for span in timeline.phases:
            left = max(span.start, start)
            right = min(span.end or end, end)
            if right < left:
                continue
            phase_rects.append(
                Rect(
                    scale.x(left),
                    TOP - 16,
                    max(round(scale.x(right) - scale.x(left), 1), 1),
                    12,
                    _PHASE_FILLS.get(span.phase, "#eeeeee"),
                    span.phase.capitalize(),
                )
            )
    # scale.x() and scale.y() inlined (the same arithmetic, so the same rounded pixels): a
    # two-year chart places hundreds of dots and dozens of sessions. A score has few distinct
    # values, so each value's height is computed (and written) once.
    plot_w, days, first = width - LEFT - RIGHT, scale.days, scale.start.toordinal()
    sessions_svg = ""
    if timeline is not None:
        key = (id(timeline), start, end, width, top, bottom)
        found = memo.sessions.get(key) if memo is not None else None
        if found is None:
            sessions = [
                Marker(round(LEFT + plot_w * (s.on.toordinal() - first) / days, 1), s.label)
                for s in timeline.sessions
                if start <= s.on <= end
            ]
            found = (sessions, _sessions_svg(sessions, f"{top}", f"{bottom}"))
            if memo is not None:
                memo.sessions[key] = found
        sessions, sessions_svg = found
    plot_h, low, value_span = height - TOP - BOTTOM, scale.low, scale.span
    heights = {
        value: round(TOP + plot_h * (1 - (value - low) / value_span), 1)
        for value in {point[1] for point in series.points}
    }
    written = {value: f"{y}" for value, y in heights.items()}
    # One pass over the scores writes each dot's circle and polyline point from the same
    # strings (a float is dearer to write than the rest of a dot).
    placed = memo.xs.setdefault((start, end, width), {}) if memo is not None else {}
    make = tuple.__new__  # a named tuple from a tuple: one call fewer than Dot(...)
    dots: list[Dot] = []
    line: list[str] = []
    circles: list[str] = []
    escaped = series.escaped
    for day, value, label, flagged in series.points:
        ordinal = day.toordinal()
        where = placed.get(ordinal)
        if where is None:
            x = round(LEFT + plot_w * (ordinal - first) / days, 1)
            where = placed[ordinal] = (x, f"{x}")
        x, x_text = where
        y_text = written[value]
        html = label if escaped else escape(label)
        dots.append(make(Dot, (x, heights[value], html, flagged)))
        line.append(f"{x_text},{y_text}")
        circles.append(_circle(x_text, y_text, html, flagged))
    ticks_key = (start, end, width)
    x_ticks = memo.ticks.get(ticks_key) if memo is not None else None
    if x_ticks is None:
        x_ticks = _x_ticks(scale, start, end)
        if memo is not None:
            memo.ticks[ticks_key] = x_ticks
    y_values = sorted({series.low, series.high, *(low for low, _, _ in bands)})
    if not bands:
        step = 5 if series.high - series.low > 12 else 2
        y_values = list(range(series.low, series.high + 1, step))
    return LineChart(
        chart_id=chart_id,
        title=title,
        description=description,
        width=width,
        height=height,
        plot_left=LEFT,
        plot_right=width - RIGHT,
        plot_top=top,
        plot_bottom=bottom,
        bands=tuple(band_rects),
        phases=tuple(phase_rects),
        lines=tuple(
            HLine(scale.y(value), label, kind)
            for value, label, kind in lines
            if series.low <= value <= series.high
        ),
        x_ticks=x_ticks,
        y_ticks=tuple(Tick(scale.y(v), str(v)) for v in y_values),
        dots=tuple(dots),
        polyline=" ".join(line),
        sessions=tuple(sessions),
        events=tuple(Marker(scale.x(day), label) for day, label in events if start <= day <= end),
        dots_svg="".join(circles),
        sessions_svg=sessions_svg,
    )


def _sessions_svg(sessions: Sequence[Marker], top: str, bottom: str) -> str:
    """The session markers' markup (escaped titles), from the plot's top to its bottom."""
    e = escape
    out = []
    for m in sessions:
        x = f"{m.x}"
        out.append(
            f"<g><title>{e(m.title)}</title>"
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" '
            'stroke="#6b7fd7" stroke-opacity="0.35" stroke-width="1"/>'
            f'<path d="M{x} {bottom} l-4 9 h8 z" fill="#3552c4"/></g>'
        )
    return "".join(out)


def chart_span(
    items: Sequence[Trajectory], timeline: CareTimeline | None, *, today: date
) -> tuple[date, date]:
    """The days a trajectory chart spans: from 3 days before the first score (or the first
    session, if earlier) to 3 days after the last score or today, whichever is later; the last
    30 days when there is nothing to draw. Given several trajectories, the span of them all,
    so that a page's charts share one time axis and read across from one to the next."""
    days = [p.day for item in items for p in item.points]
    if timeline is not None and timeline.sessions:
        days.append(timeline.sessions[0].on)
    start = min(days) - timedelta(days=3) if days else today - timedelta(days=30)
    end = max([*days, today]) + timedelta(days=3)
    return start, end


def trajectory_chart(
    item: Trajectory,
    timeline: CareTimeline | None,
    *,
    today: date,
    chart_id: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    memo: SharedParts | None = None,
    span: tuple[date, date] | None = None,
) -> LineChart:
    """The chart of one instrument's trajectory: bands, baseline, response and remission lines,
    sessions (dose and route), phases and a relapse marker, over `span` (first and last day;
    by default `chart_span` of this trajectory alone). `memo`: see `line_chart`."""
    definition = INSTRUMENTS[item.instrument]
    low, high = definition.score_range
    start, end = span or chart_span([item], timeline, today=today)
    lines: list[tuple[float, str, str]] = []
    if item.baseline is not None:
        lines.append((item.baseline.total, f"Baseline {item.baseline.total}", "baseline"))
    response_line = item.response_line
    if response_line is not None and item.cutoffs is not None:
        label = f"Response (−{item.cutoffs.response_reduction_pct}%)"
        lines.append((response_line, label, "response"))
    if item.cutoffs is not None:
        remission = item.cutoffs.remission_max
        lines.append((remission, f"Remission ≤ {remission}", "remission"))
    events = [(item.relapse_on, "Relapse")] if item.relapse_on else []
    # Each dot's title as HTML ("2026-06-01: 12 (moderate)"): a date and a number need no
    # escaping, so only each severity label is escaped, once. isoformat(): the same YYYY-MM-DD
    # as strftime, at a third of its cost per point.
    labels = {point.severity for point in item.points}
    severity = {label: f" ({escape(label)})" if label else "" for label in labels}
    points = [
        (day, total, f"{day.isoformat()}: {total}{severity[label]}", SAFETY_FLAG in flags)
        for _, _, day, total, label, flags in item.points
    ]
    parts = [f"{len(item.points)} scores from {start:%Y-%m-%d} to {end:%Y-%m-%d}."]
    if item.baseline is not None:
        parts.append(f"Baseline {item.baseline.total}.")
    if item.latest is not None:
        parts.append(f"Latest {item.latest.total}.")
    if item.status:
        parts.append(f"Status: {item.status_words}.")
    return line_chart(
        chart_id=chart_id,
        title=f"{definition.title} over time",
        description=" ".join(parts),
        series=Series(points, low, high, escaped=True),
        start=start,
        end=end,
        bands=[(band.low, band.high, band.label) for band in definition.bands],
        lines=lines,
        timeline=timeline,
        events=events,
        width=width,
        height=height,
        memo=memo,
    )


def _circle(x: str, y: str, title_html: str, flagged: bool) -> str:
    """One score's dot with its (escaped) title, flagged ones ringed in red."""
    if flagged:
        return (
            f'<circle cx="{x}" cy="{y}" r="5" fill="#ffffff" stroke="#b42318" stroke-width="2.5">'
            f"<title>{title_html} &#183; safety item positive</title></circle>"
        )
    return (
        f'<circle cx="{x}" cy="{y}" r="3.2" fill="#1d3a8a" stroke="#1d3a8a" '
        f'stroke-width="1"><title>{title_html}</title></circle>'
    )


_LINE_COLOURS = {"baseline": "#1f2937", "response": "#b54708", "remission": "#067647"}


def render_svg(c: LineChart) -> SafeString:
    """Inline SVG with presentation attributes only (the CSP forbids inline styles).

    Built here rather than in a template: a two-year trajectory has hundreds of elements, and
    Django's template engine (or format_html per element) would spend most of the chart page's
    time on them. Every text goes through escape() (in ASCII, see there); everything else is a
    number computed here.
    """
    e = escape
    out = [
        f'<svg viewBox="0 0 {c.width} {c.height}" width="100%" role="img" '
        f'aria-labelledby="{e(c.chart_id)}-t {e(c.chart_id)}-d" '
        'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">'
        f'<title id="{e(c.chart_id)}-t">{e(c.title)}</title>'
        f'<desc id="{e(c.chart_id)}-d">{e(c.description)}</desc>'
    ]
    for b in c.bands:
        out.append(
            f'<rect x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}" fill="{b.fill}">'
            f"<title>{e(b.label)}</title></rect>"
            f'<text x="{c.plot_right}" y="{b.y}" dx="-3" dy="11" text-anchor="end" '
            f'fill="#5b6472" font-size="10">{e(b.label)}</text>'
        )
    for p in c.phases:
        out.append(
            f'<rect x="{p.x}" y="{p.y}" width="{p.width}" height="{p.height}" fill="{p.fill}">'
            f"<title>{e(p.label)}</title></rect>"
        )
        if p.width > 60:
            out.append(
                f'<text x="{p.x}" y="{p.y}" dx="3" dy="9.5" fill="#33415c" font-size="9">'
                f"{e(p.label)}</text>"
            )
    out.append(
        f'<line x1="{c.plot_left}" y1="{c.plot_bottom}" x2="{c.plot_right}" '
        f'y2="{c.plot_bottom}" stroke="#8a94a6"/>'
        f'<line x1="{c.plot_left}" y1="{c.plot_top}" x2="{c.plot_left}" y2="{c.plot_bottom}" '
        'stroke="#8a94a6"/>'
    )
    for t in c.y_ticks:
        out.append(
            f'<text x="{c.plot_left}" y="{t.pos}" dx="-5" dy="3.5" text-anchor="end" '
            f'fill="#33415c">{e(t.label)}</text>'
        )
    for t in c.x_ticks:
        out.append(
            f'<line x1="{t.pos}" y1="{c.plot_bottom}" x2="{t.pos}" y2="{c.tick_bottom}" '
            f'stroke="#8a94a6"/><text x="{t.pos}" y="{c.plot_bottom}" dy="26" '
            f'text-anchor="middle" fill="#33415c">{e(t.label)}</text>'
        )
    out.append(c.sessions_svg or _sessions_svg(c.sessions, f"{c.plot_top}", f"{c.plot_bottom}"))
    for line in c.lines:
        colour = _LINE_COLOURS.get(line.kind, "#1f2937")
        dash = "6 3" if line.kind == "baseline" else "2 3"
        out.append(
            f'<line x1="{c.plot_left}" y1="{line.y}" x2="{c.plot_right}" y2="{line.y}" '
            f'stroke="{colour}" stroke-width="1.2" stroke-dasharray="{dash}"/>'
            f'<text x="{c.plot_left}" y="{line.y}" dx="4" dy="-3" fill="{colour}" '
            f'font-size="10">{e(line.label)}</text>'
        )
    for ev in c.events:
        out.append(
            f"<g><title>{e(ev.title)}</title>"
            f'<line x1="{ev.x}" y1="{c.plot_top}" x2="{ev.x}" y2="{c.plot_bottom}" '
            'stroke="#b42318" stroke-width="2"/>'
            f'<text x="{ev.x}" y="{c.plot_top}" dx="3" dy="22" fill="#b42318" '
            f'font-weight="600">{e(ev.title)}</text></g>'
        )
    if c.polyline:
        out.append(
            f'<polyline points="{c.polyline}" fill="none" stroke="#1d3a8a" stroke-width="2" '
            'stroke-linejoin="round"/>'
        )
    out.append(c.dots_svg)
    out.append("</svg>")
    # Safe: every text above went through escape(), the dots' titles in line_chart (or were
    # written as HTML by trajectory_chart: Series.escaped); the rest are numbers and fixed
    # colours.
    return mark_safe("".join(out))  # noqa: S308
