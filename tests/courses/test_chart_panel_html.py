"""The courses panel of the chart is written in Python (`courses.chart_panel.panel_html`): it
must give the HTML the former template gave, byte for byte.

tests/courses/reference/chart_panel_template.html is that former template, kept here only to
compare with; both are rendered from the same panel context."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.template import engines
from django.template.loader import render_to_string

from ketaclinic.courses.chart_panel import courses_panel, panel_html
from ketaclinic.patients.models import Patient
from tests.measures.test_courses_link import course  # noqa: F401 (a fixture)
from tests.screening.builders import NOW

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).parent / "reference" / "chart_panel_template.html"


def _same(context: dict[str, Any]) -> str:
    former = engines["django"].from_string(REFERENCE.read_text()).render({"ctx": context})
    now = render_to_string("courses/chart_panel.html", {"ctx": context})
    assert now == former
    return now


def _variants(world: Any, patient: Patient, role: str) -> list[str]:
    patient = Patient.objects.select_related("clinic").get(pk=patient.pk)
    context = courses_panel(world.users[role], patient, {})
    assert context is not None
    pages = []
    for changes in (
        {},
        {"can_plan": not context["can_plan"]},
        {"can_record_sessions": not context["can_record_sessions"]},
        {"tz": "Asia/Kolkata"},
    ):
        variant = {**context, **changes}
        variant["html"] = panel_html(variant)
        pages.append(_same(variant))
    return pages


def test_a_course_with_its_next_appointments(world, course) -> None:  # noqa: F811
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        for role in ("prescriber", "nurse", "front_desk"):
            pages = _variants(world, world.patient_a2, role)
    assert 'data-testid="chart-course"' in pages[0] and "<li><a href=" in pages[0]
    assert "session 1 (" in pages[0]


def test_no_course(world) -> None:
    pages = _variants(world, world.patient_a, "prescriber")
    assert "No treatment course." in pages[0]


def test_the_chart_writes_the_panel_without_its_template(world, course) -> None:  # noqa: F811
    """Panel.html: the stylesheet link and the panel's HTML, as the template wrote them."""
    from tests.panel_support import own_html_keys, panels_as_written

    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        for role in ("prescriber", "nurse", "front_desk"):
            html = panels_as_written(world.users[role], world.patient_a2)["courses"]
            assert 'data-testid="chart-course"' in html
            assert "courses" in own_html_keys(world.users[role], world.patient_a2)
