"""Measurement follows the treatment course: its appointments give the sessions (with their real
times, doses and phases, boosters included), its prescriber receives the alerts, the intake
baseline becomes the pre-course score, and a stopped course ends the plan."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from ketaclinic.courses import services as course_services
from ketaclinic.measures import selectors, services
from ketaclinic.measures.choices import Cadence, Phase
from ketaclinic.measures.models import Assignment, MeasurementEnrolment, Response, SafetyAlert
from ketaclinic.measures.timeline import timeline_for
from ketaclinic.screening import services as screening
from tests.measures import factories
from tests.screening.builders import NOW, PHQ9_MODERATE, TODAY, chair, plan, screen

pytestmark = pytest.mark.django_db
BOSTON = ZoneInfo("America/New_York")


@pytest.fixture
def course(world):
    """Patient A2 screened (intake PHQ-9 total 10) with an IV course from Tuesday 3 March."""
    with time_machine.travel(NOW, tick=False):
        screening.referral_create(
            actor=world.users["front_desk"],
            clinic_id=world.clinic_a.pk,
            patient=world.patient_a2,
            data={"referral_source": "self", "referred_on": TODAY,
                  "intended_treatment": "iv_ketamine"},
        )  # fmt: skip
        screen(world.users["nurse"], world.patient_a2, phq9=PHQ9_MODERATE)
        chair(world.clinic_a)
        return plan(
            world.users["prescriber"],
            world.patient_a2,
            protocol="iv_ketamine_induction",
            session_time=time(10, 30),
        )


@pytest.fixture
def plan_before_sessions(world):
    return factories.plan_with(
        world.users["prescriber"],
        world.clinic_a,
        {"instrument": "phq9", "cadence": Cadence.BEFORE_EACH_SESSION, "window_hours": 24},
        {"instrument": "gad7", "cadence": Cadence.WEEKLY, "phase": Phase.MAINTENANCE},
    )


def test_an_open_course_is_put_on_the_default_plan_with_its_intake_baseline(
    world, course, plan_before_sessions
):
    with time_machine.travel(NOW, tick=False):
        assert services.enrolments_follow_courses() == 1
        assert services.enrolments_follow_courses() == 0  # once
    enrolment = MeasurementEnrolment.objects.get()
    assert (enrolment.course, enrolment.plan) == (course, plan_before_sessions)
    assert enrolment.prescriber == course.prescriber
    baseline = Response.objects.get()
    assert (baseline.instrument, baseline.total, baseline.source) == ("phq9", 10, "screening")
    assert baseline.adopted_from is not None
    assert SafetyAlert.objects.count() == 0  # reviewed at intake, not routed again

    timeline = timeline_for(enrolment)
    appointments = list(course.appointments.order_by("starts_at"))
    assert [s.appointment_id for s in timeline.sessions] == [a.pk for a in appointments]
    assert timeline.sessions[0].starts_at == appointments[0].starts_at
    assert timeline.first_session_on == date(2026, 3, 3)
    outcomes = selectors.patient_outcomes(world.patient_a2)
    (phq,) = outcomes.trajectories
    assert phq.baseline is not None and phq.baseline.total == 10


def test_pre_session_questionnaires_follow_the_booked_times(world, course, plan_before_sessions):
    # The second session: the intake PHQ-9 the day before covers the first one.
    first = course.appointments.order_by("starts_at")[1]
    with time_machine.travel(first.starts_at - timedelta(hours=23), tick=False):
        services.enrolments_follow_courses()
        (before,) = services.assignments_schedule()
    assert before.appointment == first and before.course == course
    assert before.due_at == first.starts_at  # 10:30, the booked time
    assert before.expires_at == first.starts_at + timedelta(hours=1)
    assert before.available_at == first.starts_at - timedelta(hours=24)
    with time_machine.travel(first.starts_at - timedelta(hours=2), tick=False):
        services.response_submit(
            actor=world.users["nurse"],
            assignment=before,
            answers=factories.phq9(12, item9=1),
            source="clinic",
        )
    (screen,) = selectors.pre_session_responses([first.pk])[first.pk]
    assert screen.total == 12 and screen.has_suicidal_ideation  # for the pre-dose gate
    flags = selectors.safety_flags_for_patients([world.patient_a2.pk])
    assert [a.kind for a in flags[world.patient_a2.pk]] == ["phq9_item9"]  # for the day board


def test_rescheduled_and_booster_sessions_change_the_timeline(world, course, plan_before_sessions):
    with time_machine.travel(NOW, tick=False):
        services.enrolments_follow_courses()
    enrolment = MeasurementEnrolment.objects.get()
    last = course.appointments.order_by("-starts_at").first()
    booster_day = last.starts_at.astimezone(BOSTON).date() + timedelta(days=35)
    while booster_day.weekday() > 4:
        booster_day += timedelta(days=1)
    with time_machine.travel(NOW, tick=False):
        course_services.booster_add(
            actor=world.users["prescriber"],
            course=course,
            day=booster_day,
            session_time=time(11, 0),
            reason="PHQ-9 relapse",
        )
    timeline = timeline_for(MeasurementEnrolment.objects.select_related("course", "clinic").get())
    assert timeline.sessions[-1].phase == "booster" and timeline.sessions[-1].on == booster_day
    assert timeline.phase_on(booster_day) == "booster"
    assert timeline.phase_on(booster_day + timedelta(days=20)) == "maintenance"
    assert timeline.phase_on(booster_day - timedelta(days=3)) == "maintenance"
    assert enrolment.course_id == course.pk


def test_an_existing_plan_adopts_the_course_and_a_stopped_course_ends_it(
    world, course, plan_before_sessions
):
    with time_machine.travel(NOW, tick=False):
        enrolment = factories.enrol(
            world.users["nurse"],
            world.patient_a2,
            plan_before_sessions,
            first_session_on=date(2026, 3, 10),
        )
        services.enrolments_follow_courses()
        enrolment.refresh_from_db()
        assert enrolment.course == course and enrolment.first_session_on == course.start_date
        assert enrolment.prescriber == course.prescriber
        course_services.course_change_status(
            actor=world.users["prescriber"], course=course, status="stopped", reason="Declined"
        )
        services.enrolments_follow_courses()
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.ended_reason) == ("ended", "Treatment course stopped")
    assert not Assignment.objects.filter(status="pending").exists()


def test_the_enrol_page_offers_the_course(world, course, plan_before_sessions, client_for):
    with time_machine.travel(NOW, tick=False):
        nurse = client_for("nurse")
        url = reverse("measures:enrol", args=[world.patient_a2.pk])
        page = nurse.get(url).content.decode()
        assert f'<option value="{course.pk}" selected>' in page
        done = nurse.post(url, {"plan": plan_before_sessions.pk, "course": course.pk,
                                "notify_by_email": "on"})  # fmt: skip
    assert done.status_code == 302
    assert MeasurementEnrolment.objects.get().course == course


def test_the_charts_reads_together_give_every_panel_what_it_read_alone(
    world, course, plan_before_sessions
):
    """patients.chart asks every panel for its reads first and runs them together: each panel
    must then show what it shows when it reads for itself (intake with decisions and baseline
    scores, courses with appointments, the measures timeline of the enrolment's course)."""
    import re

    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from ketaclinic.patients import chart
    from ketaclinic.patients.models import Patient

    with time_machine.travel(NOW, tick=False):
        services.enrolments_follow_courses()
    csrf = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
    with time_machine.travel(NOW + timedelta(days=9), tick=False):
        for role in ("prescriber", "nurse", "front_desk", "clinic_admin"):
            user = world.users[role]
            patient = Patient.objects.select_related("clinic").get(pk=world.patient_a2.pk)
            together = chart.panels_for(user, patient)
            ordered = sorted(chart._PANELS.values(), key=lambda p: (p.order, p.key))
            keys = tuple(p.key for p in ordered if p.facts is not None)
            facts = chart.panel_facts(patient.pk, tuple(p for p in ordered if p.facts))
            alone = [
                (panel.key, ctx)
                for panel in ordered
                if (ctx := panel.context(user, patient, facts[panel.key])) is not None
            ]
            assert [p.key for p in together] == [key for key, _ in alone] and keys
            request = RequestFactory().get("/")
            request.user = user
            for panel, (_, ctx) in zip(together, alone, strict=True):
                pair = [
                    csrf.sub(
                        "",
                        render_to_string(panel.template, {"ctx": c, "patient": patient}, request),
                    )
                    for c in (panel.context, ctx)
                ]
                assert pair[0] == pair[1], (role, panel.key)
            if role == "prescriber":
                measures = next(p for p in together if p.key == "measures").context
                timeline = measures["timeline"]
                assert [s.appointment_id for s in timeline.sessions] == [
                    a.pk for a in course.appointments.order_by("starts_at")
                ]
                assert {p.key for p in together} >= {"intake", "courses", "measures"}
                summary = next(p for p in together if p.key == "intake").context["summary"]
                assert summary.eligibility and summary.latest_measures
                courses = next(p for p in together if p.key == "courses").context["courses"]
                assert courses and courses[0].booked > 0
