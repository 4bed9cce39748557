"""Audit trail (security.md R7-R10; ONC 170.315(d)(2), (d)(3)).

R7: who did what to which record, from where, when — for sign-ins, privilege changes, tokens,
MFA and exports here; for every patient-data operation in the authorization matrix (each case of
tests/test_authz_matrix.py checks its one complete audit row). R8: edits, deletions and reordering
done directly in the database are caught by `verify_audit`, which names the first bad sequence
number; on PostgreSQL the table refuses UPDATE and DELETE outright. (d)(3): the report filters by
date, user, patient and action and sorts by every column; its CSV export is itself audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from ketaclinic.accounts import services as account_services
from ketaclinic.accounts.models import Membership
from ketaclinic.audit import context
from ketaclinic.audit.choices import Action
from ketaclinic.audit.models import AuditChainHead, AuditEvent
from ketaclinic.audit.selectors import REPORT_SORT_KEYS
from ketaclinic.audit.services import record_event
from ketaclinic.core.append_only import trigger_name
from tests.conftest import World, verified_device
from tests.factories import PASSWORD, UserFactory
from tests.test_authz_matrix import MATRIX, PATIENT_AUDIT_ACTIONS, Out, discovered_endpoints

TABLE = AuditEvent._meta.db_table


def new_events(since: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=since).order_by("seq"))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def assert_request_fields(event: AuditEvent, response: Any, *, ip: str = "127.0.0.1") -> None:
    assert event.request_id and event.request_id == response["X-Request-ID"]
    assert event.source_ip == ip
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert abs(event.occurred_at - datetime.now(UTC)) < timedelta(minutes=1)


# --- Every patient-data route of the matrix declares its audit action --------------------------

# The registration form shows no patient data until it is submitted.
NO_PATIENT_DATA = {("patients:create", "GET")}


def test_every_patient_route_that_can_succeed_declares_an_audit_action() -> None:
    endpoints = {e.key: e for e in discovered_endpoints()}
    checked = 0
    for key, rules in MATRIX.items():
        endpoint = endpoints[key]
        path = endpoint.path_of(**{p: 1 for p in endpoint.params})
        if not (key.startswith("patients:") or path.startswith("/api/v1/patients")):
            continue
        for method, rule in rules.items():
            outcomes = [
                o for v in rule.expect.values() for o in ([v] if isinstance(v, Out) else v.values())
            ]
            if (key, method) in NO_PATIENT_DATA or not any(o.ok for o in outcomes):
                continue
            assert rule.audit, f"{key} {method} reads or writes patients without an audit row"
            if rule.target == "patient" or rule.effect == "patient_created":
                assert rule.audit in PATIENT_AUDIT_ACTIONS
            checked += 1
    assert checked >= 8


# --- Sign-in events ---------------------------------------------------------------------------


def test_login_logout_and_failed_login_are_audited(world: World) -> None:
    client = Client(REMOTE_ADDR="10.20.30.40")
    since = last_seq()
    failed = client.post("/accounts/login/", {"username": "patient_a", "password": "wrong one"})
    unknown = client.post("/accounts/login/", {"username": "nobody_here", "password": "x" * 12})
    ok = client.post("/accounts/login/", {"username": "patient_a", "password": PASSWORD})
    assert ok.status_code == 302
    out = client.post("/accounts/logout/")
    assert out.status_code == 302
    events = new_events(since)
    assert [e.action for e in events] == ["login_failed", "login_failed", "login", "logout"]
    patient = world.users["patient"]
    for event, response in zip(events, [failed, unknown, ok, out], strict=True):
        assert_request_fields(event, response, ip="10.20.30.40")
        assert event.object_type == "accounts.user"
    assert (events[0].user_id, events[0].username) == (None, "patient_a")
    assert (events[1].user_id, events[1].username) == (None, "nobody_here")
    for event in events[2:]:
        assert (event.user_id, event.username, event.object_id) == (
            patient.pk,
            "patient_a",
            str(patient.pk),
        )
    assert "password" not in str([e.changes for e in events]) + str([e.detail for e in events])


def test_lockout_is_audited_with_address(world: World) -> None:
    client = Client(REMOTE_ADDR="192.0.2.7")
    for _ in range(5):
        last = client.post("/accounts/login/", {"username": "auditor_a", "password": "nope" * 4})
    assert last.status_code == 429
    lockout = AuditEvent.objects.get(action="lockout")
    assert lockout.username == "auditor_a"
    assert "192.0.2.7" in lockout.detail
    assert_request_fields(lockout, last, ip="192.0.2.7")


def test_mfa_enrol_failure_and_removal_are_audited(world: World) -> None:
    nurse = world.users["nurse"]
    device = account_services.totp_device_pending(user=nurse)
    since = last_seq()
    assert not account_services.totp_device_confirm(user=nurse, device=device, token="000000")
    from django_otp.oath import TOTP

    code = f"{TOTP(device.bin_key).token():06d}"
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5), tick=False):
        assert account_services.totp_device_confirm(user=nurse, device=device, token=code)
    account_services.totp_device_remove(actor=world.users["clinic_admin"], user=nurse)
    events = new_events(since)
    assert [e.action for e in events] == ["mfa_failed", "mfa_enrol", "mfa_remove"]
    assert events[1].user_id == nurse.pk and events[1].object_id == str(device.pk)
    assert events[2].user_id == world.users["clinic_admin"].pk
    assert events[2].object_id == str(nurse.pk)


def test_token_create_and_revoke_through_the_profile_page_are_audited(
    world: World, client_for: Any
) -> None:
    client = client_for("front_desk")
    since = last_seq()
    created = client.post("/accounts/profile/tokens/", {"name": "kiosk", "days": 7})
    token = world.users["front_desk"].api_tokens.get()
    revoked = client.post(f"/accounts/profile/tokens/{token.pk}/revoke/")
    again = client.post(f"/accounts/profile/tokens/{token.pk}/revoke/")  # already revoked
    assert again.status_code == 302
    events = new_events(since)
    assert [e.action for e in events] == ["token_create", "token_revoke"]
    for event, response in zip(events, [created, revoked], strict=True):
        assert_request_fields(event, response)
        assert (event.user_id, event.object_type, event.object_id) == (
            world.users["front_desk"].pk,
            "accounts.apitoken",
            str(token.pk),
        )
        assert event.detail == "kiosk"
    token.refresh_from_db()
    assert token.token_digest not in str([(e.detail, e.changes) for e in events])


# --- Membership and role changes --------------------------------------------------------------


def test_membership_changes_are_audited_old_to_new(world: World) -> None:
    admin = world.users["clinic_admin"]
    newcomer = UserFactory(username="new_hire")
    since = last_seq()
    account_services.membership_set(actor=admin, user=newcomer, clinic=world.clinic_a, role="nurse")
    account_services.membership_set(
        actor=admin, user=newcomer, clinic=world.clinic_a, role="prescriber"
    )
    account_services.membership_set(actor=admin, user=newcomer, clinic=world.clinic_a, role=None)
    events = new_events(since)
    assert [e.action for e in events] == ["membership_change"] * 3
    assert [e.changes["role"] for e in events] == [
        {"old": None, "new": "nurse"},
        {"old": "nurse", "new": "prescriber"},
        {"old": "prescriber", "new": None},
    ]
    for event in events:
        assert (event.user_id, event.clinic_id, event.object_id) == (
            admin.pk,
            world.clinic_a.pk,
            str(newcomer.pk),
        )
        assert event.changes["user"] == "new_hire"
    membership = Membership.objects.get(user=newcomer, clinic=world.clinic_a)
    assert not membership.is_active


@pytest.mark.parametrize("actor", ["nurse", "auditor", "other_clinic_nurse", "patient"])
def test_only_a_clinic_admin_changes_memberships(world: World, actor: str) -> None:
    target = world.users["front_desk"]
    since = last_seq()
    with pytest.raises(PermissionDenied):
        account_services.membership_set(
            actor=world.users[actor], user=target, clinic=world.clinic_a, role="clinic_admin"
        )
    assert Membership.objects.get(user=target, clinic=world.clinic_a).role == "front_desk"
    assert new_events(since) == []


def test_clinic_admin_cannot_change_memberships_of_another_clinic(world: World) -> None:
    since = last_seq()
    with pytest.raises(PermissionDenied):
        account_services.membership_set(
            actor=world.users["clinic_admin"],
            user=world.users["other_clinic_nurse"],
            clinic=world.clinic_b,
            role=None,
        )
    assert Membership.objects.get(user=world.users["other_clinic_nurse"]).is_active
    assert new_events(since) == []


def test_unknown_role_changes_nothing(world: World) -> None:
    since = last_seq()
    with pytest.raises(ValidationError):
        account_services.membership_set(
            actor=world.users["clinic_admin"],
            user=world.users["nurse"],
            clinic=world.clinic_a,
            role="superuser",
        )
    assert Membership.objects.get(user=world.users["nurse"]).role == "nurse"
    assert new_events(since) == []


# --- The audit report and its export ------------------------------------------------------------


def csv_rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_is_audited_and_scoped_to_the_viewers_clinics(
    world: World, client_for: Any
) -> None:
    # Activity in clinic B: a read by clinic B's nurse; in clinic A: a read by clinic A's nurse.
    assert (
        client_for("other_clinic_nurse").get(f"/patients/{world.patient_b.pk}/").status_code == 200
    )
    assert client_for("nurse").get(f"/patients/{world.patient_a2.pk}/").status_code == 200
    b_seqs = set(AuditEvent.objects.filter(username="nurse_b").values_list("seq", flat=True))
    assert len(b_seqs) == 2  # login, read
    auditor = client_for("auditor")
    since = last_seq()
    response = auditor.get("/audit/export.csv?action=read")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [(r["username"], r["patient_id"]) for r in rows] == [
        ("nurse_a", str(world.patient_a2.pk))
    ]
    export = new_events(since)
    assert [e.action for e in export] == ["export"]
    assert export[0].user_id == world.users["auditor"].pk
    assert "action=read" in export[0].detail
    assert_request_fields(export[0], response)

    everything = csv_rows(auditor.get("/audit/export.csv"))
    seqs = {int(r["seq"]) for r in everything}
    assert seqs and not (seqs & b_seqs), "clinic B's events are not in clinic A's report"
    assert export[0].seq in seqs, "the export itself appears in the next report"
    page = auditor.get("/audit/?action=read")
    assert page.status_code == 200
    assert "nurse_b" not in page.content.decode()


def test_report_filters_by_date_user_patient_and_action(world: World, client_for: Any) -> None:
    admin = world.users["clinic_admin"]
    nurse = world.users["nurse"]
    for day, user, patient, action in [
        (date(2026, 1, 5), admin, world.patient_a.pk, Action.READ),
        (date(2026, 1, 6), nurse, world.patient_a2.pk, Action.UPDATE),
        (date(2026, 1, 6), admin, world.patient_a2.pk, Action.READ),
        (date(2026, 1, 7), nurse, world.patient_a.pk, Action.READ),
    ]:
        with time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC)):
            record_event(action=action, user=user, clinic=world.clinic_a, patient_id=patient)
    client = client_for("clinic_admin")

    def seqs(query: str) -> list[tuple[str, str, str]]:
        rows = csv_rows(client.get(f"/audit/export.csv?{query}&sort=seq"))
        return [(r["occurred_at"][:10], r["username"], r["action"]) for r in rows]

    assert seqs("date_from=2026-01-06&date_to=2026-01-06") == [
        ("2026-01-06", "nurse_a", "update"),
        ("2026-01-06", "clinic_admin_a", "read"),
    ]
    assert seqs("date_from=2026-01-01&date_to=2026-01-31&user=nurse_a") == [
        ("2026-01-06", "nurse_a", "update"),
        ("2026-01-07", "nurse_a", "read"),
    ]
    assert seqs(f"date_to=2026-01-31&patient={world.patient_a.pk}") == [
        ("2026-01-05", "clinic_admin_a", "read"),
        ("2026-01-07", "nurse_a", "read"),
    ]
    assert seqs("date_to=2026-01-31&action=update") == [("2026-01-06", "nurse_a", "update")]
    bad = client.get("/audit/?date_from=2026-02-01&date_to=2026-01-01")
    assert bad.status_code == 400
    assert "The end date is before the start date." in bad.content.decode()
    assert (
        client.get("/audit/export.csv?date_from=2026-02-01&date_to=2026-01-01").status_code == 400
    )


# Values chosen to sort the same under any database collation (lowercase letters and digits).
_SORTABLE = [
    # username, clinic?, patient_id, action, object_type, object_id, request_id, source_ip
    ("carol", True, 30, "read", "patients.patient", "0003", "req00000003", "10.0.0.3"),
    ("alice", False, None, "login", "accounts.user", "0001", "req00000009", "10.0.0.9"),
    ("bob", True, 10, "update", "patients.patient", "0007", "req00000001", "10.0.0.1"),
    ("dave", True, 20, "export", "audit.auditevent", "0002", "req00000005", "10.0.0.5"),
]
_CSV_COLUMN = {
    "seq": "seq",
    "time": "occurred_at",
    "user": "username",
    "clinic": "clinic_id",
    "patient": "patient_id",
    "action": "action",
    "object_type": "object_type",
    "object_id": "object_id",
    "request_id": "request_id",
    "source_ip": "source_ip",
}


@pytest.fixture
def sortable_events(world: World) -> None:
    start = datetime(2025, 6, 1, 9, tzinfo=UTC)
    members = {}
    for offset, (name, in_clinic, patient, action, otype, oid, rid, ip) in enumerate(_SORTABLE):
        members[name] = UserFactory(username=name)
        Membership.objects.create(user=members[name], clinic=world.clinic_a, role="nurse")
        # Times out of step with the names, so each sort gives a different order.
        at = start + timedelta(hours=[2, 0, 3, 1][offset])
        token = context.bind(context.RequestContext(request_id=rid, source_ip=ip))
        try:
            with time_machine.travel(at, tick=False):
                record_event(
                    action=action,
                    user=members[name],
                    clinic=world.clinic_a if in_clinic else None,
                    patient_id=patient,
                    object_type=otype,
                    object_id=oid,
                )
        finally:
            context.reset(token)


@pytest.mark.parametrize("key", sorted(REPORT_SORT_KEYS))
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_report_sorts_by_every_column(
    sortable_events: None, client_for: Any, key: str, descending: bool
) -> None:
    assert set(REPORT_SORT_KEYS) == set(_CSV_COLUMN)
    client = client_for("auditor")
    sort = f"-{key}" if descending else key
    query = f"date_from=2025-06-01&date_to=2025-06-01&sort={sort}"
    page = client.get(f"/audit/?{query}")
    assert page.status_code == 200
    rows = csv_rows(client.get(f"/audit/export.csv?{query}"))
    assert len(rows) == len(_SORTABLE)
    column = _CSV_COLUMN[key]
    values = [r[column] for r in rows if r[column] != ""]  # NULLs sort first or last by database
    as_numbers = column in {"seq", "clinic_id", "patient_id"}
    comparable = [int(v) for v in values] if as_numbers else values
    assert comparable == sorted(comparable, reverse=descending)
    assert len(set(comparable)) > 1 or key == "clinic", "the data must make the sort visible"


# --- The hash chain and tampering (R8) ---------------------------------------------------------


@pytest.fixture
def chain(world: World) -> list[int]:
    """Six events; returns their sequence numbers."""
    for i in range(6):
        record_event(
            action=Action.READ,
            user=world.users["nurse"],
            clinic=world.clinic_a,
            patient_id=world.patient_a2.pk,
            detail=f"event {i}",
        )
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    return seqs


def execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def as_dba() -> Iterator[None]:
    """A database owner going around the app: on PostgreSQL, with the append-only trigger off.

    ALTER TABLE is transactional there, so the test's rollback puts the trigger back.
    """
    if connection.vendor == "postgresql":
        execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {trigger_name(TABLE)}")
    yield
    if connection.vendor == "postgresql":
        execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {trigger_name(TABLE)}")


def verify_names(seq: int) -> str:
    with pytest.raises(CommandError) as broken:
        call_command("verify_audit", stdout=io.StringIO())
    message = str(broken.value)
    assert f"Audit chain broken at sequence {seq}:" in message
    return message


def test_intact_chain_verifies(chain: list[int]) -> None:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"Audit chain intact: {len(chain)} entries verified." in out.getvalue()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", "nothing to see"),
        ("action", "list"),
        ("username", "someone_else"),
        ("patient_id", 999),
        ("occurred_at", "2020-01-01 00:00:00"),
        ("source_ip", "10.9.9.9"),
        ("changes", '{"phone": {"old": "a", "new": "b"}}'),
    ],
)
def test_edited_row_is_named(chain: list[int], column: str, value: Any) -> None:
    with as_dba():
        execute(f"UPDATE {TABLE} SET {column} = %s WHERE seq = %s", [value, chain[2]])  # noqa: S608
    message = verify_names(chain[2])
    assert "altered" in message


def test_edited_row_with_its_hash_recomputed_breaks_the_next_link(chain: list[int]) -> None:
    """A forger who also recomputes the row's own hash is caught where the next row links in."""
    from ketaclinic.audit.chain import chain_hash
    from ketaclinic.audit.services import payload_of

    event = AuditEvent.objects.get(seq=chain[2])
    event.detail = "forged"
    with as_dba():
        execute(
            f"UPDATE {TABLE} SET detail = %s, entry_hash = %s WHERE seq = %s",  # noqa: S608
            ["forged", chain_hash(event.prev_hash, payload_of(event)), chain[2]],
        )
    assert "does not link" in verify_names(chain[3])


