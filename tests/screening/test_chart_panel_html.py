"""The intake panel of the chart is written in Python (`screening.chart_panel.panel_html`): it
must give the HTML the former template and its `_eligibility.html` includes gave, byte for byte.

tests/screening/reference/chart_panel_template.html is that former panel template, kept here
only to compare with; both are rendered from the same panel context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.template import engines
from django.template.loader import render_to_string

from ketaclinic.patients.models import Patient
from ketaclinic.screening import services
from ketaclinic.screening.chart_panel import intake_panel, panel_html
from tests.screening.test_eligibility import REASON, needs_review

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).parent / "reference" / "chart_panel_template.html"


def _pages(world: Any, patient: Patient, role: str) -> list[str]:
    patient = Patient.objects.select_related("clinic").get(pk=patient.pk)
    context = intake_panel(world.users[role], patient)
    assert context is not None
    pages = []
    for changes in (
        {},
        {"can_refer": not context["can_refer"]},
        {"can_transport": not context["can_transport"]},
        {"clinical": not context["clinical"]},
    ):
        variant = {**context, **changes}
        variant["html"] = panel_html(variant)
        page = {"ctx": variant, "patient": patient}
        former = engines["django"].from_string(REFERENCE.read_text()).render(page)
        now = render_to_string("screening/chart_panel.html", page)
        assert now == former, (role, changes)
        pages.append(now)
    return pages


def test_no_referral(world) -> None:
    assert "No referral yet." in _pages(world, world.patient_a, "front_desk")[0]


def test_needs_review_then_an_override_with_reasons(world) -> None:
    patient = needs_review(world)
    for role in ("prescriber", "nurse", "front_desk"):
        _pages(world, patient, role)
    services.eligibility_override_sign(
        actor=world.users["prescriber"], patient=patient, treatment="esketamine_trd", reason=REASON
    )
    # A different clinic time zone for the override's signing time.
    world.clinic_a.timezone = "Asia/Kolkata"
    world.clinic_a.save(update_fields=["timezone"])
    pages = _pages(world, patient, "prescriber")
    assert 'data-testid="override"' in pages[0] and 'class="reasons"' in pages[0]


def test_the_chart_writes_the_panel_without_its_template(world) -> None:
    """Panel.html: the stylesheet link and the panel's HTML, as the template wrote them."""
    from tests.panel_support import own_html_keys, panels_as_written

    patient = needs_review(world)
    for role in ("prescriber", "nurse", "front_desk"):
        html = panels_as_written(world.users[role], patient)["intake"]
        assert html.startswith('<link rel="stylesheet" href="') and html.endswith("\n")
        assert "intake" in own_html_keys(world.users[role], patient)
