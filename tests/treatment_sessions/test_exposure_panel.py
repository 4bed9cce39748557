"""The cumulative exposure panel on the patient chart: per session mg and mg/kg, the rolling
28-day total, sessions in 30 days and the lifetime total per route, in a constant number of
queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.treatment_sessions.test_exposure import iv_session
from tests.treatment_sessions.test_rems_worklist import esketamine_session

pytestmark = pytest.mark.usefixtures("frozen_now")


def _panel(html: str) -> str:
    start = html.index('data-testid="exposure-panel"')
    return html[start : html.index("</table>", start)]


def test_panel_shows_per_session_and_totals(lg, frozen_now, client_for):
    patient = lg.world.patient_a2
    iv_session(lg)  # 36.3 mg, 0.50 mg/kg
    frozen_now.shift(timedelta(days=29))
    iv_session(lg)
    frozen_now.shift(timedelta(days=2))
    lot = lg.receive(lg.device, containers=4, lot_number="SPR-9")
    esketamine_session(lg, frozen_now, patient, lot=lot)  # 56 mg intranasal

    response = client_for("nurse").get(f"/patients/{patient.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Cumulative ketamine exposure" in html
    panel = _panel(html)
    assert 'data-testid="rolling-28">92.3 mg<' in panel  # 36.3 (2 days ago) + 56 today
    assert 'data-testid="sessions-30">2<' in panel  # the first IV session is 31 days old
    assert "IV 72.6 mg" in panel and "Intranasal 56 mg" in panel
    assert panel.count('data-testid="exposure-row"') == 3
    assert ">0.50<" in panel and ">36.3<" in panel
    assert "<svg" in panel  # the dose chart, drawn inline so it prints


def test_panel_hidden_without_doses(world, client_for):
    html = client_for("nurse").get(f"/patients/{world.patient_a2.pk}/").content.decode()
    assert 'data-testid="exposure-panel"' not in html


def _chart_queries(client, patient) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/patients/{patient.pk}/").status_code == 200
    return len(queries)


def test_panel_query_count_does_not_grow_with_sessions(lg, frozen_now, client_for):
    patient = lg.world.patient_a2
    iv_session(lg)
    client = client_for("nurse")
    one = _chart_queries(client, patient)
    for _ in range(3):
        frozen_now.shift(timedelta(days=3))
        iv_session(lg)
    client = client_for("nurse")
    assert _chart_queries(client, patient) == one
