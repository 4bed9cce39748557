"""The browser tests' live server answers requests that arrive together, as a page sends them
(an htmx preview fired by `change` while its form is submitted, a poll beside a click).

On SQLite these failed with 400 and 500 before the live server took them one at a time (see
`OneRequestAtATime` in conftest.py); on PostgreSQL they run side by side."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

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
