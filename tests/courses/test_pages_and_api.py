"""Course pages and /api/v1/courses: who may do what (own clinic, other clinic -> 404, wrong
role -> 403), blocking reasons shown in page and API, the day board and its query count."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketaclinic.audit.models import AuditEvent
from ketaclinic.courses import services
from ketaclinic.courses.models import Appointment, TreatmentCourse
from ketaclinic.screening import services as screening
from tests.factories import PatientFactory
from tests.screening.builders import (
    PHQ9_ITEM9,
    TODAY,
    chair,
    plan,
    ready_for_esketamine,
    screen,
)

pytestmark = pytest.mark.usefixtures("frozen_now")
API = "/api/v1/courses"
OVERRIDE = "Lorazepam at night only; sedation risk discussed; two failed trials documented."


def post_json(client, path, body):
    return client.post(API + path, body, content_type="application/json")


@pytest.fixture
def course(world):
    chair(world.clinic_a)
    screen(world.users["nurse"], world.patient_a2)
    return plan(world.users["prescriber"], world.patient_a2)


@pytest.fixture
def other_course(world):
    """A course at clinic B, planned by a prescriber of clinic B."""
    from tests.factories import MembershipFactory, UserFactory

    prescriber_b = UserFactory(username="prescriber_b")
    MembershipFactory(user=prescriber_b, clinic=world.clinic_b, role="prescriber")
    chair(world.clinic_b)
    screen(world.users["other_clinic_nurse"], world.patient_b)
    return plan(prescriber_b, world.patient_b)


STAFF = ("prescriber", "nurse", "front_desk", "clinic_admin", "auditor")


def test_course_pages_by_role_and_clinic(world, client_for, course, other_course):
    appointment = course.appointments.first()
    other_appointment = other_course.appointments.first()
    pages = {
        f"/courses/{course.pk}/": STAFF,
        f"/courses/{course.pk}/estimate/": STAFF,
        f"/courses/appointments/{appointment.pk}/": (
            "prescriber",
            "nurse",
            "front_desk",
            "clinic_admin",
        ),
        f"/courses/{course.pk}/maintenance/": ("prescriber",),
        f"/courses/new/{world.patient_a2.pk}/": ("prescriber",),
    }
    others = {
        f"/courses/{course.pk}/": f"/courses/{other_course.pk}/",
        f"/courses/{course.pk}/estimate/": f"/courses/{other_course.pk}/estimate/",
        f"/courses/appointments/{appointment.pk}/": (
            f"/courses/appointments/{other_appointment.pk}/"
        ),
        f"/courses/{course.pk}/maintenance/": f"/courses/{other_course.pk}/maintenance/",
        f"/courses/new/{world.patient_a2.pk}/": f"/courses/new/{world.patient_b.pk}/",
    }
    for url, allowed in pages.items():
        for persona in (*STAFF, "patient"):
            client = client_for(persona)
            response = client.get(url)
            if persona in allowed:
                assert response.status_code == 200, (persona, url)
                assert client.get(others[url]).status_code == 404, (persona, others[url])
            else:
                assert response.status_code == 403, (persona, url, response.status_code)
        assert client_for("anonymous").get(url).status_code == 302
    for url in ("/courses/", "/courses/board/"):
        assert client_for("patient").get(url).status_code == 403
        assert client_for("nurse").get(url).status_code == 200
    assert client_for("auditor").get("/courses/board/").status_code == 403
    assert client_for("clinic_admin").get("/courses/settings/").status_code == 200
    assert client_for("prescriber").get("/courses/settings/").status_code == 403


def test_posts_refused_for_the_wrong_role_or_clinic_change_nothing(
    world, client_for, course, other_course
):
    appointment = course.appointments.order_by("number").last()
    posts = [
        (f"/courses/{course.pk}/status/", {"status": "stopped", "reason": "x"}, ("prescriber",)),
        (
            f"/courses/{course.pk}/booster/",
            {"day": "2026-06-01", "session_time": "09:00", "reason": "x"},
            ("prescriber",),
        ),
        (
            f"/courses/appointments/{appointment.pk}/cancel/",
            {"reason": "x"},
            ("prescriber", "nurse", "front_desk", "clinic_admin"),
        ),
    ]
    snapshot = sorted(Appointment.objects.values_list("pk", "status"))
    for url, data, allowed in posts:
        for persona in ("auditor", "patient", "other_clinic_nurse"):
            response = client_for(persona).post(url, data)
            expected = 404 if persona == "other_clinic_nurse" else 403
            assert response.status_code == expected, (persona, url)
        for persona in set(("nurse", "front_desk", "clinic_admin")) - set(allowed):
            assert client_for(persona).post(url, data).status_code == 403, (persona, url)
    assert sorted(Appointment.objects.values_list("pk", "status")) == snapshot
    assert (
        client_for("prescriber")
        .post(f"/courses/{other_course.pk}/status/", {"status": "stopped", "reason": "x"})
        .status_code
        == 404
    )


def test_prescriber_sees_needs_review_reasons_and_the_block_on_the_plan_page(world, client_for):
    chair(world.clinic_a)
    patient = world.patient_a2
    screen(world.users["nurse"], patient, medications=[{"name": "lorazepam"}])
    client = client_for("prescriber")
    page = client.get(f"/courses/new/{patient.pk}/").content.decode()
    assert "Needs review" in page and "Taking a CNS depressant" in page
    data = {"protocol": "esketamine_trd", "start_date": "2026-03-03", "session_time": "09:00"}
    blocked = client.post(f"/courses/new/{patient.pk}/", data)
    assert blocked.status_code == 400
    html = blocked.content.decode()
    assert "Needs review: a prescriber must sign an override" in html
    assert "Spravato PI §7 drug interactions" in html  # the reason's source, shown in the page
    assert not TreatmentCourse.objects.exists()
    screening.eligibility_override_sign(
        actor=world.users["prescriber"],
        patient=patient,
        treatment="esketamine_trd",
        reason=OVERRIDE,
    )
    created = client.post(f"/courses/new/{patient.pk}/", {**data, "personal_goal": "Sleep again"})
    assert created.status_code == 302
    course = TreatmentCourse.objects.get()
    assert created["Location"] == f"/courses/{course.pk}/"
    assert course.goals.get().text == "Sleep again"
    detail = client.get(created["Location"]).content.decode()
    assert "Override signed by" in detail and "Lorazepam at night only" in detail
    appointment_page = client.get(
        f"/courses/appointments/{course.appointments.first().pk}/"
    ).content.decode()
    assert "Eligibility override by" in appointment_page  # shown at every session


def test_plan_preview_is_an_htmx_partial(world, client_for):
    screen(world.users["nurse"], world.patient_a2)
    response = client_for("prescriber").get(
        f"/courses/new/{world.patient_a2.pk}/",
        {"protocol": "iv_ketamine_induction", "start_date": "2026-03-03", "session_time": "09:00"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.count("<tr>") == 7  # header + 6 infusions
    assert "0.5 mg/kg over 40 min" in html


def test_api_course_creation_409_with_reasons_then_201(world, client_for):
    chair(world.clinic_a)
    patient = world.patient_a2
    screen(world.users["nurse"], patient, failed_trials=1)
    body = {
        "patient_id": patient.pk,
        "protocol": "esketamine_trd",
        "start_date": "2026-03-03",
        "session_time": "09:00",
    }
    assert post_json(client_for("nurse"), "", body).status_code == 403
    assert (
        post_json(
            client_for("prescriber"), "", {**body, "patient_id": world.patient_b.pk}
        ).status_code
        == 404
    )
    blocked = post_json(client_for("prescriber"), "", body)
    assert blocked.status_code == 409
    assert blocked.json()["reasons"][0]["code"] == "fewer_than_two_failed_trials"
    assert "Needs review" in blocked.json()["detail"]
    screening.eligibility_override_sign(
        actor=world.users["prescriber"],
        patient=patient,
        treatment="esketamine_trd",
        reason="Second trial stopped for cost at week 5: clinically resistant.",
    )
    created = post_json(
        client_for("prescriber"),
        "",
        {**body, "goals": [{"kind": "target_score", "instrument": "phq9", "target_total": 4}]},
    )
    assert created.status_code == 201, created.content
    course_id = created.json()["id"]
    detail = client_for("nurse").get(f"{API}/{course_id}").json()
    assert len(detail["appointments"]) == 12
    assert [b["code"] for b in detail["start_blockers"]] == [
        "consent_unsigned",
        "rems_patient_not_enrolled",
        "rems_setting_not_certified",
    ]
    assert detail["eligibility_override_reason"].startswith("Second trial stopped")
    start = post_json(client_for("nurse"), f"/{course_id}/start", {})
    assert start.status_code == 409 and len(start.json()["reasons"]) == 3
    assert client_for("other_clinic_nurse").get(f"{API}/{course_id}").status_code == 404


def test_api_appointment_actions_and_estimate(world, client_for, course, time_machine):
    rows = list(course.appointments.order_by("number"))
    front = client_for("front_desk")
    moved = post_json(
        front,
        f"/appointments/{rows[0].pk}/reschedule",
        {"day": "2026-03-04", "session_time": "10:00", "reason": "Ride"},
    )
    assert moved.status_code == 201 and moved.json()["replaces_id"] == rows[0].pk
    bad = post_json(
        front,
        f"/appointments/{rows[1].pk}/reschedule",
        {"day": "2026-03-07", "session_time": "10:00", "reason": "Weekend"},
    )
    assert bad.status_code == 422 and "closed on Sat" in bad.json()["errors"]["__all__"]
    cancel = post_json(front, f"/appointments/{rows[-1].pk}/cancel", {"reason": "Away"})
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    time_machine.move_to(rows[1].starts_at + timedelta(hours=3))
    front = client_for("front_desk")  # a fresh sign-in: the idle timeout ended the old one
    missed = post_json(front, f"/appointments/{rows[1].pk}/missed", {"reason": ""})
    assert missed.status_code == 200 and missed.json()["status"] == "missed"
    as_prescriber = client_for("prescriber").get(f"{API}/appointments/{rows[1].pk}").json()
    assert (
        "continue the current twice-weekly schedule"
        in as_prescriber["missed_dose_suggestion"]["message"]
    )
    as_desk = front.get(f"{API}/appointments/{rows[1].pk}").json()
    assert as_desk["missed_dose_suggestion"] is None  # a suggestion for the prescriber
    dose = post_json(
        client_for("prescriber"),
        f"/appointments/{rows[2].pk}/dose",
        {"dose_mg": 84, "reason": "Partial response"},
    )
    assert dose.status_code == 200 and dose.json()["dose_mg"] == 84
    assert (
        post_json(
            front, f"/appointments/{rows[2].pk}/dose", {"dose_mg": 56, "reason": "x"}
        ).status_code
        == 403
    )
    estimate = client_for("nurse").get(f"{API}/{course.pk}/estimate").json()
    assert {line["kind"] for line in estimate["lines"]} >= {"consult", "esketamine_up_to_56"}
    assert estimate["missing_prices"]  # no price list yet
    given = moved.json()["id"]  # session 1, moved to 4 March: in the past by now
    complete = post_json(client_for("nurse"), f"/appointments/{given}/complete", {})
    assert complete.status_code == 409  # consent and REMS missing
    assert {r["code"] for r in complete.json()["reasons"]} == {
        "consent_unsigned",
        "rems_patient_not_enrolled",
        "rems_setting_not_certified",
    }
    assert Appointment.objects.get(pk=given).status == "scheduled"


def test_api_maintenance_booster_status_and_chairs(world, client_for, course):
    world.clinic_a.rems_certified = True
    world.clinic_a.save()
    ready_for_esketamine(world.users["nurse"], world.patient_a2)
    assert post_json(client_for("nurse"), f"/{course.pk}/start", {}).status_code == 200
    prescriber = client_for("prescriber")
    maintenance = post_json(
        prescriber,
        f"/{course.pk}/maintenance",
        {"from_date": "2026-03-30", "cadence": "label", "session_time": "11:00", "weeks": 12},
    )
    assert maintenance.status_code == 200 and len(maintenance.json()) == 6
    booster = post_json(
        prescriber,
        f"/{course.pk}/boosters",
        {"day": "2026-06-10", "session_time": "09:00", "reason": "PHQ-9 rising", "dose_mg": 84},
    )
    assert booster.status_code == 201 and booster.json()["phase"] == "booster"
    goal = post_json(
        prescriber, f"/{course.pk}/goals", {"kind": "personal", "text": "Go back to work"}
    )
    assert goal.status_code == 201
    paused = post_json(
        prescriber, f"/{course.pk}/status", {"status": "paused", "reason": "Surgery"}
    )
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert client_for("nurse").get(f"{API}/chairs").json()[0]["name"] == "Chair 1"
    admin = client_for("clinic_admin")
    assert (
        post_json(admin, "/chairs", {"clinic_id": world.clinic_a.pk, "name": "Chair 2"}).status_code
        == 201
    )
    assert (
        post_json(admin, "/chairs", {"clinic_id": world.clinic_b.pk, "name": "Chair 9"}).status_code
        == 422
    )
    assert (
        post_json(prescriber, "/chairs", {"clinic_id": world.clinic_a.pk, "name": "X"}).status_code
        == 403
    )
    protocols = client_for("nurse").get(f"{API}/protocols").json()
    assert {p["code"] for p in protocols} >= {"esketamine_trd", "iv_ketamine_induction"}


def test_day_board_shows_todays_sessions_with_their_alerts(world, client_for):
    chair(world.clinic_a, "Chair 1")
    chair(world.clinic_a, "Chair 2")
    override_patient, risky = world.patient_a2, PatientFactory(clinic=world.clinic_a)
    screen(world.users["nurse"], override_patient, medications=[{"name": "lorazepam"}])
    screening.eligibility_override_sign(
        actor=world.users["prescriber"],
        patient=override_patient,
        treatment="esketamine_trd",
        reason=OVERRIDE,
    )
    screen(world.users["nurse"], risky, phq9=PHQ9_ITEM9)
    plan(world.users["prescriber"], override_patient)
    plan(world.users["prescriber"], risky, "iv_ketamine_induction", session_time=time(13, 0))
    board = client_for("front_desk").get("/courses/board/", {"day": "2026-03-03"})
    html = board.content.decode()
    assert board.status_code == 200
    assert "Needs-review override by" in html and "Lorazepam at night only" in html
    assert "PHQ-9 item 9 positive at last check (2026-03-02)" in html
    assert "No signed consent in force: Esketamine (Spravato) treatment" in html
    assert "Patient&#x27;s Spravato REMS enrolment is not recorded" in html
    assert "No signed consent in force: Racemic ketamine (off-label use)" in html
    assert "09:00–11:15" in html and "13:00–14:30" in html  # clinic time, chair time
    api = client_for("nurse").get(f"{API}/board", {"day": "2026-03-03"}).json()
    codes = {
        row["patient_name"]: [a["code"] for a in row["alerts"]]
        for c in api["chairs"]
        for row in c["rows"]
    }
    assert "eligibility_override" in codes[override_patient.full_name]
    assert "suicide_risk" in codes[risky.full_name]
    assert "rems_setting_not_certified" in codes[override_patient.full_name]
    assert (
        client_for("front_desk").get(f"{API}/board", {"clinic_id": world.clinic_b.pk}).status_code
        == 404
    )
    event = AuditEvent.objects.filter(action="list", object_type="courses.appointment").first()
    assert event.detail == "day board 2026-03-03: 2 appointments"


def test_day_board_reads_its_alerts_facts_with_the_appointments(world, client_for):
    """The board reads what its alerts need by (clinic, day), together with the appointments:
    the same alerts as the screening selectors give for the board's appointments, in fewer
    statements (chairs, appointments and the four fact reads in one round trip on
    PostgreSQL)."""
    from ketaclinic.courses import selectors
    from ketaclinic.courses.models import Chair
    from ketaclinic.screening.models import SignedConsent

    chair(world.clinic_a, "Chair 1")
    chair(world.clinic_a, "Chair 2")
    override_patient, risky = world.patient_a2, PatientFactory(clinic=world.clinic_a)
    ready = PatientFactory(clinic=world.clinic_a)
    screen(world.users["nurse"], override_patient, medications=[{"name": "lorazepam"}])
    screening.eligibility_override_sign(
        actor=world.users["prescriber"],
        patient=override_patient,
        treatment="esketamine_trd",
        reason=OVERRIDE,
    )
    screen(world.users["nurse"], risky, phq9=PHQ9_ITEM9)
    screen(world.users["nurse"], ready)
    ready_for_esketamine(world.users["nurse"], ready)
    ready_for_esketamine(world.users["nurse"], override_patient)
    screening.consent_withdraw(  # withdrawn: no longer in force
        actor=world.users["nurse"],
        consent=SignedConsent.objects.get(patient=override_patient),
        reason="Changed mind",
    )
    plan(world.users["prescriber"], override_patient)
    plan(world.users["prescriber"], risky, "iv_ketamine_induction", session_time=time(13, 0))
    plan(world.users["prescriber"], ready, session_time=time(15, 0))
    # Another day: not on this board, and its patient's alerts are not read.
    later = PatientFactory(clinic=world.clinic_a)
    screen(world.users["nurse"], later, phq9=PHQ9_ITEM9)
    plan(world.users["prescriber"], later, start_date=date(2026, 3, 4))
    board = selectors.day_board(world.clinic_a, date(2026, 3, 3))
    appointments = [row.appointment for column in board.columns for row in column.rows]
    assert len(appointments) == 3
    expected = selectors.board_alerts(appointments, world.clinic_a)  # screening's own reads
    found = {row.appointment.pk: row.alerts for column in board.columns for row in column.rows}
    assert found == expected
    codes = {a.patient_id: {alert.code for alert in found[a.pk]} for a in appointments}
    assert {"eligibility_override", "consent_unsigned"} <= codes[override_patient.pk]
    assert {"suicide_risk", "consent_unsigned"} <= codes[risky.pk]
    assert "consent_unsigned" not in codes[ready.pk] and later.pk not in codes
    assert [c.chair.name for c in board.columns] == list(
        Chair.objects.filter(clinic=world.clinic_a).order_by("name").values_list("name", flat=True)
    )
    client = client_for("nurse")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/courses/board/", {"day": "2026-03-03"}).status_code == 200
    screening_reads = [q for q in queries.captured_queries if 'FROM "screening_' in q["sql"]]
    # One statement holding all reads on PostgreSQL; one per table elsewhere (was four).
    assert len(screening_reads) == (1 if connection.vendor == "postgresql" else 4)


# The day board's chair columns as the template wrote them before they were written in Python.
_OLD_BOARD_COLUMNS = """{% load intake_labels %}<div class="board" data-testid="day-board">
{% for column in board.columns %}
  <section class="board-chair" aria-labelledby="chair-{{ column.chair.pk }}">
    <h2 id="chair-{{ column.chair.pk }}">{{ column.chair.name }}{% if column.chair.capacity > 1 %} <small class="muted">(holds {{ column.chair.capacity }})</small>{% endif %}</h2>
    {% for row in column.rows %}{% with a=row.appointment %}
    <div class="board-slot {{ a.status }}" data-testid="board-slot">
      <div><span class="when">{{ a.starts_at|date:"H:i" }}–{{ a.ends_at|date:"H:i" }}</span> <span class="status status-{{ a.status }}">{{ a.get_status_display }}</span></div>
      <div>{% if can_view_patient %}<a href="{% url 'patients:chart' a.patient_id %}">{{ a.patient.last_name }}, {{ a.patient.first_name }}</a>{% else %}{{ a.patient.last_name }}, {{ a.patient.first_name }}{% endif %} <small class="muted">{{ a.patient.mrn }}</small></div>
      <div><small>{{ a.course.treatment|treatment_label }} · session {{ a.number }} · {{ a.get_phase_display|lower }} · {{ a.dose_label }}</small> · <a href="{% url 'courses:appointment' a.pk %}">Open</a></div>
      {% if row.alerts %}<ul class="alerts">{% for alert in row.alerts %}<li class="{{ alert.level }}" data-code="{{ alert.code }}">{{ alert.text }}</li>{% endfor %}</ul>{% endif %}
    </div>
    {% endwith %}{% empty %}<p class="muted">Free all day.</p>{% endfor %}
  </section>
{% endfor %}
</div>"""  # noqa: E501


def test_day_board_columns_written_in_python_match_the_template(world, client_for):
    """The chair columns are written in Python: byte for byte what the template loop wrote,
    every text escaped, in the clinic's time zone, with and without the chart links."""
    from django.template import engines
    from django.utils import timezone

    from ketaclinic.courses import scheduling, selectors
    from ketaclinic.courses.views import board_html

    chair(world.clinic_a, 'Chair <b>"1"</b>')
    group = chair(world.clinic_a, "Group & room")
    group.capacity = 3
    group.save()
    chair(world.clinic_a, "Free chair")
    override_patient, risky = world.patient_a2, PatientFactory(clinic=world.clinic_a)
    risky.last_name = "O'Neil <script>"
    risky.save()
    screen(world.users["nurse"], override_patient, medications=[{"name": "lorazepam"}])
    screening.eligibility_override_sign(
        actor=world.users["prescriber"],
        patient=override_patient,
        treatment="esketamine_trd",
        reason="Lorazepam <at night> & only",
    )
    screen(world.users["nurse"], risky, phq9=PHQ9_ITEM9)
    plan(world.users["prescriber"], override_patient)
    plan(world.users["prescriber"], risky, "iv_ketamine_induction", session_time=time(13, 0))
    board = selectors.day_board(world.clinic_a, date(2026, 3, 3))
    assert board.count == 2
    template = engines["django"].from_string(_OLD_BOARD_COLUMNS)
    with timezone.override(scheduling.clinic_zone(world.clinic_a)):
        for can_view_patient in (True, False):
            old = template.render({"board": board, "can_view_patient": can_view_patient})
            assert board_html(board, can_view_patient=can_view_patient) == old
    html = client_for("front_desk").get("/courses/board/", {"day": "2026-03-03"}).content.decode()
    assert "O&#x27;Neil &lt;script&gt;" in html and "Lorazepam &lt;at night&gt; &amp; only" in html
    assert "(holds 3)" in html and "Free all day." in html


