"""Security R2: a portal patient reaches only their own records, in every channel (pages, JSON,
file downloads). Patient A tries the ids of patient A2 (same clinic), patient B (other clinic)
and guessed ids on every object route; every attempt must fail like a missing object."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from ketaclinic.measures import services
from ketaclinic.measures.models import Assignment, CheckIn, JournalEntry, Response
from tests.conftest import login
from tests.factories import MembershipFactory, UserFactory
from tests.measures import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def victims(world, clock):
    """Records of patient A2 (clinic A, own portal login) and patient B (clinic B)."""
    a2_user = UserFactory(username="patient_a2")
    MembershipFactory(user=a2_user, clinic=world.clinic_a, role="patient")
    world.patient_a2.user = a2_user
    world.patient_a2.save()
    records = {}
    for patient, nurse in (
        (world.patient_a2, world.users["nurse"]),
        (world.patient_b, world.users["other_clinic_nurse"]),
    ):
        assignment = services.assignment_create(actor=nurse, patient=patient, instrument="phq9")
        response = factories.clinic_score(
            nurse, patient, "gad7", {f"q{i}": 2 for i in range(1, 8)}, at=services.clock.now()
        )
        entry = JournalEntry.objects.create(
            clinic=patient.clinic, patient=patient, body="secret", created_at=services.clock.now()
        )
        checkin = CheckIn.objects.create(
            clinic=patient.clinic,
            patient=patient,
            mood_0_to_10=3,
            note="private note",
            recorded_at=services.clock.now(),
        )
        records[patient.pk] = (assignment, response, entry, checkin)
    # Patient A's own data, to see that lists contain it and nothing else.
    own = services.assignment_create(
        actor=world.users["nurse"], patient=world.patient_a, instrument="phq9"
    )
    return records, own


def test_no_cross_patient_leak_in_any_channel(world, victims, client_for):
    records, own = victims
    me = client_for("patient")
    api = "/api/v1/measures"
    guessed = 10**6
    attempts = 0
    leaks = []

    def expect(response, statuses, what):
        nonlocal attempts
        attempts += 1
        if response.status_code not in statuses:
            leaks.append((what, response.status_code))

    for patient_id, (assignment, response, entry, _checkin) in records.items():
        for ident in (assignment.pk, guessed):
            expect(me.get(reverse("portal:questionnaire", args=[ident])), {404}, "questionnaire")
            expect(me.get(reverse("portal:questionnaire_done", args=[ident])), {404}, "done")
            expect(
                me.post(reverse("portal:questionnaire", args=[ident]), {"item": "q1", "answer": 3}),
                {404},
                "answer",
            )
        expect(
            me.post(reverse("portal:journal_share", args=[entry.pk]), {"share": "1"}),
            {404},
            "journal share",
        )
        for ident in (patient_id, guessed):
            for name in ("report", "scores_csv", "shared_journal", "enrol", "assign"):
                expect(me.get(reverse(f"measures:{name}", args=[ident])), {403}, name)
            for path in (
                f"{api}/assignments?patient_id={ident}",
                f"{api}/responses?patient_id={ident}",
                f"{api}/checkins?patient_id={ident}",
                f"{api}/patients/{ident}/scores",
            ):
                expect(me.get(path), {404}, path)
        for path in (f"{api}/assignments/{assignment.pk}", f"{api}/responses/{response.pk}"):
            expect(me.get(path), {404}, path)
        expect(me.get(f"{api}/alerts?patient_id={patient_id}"), {403}, "alerts")
        expect(
            me.post(
                f"{api}/responses",
                json.dumps({"assignment_id": assignment.pk, "answers": factories.phq9(3)}),
                content_type="application/json",
            ),
            {404},
            "submit to another's assignment",
        )
        expect(
            me.post(
                f"{api}/responses",
                json.dumps({"patient_id": patient_id, "instrument": "phq9",
                            "answers": factories.phq9(3)}),
                content_type="application/json",
            ),
            {403},
            "clinician entry for another patient",
        )  # fmt: skip

    assert leaks == [], leaks
    assert attempts >= 60
    # Nothing of theirs changed.
    assert Response.objects.exclude(patient=world.patient_a).count() == 2
    assert not JournalEntry.objects.filter(shared_with_care_team=True).exists()
    assert Assignment.objects.get(pk=records[world.patient_a2.pk][0].pk).draft_answers == {}

    # Lists without a patient id hold only patient A's own rows.
    listed = me.get(f"{api}/assignments").json()
    assert {row["patient_id"] for row in listed["items"]} == {world.patient_a.pk}
    assert [row["id"] for row in listed["items"]] == [own.pk]
    assert me.get(f"{api}/responses").json()["items"] == []
    assert me.get(f"{api}/checkins").json()["items"] == []
    # Exports hold only their own data.
    assert me.get(reverse("portal:scores_csv")).content.decode().count("\n") == 1  # header only
    report = me.get(reverse("portal:progress_report")).content.decode()
    assert world.patient_a2.last_name not in report and world.patient_b.last_name not in report


def test_a_one_time_link_opens_only_its_own_questionnaire(world, victims, client):
    records, own = victims
    raw = "link-for-a"
    own.link_token_digest = services.digest(raw)
    own.save()
    client.post(reverse("portal:link_start", args=[raw]))
    other = records[world.patient_a2.pk][0]
    assert client.get(reverse("portal:questionnaire", args=[own.pk])).status_code == 200
    assert client.get(reverse("portal:questionnaire", args=[other.pk])).status_code == 404
    assert client.get(reverse("portal:home")).status_code == 302  # not signed in
    assert client.get(reverse("portal:progress")).status_code == 302


def test_staff_of_another_clinic_and_the_patient_see_only_their_scope(world, victims):
    records, _ = victims
    other_nurse = login(Client(), world.users["other_clinic_nurse"])
    b_response = records[world.patient_b.pk][1]
    a2_response = records[world.patient_a2.pk][1]
    api = "/api/v1/measures"
    assert other_nurse.get(f"{api}/responses/{b_response.pk}").status_code == 200
    assert other_nurse.get(f"{api}/responses/{a2_response.pk}").status_code == 404
    rows = other_nurse.get(f"{api}/responses").json()["items"]
    assert {row["patient_id"] for row in rows} == {world.patient_b.pk}