def test_deleted_middle_row_is_named(chain: list[int]) -> None:
    with as_dba():
        execute(f"DELETE FROM {TABLE} WHERE seq = %s", [chain[2]])  # noqa: S608
    assert "missing" in verify_names(chain[2])


def test_deleted_newest_row_is_named(chain: list[int]) -> None:
    with as_dba():
        execute(f"DELETE FROM {TABLE} WHERE seq = %s", [chain[-1]])  # noqa: S608
    assert "missing" in verify_names(chain[-1])


def test_reordered_rows_are_named(chain: list[int]) -> None:
    first, second = chain[1], chain[3]
    parking = 10**9
    with as_dba():
        execute(f"UPDATE {TABLE} SET seq = %s WHERE seq = %s", [parking, first])  # noqa: S608
        execute(f"UPDATE {TABLE} SET seq = %s WHERE seq = %s", [first, second])  # noqa: S608
        execute(f"UPDATE {TABLE} SET seq = %s WHERE seq = %s", [second, parking])  # noqa: S608
    verify_names(first)


def test_appended_forgery_is_named(chain: list[int]) -> None:
    """INSERT is allowed (the app appends), but a row past the chain head is caught."""
    latest = AuditEvent.objects.get(seq=chain[-1])
    forged = AuditEvent.objects.get(seq=chain[0])
    forged.pk = None
    forged.seq = chain[-1] + 1
    forged.prev_hash = latest.entry_hash
    forged.save(force_insert=True)
    verify_names(chain[-1] + 1)


