"""Delivery, reminders, expiry and alert notices run by the real worker (`ketaclinic worker
--batch`, django-tasks database backend), with Django's locmem email backend and the in-memory
SMS backend. These tests commit (transaction=True): messages leave only after commit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from ketaclinic.measures import services
from ketaclinic.measures.choices import AssignmentStatus
from ketaclinic.measures.models import Assignment, Response, SafetyAlert
from tests.measures import factories
from tests.measures.conftest import MONDAY

pytestmark = pytest.mark.django_db(transaction=True)

LINK = re.compile(r"http://testserver(/portal/q/[A-Za-z0-9_\-]+/)")


def run_worker() -> None:
    call_command("worker", "--batch", "--interval", "0")


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.KETACLINIC_BASE_URL = "http://testserver"


@pytest.fixture
def sms_patient(world):
    world.patient_a.email = "abbott@example.com"
    world.patient_a.phone = "+1 617 555 0123"
    world.patient_a.save()
    return world.patient_a


def test_worker_schedules_delivers_and_reminds_twice(
    world, sms_patient, phq9_weekly_plan, clock, mailoutbox, sms_outbox
):
    factories.enrol(
        world.users["prescriber"],
        sms_patient,
        phq9_weekly_plan,
        first_session_on=MONDAY,
        prescriber=world.users["prescriber"],
        notify_by_sms=True,
    )
    run_worker()
    assignment = Assignment.objects.get()
    assert assignment.delivered_at is not None
    assert [m.to for m in mailoutbox] == [["abbott@example.com"]]
    first = mailoutbox[0]
    assert "questionnaire" in first.subject.lower() and "Reminder" not in first.subject
    # No clinical content in email or SMS; crisis line and the not-monitored note are there.
    assert "PHQ" not in first.body and "988" in first.body and "not monitored" in first.body
    assert len(sms_outbox) == 1 and sms_outbox[0].to == "+1 617 555 0123"
    assert "PHQ" not in sms_outbox[0].body and "988" in sms_outbox[0].body
    link = LINK.search(first.body).group(1)
    raw = link.rstrip("/").rsplit("/", 1)[1]
    assert raw not in assignment.link_token_digest  # only a digest is stored
    assert assignment.link_token_digest == services.digest(raw)

    run_worker()  # nothing new without time passing
    assert len(mailoutbox) == 1

    for reminder in (1, 2):
        clock.shift(timedelta(hours=24, minutes=1))
        run_worker()
        assert len(mailoutbox) == 1 + reminder
        assert mailoutbox[-1].subject.startswith("Reminder")
        assert Assignment.objects.get().reminders_sent == reminder
    # The first link stopped working when a reminder sent a new one.
    assert Client().post(link).status_code == 410

    clock.shift(timedelta(hours=23))
    run_worker()
    assert len(mailoutbox) == 3  # at most two reminders
    clock.shift(timedelta(hours=2))
    run_worker()
    assert Assignment.objects.get().status == AssignmentStatus.EXPIRED
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).exists()


def test_one_time_link_opens_one_questionnaire_once(world, enrolled, clock, mailoutbox):
    world.patient_a.email = "abbott@example.com"
    world.patient_a.save()
    run_worker()
    link = LINK.search(mailoutbox[0].body).group(1)
    browser = Client()
    start = browser.get(link)
    assert start.status_code == 200 and b"Start" in start.content
    assert Client().get(link).status_code == 200  # looking does not use it up (mail scanners)
    opened = browser.post(link)
    assignment = Assignment.objects.get()
    assert (
        opened.status_code == 302
        and opened["Location"] == f"/portal/questionnaires/{assignment.pk}/"
    )
    assert Client().post(link).status_code == 410  # used
    page = browser.get(opened["Location"])
    assert page.status_code == 200 and "Question 1 of 9" in page.content.decode()
    for number in range(1, 10):
        answered = browser.post(opened["Location"], {"item": f"q{number}", "answer": "0"})
        assert answered.status_code == 302
    done = browser.get(answered["Location"])
    assert done.status_code == 200 and b"Thank you" in done.content
    response = Response.objects.get()
    assert (response.source, response.total) == ("email_link", 0)
    # The link grants that questionnaire only: nothing else of the patient's.
    assert browser.get("/portal/").status_code == 302  # to the sign-in page
    assert browser.get(f"/api/v1/measures/responses/{response.pk}").status_code == 401


def test_alert_notices_and_escalations_are_emailed_by_the_worker(
    world, enrolled, clock, mailoutbox
):
    world.users["prescriber"].email = "chen@clinic.example"
    world.users["prescriber"].save()
    world.users["nurse"].email = "ortiz@clinic.example"
    world.users["nurse"].save()
    (assignment,) = services.assignments_schedule()
    services.response_submit(
        actor=world.users["patient"],
        assignment=assignment,
        answers=factories.phq9(16, item9=2),
        source="portal",
    )
    run_worker()
    notices = [m for m in mailoutbox if "alert" in m.subject.lower()]
    assert [m.to for m in notices] == [["chen@clinic.example"]]  # the assigned prescriber
    assert world.patient_a.last_name not in notices[0].body  # no patient details by email
    alert = SafetyAlert.objects.get()
    assert f"/measures/alerts/{alert.pk}/" in notices[0].body

    clock.shift(timedelta(minutes=61))  # past the default 60 minutes
    run_worker()
    escalated = [m for m in mailoutbox if m.subject.startswith("Escalated")]
    assert len(escalated) == 1
    assert sorted(escalated[0].to) == ["chen@clinic.example", "ortiz@clinic.example"]
    assert SafetyAlert.objects.get().escalation_count == 1


def test_high_risk_goes_to_everyone_on_duty_at_once(world, enrolled, clock, mailoutbox):
    world.users["nurse"].email = "ortiz@clinic.example"
    world.users["nurse"].save()
    services.duty_start(actor=world.users["nurse"], clinic=world.clinic_a, hours=8)
    factories.clinic_score(
        world.users["nurse"],
        world.patient_a,
        "cssrs_screener",
        {"q1": True, "q2": True, "q3": True, "q4": False, "q5": True, "q6": False},
        at=services.clock.now(),
    )
    run_worker()
    (notice,) = [m for m in mailoutbox if "HIGH-RISK" in m.subject]
    assert "ortiz@clinic.example" in notice.to


def test_periodic_tick_keeps_exactly_one_run_waiting(world, enrolled, clock):
    run_worker()
    run_worker()
    waiting = DBTaskResult.objects.filter(
        task_path="ketaclinic.measures.tasks.measurement_tick", status=TaskResultStatus.READY
    )
    assert waiting.count() == 1
    assert waiting.get().run_after > services.clock.now()
