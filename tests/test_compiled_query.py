"""Fixed-shape queries compiled once (core.compiled_query) and the hot read paths built on them:
the API token, the user's memberships, one patient, one session and the audit chain head.

Compiling once must never change what a query returns: fresh values on every call, Django's own
conversions (aware datetimes, booleans, JSON), and the same scoping as the ORM query it replaced.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from ketaclinic.accounts import access
from ketaclinic.accounts import services as account_services
from ketaclinic.accounts.models import ApiToken, Membership
from ketaclinic.audit.models import AuditEvent
from ketaclinic.audit.services import record_event
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_ID,
    CompiledModelQuery,
    CompiledValuesQuery,
)
from ketaclinic.patients.models import Patient
from tests.conftest import World

_EVENTS_SINCE = CompiledValuesQuery(
    lambda user_id, since, action: (
        AuditEvent.objects.filter(user_id=user_id, occurred_at__gte=since, action=action)
        .order_by("seq")
        .values("seq", "occurred_at", "changes", "action")
    ),
    user_id=PLACEHOLDER_ID,
    since=PLACEHOLDER_DATETIME,
    action="placeholder: not an action",
)
_TOKENS = CompiledModelQuery(
    lambda user_id: ApiToken.objects.filter(user_id=user_id).select_related("user").order_by("pk"),
    user_id=PLACEHOLDER_ID,
)


def test_values_query_takes_fresh_values_and_converts_like_the_orm(world: World) -> None:
    nurse, front_desk = world.users["nurse"], world.users["front_desk"]
    start = clock.now() - timedelta(minutes=1)
    record_event(action="read", user=nurse, changes={"n": 1, "flag": True}, detail="first")
    record_event(action="list", user=nurse, changes={"n": 2}, detail="second")
    record_event(action="read", user=front_desk, changes={"n": 3}, detail="third")

    rows = _EVENTS_SINCE.rows(user_id=nurse.pk, since=start, action="read")
    expected = list(
        AuditEvent.objects.filter(user_id=nurse.pk, occurred_at__gte=start, action="read")
        .order_by("seq")
        .values("seq", "occurred_at", "changes", "action")
    )
    assert rows == expected
    assert len(rows) == 1
    assert rows[0]["changes"] == {"n": 1, "flag": True}  # JSON decoded, not text
    assert rows[0]["occurred_at"].tzinfo is not None  # aware, as the ORM gives it

    # The same compiled SQL with other values: another user, another action, a later time.
    assert [
        r["changes"] for r in _EVENTS_SINCE.rows(user_id=front_desk.pk, since=start, action="read")
    ] == [{"n": 3}]
    assert [
        r["action"] for r in _EVENTS_SINCE.rows(user_id=nurse.pk, since=start, action="list")
    ] == ["list"]
    assert (
        _EVENTS_SINCE.rows(user_id=nurse.pk, since=clock.now() + timedelta(days=1), action="read")
        == []
    )


def test_model_query_builds_instances_with_related_rows(world: World) -> None:
    nurse = world.users["nurse"]
    first, _ = account_services.api_token_create(actor=nurse, name="one", days=3)
    second, _ = account_services.api_token_create(actor=nurse, name="two", days=5)

    with CaptureQueriesContext(connection) as queries:
        tokens = _TOKENS.objects(user_id=nurse.pk)
        assert [t.user.username for t in tokens] == [nurse.username, nurse.username]
    assert len(queries) == 1  # the user came with the tokens (select_related)
    assert [t.pk for t in tokens] == [first.pk, second.pk]
    assert [t.name for t in tokens] == ["one", "two"]
    assert tokens[0].expires_at == ApiToken.objects.get(pk=first.pk).expires_at
    assert tokens[0]._state.adding is False  # saved instances, as the ORM builds them
    assert _TOKENS.objects(user_id=world.users["auditor"].pk) == []


_MEMBERSHIPS = CompiledModelQuery(
    lambda user_id: (
        Membership.objects.filter(user_id=user_id).select_related("clinic").order_by("pk")
    ),
    user_id=PLACEHOLDER_ID,
)


def test_queries_run_together_give_what_each_gives_alone(world: World) -> None:
    from ketaclinic.core.compiled_query import objects_together

    nurse, auditor = world.users["nurse"], world.users["auditor"]
    account_services.api_token_create(actor=nurse, name="one", days=3)
    account_services.api_token_create(actor=nurse, name="two", days=5)
    calls = [
        (_TOKENS, {"user_id": nurse.pk}),
        (_MEMBERSHIPS, {"user_id": nurse.pk}),
        (_TOKENS, {"user_id": auditor.pk}),  # no rows: an empty result set, still in its place
        (_MEMBERSHIPS, {"user_id": auditor.pk}),
    ]
    with CaptureQueriesContext(connection) as queries:
        together = objects_together(calls)
    alone = [query.objects(**values) for query, values in calls]
    assert together == alone  # the same rows (model equality: same class and key), same order
    assert [len(found) for found in together] == [2, 1, 0, 1]
    assert [t.name for t in together[0]] == ["one", "two"]
    assert together[1][0].clinic.name == alone[1][0].clinic.name  # related rows built too
    assert together[0][0].expires_at == alone[0][0].expires_at
    # PostgreSQL: one round trip for the four statements; elsewhere one each.
    assert len(queries) == (1 if connection.vendor == "postgresql" else 4)


def test_a_prepared_text_reads_alone_and_with_compiled_queries(world: World) -> None:
    from ketaclinic.core.compiled_query import PreparedText, objects_together

    text = PreparedText("SELECT CAST(%s AS integer) + 1, CAST(%s AS text)")
    assert objects_together([(text, {"params": [41, "alone"]})]) == [[(42, "alone")]]
    nurse = world.users["nurse"]
    tokens, rows = objects_together(
        [(_TOKENS, {"user_id": nurse.pk}), (text, {"params": [1, "é"]})]
    )
    assert tokens == _TOKENS.objects(user_id=nurse.pk) and [tuple(r) for r in rows] == [(2, "é")]


def test_values_model_and_written_reads_run_together_give_what_each_gives_alone(
    world: World,
) -> None:
    from ketaclinic.core.compiled_query import Read, read_together, run_prepared

    nurse = world.users["nurse"]
    record_event(action="login", user=nurse, detail="one")
    since = clock.now() - timedelta(days=1)
    written = Read(
        "SELECT COUNT(*) FROM accounts_membership WHERE user_id = %s", [nurse.pk], lambda r: r
    )
    reads = [
        _EVENTS_SINCE.read(user_id=nurse.pk, since=since, action="login"),
        _MEMBERSHIPS.read(user_id=nurse.pk),
        written,
    ]
    with CaptureQueriesContext(connection) as queries:
        together = read_together(reads)
    assert together == [
        _EVENTS_SINCE.rows(user_id=nurse.pk, since=since, action="login"),
        _MEMBERSHIPS.objects(user_id=nurse.pk),
        run_prepared(written.sql, written.params),
    ]
    assert together[0] and {row["action"] for row in together[0]} == {"login"}
    assert together[1][0].clinic.name == world.clinic_a.name
    assert together[2][0][0] == len(together[1]) > 0
    # PostgreSQL: one round trip for the three statements; elsewhere one each.
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)
    assert read_together([written]) == [run_prepared(written.sql, written.params)]


def test_a_placeholder_missing_from_the_query_is_refused_at_compile_time(world: World) -> None:
    from django.core.exceptions import ImproperlyConfigured

    broken = CompiledValuesQuery(
        lambda user_id: Membership.objects.filter(is_active=True).values("role"),
        user_id=PLACEHOLDER_ID,
    )
    with pytest.raises(ImproperlyConfigured):
        broken.rows(user_id=world.users["nurse"].pk)


def test_memberships_follow_changes_within_the_request_cache(world: World) -> None:
    nurse = world.users["nurse"]
    assert access.clinic_ids_for(nurse, "patient.view") == [world.clinic_a.pk]
    Membership.objects.create(user=nurse, clinic=world.clinic_b, role="nurse")
    access.forget_memberships(nurse)
    assert access.clinic_ids_for(nurse, "patient.view") == sorted(
        [world.clinic_a.pk, world.clinic_b.pk]
    )
    Membership.objects.filter(user=nurse).update(is_active=False)
    access.forget_memberships(nurse)
    assert access.clinic_ids_for(nurse, "patient.view") == []


@pytest.mark.parametrize("patient_id", ["0", "-3", str(2**63), str(10**30), "abc", None])
def test_get_patient_answers_404_for_ids_no_patient_can_have(world: World, patient_id: Any) -> None:
    with pytest.raises(Http404):
        access.get_patient(world.users["nurse"], patient_id)


def test_get_patient_keeps_the_clinic_and_portal_scopes(world: World) -> None:
    nurse, patient_user = world.users["nurse"], world.users["patient"]
    found = access.get_patient(nurse, world.patient_a2.pk)
    assert found == world.patient_a2 and found.clinic == world.clinic_a
    with pytest.raises(Http404):  # another clinic's patient: the same answer as a missing one
        access.get_patient(nurse, world.patient_b.pk)
    with pytest.raises(Http404):
        access.get_patient(world.users["other_clinic_nurse"], world.patient_a.pk)
    # A patient reaches only their own record, and only through the portal permission.
    assert access.get_patient(patient_user, world.patient_a.pk, "portal.own") == world.patient_a
    with pytest.raises(Http404):
        access.get_patient(patient_user, world.patient_a2.pk, "portal.own")
    Patient.objects.filter(pk=world.patient_a.pk).update(user=None)
    with pytest.raises(Http404):
        access.get_patient(patient_user, world.patient_a.pk, "portal.own")


@pytest.mark.parametrize("patient_id", ["0", str(2**63), "abc"])
def test_get_patient_with_reads_answers_get_patients_404s(world: World, patient_id: Any) -> None:
    asked: list[int] = []
    with pytest.raises(Http404):
        access.get_patient_with(world.users["nurse"], patient_id, lambda pk: asked.append(pk) or [])
    assert asked == []  # refused before anything is read


def test_get_patient_with_reads_scopes_the_patient_and_reads_in_one_round_trip(
    world: World,
) -> None:
    nurse = world.users["nurse"]
    account_services.api_token_create(actor=nurse, name="one", days=3)
    calls = [(_TOKENS, {"user_id": nurse.pk}), (_MEMBERSHIPS, {"user_id": nurse.pk})]
    access.clinic_ids_for(nurse, "patient.view")  # the scope's memberships, read once per user
    with CaptureQueriesContext(connection) as queries:
        patient, (tokens, memberships) = access.get_patient_with(
            nurse, str(world.patient_a2.pk), lambda pk: calls
        )
    assert patient == world.patient_a2 and patient.clinic == world.clinic_a
    assert tokens == _TOKENS.objects(user_id=nurse.pk) and len(tokens) == 1
    assert memberships == _MEMBERSHIPS.objects(user_id=nurse.pk)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)
    # Out of reach: the same 404 as get_patient, the reads' rows never handed out.
    for user, pk in ((nurse, world.patient_b.pk), (world.users["other_clinic_nurse"], patient.pk)):
        with pytest.raises(Http404):
            access.get_patient_with(user, pk, lambda pk: calls)
    patient_user = world.users["patient"]
    own, rows = access.get_patient_with(
        patient_user, world.patient_a.pk, lambda pk: [], "portal.own"
    )
    assert own == world.patient_a and rows == []


def test_huge_ids_in_api_paths_answer_404_not_500(world: World, client_for: Any) -> None:
    _, raw = account_services.api_token_create(actor=world.users["nurse"], name="t", days=1)
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {raw}"})
    for path in (f"/api/v1/patients/{2**63}", f"/api/v1/sessions/{10**25}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"] == "Not found."


def test_audit_appends_inside_a_callers_transaction_without_a_savepoint(world: World) -> None:
    from django.db import transaction

    record_event(action="read", user=world.users["nurse"], detail="the chain's head exists")
    before = AuditEvent.objects.count()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        record_event(action="read", user=world.users["nurse"], detail="one")
        record_event(action="read", user=world.users["nurse"], detail="two")
    assert not [q for q in queries if "SAVEPOINT" in q["sql"].upper()]
    assert AuditEvent.objects.count() == before + 2
    # A failure inside the caller's transaction still leaves no audit row behind.
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(action="read", user=world.users["nurse"], detail="rolled back")
        raise RuntimeError("the caller's write failed")
    assert AuditEvent.objects.count() == before + 2
    assert not AuditEvent.objects.filter(detail="rolled back").exists()


def test_values_queries_run_together_give_their_tuples(world: World) -> None:
    from ketaclinic.core.compiled_query import objects_together

    nurse = world.users["nurse"]
    start = clock.now() - timedelta(minutes=1)
    record_event(action="read", user=nurse, changes={"n": 1}, detail="first")
    record_event(action="export", user=nurse, changes={"n": 2}, detail="second")
    calls: list[Any] = [
        (_EVENTS_SINCE, {"user_id": nurse.pk, "since": start, "action": "read"}),
        (_TOKENS, {"user_id": nurse.pk}),
        (_EVENTS_SINCE, {"user_id": nurse.pk, "since": start, "action": "export"}),
    ]
    with CaptureQueriesContext(connection) as queries:
        together = objects_together(calls)
    assert together[0] == _EVENTS_SINCE.tuples(user_id=nurse.pk, since=start, action="read")
    assert together[2] == _EVENTS_SINCE.tuples(user_id=nurse.pk, since=start, action="export")
    assert [row[2] for row in together[0]] == [{"n": 1}] and together[2][0][3] == "export"
    assert together[1] == _TOKENS.objects(user_id=nurse.pk)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)


def test_values_query_tuples_are_the_values_list_rows(world: World) -> None:
    nurse = world.users["nurse"]
    start = clock.now() - timedelta(minutes=1)
    record_event(action="read", user=nurse, changes={"n": 1}, detail="first")
    record_event(action="read", user=nurse, changes={"n": 2}, detail="second")

    rows = _EVENTS_SINCE.tuples(user_id=nurse.pk, since=start, action="read")
    expected = list(
        AuditEvent.objects.filter(user_id=nurse.pk, occurred_at__gte=start, action="read")
        .order_by("seq")
        .values_list("seq", "occurred_at", "changes", "action")
    )
    assert rows == expected and len(rows) == 2
    assert rows[0][2] == {"n": 1}  # converted as the ORM does (JSON)


def _prepared_statements() -> list[str]:
    if connection.vendor != "postgresql":
        return []  # SQLite has no server-side prepared statements: every path runs as before
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_compiled_queries_and_the_audit_append_are_prepared_once_per_connection(
    world: World,
) -> None:
    nurse = world.users["nurse"]
    record_event(action="read", user=nurse, detail="the chain's head exists")
    record_event(action="read", user=nurse, detail="appended by the prepared statement")
    since = clock.now() - timedelta(minutes=5)
    first = _EVENTS_SINCE.rows(user_id=nurse.pk, since=since, action="read")
    record_event(action="read", user=nurse, detail="one more")
    second = _EVENTS_SINCE.rows(user_id=nurse.pk, since=since, action="read")
    # Fresh values each time (on PostgreSQL from one statement parsed and planned once).
    assert [r["seq"] for r in second] == [*(r["seq"] for r in first), second[-1]["seq"]]
    assert second[-1]["occurred_at"] >= since
    assert AuditEvent.objects.filter(detail="appended by the prepared statement").count() == 1
    prepared = _prepared_statements()
    expected = 1 if connection.vendor == "postgresql" else 0
    assert sum('"audit_auditevent"."occurred_at" >=' in s for s in prepared) == expected, prepared
    assert sum("WITH head AS" in s for s in prepared) == expected, prepared


def test_permissions_read_the_user_behind_request_users_lazy_wrappers(world: World) -> None:
    # request.user is django-otp's lazy object around Django's: the checks read the user
    # behind both (set up on first use, once) and answer as for the user itself.
    from django.utils.functional import SimpleLazyObject

    nurse = world.users["nurse"]
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return nurse

    lazy = SimpleLazyObject(lambda: SimpleLazyObject(load))
    assert access.has_permission(lazy, "patient.view", world.clinic_a.pk)
    assert not access.has_permission(lazy, "patient.view", world.clinic_b.pk)
    assert not access.has_permission(lazy, "audit.view")
    assert access.has_permission(lazy, "patient.view")
    assert access.clinic_ids_for(lazy, "patient.view") == [world.clinic_a.pk]
    assert loads == [1]
