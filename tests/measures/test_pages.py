"""Staff pages: the chart panel with trajectories, the alert inbox, score entry, enrolment,
plans, the outcome summary, the progress report and the score export."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from ketaclinic.audit.models import AuditEvent
from ketaclinic.measures import services
from ketaclinic.measures.models import (
    Assignment,
    BoosterRecommendation,
    MeasurementEnrolment,
    MeasurementPlan,
    Response,
    SafetyAlert,
)
from ketaclinic.measures.timeline import build_timeline
from tests.measures import factories
from tests.measures.conftest import MONDAY

pytestmark = pytest.mark.django_db


def weekly_scores(world, count: int, *, start_days: int = -3):
    nurse = world.users["nurse"]
    now = services.clock.now()
    for k in range(count):
        factories.clinic_score(
            nurse,
            world.patient_a,
            "phq9",
            factories.phq9(max(2, 20 - k)),
            at=now + timedelta(days=start_days + 7 * k),
        )


def chart_queries(client, patient_id) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("patients:chart", args=[patient_id])).status_code == 200
    return len(ctx.captured_queries)


def test_chart_panel_draws_trajectories_with_bands_baseline_sessions_and_status(
    world, enrolled, clock, client_for
):
    weekly_scores(world, 4)
    clock.shift(timedelta(days=25))
    page = (
        client_for("prescriber")
        .get(reverse("patients:chart", args=[world.patient_a.pk]))
        .content.decode()
    )
    assert 'data-testid="measures-panel"' in page
    assert page.count("<svg") == 1  # PHQ-9 (C-SSRS is not trended; no check-ins)
    assert "moderately severe" in page and "Baseline 20" in page  # bands and baseline
    assert "Session 1 (2026-06-01): IV 0.5 mg/kg" in page  # session markers: dose and route
    assert 'data-testid="status-phq9"' in page
    assert "Partial response" in page or "Response" in page
    assert "Induction" in page  # phase strip


def test_chart_query_count_does_not_grow_with_scores(world, enrolled, clock, client_for):
    nurse = client_for("nurse")
    weekly_scores(world, 3)
    few = chart_queries(nurse, world.patient_a.pk)
    weekly_scores(world, 60, start_days=30)
    many = chart_queries(nurse, world.patient_a.pk)
    assert many == few


def test_chart_audit_row_is_appended_with_the_panels_reads(world, enrolled, clock, client_for):
    # One complete audit row per chart read, as record_event wrote it; on PostgreSQL it travels
    # last in the round trip of the panels' reads (and is committed with them).
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketaclinic.audit.models import AuditEvent

    weekly_scores(world, 3)
    nurse = client_for("nurse")
    before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    with CaptureQueriesContext(connection) as queries:
        page = nurse.get(reverse("patients:chart", args=[world.patient_a.pk]))
    assert page.status_code == 200 and b"PHQ-9" in page.content
    (event,) = AuditEvent.objects.filter(seq__gt=before)
    assert (event.action, event.detail, event.user_id) == ("read", "chart", world.users["nurse"].pk)
    assert (event.patient_id, event.clinic_id) == (world.patient_a.pk, world.patient_a.clinic_id)
    assert (event.object_type, event.object_id) == ("patients.patient", str(world.patient_a.pk))
    appends = [q["sql"] for q in queries.captured_queries if "audit_auditchainhead" in q["sql"]]
    if connection.vendor == "postgresql":
        # One statement, in the same batch as the score read.
        assert len(appends) == 1 and "measures_response" in appends[0]
    else:
        assert appends  # record_event's own path: SQLite has no one-statement append
    call_command("verify_audit", stdout=io.StringIO())  # the chain still verifies


def test_chart_reads_are_planned_once_and_the_plan_setting_does_not_outlive_them(
    world, enrolled, clock, client_for
):
    # On PostgreSQL the panels' reads run on generic plans (planned once per connection, not on
    # every chart: PostgreSQL re-planned the ledger read each time); the setting is put back
    # after them even inside a longer transaction (as here, in a test's).
    from django.db import connection

    weekly_scores(world, 3)
    nurse = client_for("nurse")
    pages = [nurse.get(reverse("patients:chart", args=[world.patient_a.pk])) for _ in range(2)]
    assert [p.status_code for p in pages] == [200, 200]
    assert all(b"Baseline" in p.content for p in pages)
    if connection.vendor != "postgresql":
        return  # SQLite plans every statement anew; nothing to set
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('plan_cache_mode')")
        assert cursor.fetchone()[0] == "auto"
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s AND statement LIKE %s",
            ['%FROM "measures_response"%', '%"flags_json"%'],
        )
        # The score series, read with the panels' reads: generic plans from the first chart
        # (left to itself PostgreSQL makes five custom plans before it tries a generic one).
        assert cursor.fetchall() == [(2, 0)]


def test_front_desk_does_not_see_the_measures_panel(world, enrolled, client_for):
    page = client_for("front_desk").get(reverse("patients:chart", args=[world.patient_a.pk]))
    assert page.status_code == 200 and b"measures-panel" not in page.content


def test_booster_recommendation_and_late_responder_on_the_chart(world, clock, client_for):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(prescriber, world.clinic_a, factories.WEEKLY_PHQ9)
    factories.enrol(
        prescriber,
        world.patient_a,
        plan,
        first_session_on=MONDAY,
        protocol="esketamine_trd",
        plan_weeks=12,
        prescriber=prescriber,
    )
    sessions = build_timeline("esketamine_trd", MONDAY, weeks=12).sessions
    now = services.clock.now()

    def phq(day, total):
        factories.clinic_score(
            world.users["nurse"], world.patient_a, "phq9", factories.phq9(total),
            at=now + timedelta(days=(day - MONDAY).days, hours=1),
        )  # fmt: skip

    phq(MONDAY - timedelta(days=2), 20)
    phq(sessions[4].on, 18)
    phq(sessions[8].on, 9)  # first response after 8 sessions: late responder
    phq(sessions[8].on + timedelta(days=21), 12)
    phq(sessions[8].on + timedelta(days=28), 13)  # relapse
    clock.move_to(now + timedelta(days=70))
    page = (
        client_for("prescriber")
        .get(reverse("patients:chart", args=[world.patient_a.pk]))
        .content.decode()
    )
    assert 'data-testid="late-phq9"' in page and "after 8 sessions" in page
    assert 'data-testid="booster-recommendation"' in page
    # With a recommendation (and its form) the panel is written from its template.
    from tests.panel_support import own_html_keys, panels_as_written

    assert "measures" not in own_html_keys(prescriber, world.patient_a)
    assert 'name="resolution"' in panels_as_written(prescriber, world.patient_a)["measures"]
    rec = BoosterRecommendation.objects.get()
    resolved = client_for("prescriber").post(
        reverse("measures:booster_resolve", args=[rec.pk]), {"resolution": "booster_planned"}
    )
    assert resolved.status_code == 302
    rec.refresh_from_db()
    assert rec.resolution == "booster_planned" and rec.resolved_by == world.users["prescriber"]


def make_alerts(world, count: int):
    now = services.clock.now()
    for index in range(count):
        services.alert_raise(
            world.patient_a if index % 2 else world.patient_a2,
            kind="urgent_checkin",
            priority="same_day" if index % 3 else "immediate",
            summary=f"alert {index}",
            now=now - timedelta(minutes=index),
        )


def test_alert_inbox_orders_by_priority_then_waiting_time_with_fixed_queries(
    world, enrolled, clock, client_for
):
    nurse = client_for("nurse")
    make_alerts(world, 4)
    with CaptureQueriesContext(connection) as few:
        first = nurse.get(reverse("measures:alert_inbox"))
    make_alerts(world, 20)
    with CaptureQueriesContext(connection) as many:
        nurse.get(reverse("measures:alert_inbox"))
    assert len(many.captured_queries) == len(few.captured_queries)
    rows = re.findall(r'class="kc-alert-row-(\w+)"', first.content.decode())
    assert rows == ["immediate", "immediate", "same_day", "same_day"]
    assert 'data-testid="count-immediate">2<' in first.content.decode()


def _without_tokens(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", html)


def test_alert_inbox_reads_together_what_it_reads_one_by_one(
    world, enrolled, clock, client_for, monkeypatch
):
    """The default view reads its clinics, shifts, counts, boosters and first page, and
    appends its audit row, in one round trip on PostgreSQL; beyond the clinics a compiled query
    takes (and elsewhere) the same reads one by one write the same page and the same audit
    rows, on every filter."""
    from ketaclinic.measures import selectors

    make_alerts(world, 30)
    nurse = client_for("nurse")
    nurse.post(reverse("measures:duty"), {"clinic": world.clinic_a.pk, "hours": 6}, follow=True)
    BoosterRecommendation.objects.create(
        clinic=world.patient_a.clinic, patient=world.patient_a, instrument="phq9",
        baseline_total=20, latest_total=14, relapse_on=services.clock.now().date(),
        created_at=services.clock.now(),
    )  # fmt: skip
    urls = [
        reverse("measures:alert_inbox") + query
        for query in ("", "?page=2", "?status=all", "?status=bogus")
    ]
    with CaptureQueriesContext(connection) as captured:
        pages = [_without_tokens(nurse.get(url).content.decode()) for url in urls[:1]]
    together = len(captured)  # now: the next request empties the query log
    pages += [_without_tokens(nurse.get(url).content.decode()) for url in urls[1:]]
    events = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    monkeypatch.setattr(selectors._ForClinics, "MAX", 0)
    with CaptureQueriesContext(connection) as captured:
        alone = [_without_tokens(nurse.get(urls[0]).content.decode())]
    apart = len(captured)
    alone += [_without_tokens(nurse.get(url).content.decode()) for url in urls[1:]]
    assert pages == alone

    def listed(seqs):
        fields = ("action", "user_id", "clinic_id", "patient_id", "object_type", "detail")
        return list(AuditEvent.objects.filter(seq__in=seqs).order_by("seq").values_list(*fields))

    newer = AuditEvent.objects.exclude(seq__in=events).order_by("seq").values_list("seq", flat=True)
    assert listed(events[-4:]) == listed(list(newer)) and len(newer) == 4
    assert listed(events[-4:])[0][-1] == "alert inbox page 1; status=open mine=False"
    assert pages[0].count('class="kc-alert-row-') == 25 and "on duty</strong>" in pages[0]
    assert "Booster recommendations" in pages[0]
    # One by one: clinics, shifts, counts, boosters, the page's rows and the audit append are
    # six statements.
    assert apart - together == (5 if connection.vendor == "postgresql" else 0) and together > 5


def test_acknowledge_from_the_alert_page(world, enrolled, clock, client_for):
    make_alerts(world, 1)
    alert = SafetyAlert.objects.get()
    nurse = client_for("nurse")
    page = nurse.get(reverse("measures:alert_detail", args=[alert.pk])).content.decode()
    assert 'data-testid="alert-waiting"' in page and world.patient_a2.phone in page
    missing = nurse.post(reverse("measures:alert_detail", args=[alert.pk]), {"action": "other"})
    assert missing.status_code == 400
    assert SafetyAlert.objects.get().acknowledged_at is None
    clock.shift(timedelta(minutes=12))  # (the idle timeout is 15 minutes)
    done = nurse.post(
        reverse("measures:alert_detail", args=[alert.pk]),
        {"action": "emergency_referral", "note": "Sent to ED with partner"},
    )
    assert done.status_code == 302
    alert.refresh_from_db()
    assert (alert.action, alert.acknowledged_by) == ("emergency_referral", world.users["nurse"])
    page = nurse.get(reverse("measures:alert_detail", args=[alert.pk])).content.decode()
    assert 'data-testid="alert-acknowledged"' in page and "12\xa0minutes" in page


def test_duty_toggle(world, client_for):
    nurse = client_for("nurse")
    nurse.post(reverse("measures:duty"), {"clinic": world.clinic_a.pk, "hours": 6})
    page = nurse.get(reverse("measures:alert_inbox")).content.decode()
    assert "on duty</strong>" in page
    nurse.post(reverse("measures:duty"), {"clinic": world.clinic_a.pk, "end": "on"})
    assert "Go on duty" in nurse.get(reverse("measures:alert_inbox")).content.decode()


def test_clinician_score_entry_for_a_licensed_scale(world, enrolled, client_for):
    prescriber = client_for("prescriber")
    url = reverse("measures:score_entry", args=[world.patient_a.pk, "madrs"])
    page = prescriber.get(url).content.decode()
    assert "licensed" in page and "Item 10" in page
    bad = prescriber.post(url, {f"q{i}": 2 for i in range(1, 10)})  # item 10 missing
    assert bad.status_code == 400 and Response.objects.count() == 0
    ok = prescriber.post(url, {f"q{i}": 2 for i in range(1, 11)})
    assert ok.status_code == 302
    response = Response.objects.get()
    assert (response.instrument, response.total, response.source) == ("madrs", 20, "clinic")


def test_cssrs_entry_skips_questions_not_asked(world, enrolled, client_for):
    url = reverse("measures:score_entry", args=[world.patient_a.pk, "cssrs_screener"])
    client_for("nurse").post(url, {"q1": "1", "q2": "0", "q6": "0"})
    assert Response.objects.get().severity == "low"
    assert SafetyAlert.objects.get().cssrs_risk == "low"


def test_entering_a_due_clinician_assignment_completes_it(world, clock, client_for):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(
        prescriber,
        world.clinic_a,
        {"instrument": "madrs", "cadence": "at_baseline", "respondent": "clinician",
         "window_hours": 168},
    )  # fmt: skip
    factories.enrol(prescriber, world.patient_a, plan, first_session_on=MONDAY + timedelta(days=1))
    (due,) = services.assignments_schedule()
    client_for("prescriber").post(
        reverse("measures:score_entry", args=[world.patient_a.pk, "madrs"]),
        {"assignment": due.pk, **{f"q{i}": 3 for i in range(1, 11)}},
    )
    due.refresh_from_db()
    assert due.status == "completed" and due.response.total == 30


def test_enrol_and_send_a_questionnaire_from_the_chart(world, client_for, clock):
    plan = factories.empty_plan(world.users["prescriber"], world.clinic_a)
    nurse = client_for("nurse")
    enrolled = nurse.post(
        reverse("measures:enrol", args=[world.patient_a2.pk]),
        {
            "plan": plan.pk,
            "protocol": "iv_ketamine_induction",
            "first_session_on": "2026-06-08",
            "prescriber": world.users["prescriber"].pk,
            "notify_by_email": "on",
        },
    )
    assert enrolled.status_code == 302
    enrolment = MeasurementEnrolment.objects.get(patient=world.patient_a2)
    assert enrolment.prescriber == world.users["prescriber"]
    sent = nurse.post(
        reverse("measures:assign", args=[world.patient_a2.pk]),
        {"instrument": "phq9", "open_hours": 48},
    )
    assert sent.status_code == 302
    assignment = Assignment.objects.get(patient=world.patient_a2)
    assert assignment.enrolment == enrolment
    licensed = nurse.post(
        reverse("measures:assign", args=[world.patient_a2.pk]), {"instrument": "madrs"}
    )
    assert licensed.status_code == 400  # not offered to patients
    ended = nurse.post(
        reverse("measures:enrolment_end", args=[world.patient_a2.pk]), {"reason": "Paused"}
    )
    assert ended.status_code == 302
    assignment.refresh_from_db()
    assert assignment.status == "cancelled"


def test_ad_hoc_questionnaire_is_queued_for_delivery(
    world, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client_for("nurse").post(
            reverse("measures:assign", args=[world.patient_a2.pk]),
            {"instrument": "gad7", "open_hours": 48},
        )
    assert (
        DBTaskResult.objects.filter(
            task_path="ketaclinic.measures.tasks.deliver_assignment"
        ).count()
        == 1
    )


def test_plans_are_edited_per_clinic(world, client_for):
    admin = client_for("clinic_admin")
    created = admin.post(
        reverse("measures:plan_list"),
        {"clinic": world.clinic_a.pk, "name": "PTSD plan", "starter": "on", "ptsd": "on"},
    )
    plan = MeasurementPlan.objects.get(name="PTSD plan")
    assert created["Location"] == reverse("measures:plan_detail", args=[plan.pk])
    assert plan.items.filter(instrument="pcl5").exists()
    refused = admin.post(
        reverse("measures:plan_item_add", args=[plan.pk]),
        {"instrument": "ybocs", "phase": "any", "cadence": "monthly", "respondent": "patient",
         "window_hours": 72},
    )  # fmt: skip
    assert refused.status_code == 400 and b"licensed" in refused.content
    item = plan.items.get(instrument="pcl5")
    admin.post(reverse("measures:plan_item_retire", args=[plan.pk, item.pk]))
    item.refresh_from_db()
    assert not item.is_active
    admin.post(
        reverse("measures:policy_update", args=[world.clinic_a.pk]),
        {
            f"c{world.clinic_a.pk}-escalate_after_minutes": 20,
            f"c{world.clinic_a.pk}-max_reminders": 1,
            f"c{world.clinic_a.pk}-madrs_remission_max": 10,
        },
    )
    from ketaclinic.measures.selectors import policy_for

    policy = policy_for(world.clinic_a.pk)
    assert (policy.escalate_after_minutes, policy.max_reminders, policy.madrs_remission_max) == (
        20,
        1,
        10,
    )
    assert AuditEvent.objects.filter(object_type="measures.clinicmeasurepolicy").exists()


def test_outcome_summary_compares_with_published_figures(world, clock, client_for):
    prescriber = world.users["prescriber"]
    plan = factories.plan_with(prescriber, world.clinic_a, factories.WEEKLY_PHQ9)
    last = build_timeline("iv_ketamine_induction", MONDAY).sessions[-1].on
    now = services.clock.now()
    for patient, end_total in ((world.patient_a, 3), (world.patient_a2, 16)):
        factories.enrol(prescriber, patient, plan, first_session_on=MONDAY)
        for day, total in ((-2, 20), ((last - MONDAY).days + 2, end_total)):
            factories.clinic_score(
                world.users["nurse"], patient, "phq9", factories.phq9(total),
                at=now + timedelta(days=day),
            )  # fmt: skip
    clock.shift(timedelta(days=40))
    page = client_for("prescriber").get(reverse("measures:outcomes")).content.decode()
    assert "McInnes 2022" in page and "53.6%" in page and "28.9%" in page
    table = re.search(r'data-testid="induction-phq9">(.*?)</table>', page, re.S).group(1)
    clinic_row = table.split("</tr>")[1]
    assert "<td>2</td>" in clinic_row and "50.0%" in clinic_row  # 1 of 2 remitted
    assert "active courses" in page


def test_clinician_report_and_csv_export_are_audited(world, enrolled, clock, client_for):
    weekly_scores(world, 3)
    nurse = client_for("nurse")
    report = nurse.get(reverse("measures:report", args=[world.patient_a.pk])).content.decode()
    assert "referring clinician" in report and world.patient_a.mrn in report and "<svg" in report
    assert "<script" not in report
    patient_version = nurse.get(
        reverse("measures:report", args=[world.patient_a.pk]) + "?for=patient"
    ).content.decode()
    assert "Your progress" in patient_version
    csv = nurse.get(reverse("measures:scores_csv", args=[world.patient_a.pk]))
    assert csv["Content-Type"].startswith("text/csv") and csv.content.decode().count("\n") == 4
    actions = list(
        AuditEvent.objects.filter(
            patient_id=world.patient_a.pk, user=world.users["nurse"]
        ).values_list("action", flat=True)
    )
    assert actions.count("print") == 2 and actions.count("export") == 1


def test_response_detail_shows_every_answer_with_its_wording(world, enrolled, clock, client_for):
    weekly_scores(world, 1)
    response = Response.objects.get()
    page = (
        client_for("nurse")
        .get(reverse("measures:response_detail", args=[world.patient_a.pk, response.pk]))
        .content.decode()
    )
    assert "Thoughts that you would be better off dead" in page
    assert AuditEvent.objects.filter(object_type="measures.response", action="read").exists()


def test_nav_shows_alerts_and_outcomes_by_role(client_for):
    nav = client_for("prescriber").get(reverse("patients:list")).content.decode()
    assert 'href="/measures/alerts/"' in nav and 'href="/measures/outcomes/"' in nav
    admin = client_for("clinic_admin").get(reverse("patients:list")).content.decode()
    assert 'href="/measures/alerts/"' not in admin and 'href="/measures/outcomes/"' in admin
    desk = client_for("front_desk").get(reverse("patients:list")).content.decode()
    assert "/measures/" not in desk


def test_the_chart_uses_the_clinics_madrs_remission_cut_off(world, enrolled, clock, client_for):
    now = services.clock.now()
    for days, (item_score, item10) in ((-2, (3, 1)), (10, (1, 2))):  # totals 28, then 11
        answers = {f"q{i}": item_score for i in range(1, 10)} | {"q10": item10}
        factories.clinic_score(
            world.users["prescriber"], world.patient_a, "madrs", answers,
            at=now + timedelta(days=days),
        )  # fmt: skip
    clock.shift(timedelta(days=11))
    prescriber = client_for("prescriber")
    chart = reverse("patients:chart", args=[world.patient_a.pk])
    status = re.compile(r'data-testid="status-madrs">([^<]+)<')
    assert status.search(prescriber.get(chart).content.decode()).group(1) == "Remission"  # <= 12
    services.policy_update(
        actor=world.users["clinic_admin"],
        clinic=world.clinic_a,
        escalate_after_minutes=60,
        max_reminders=2,
        madrs_remission_max=10,
    )
    prescriber = client_for("prescriber")
    # 11 is above the stricter cut-off (ESCAPE-TRD <= 10) but still a >= 50% drop from 28.
    assert status.search(prescriber.get(chart).content.decode()).group(1) == "Response"


def test_chart_score_series_reads_as_the_orm_does(world, enrolled, clock):
    # points_by_instrument reads plain tuples (the time as the UTC wall clock on PostgreSQL, the
    # local day from the database, the flags as JSON text): the points must be the ORM's, to
    # the microsecond, the clinic's day and the flag.
    from zoneinfo import ZoneInfo

    from ketaclinic.measures import selectors

    weekly_scores(world, 6)
    tz = ZoneInfo(world.patient_a.clinic.timezone)
    factories.clinic_score(
        world.users["nurse"],
        world.patient_a,
        "phq9",
        factories.phq9(20, item9=2),  # the safety item: a flag to read back
        at=services.clock.now() + timedelta(days=50, microseconds=123_456),
    )
    # Late in the clinic's evening: already the next day in UTC, on either side of a change
    # to or from daylight saving time.
    late = [datetime(2026, 3, 8, 3, 30, tzinfo=UTC), datetime(2026, 11, 2, 4, 30, tzinfo=UTC)]
    for at in late:
        factories.clinic_score(
            world.users["nurse"], world.patient_a, "phq9", factories.phq9(9), at=at
        )
    grouped = selectors.points_by_instrument(world.patient_a.pk, tz)
    expected = selectors.score_points(world.patient_a.pk, "phq9", tz)
    assert grouped["phq9"] == expected and len(expected) == 9
    days = {p.completed_at: p.day for p in grouped["phq9"]}
    assert [days[at] for at in late] == [at.astimezone(tz).date() for at in late]
    assert all(days[at] != at.date() for at in late)  # the clinic's day, not UTC's
    assert all(p.completed_at.utcoffset() == timedelta(0) for p in grouped["phq9"])
    assert [p.total for p in grouped["phq9"] if p.suicidal_ideation] == [20]


def test_chart_reads_the_scores_with_its_other_reads(world, enrolled, clock):
    # The score series travels with the chart's other reads (patients.chart.ChartReads: one
    # round trip on PostgreSQL) and gives the trajectories the panel's own read gives.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketaclinic.measures import selectors
    from ketaclinic.patients.chart import ChartReads

    weekly_scores(world, 6)
    patient = world.patient_a
    present = selectors.presence(patient.pk, checkins_since=services.clock.now())
    reads = ChartReads()
    handles = selectors.outcomes_reads(patient, present, reads)
    reads.run()
    with CaptureQueriesContext(connection) as queries:
        together = selectors.patient_outcomes(patient, present=present, read=handles)
    assert not any("measures_response" in q["sql"] for q in queries.captured_queries)
    alone = selectors.patient_outcomes(patient)
    assert together.trajectories == alone.trajectories
    assert [len(t.points) for t in together.trajectories] == [6]
    # A patient without scores asks for no score read at all.
    empty = selectors.outcomes_reads(patient, selectors.Presence(responses=False), ChartReads())
    assert empty["points"] is None


def _rows_from_models(alerts, now) -> str:
    """The inbox rows as the page wrote them from model instances (before the rows were read
    as tuples): the reference the tuple rows are held to."""
    from html import escape

    from django.utils import timezone
    from django.utils.timesince import timesince

    tz = timezone.get_current_timezone()
    lines = []
    for a in alerts:
        escalated = ""
        if a.escalation_count:
            times = f" ×{a.escalation_count}" if a.escalation_count > 1 else ""
            escalated = f'<br><small class="kc-danger">escalated{times}</small>'
        patient = a.patient
        if a.acknowledged_at:
            outcome = escape(
                f"{a.get_action_display()} by {a.acknowledged_by} after "
                f"{timesince(a.created_at, a.acknowledged_at)}"
            )
            button = f'role="button" class="secondary outline" data-testid="open-alert-{a.pk}">View'
        else:
            outcome = f"<strong>{escape(timesince(a.created_at, now))}</strong>"
            button = f'role="button" class="" data-testid="open-alert-{a.pk}">Acknowledge'
        lines.append(
            f'<tr class="kc-alert-row-{escape(a.priority)}">'
            f"<td>{escape(a.get_priority_display())}{escalated}</td>"
            f'<td><a href="{reverse("patients:chart", args=[a.patient_id])}#panel-measures">'
            f"{escape(patient.last_name)}, {escape(patient.first_name)}</a><br>"
            f'<small class="muted">{escape(patient.mrn)} · {escape(a.clinic.name)}</small></td>'
            f"<td>{escape(a.summary)}</td>"
            f"<td>{escape(str(a.assigned_to) if a.assigned_to else 'everyone on duty')}</td>"
            f"<td>{a.created_at.astimezone(tz):%Y-%m-%d %H:%M}</td>"
            f"<td>{outcome}</td>"
            f'<td><a href="{reverse("measures:alert_detail", args=[a.pk])}" {button}</a></td>'
            "</tr>"
        )
    return "\n".join(lines)


def _tbody(html: str) -> str:
    body = html[html.index("<tbody>") + len("<tbody>") : html.index("</tbody>")]
    return "\n".join(line.strip() for line in body.strip().splitlines() if line.strip())


def test_alert_inbox_rows_read_as_tuples_match_the_model_rows(world, enrolled, clock, client_for):
    """The inbox reads its rows (and, on the first page of waiting alerts, through SQL compiled
    once per number of clinics) as tuples: the same rows as from the alerts' model instances,
    escaped, for waiting, acknowledged, escalated and assigned alerts, on every filter."""
    from ketaclinic.measures import selectors

    make_alerts(world, 30)
    nurse, prescriber = world.users["nurse"], world.users["prescriber"]
    prescriber.display_name = 'Dr <b>"Quote"</b> & Co'
    prescriber.save()
    alerts = list(SafetyAlert.objects.order_by("pk"))
    alerts[0].summary = "<script>alert(1)</script> & more"
    alerts[0].escalation_count = 2
    alerts[0].assigned_to = prescriber
    alerts[0].save()
    alerts[1].escalation_count = 1
    alerts[1].save()
    for alert in alerts[2:6]:
        services.alert_acknowledge(actor=prescriber, alert=alert, action="called_patient")
    client = client_for("nurse")
    for params in ({}, {"status": "all"}, {"status": "acknowledged"}, {"page": "2"}):
        response = client.get(reverse("measures:alert_inbox"), params)
        assert response.status_code == 200
        query = selectors.AlertFilter(status=params.get("status", "open"))
        number = int(params.get("page", 1))
        models = list(selectors.alert_inbox(nurse, query)[(number - 1) * 25 : number * 25])
        assert models, params
        expected = _rows_from_models(models, services.clock.now())
        assert _tbody(response.content.decode()) == _tbody(f"<tbody>{expected}</tbody>")
    page = client.get(reverse("measures:alert_inbox")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "escalated ×2" in page and "Dr &lt;b&gt;&quot;Quote&quot;&lt;/b&gt; &amp; Co" in page


def test_alert_inbox_boosters_written_as_the_template_wrote_them(world, client_for):
    """The open booster recommendations are listed in Python: the same items as the template
    loop, escaped, with and without a prescriber."""
    from django.template import engines

    from ketaclinic.measures import selectors

    world.patient_a.last_name = "O'Brien <b>"
    world.patient_a.save()
    prescriber = world.users["prescriber"]
    for patient, by, days in (
        (world.patient_a, prescriber, 3),
        (world.patient_a2, None, 1),
        (world.patient_a, None, 2),
    ):
        BoosterRecommendation.objects.create(
            clinic=patient.clinic, patient=patient, instrument="phq9", baseline_total=20,
            latest_total=14, prescriber=by,
            relapse_on=services.clock.now().date() - timedelta(days=days),
            created_at=services.clock.now() - timedelta(days=days),
        )  # fmt: skip
    old = engines["django"].from_string(
        "<ul>{% for b in boosters %}<li><a href=\"{% url 'patients:chart' b.patient_id %}"
        '#panel-measures">{{ b.patient.last_name }}, {{ b.patient.first_name }}</a> — '
        '{{ b.instrument_title }} relapse {{ b.relapse_on|date:"Y-m-d" }} (baseline '
        "{{ b.baseline_total }}, now {{ b.latest_total }}){% if b.prescriber %} · for "
        "{{ b.prescriber }}{% endif %}</li>{% endfor %}</ul>"
    )
    expected = old.render(
        {"boosters": list(selectors.booster_recommendations(world.users["nurse"])[:10])}
    )
    page = client_for("nurse").get(reverse("measures:alert_inbox")).content.decode()
    assert expected in page and "O&#x27;Brien &lt;b&gt;" in expected
    assert expected.count("<li>") == 3