def _board_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/courses/board/", {"day": "2026-03-03"}).status_code == 200
    return len(queries)


def test_day_board_query_count_does_not_grow_with_patients(world, client_for):
    chairs = [chair(world.clinic_a, f"Chair {n}") for n in range(1, 7)]
    client = client_for("nurse")
    patients = [PatientFactory(clinic=world.clinic_a) for _ in range(6)]
    for patient in patients:
        screen(world.users["nurse"], patient)
    plan(world.users["prescriber"], patients[0], chair_id=chairs[0].pk)
    few = _board_queries(client)
    for index, patient in enumerate(patients[1:], start=1):
        plan(world.users["prescriber"], patient, chair_id=chairs[index].pk)
        ready_for_esketamine(world.users["nurse"], patient)
    for _ in range(20):
        PatientFactory(clinic=world.clinic_a, date_of_birth=date(1975, 5, 5))
    assert _board_queries(client) == few


def test_course_chart_panel_lists_next_sessions_in_clinic_time(world, client_for, course):
    chart = client_for("front_desk").get(f"/patients/{world.patient_a2.pk}/").content.decode()
    assert "Treatment courses" in chart
    assert "Tue 2026-03-03 09:00" in chart  # Boston time, not UTC
    assert "Plan a course" not in chart  # prescribers only
    prescriber_chart = client_for("prescriber").get(f"/patients/{world.patient_a2.pk}/")
    assert "Plan a course" in prescriber_chart.content.decode()