def test_the_database_refuses_update_and_delete(chain: list[int]) -> None:
    target = chain[2]
    if connection.vendor == "postgresql":
        attempts = [
            lambda: execute(f"UPDATE {TABLE} SET detail = 'x' WHERE seq = %s", [target]),  # noqa: S608
            lambda: execute(f"DELETE FROM {TABLE} WHERE seq = %s", [target]),  # noqa: S608
            lambda: AuditEvent.objects.filter(seq=target).update(detail="x"),
            lambda: AuditEvent.objects.filter(seq=target).delete(),
        ]
        for attempt in attempts:
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                attempt()
        assert AuditEvent.objects.get(seq=target).detail == "event 2"
        call_command("verify_audit", stdout=io.StringIO())
        # The app's own writes still work: the head row is not append-only, events are inserted.
        record_event(action=Action.SYSTEM, detail="after refused tampering")
        assert AuditChainHead.objects.get(pk=1).seq == chain[-1] + 1
    else:
        # SQLite (the embedded demo database) has no trigger: the chain is what catches it.
        AuditEvent.objects.filter(seq=target).update(detail="x")
        verify_names(target)


def test_verify_names_the_first_of_several_bad_rows(chain: list[int]) -> None:
    with as_dba():
        execute(f"UPDATE {TABLE} SET detail = 'x' WHERE seq IN (%s, %s)", [chain[4], chain[1]])  # noqa: S608
    verify_names(chain[1])


def test_new_events_after_verification_keep_the_chain(world: World, client_for: Any) -> None:
    nurse = client_for("nurse")
    for _ in range(3):
        assert nurse.get(f"/patients/{world.patient_a2.pk}/").status_code == 200
    verified_device(world.users["auditor"])
    assert client_for("auditor").get("/audit/export.csv").status_code == 200
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"{AuditChainHead.objects.get(pk=1).seq} entries verified" in out.getvalue()
