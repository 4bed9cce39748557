"""/api/v1/measures: the same rules as the pages, in the API's error format."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketaclinic.measures import services
from ketaclinic.measures.models import CheckIn, Response, SafetyAlert
from tests.measures import factories

pytestmark = pytest.mark.django_db
API = "/api/v1/measures"


def post(client, path, body):
    return client.post(f"{API}{path}", json.dumps(body), content_type="application/json")


def test_patient_submits_own_questionnaire_and_gets_crisis_resources(world, enrolled, clock,
                                                                    client_for):  # fmt: skip
    (assignment,) = services.assignments_schedule()
    me = client_for("patient")
    mine = me.get(f"{API}/assignments?status=pending").json()
    assert [row["id"] for row in mine["items"]] == [assignment.pk]
    answered = post(me, "/responses", {"assignment_id": assignment.pk,
                                       "answers": factories.phq9(11, item9=1)})  # fmt: skip
    assert answered.status_code == 201
    body = answered.json()
    assert (body["total"], body["severity"], body["flags"]) == (11, "moderate",
                                                                ["suicidal_ideation"])  # fmt: skip
    assert body["crisis_resources"]["call_or_text"] == "988"
    assert Response.objects.get().source == "api"
    assert SafetyAlert.objects.get().kind == "phq9_item9"
    again = post(me, "/responses", {"assignment_id": assignment.pk, "answers": factories.phq9(1)})
    assert again.status_code == 422 and Response.objects.count() == 1  # closed


def test_invalid_answers_get_field_errors_and_write_nothing(world, enrolled, clock, client_for):
    nurse = client_for("nurse")
    bad = post(nurse, "/responses", {"patient_id": world.patient_a.pk, "instrument": "phq9",
                                     "answers": {"q1": 4}})  # fmt: skip
    assert bad.status_code == 422 and "answers" in bad.json()["errors"]
    typed = post(nurse, "/responses", {"patient_id": world.patient_a.pk, "instrument": "phq9",
                                       "answers": "nine"})  # fmt: skip
    assert typed.status_code == 422
    neither = post(nurse, "/responses", {"answers": {}})
    assert neither.status_code == 422 and "assignment_id" in neither.json()["errors"]
    assert Response.objects.count() == 0


def test_scores_endpoint_gives_baseline_status_and_relapse(world, enrolled, clock, client_for):
    nurse = world.users["nurse"]
    now = services.clock.now()
    for days, total in ((-2, 20), (10, 8), (38, 12), (45, 14)):
        factories.clinic_score(
            nurse, world.patient_a, "phq9", factories.phq9(total), at=now + timedelta(days=days)
        )
    data = client_for("prescriber").get(f"{API}/patients/{world.patient_a.pk}/scores").json()
    (phq,) = data["trajectories"]
    assert (phq["baseline"], phq["latest"], phq["status"]) == (20, 14, "partial")
    assert phq["relapse_on"] == (now + timedelta(days=45)).date().isoformat()
    assert len(phq["points"]) == 4 and data["sessions_planned"] == 6
    own = client_for("patient").get(f"{API}/patients/{world.patient_a.pk}/scores")
    assert own.status_code == 200 and own.json()["trajectories"][0]["latest"] == 14


def test_alerts_are_listed_and_acknowledged_through_the_api(world, enrolled, clock, client_for):
    services.checkin_record(
        actor=world.users["patient"], patient=world.patient_a, mood_0_to_10=1, urgent=True
    )
    nurse = client_for("nurse")
    clock.shift(timedelta(minutes=9))
    (alert,) = nurse.get(f"{API}/alerts").json()["items"]
    assert (alert["kind"], alert["waited_minutes"]) == ("urgent_checkin", 9)
    refused = post(nurse, f"/alerts/{alert['id']}/acknowledge", {"action": "waved"})
    assert refused.status_code == 422
    done = post(nurse, f"/alerts/{alert['id']}/acknowledge", {"action": "called_patient"})
    assert done.status_code == 200 and done.json()["acknowledged_by_id"] == world.users["nurse"].pk
    assert nurse.get(f"{API}/alerts").json()["items"] == []
    assert len(nurse.get(f"{API}/alerts?status=acknowledged").json()["items"]) == 1


def test_patient_check_in_through_the_api(world, client_for):
    me = client_for("patient")
    assert post(me, "/checkins", {"mood_0_to_10": 12}).status_code == 422
    created = post(me, "/checkins", {"mood_0_to_10": 6, "note": "ok"})
    assert created.status_code == 201 and created.json()["patient_id"] == world.patient_a.pk
    assert CheckIn.objects.get().mood_0_to_10 == 6
    assert post(client_for("nurse"), "/checkins", {"mood_0_to_10": 6}).status_code == 403


def test_list_endpoints_run_a_fixed_number_of_queries(world, enrolled, clock, client_for):
    nurse = client_for("nurse")
    now = services.clock.now()

    def count(path):
        with CaptureQueriesContext(connection) as ctx:
            assert nurse.get(f"{API}{path}").status_code == 200
        return len(ctx.captured_queries)

    def gad7(day):
        answers = {f"q{i}": 1 for i in range(1, 8)}
        factories.clinic_score(
            world.users["nurse"], world.patient_a, "gad7", answers, at=now + timedelta(days=day)
        )

    for k in range(3):
        gad7(k)
    few = {path: count(path) for path in ("/responses", "/assignments", "/alerts", "/checkins")}
    for k in range(3, 20):
        gad7(k)
    assert {path: count(path) for path in few} == few
