"""The browser tests' live server answers requests that arrive together, as a page sends them
(an htmx preview fired by `change` while its form is submitted, a poll beside a click), and
the test's own queries made meanwhile.

On SQLite these failed with 400 and 500 before the live server took them one at a time (see
`OneRequestAtATime` in conftest.py); on PostgreSQL they run side by side."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Page

from ketaclinic.patients.models import Patient

pytestmark = pytest.mark.browser


def test_requests_sent_together_all_succeed(page: Page, sign_in, world, live_server) -> None:
    sign_in(page, world.users["prescriber"])
    page.goto("/patients/")
    # Each request saves the session (the idle timeout's last-seen time) and reads patients.
    statuses = page.evaluate(
        """async () => Promise.all(
            Array.from({length: 40}, (_, i) =>
                fetch(`/patients/?q=${i}`, {headers: {"HX-Request": "true"}})
                    .then(response => response.status)))"""
    )
    assert statuses == [200] * 40


def test_the_tests_queries_wait_for_the_servers_requests(
    page: Page, sign_in, world, live_server
) -> None:
    sign_in(page, world.users["prescriber"])
    page.goto("/patients/")
    page.evaluate(
        """() => { window.statuses = Promise.all(
            Array.from({length: 40}, (_, i) =>
                fetch(`/patients/?q=${i}`, {headers: {"HX-Request": "true"}})
                    .then(response => response.status))) }"""
    )
    # Meanwhile the test reads and writes the same tables, as a test checks what a page saved.
    for n in range(200):
        Patient.objects.filter(pk=world.patient_a.pk).update(preferred_name=f"Abby {n}")
        assert Session.objects.exists()
    assert page.evaluate("() => window.statuses") == [200] * 40