def test_estimate_page_is_printable_and_recorded_as_a_print(world, client_for, course):
    services.price_item_set(
        actor=world.users["clinic_admin"],
        clinic_id=world.clinic_a.pk,
        kind="esketamine_up_to_56",
        unit_price="850",
        billing_codes="G2082",
    )
    page = client_for("front_desk").get(f"/courses/{course.pk}/estimate/").content.decode()
    assert "G2082" in page and "$10,200.00" in page and "data-print" in page
    event = AuditEvent.objects.filter(action="print").get()
    assert event.patient_id == world.patient_a2.pk


def test_settings_page_saves_schedule_chairs_and_prices(world, client_for):
    admin = client_for("clinic_admin")
    ok = admin.post(
        "/courses/settings/",
        {
            "section": "schedule",
            "clinic_id": world.clinic_a.pk,
            "clinic_days": ["0", "2", "4"],
            "opens_at": "07:30",
            "closes_at": "19:00",
            "esketamine_chair_minutes": "140",
            "iv_chair_minutes": "90",
            "im_chair_minutes": "90",
            "oral_chair_minutes": "120",
        },
    )
    assert ok.status_code == 302
    too_short = admin.post(
        "/courses/settings/",
        {
            "section": "schedule",
            "clinic_id": world.clinic_a.pk,
            "clinic_days": ["0"],
            "opens_at": "07:30",
            "closes_at": "19:00",
            "esketamine_chair_minutes": "100",
            "iv_chair_minutes": "90",
            "im_chair_minutes": "90",
            "oral_chair_minutes": "120",
        },
    )
    assert too_short.status_code == 400 and "At least 135 minutes" in too_short.content.decode()
    assert (
        admin.post(
            "/courses/settings/",
            {
                "section": "chair",
                "clinic_id": world.clinic_a.pk,
                "name": "Bay 1",
                "capacity": "2",
                "is_active": "on",
            },
        ).status_code
        == 302
    )
    assert (
        admin.post(
            "/courses/settings/",
            {
                "section": "price",
                "clinic_id": world.clinic_a.pk,
                "kind_key": "consult",
                "consult-kind": "consult",
                "consult-description": "Consult",
                "consult-billing_codes": "90792",
                "consult-unit_price": "410.00",
            },
        ).status_code
        == 302
    )
    other_clinic = admin.post(
        "/courses/settings/",
        {"section": "chair", "clinic_id": world.clinic_b.pk, "name": "Sneaky", "capacity": "1"},
    )
    assert other_clinic.status_code == 404  # another clinic's settings are not found
    from ketaclinic.courses.models import Chair, ClinicSchedule, PriceItem

    assert not Chair.objects.filter(name="Sneaky").exists()

    assert ClinicSchedule.objects.get().weekdays == (0, 2, 4)
    assert Chair.objects.get(name="Bay 1").capacity == 2
    assert str(PriceItem.objects.get(kind="consult").unit_price) == "410.00"
    assert TODAY.weekday() == 0
