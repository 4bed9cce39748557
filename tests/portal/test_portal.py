"""The patient portal: one item at a time with progress, crisis resources on the spot, daily
check-in, private journal, own chart, sessions and after-care; crisis line on every page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from ketaclinic.audit.models import AuditEvent
from ketaclinic.measures import services
from ketaclinic.measures.models import Assignment, CheckIn, JournalEntry, Response, SafetyAlert
from tests.measures import factories
from tests.measures.conftest import MONDAY

pytestmark = pytest.mark.django_db

NOT_MONITORED = "This portal is not monitored around the clock."


@pytest.fixture
def patient(world, client_for):
    return client_for("patient")


def open_questionnaire(world, instrument: str) -> Assignment:
    return services.assignment_create(
        actor=world.users["nurse"], patient=world.patient_a, instrument=instrument
    )


def answer_all(patient, assignment, values: dict[str, int]):
    url = reverse("portal:questionnaire", args=[assignment.pk])
    response = None
    for item, value in values.items():
        response = patient.post(url, {"item": item, "answer": value})
        assert response.status_code == 302, response.content.decode()[:500]
    return response


def test_patient_role_lands_on_the_portal(patient):
    assert patient.get("/")["Location"] == "/portal/"


def test_home_lists_due_questionnaires_and_next_sessions(world, patient, enrolled, clock):
    services.assignments_schedule()
    page = patient.get(reverse("portal:home")).content.decode()
    assert 'data-testid="due-phq9"' in page
    assert "Daily check-in" in page
    assert MONDAY.strftime("%A, %B") in page  # the first session today
    assert AuditEvent.objects.filter(
        action="read", patient_id=world.patient_a.pk, detail="portal home"
    ).exists()


def test_phq9_one_item_at_a_time_with_progress_and_back(world, patient):
    assignment = open_questionnaire(world, "phq9")
    url = reverse("portal:questionnaire", args=[assignment.pk])
    first = patient.get(url).content.decode()
    assert "Question 1 of 9" in first and "Little interest or pleasure" in first
    assert '<progress value="0" max="9"' in first
    assert patient.post(url, {"item": "q1", "answer": 2})["Location"] == f"{url}?item=q2"
    second = patient.get(f"{url}?item=q2").content.decode()
    assert "Question 2 of 9" in second and '<progress value="1" max="9"' in second
    assert 'href="?item=q1"' in second  # back to the previous question
    back = patient.get(f"{url}?item=q1").content.decode()
    assert re.search(r'value="2"[^>]*checked', back)  # the answer given is kept
    bad = patient.post(url, {"item": "q2", "answer": 9})
    assert bad.status_code == 400 and "Choose one of the answers" in bad.content.decode()
    assert Assignment.objects.get().draft_answers == {"q1": 2}


def test_item9_shows_crisis_resources_at_once_and_alerts_the_prescriber(world, patient, enrolled):
    assignment = open_questionnaire(world, "phq9")
    values = {f"q{i}": 1 for i in range(1, 9)} | {"q9": 2}
    done = answer_all(patient, assignment, values)
    page = patient.get(done["Location"]).content.decode()
    assert 'data-testid="crisis-resources"' in page
    assert 'href="tel:988"' in page and "911" in page
    assert Response.objects.get().total == 10
    alert = SafetyAlert.objects.get()
    assert (alert.kind, alert.assigned_to) == ("phq9_item9", world.users["prescriber"])


def test_no_crisis_panel_without_a_safety_flag(world, patient):
    assignment = open_questionnaire(world, "gad7")
    done = answer_all(patient, assignment, {f"q{i}": 1 for i in range(1, 8)})
    page = patient.get(done["Location"]).content.decode()
    assert 'data-testid="crisis-resources"' not in page and "Thank you" in page
    assert SafetyAlert.objects.count() == 0


def test_cssrs_branches_and_high_risk_shows_crisis_now(world, patient, enrolled):
    assignment = open_questionnaire(world, "cssrs_screener")
    url = reverse("portal:questionnaire", args=[assignment.pk])
    page = patient.get(url).content.decode()
    assert "Question 1 of 3" in page and "In the past month:" in page
    patient.post(url, {"item": "q1", "answer": 1})
    response = patient.post(url, {"item": "q2", "answer": 1})
    assert response["Location"] == f"{url}?item=q3"  # follow-up questions open up
    assert "Question 3 of 6" in patient.get(response["Location"]).content.decode()
    for item, value in (("q3", 1), ("q4", 1), ("q5", 0)):
        patient.post(url, {"item": item, "answer": value})
    done = patient.post(url, {"item": "q6", "answer": 0})
    page = patient.get(done["Location"]).content.decode()
    assert "Please reach out for help now" in page
    alert = SafetyAlert.objects.get()
    assert (alert.priority, alert.cssrs_risk) == ("immediate", "high")
    assert Response.objects.get().answers == {
        "q1": 1, "q2": 1, "q3": 1, "q4": 1, "q5": 0, "q6": 0
    }  # fmt: skip


def test_expired_questionnaire_is_closed(world, patient, clock):
    assignment = open_questionnaire(world, "phq9")
    clock.shift(timedelta(days=4))
    response = patient.get(reverse("portal:questionnaire", args=[assignment.pk]))
    assert response.status_code == 410 and b"has closed" in response.content


def test_check_in_and_urgent_check_in(world, patient):
    url = reverse("portal:checkin")
    assert patient.post(url, {"mood_0_to_10": 11}).status_code == 400
    assert patient.post(url, {"mood_0_to_10": 7, "note": "Good day"})["Location"] == "/portal/"
    urgent = patient.post(url, {"mood_0_to_10": 1, "urgent": "on"})
    assert urgent.status_code == 200 and b'data-testid="crisis-resources"' in urgent.content
    assert list(CheckIn.objects.order_by("recorded_at").values_list("mood_0_to_10", "urgent")) == [
        (7, False),
        (1, True),
    ]
    assert SafetyAlert.objects.get().kind == "urgent_checkin"


def test_journal_is_private_until_shared(world, patient, client_for):
    url = reverse("portal:journal")
    patient.post(url, {"body": "Only for me"})
    patient.post(url, {"body": "For my nurse", "share": "on"})
    entries = {e.body: e for e in JournalEntry.objects.all()}
    assert not entries["Only for me"].shared_with_care_team
    assert entries["For my nurse"].shared_with_care_team
    staff_view = client_for("nurse").get(
        reverse("measures:shared_journal", args=[world.patient_a.pk])
    )
    assert b"For my nurse" in staff_view.content and b"Only for me" not in staff_view.content
    patient.post(reverse("portal:journal_share", args=[entries["Only for me"].pk]), {"share": "1"})
    patient.post(reverse("portal:journal_share", args=[entries["For my nurse"].pk]), {"share": "0"})
    staff_view = client_for("nurse").get(
        reverse("measures:shared_journal", args=[world.patient_a.pk])
    )
    assert b"Only for me" in staff_view.content and b"For my nurse" not in staff_view.content


def test_own_progress_chart_in_plain_language_with_report_and_csv(world, patient, enrolled, clock):
    nurse = world.users["nurse"]
    now = services.clock.now()
    for days, total in ((-2, 20), (7, 12), (14, 8)):
        factories.clinic_score(
            nurse, world.patient_a, "phq9", factories.phq9(total), at=now + timedelta(days=days)
        )
    clock.shift(timedelta(days=15))
    page = patient.get(reverse("portal:progress")).content.decode()
    assert '<svg viewBox="0 0 400 280"' in page  # drawn narrow for phones
    assert "Your score went from <strong>20</strong>" in page
    assert "dropped by at least half" in page  # response, in words
    report = patient.get(reverse("portal:progress_report"))
    assert report.status_code == 200 and b"Your progress" in report.content
    assert b"MRN" not in report.content  # the patient's version
    assert b"not monitored around the clock" in report.content
    csv = patient.get(reverse("portal:scores_csv")).content.decode()
    assert csv.splitlines()[0].startswith("completed_at_utc,instrument")
    assert len(csv.splitlines()) == 4
    assert AuditEvent.objects.filter(action="print", patient_id=world.patient_a.pk).exists()
    assert AuditEvent.objects.filter(action="export", patient_id=world.patient_a.pk).exists()


def test_sessions_show_preparation_and_aftercare_follows_the_treatment(world, patient, enrolled):
    sessions = patient.get(reverse("portal:sessions")).content.decode()
    assert "Before your ketamine infusion" in sessions
    assert "Do not drive" in sessions
    aftercare = patient.get(reverse("portal:aftercare")).content.decode()
    assert 'data-testid="aftercare"' in aftercare and "restful night" in aftercare


@pytest.mark.parametrize(
    "name",
    [
        "portal:home",
        "portal:checkin",
        "portal:journal",
        "portal:progress",
        "portal:sessions",
        "portal:aftercare",
        "portal:crisis",
    ],
)
def test_every_portal_page_carries_the_crisis_line_and_the_not_monitored_note(
    world, patient, name, settings
):
    settings.KETACLINIC_CRISIS_LINE = "112"
    page = patient.get(reverse(name)).content.decode()
    assert NOT_MONITORED in page
    assert 'href="tel:112"' in page  # configurable, 988 by default
    assert 'data-testid="crisis-strip"' in page


def test_questionnaire_pages_carry_the_crisis_line_too(world, patient):
    assignment = open_questionnaire(world, "phq9")
    for url in (
        reverse("portal:questionnaire", args=[assignment.pk]),
        reverse("portal:link_start", args=["not-a-real-token"]),
    ):
        page = patient.get(url).content.decode()
        assert NOT_MONITORED in page and re.search(r'href="tel:988"', page)


def test_portal_pages_need_no_inline_script_or_style(world, patient, enrolled):
    # CSP: script-src/style-src 'self' only.
    for name in ("portal:home", "portal:progress", "portal:checkin"):
        page = patient.get(reverse(name)).content.decode()
        assert "<script" not in page and " style=" not in page and "<style" not in page
