"""Sections of the patient chart contributed by feature apps.

The chart page belongs to `patients`, but intake, courses, sessions, measures and the ledger each
add a panel. They register one here from their AppConfig.ready(), so this app never imports
them and no one edits another app's template:

    chart.register(chart.Panel(key="courses", title="Treatment courses", order=30,
                               template="courses/chart_panel.html", context=course_panel))

`context(user, patient)` runs only when the user may see the chart; it returns the template
context for the panel, or None to hide the panel. It must use its app's selectors (with their own
select_related / prefetch), so the chart's query count stays independent of record counts.

A panel may also give `facts(since)`: annotations on the patient's row (name -> expression, the
patient being `OuterRef("pk")`; `since` is the start of the chart's recent window, RECENT_DAYS
ago). Every panel's facts are read in one query per chart, and such a panel's context is called
as `context(user, patient, facts)` with the values by name. Panels use them to skip the reads
that would come back empty (most patients of a large clinic have no courses, doses or ledger
entries), so the chart does not pay a round trip per panel to find that out.

A panel may also give `html(context)`: its template's output for that context, byte for byte,
written by the panel itself (or None to write the template after all). The chart then prints it
instead of including the template: an include's lookups and tags cost more than the panel's own
work for panels that build their HTML in Python anyway. tests/panel_support.py checks the two
agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.templatetags.static import static
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from ketaclinic.accounts import access
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import (
    GENERIC_PLANS,
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_ID,
    PLANS_AS_USUAL,
    CompiledModelQuery,
    CompiledValuesQuery,
    PreparedText,
    objects_together,
)
from ketaclinic.patients.models import Patient

if TYPE_CHECKING:
    from ketaclinic.audit.services import PendingAppend

# The chart's recent window (check-ins of the last 30 days, ...), for the panels' facts.
RECENT_DAYS = 30
_NO_PARAMS: dict[str, Any] = {"params": []}


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    template: str
    context: Callable[..., Mapping[str, Any] | None]
    order: int = 100
    facts: Callable[[datetime], Mapping[str, Any]] | None = None
    prepare: Callable[..., Any] | None = None
    # The panel's HTML from its context: the bytes `template` would write for it, or None to
    # write `template` after all. The chart then skips the include (its lookups and tags cost
    # more than the panel's own work for panels that build their HTML in Python anyway).
    html: Callable[[Mapping[str, Any]], SafeString | None] | None = None


class ChartReads:
    """The model reads the panels ask for before any of them is built, run together, with the
    chart's audit row (`audit`: sent last in the same round trip on PostgreSQL, so it is
    durable before the chart is written and not made if a read fails)."""

    def __init__(self, audit: PendingAppend | None = None) -> None:
        self._calls: list[tuple[CompiledModelQuery | CompiledValuesQuery, dict[str, Any]]] = []
        self._results: list[list[Any]] | None = None
        self._audit = audit

    def add(self, query: CompiledModelQuery | CompiledValuesQuery, **values: Any) -> ReadHandle:
        """Ask for `query.objects(**values)` (`query.tuples(**values)` for a values query); the
        handle gives the rows after `run()`."""
        if self._results is not None:
            raise RuntimeError("the chart's reads have already run")
        self._calls.append((query, values))
        return ReadHandle(self, len(self._calls) - 1)

    def run(self) -> None:
        calls: list[Any] = list(self._calls)
        # Every read is one patient's rows by key: on PostgreSQL, planned once per connection
        # (GENERIC_PLANS), not re-planned on every chart.
        generic = bool(calls) and connection.vendor == "postgresql"
        if generic:
            calls = [(GENERIC_PLANS, _NO_PARAMS), *calls, (PLANS_AS_USUAL, _NO_PARAMS)]
        statement = self._audit.statement if self._audit is not None else None
        if statement is not None:
            calls.append((PreparedText(statement[0]), {"params": statement[1]}))
        results = objects_together(calls) if calls else []
        if self._audit is not None:
            self._audit.finish(results.pop() if statement is not None else None)
        self._results = results[1:-1] if generic else results

    def _rows(self, index: int) -> list[Any]:
        if self._results is None:
            raise RuntimeError("the chart's reads have not run yet")
        return self._results[index]


@dataclass(frozen=True)
class ReadHandle:
    reads: ChartReads
    index: int

    def rows(self) -> list[Any]:
        return self.reads._rows(self.index)


def rows_of(handle: ReadHandle | None) -> list[Any]:
    """The rows read for `handle`; none when the read was not asked for."""
    return handle.rows() if handle is not None else []


@dataclass(frozen=True)
class RenderedPanel:
    key: str
    title: str
    template: str
    context: Mapping[str, Any]
    html: SafeString | None = None  # written instead of `template` (Panel.html)


def stylesheet_then_html(stylesheet: str) -> Callable[[Mapping[str, Any]], SafeString]:
    """Panel.html for a panel whose template is a stylesheet link and its context's HTML:
    `{% load static %}<link rel="stylesheet" href="{% static stylesheet %}">{{ ctx.html }}`."""

    def html(context: Mapping[str, Any]) -> SafeString:
        href = conditional_escape(static(stylesheet))
        # Safe: the link's address and the context's HTML are escaped (a SafeString as is).
        return mark_safe(  # noqa: S308
            f'<link rel="stylesheet" href="{href}">{conditional_escape(context["html"])}\n'
        )

    return html


_PANELS: dict[str, Panel] = {}
_FACTS: dict[tuple[str, ...], CompiledValuesQuery] = {}
_FACTS_LOCK = threading.Lock()


def register(panel: Panel) -> None:
    _PANELS[panel.key] = panel


def _facts_query(panels: tuple[Panel, ...]) -> CompiledValuesQuery:
    """One query for every panel's facts, compiled once per set of panels; the columns are
    named `f<index>_<name>` so two panels may use the same name."""
    key = tuple(p.key for p in panels)
    found = _FACTS.get(key)
    if found is not None:
        return found

    def build(patient_id: int, since: datetime) -> Any:
        annotations: dict[str, Any] = {}
        for index, panel in enumerate(panels):
            assert panel.facts is not None
            for name, expression in panel.facts(since).items():
                annotations[f"f{index}_{name}"] = expression
        return Patient.objects.filter(pk=patient_id).annotate(**annotations).values(*annotations)

    with _FACTS_LOCK:
        found = _FACTS.setdefault(
            key,
            CompiledValuesQuery(build, patient_id=PLACEHOLDER_ID, since=PLACEHOLDER_DATETIME),
        )
    return found


def panel_facts(patient_id: int, panels: tuple[Panel, ...]) -> dict[str, dict[str, Any]]:
    """Panel key -> its facts about the patient (one query for all of them)."""
    if not panels:
        return {}
    since = clock.now() - timedelta(days=RECENT_DAYS)
    query = _facts_query(panels)
    rows = query.tuples(patient_id=patient_id, since=since)
    return _facts_by_panel(panels, query.columns(), rows[0] if rows else None)


def _facts_by_panel(
    panels: tuple[Panel, ...], columns: tuple[str, ...], row: tuple[Any, ...] | None
) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {p.key: {} for p in panels}
    for column, value in zip(columns, row or (), strict=False):
        index, name = column[1:].split("_", 1)
        facts[panels[int(index)].key][name] = value
    return facts


def _ordered() -> list[Panel]:
    return sorted(_PANELS.values(), key=lambda p: (p.order, p.key))


def patient_and_facts(user: Any, patient_id: Any) -> tuple[Patient, dict[str, dict[str, Any]]]:
    """The chart's patient, read and scoped as `access.get_patient` does (the same 404s), and
    every panel's facts about them, in one round trip on PostgreSQL."""
    panels = tuple(p for p in _ordered() if p.facts is not None)
    if not panels:
        return access.get_patient(user, patient_id), {}
    since = clock.now() - timedelta(days=RECENT_DAYS)
    query = _facts_query(panels)
    patient, (rows,) = access.get_patient_with(
        user, patient_id, lambda pk: [(query, {"patient_id": pk, "since": since})]
    )
    return patient, _facts_by_panel(panels, query.columns(), rows[0] if rows else None)


def panels_for(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    audit: PendingAppend | None = None,
) -> list[RenderedPanel]:
    """The panels the user sees on the patient's chart (`facts`: from `patient_and_facts`,
    else read here; `audit`: the chart's audit row, appended with the panels' reads)."""
    ordered = _ordered()
    if facts is None:
        facts = panel_facts(patient.pk, tuple(p for p in ordered if p.facts is not None))
    reads = ChartReads(audit)
    prepared = {
        panel.key: panel.prepare(user, patient, facts[panel.key], reads)
        for panel in ordered
        if panel.prepare is not None and panel.facts is not None
    }
    reads.run()
    rendered = []
    for panel in ordered:
        if panel.key in prepared:
            found = prepared[panel.key]
            context = (
                panel.context(user, patient, facts[panel.key], found) if found is not None else None
            )
        elif panel.facts is not None:
            context = panel.context(user, patient, facts[panel.key])
        else:
            context = panel.context(user, patient)
        if context is not None:
            html = panel.html(context) if panel.html is not None else None
            rendered.append(RenderedPanel(panel.key, panel.title, panel.template, context, html))
    return rendered
