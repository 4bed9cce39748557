"""Chart panels that write their own HTML (patients.chart.Panel.html) must write what their
template writes for the same context: the chart skips the include for them."""

from __future__ import annotations

import re
from typing import Any

from django.template.loader import render_to_string
from django.test import RequestFactory

from ketaclinic.patients import chart
from ketaclinic.patients.models import Patient

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def panels_as_written(user: Any, patient: Patient) -> dict[str, str]:
    """Panel key -> the panel's HTML on `patient`'s chart for `user`, asserting on the way that
    each panel's own HTML, where it gives one, is its template's output byte for byte; a panel
    giving None is written from its template (the key then maps to that)."""
    request = RequestFactory().get("/")
    request.user = user
    patient = Patient.objects.select_related("clinic").get(pk=patient.pk)
    written = {}
    for panel in chart.panels_for(user, patient):
        template = render_to_string(panel.template, {"ctx": panel.context}, request)
        if panel.html is not None:
            assert str(panel.html) == template, panel.key
        written[panel.key] = _CSRF.sub("CSRF", template)
    return written


def own_html_keys(user: Any, patient: Patient) -> set[str]:
    """The panels on the chart that wrote their own HTML (no include)."""
    patient = Patient.objects.select_related("clinic").get(pk=patient.pk)
    return {p.key for p in chart.panels_for(user, patient) if p.html is not None}
