"""The measures panel of the chart is written in Python (`chart_panel.panel_body_html`): it must
give the HTML the former template gave, byte for byte, for every branch the template had.

tests/measures/reference/chart_panel_template.html is that former template, kept here only to
compare with: both are rendered from the same panel context (the CSRF token aside, which
differs per rendering)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.template import engines
from django.template.loader import render_to_string
from django.test import RequestFactory

from ketaclinic.measures import services
from ketaclinic.measures.chart_panel import panel_body_html, panel_context
from ketaclinic.measures.models import MeasurementEnrolment, SafetyAlert
from ketaclinic.patients.models import Patient
from tests.measures import factories
from tests.measures.conftest import MONDAY
from tests.measures.test_pages import weekly_scores

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).parent / "reference" / "chart_panel_template.html"
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def _both(context: dict[str, Any], user: Any) -> tuple[str, str]:
    request = RequestFactory().get("/")
    request.user = user
    former = engines["django"].from_string(REFERENCE.read_text()).render({"ctx": context}, request)
    now = render_to_string("measures/chart_panel.html", {"ctx": context}, request)
    return _CSRF.sub("CSRF", former), _CSRF.sub("CSRF", now)


def _assert_same(world: Any, patient: Patient, role: str) -> dict[str, Any]:
    user = world.users[role]
    patient = Patient.objects.select_related("clinic").get(pk=patient.pk)
    context = panel_context(user, patient)
    assert context is not None
    base = dict(context)
    variants = [base]
    # Every permission branch, on the same data.
    for key in ("can_manage", "can_acknowledge", "can_resolve_booster"):
        variants.append({**base, key: not base[key]})
    variants.append({**base, "phase_today": None, "primary": None, "mood_chart": None})
    for variant in variants:
        variant["body_html"] = panel_body_html(variant)
        former, now = _both(variant, user)
        assert now == former
    return context


def test_a_patient_without_measures(world) -> None:
    context = _assert_same(world, world.patient_a2, "prescriber")
    assert "Not on a measurement plan." in context["body_html"]
    assert "No questionnaire scores yet." in context["body_html"]


def test_everything_the_panel_shows(world, enrolled, clock) -> None:
    weekly_scores(world, 5)
    patient = world.patient_a
    now = services.clock.now()
    alerts = [
        services.alert_raise(
            patient,
            kind="urgent_checkin",
            priority="same_day" if k % 2 else "immediate",
            summary=f"Summary <{k}> & more",
            now=now - timedelta(hours=3 * k + 1),
        )
        for k in range(3)
    ]
    services.alert_acknowledge(
        actor=world.users["prescriber"], alert=alerts[1], action="called_patient"
    )
    services.assignment_create(actor=world.users["prescriber"], patient=patient, instrument="gad7")
    services.assignment_create(
        actor=world.users["prescriber"], patient=patient, instrument="madrs", respondent="clinician"
    )
    patient_user = world.users["patient"]
    services.checkin_record(
        actor=patient_user, patient=patient, mood_0_to_10=3, note="x < y & " + "long " * 40
    )
    services.checkin_record(actor=patient_user, patient=patient, mood_0_to_10=7, urgent=True)
    services.journal_entry_create(
        actor=patient_user, patient=patient, body="<b>Shared</b> " + "word " * 60, share=True
    )
    services.journal_entry_create(
        actor=patient_user, patient=patient, body="urgent one", share=True, urgent=True
    )
    clock.shift(timedelta(days=30))
    for role in ("prescriber", "nurse"):
        context = _assert_same(world, patient, role)
    body = str(context["body_html"])
    assert SafetyAlert.objects.filter(acknowledged_at__isnull=False).exists()
    assert "Summary &lt;0&gt; &amp; more" in body and "acknowledged by" in body
    assert "Open questionnaires" in body and "Mood check-ins" in body
    assert "Journal entries the patient shared" in body and "&lt;b&gt;Shared" in body


def test_an_ended_enrolment(world, enrolled, clock) -> None:
    weekly_scores(world, 2)
    services.enrolment_end(actor=world.users["prescriber"], enrolment=enrolled, reason="Paused <>")
    assert MeasurementEnrolment.objects.get(pk=enrolled.pk).status != "active"
    context = _assert_same(world, world.patient_a, "prescriber")
    assert "(ended " in context["body_html"] and "Paused &lt;&gt;" in context["body_html"]


def test_a_plan_without_a_course_or_prescriber(world, clock) -> None:
    plan = factories.empty_plan(world.users["prescriber"], world.clinic_a)
    factories.enrol(world.users["prescriber"], world.patient_a2, plan, first_session_on=MONDAY)
    _assert_same(world, world.patient_a2, "nurse")


def test_the_chart_writes_the_panel_without_its_template(world, enrolled, clock) -> None:
    """Panel.html: the panel's bytes are its template's (without boosters), for every role."""
    from tests.panel_support import own_html_keys, panels_as_written

    weekly_scores(world, 5)
    services.checkin_record(
        actor=world.users["patient"], patient=world.patient_a, mood_0_to_10=4, note="a <b>"
    )
    for role in ("prescriber", "nurse"):
        html = panels_as_written(world.users[role], world.patient_a)["measures"]
        assert 'data-testid="measures-panel"' in html and "Mood check-ins" in html
        assert "measures" in own_html_keys(world.users[role], world.patient_a)
    empty = panels_as_written(world.users["nurse"], world.patient_a2)["measures"]
    assert "No questionnaire scores yet." in empty
