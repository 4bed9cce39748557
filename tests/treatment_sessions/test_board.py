"""The nurses' room board: every chair with its patient, phase, minutes since the first dose,
next vital signs due and open alerts; polled by htmx without counting as user activity; one
clinic at a time; a constant number of queries whatever the number of chairs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketaclinic.audit.models import AuditEvent
from ketaclinic.core import clock
from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.choices import SessionStatus
from tests.treatment_sessions.board_builders import chair, seated

pytestmark = pytest.mark.usefixtures("frozen_now")
BOARD = "/sessions/board/"
ROWS = "/sessions/board/rows/"
BACKGROUND = {"X-KC-Background": "1"}


def _row(html: str, session_id: int) -> str:
    start = html.index(f'data-session="{session_id}"')
    return html[start : html.index("</tr>", start)]


def test_board_shows_each_chair_with_its_patient_and_state(world, client_for, frozen_now):
    nurse = world.users["nurse"]
    one, two, free = (
        chair(world.clinic_a, "Recliner 1"),
        chair(world.clinic_a, "Recliner 2"),
        chair(world.clinic_a, "Recliner 3"),
    )
    spravato = seated(world, one, patient=world.patient_a2, state=SessionStatus.DOSING)
    services.session_record_vitals(
        actor=nurse, session=spravato, data={"systolic_mmhg": 128, "diastolic_mmhg": 80}
    )
    waiting = seated(world, two, treatment="iv_ketamine", state=SessionStatus.CHECKED_IN,
                     last_name="Waiting")  # fmt: skip
    frozen_now.shift(timedelta(minutes=41))
    # 41 minutes after the first device: the 40-minute BP is due, and a high reading alerts.
    _, alerts = services.session_record_vitals(
        actor=nurse, session=spravato, data={"systolic_mmhg": 185, "diastolic_mmhg": 112}
    )
    assert alerts

    response = client_for("nurse").get(BOARD)

    assert response.status_code == 200
    html = response.content.decode()
    row = _row(html, spravato.pk)
    assert "Recliner 1" in row and "Baker" in row and world.patient_a2.mrn in row
    assert "Esketamine" in row and "Dosing" in row
    assert ">41<" in row  # minutes since the first device
    # Dose at 12:00, readings at 12:00 and 12:41: next due at the end of observation (14:00).
    assert "14:00" in row and "overdue" not in row
    assert f'data-testid="open-alerts">{len(alerts)}<' in row
    assert f'href="/sessions/{spravato.pk}/"' in row
    waiting_row = _row(html, waiting.pk)
    assert "Recliner 2" in waiting_row and "Checked in" in waiting_row and "Waiting" in waiting_row
    assert 'data-testid="board-free"' in html and "Recliner 3" in html
    assert free.name in html
    # The page polls its rows every 15 s as background requests.
    assert 'hx-trigger="every 15s"' in html and 'hx-get="/sessions/board/rows/?clinic=' in html
    assert "X-KC-Background" in html


def test_overdue_vitals_are_flagged(world, client_for, frozen_now):
    session = seated(world, chair(world.clinic_a, "Recliner 1"), patient=world.patient_a2)
    frozen_now.shift(timedelta(minutes=5))  # due at the dose (12:00), nothing recorded
    board = selectors.room_board(world.users["nurse"], world.clinic_a.pk, clock.now())
    (entry,) = board.chairs[0].sessions
    assert entry.session.pk == session.pk
    assert entry.next_vitals_due == services.next_vitals_due(session, clock.now())
    assert entry.vitals_overdue and entry.minutes_since_first_dose == 5
    html = client_for("nurse").get(ROWS, headers=BACKGROUND).content.decode()
    assert 'data-testid="vitals-overdue"' in html


def test_polling_partial_does_not_keep_the_user_signed_in(world, client_for, frozen_now):
    seated(world, chair(world.clinic_a, "Recliner 1"), patient=world.patient_a2)
    client = client_for("nurse")
    assert client.get(BOARD).status_code == 200
    frozen_now.shift(timedelta(minutes=10))
    partial = client.get(ROWS, headers={**BACKGROUND, "HX-Request": "true"})
    assert partial.status_code == 200
    body = partial.content.decode()
    assert "<html" not in body and 'data-testid="board-row"' in body
    frozen_now.shift(timedelta(minutes=6))  # 16 minutes since the last real activity
    expired = client.get(ROWS, headers={**BACKGROUND, "HX-Request": "true"})
    assert expired.status_code == 204 and expired["HX-Redirect"].startswith("/accounts/login/")


def test_polling_audits_only_when_the_patients_on_screen_change(world, client_for, frozen_now):
    seat = chair(world.clinic_a, "Recliner 1")
    seated(world, seat, patient=world.patient_a2)
    client = client_for("nurse")
    board_reads = AuditEvent.objects.filter(detail__startswith="room board")
    client.get(BOARD)
    assert board_reads.count() == 1
    client.get(ROWS, headers=BACKGROUND)
    assert board_reads.count() == 1  # same patients as the audited page
    seated(world, chair(world.clinic_a, "Recliner 2"), last_name="Newcomer")
    client.get(ROWS, headers=BACKGROUND)
    assert board_reads.count() == 2
    assert board_reads.order_by("-seq").first().detail == "room board: 2 patients in chairs"


def test_other_clinic_is_excluded(world, client_for):
    mine = seated(world, chair(world.clinic_a, "Recliner 1"), patient=world.patient_a2)
    theirs = seated(world, chair(world.clinic_b, "Chair B1"), patient=world.patient_b)
    html = client_for("nurse").get(BOARD).content.decode()
    assert f'data-session="{mine.pk}"' in html
    assert f'data-session="{theirs.pk}"' not in html and "Chair B1" not in html
    assert world.patient_b.last_name not in html
    nurse = client_for("nurse")
    assert nurse.get(f"{BOARD}?clinic={world.clinic_b.pk}").status_code == 404
    assert nurse.get(f"{ROWS}?clinic={world.clinic_b.pk}").status_code == 404
    assert nurse.get(f"{BOARD}?clinic=abc").status_code == 404
    other = client_for("other_clinic_nurse").get(BOARD).content.decode()
    assert f'data-session="{theirs.pk}"' in other and f'data-session="{mine.pk}"' not in other


def test_sessions_that_are_not_in_the_chair_are_not_on_the_board(world):
    seat = chair(world.clinic_a, "Recliner 1")
    done = seated(world, seat, patient=world.patient_a2, state=SessionStatus.DISCHARGED)
    board = selectors.room_board(world.users["nurse"], world.clinic_a.pk, clock.now())
    assert [s.session.pk for c in board.chairs for s in c.sessions] == []
    assert done.status == SessionStatus.DISCHARGED


def _board_queries(world) -> int:
    with CaptureQueriesContext(connection) as queries:
        board = selectors.room_board(world.users["nurse"], world.clinic_a.pk, clock.now())
        shown = [  # what the template reads
            (s.session.patient.full_name, s.session.patient.mrn, row.chair.name)
            for row in board.chairs
            for s in row.sessions
        ]
        assert len(shown) == board.active_count
    return len(queries)


def _page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ROWS, headers=BACKGROUND).status_code == 200
    return len(queries)


def test_query_count_is_constant_with_20_active_chairs(world, client_for, frozen_now):
    nurse = world.users["nurse"]
    client = client_for("nurse")
    for n in range(2):
        session = seated(world, chair(world.clinic_a, f"Chair {n:02d}"), last_name=f"P{n}")
        services.session_record_vitals(actor=nurse, session=session, data={"systolic_mmhg": 190})
    small_selector, small_page = _board_queries(world), _page_queries(client)
    for n in range(2, 20):
        treatment = "iv_ketamine" if n % 2 else "esketamine_trd"
        session = seated(world, chair(world.clinic_a, f"Chair {n:02d}"), treatment=treatment,
                         last_name=f"P{n}")  # fmt: skip
        services.session_record_vitals(actor=nurse, session=session, data={"systolic_mmhg": 190})
    board = selectors.room_board(nurse, world.clinic_a.pk, clock.now())
    assert board.active_count == 20 and board.open_alerts >= 20
    assert _board_queries(world) == small_selector
    assert _page_queries(client) == small_page


def test_rows_escape_names_and_show_sessions_without_a_chair(world, client_for):
    """The rows are written in Python: every name is escaped, and a session not placed in a
    chair is listed under "No chair"."""
    chair(world.clinic_a, 'Recliner <b>"1"</b>')
    session = seated(world, None, last_name="<script>alert(1)</script>")
    html = client_for("nurse").get(ROWS, headers=BACKGROUND).content.decode()
    row = _row(html, session.pk)
    assert "<em>No chair</em>" in row
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row and "<script>" not in html
    assert "Recliner &lt;b&gt;&quot;1&quot;&lt;/b&gt;" in html and "<b>" not in html


def test_board_reads_clinic_chairs_and_sessions_in_one_round_trip_on_postgresql(world):
    """The board's three reads are compiled once and sent together on PostgreSQL (one
    statement holding all three); elsewhere they run one after another."""
    seated(world, chair(world.clinic_a, "Recliner 1"))
    with CaptureQueriesContext(connection) as queries:
        board = selectors.room_board(world.users["nurse"], world.clinic_a.pk, clock.now())
    assert board.clinic == world.clinic_a and board.active_count == 1
    assert [row.chair.name for row in board.chairs] == ["Recliner 1"]
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)
