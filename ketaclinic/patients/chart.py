"""Sections of the patient chart contributed by feature apps.

The chart page belongs to `patients`, but intake, courses, sessions, measures and the ledger each
add a panel. They register one here from their AppConfig.ready(), so this app never imports
them and no one edits another app's template:

    chart.register(chart.Panel(key="courses", title="Treatment courses", order=30,
                               template="courses/chart_panel.html", context=course_panel))

`context(user, patient)` runs only when the user may see the chart; it returns the template
context for the panel, or None to hide the panel. It must use its app's selectors (with their own
select_related / prefetch), so the chart's query count stays independent of record counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ketaclinic.patients.models import Patient


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    template: str
    context: Callable[[Any, Patient], Mapping[str, Any] | None]
    order: int = 100


@dataclass(frozen=True)
class RenderedPanel:
    key: str
    title: str
    template: str
    context: Mapping[str, Any]


_PANELS: dict[str, Panel] = {}


def register(panel: Panel) -> None:
    _PANELS[panel.key] = panel


def panels_for(user: Any, patient: Patient) -> list[RenderedPanel]:
    rendered = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.key)):
        context = panel.context(user, patient)
        if context is not None:
            rendered.append(RenderedPanel(panel.key, panel.title, panel.template, context))
    return rendered
