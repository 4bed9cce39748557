"""The append itself: every path writes the hash `chain_hash` computes, keeps the sequence
gap-free and moves the head, whoever appends at the same moment.

On PostgreSQL `record_event` appends in one statement (the database hashes the text Python
prepared around the sequence number); these tests hold it to the Python definition of the
chain, to the general path's fallback, and to concurrent writers.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from ketaclinic.audit.chain import GENESIS_HASH, chain_hash
from ketaclinic.audit.choices import Action
from ketaclinic.audit.models import AuditChainHead, AuditEvent
from ketaclinic.audit.services import payload_of, record_event

GENESIS_TIME = datetime(2000, 1, 1, tzinfo=UTC)
TEXT = {"note": 'quotes " backslash \\ émigré 中文', "n": 3}

# Text that must hash the same in the database as in Python: JSON escapes, non-ASCII, and a
# nested "seq" key holding the very number the append uses as a stand-in.
AWKWARD: dict[str, Any] = {
    "note": 'quotes " backslash \\ newline \n tab \t émigré 中文 \u2028 "seq":-7301934285117',
    "nested": {"seq": -7_301_934_285_117, "list": [1, 2.5, None, True]},
}


def assert_chained(events: list[AuditEvent]) -> None:
    for event in events:
        stored = AuditEvent.objects.get(pk=event.pk)
        assert (stored.seq, stored.prev_hash, stored.entry_hash) == (
            event.seq,
            event.prev_hash,
            event.entry_hash,
        )
        assert stored.entry_hash == chain_hash(stored.prev_hash, payload_of(stored))
    seqs = [e.seq for e in sorted(events, key=lambda e: e.seq)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    head = AuditChainHead.objects.get(pk=1)
    newest = AuditEvent.objects.order_by("-seq").first()
    assert newest is not None
    assert (head.seq, head.entry_hash) == (newest.seq, newest.entry_hash)


@pytest.mark.django_db
def test_first_event_creates_the_head_and_links_to_genesis() -> None:
    assert not AuditEvent.objects.exists()
    AuditChainHead.objects.all().delete()
    first = record_event(action=Action.LOGIN_FAILED, username="nobody", detail="first")
    second = record_event(action=Action.LOGIN_FAILED, username="nobody", detail="second")
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.entry_hash)
    assert_chained([first, second])


@pytest.mark.django_db
def test_awkward_text_hashes_the_same_in_the_database_and_in_python(world: Any) -> None:
    events = [
        record_event(
            action=Action.UPDATE,
            user=world.users["nurse"],
            clinic=world.clinic_a,
            patient_id=world.patient_a2.pk,
            object_type="patients.patient",
            object_id=world.patient_a2.pk,
            changes={"detail": AWKWARD},
            detail=AWKWARD["note"],
        )
        for _ in range(3)
    ]
    assert_chained(events)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit chain intact" in out.getvalue()


@pytest.mark.django_db
def test_a_too_long_value_is_never_silently_truncated() -> None:
    """PostgreSQL refuses it and writes nothing; SQLite (no length limits) keeps it whole. Either
    way the stored row still hashes to its entry_hash."""
    record_event(action=Action.LOGIN_FAILED, username="nobody")
    head_before = AuditChainHead.objects.values_list("seq", "entry_hash").get(pk=1)
    count = AuditEvent.objects.count()
    if connection.vendor == "postgresql":
        with pytest.raises(DataError), transaction.atomic():
            record_event(action=Action.LOGIN_FAILED, username="nobody", object_type="x" * 65)
        assert AuditEvent.objects.count() == count
        assert AuditChainHead.objects.values_list("seq", "entry_hash").get(pk=1) == head_before
    else:
        event = record_event(action=Action.LOGIN_FAILED, username="n", object_type="x" * 65)
        assert AuditEvent.objects.get(pk=event.pk).object_type == "x" * 65
        assert_chained([event])


@pytest.mark.django_db
def test_an_audited_read_outside_a_transaction_is_one_statement_on_postgresql() -> None:
    record_event(action=Action.LOGIN_FAILED, username="nobody")  # the head exists
    with CaptureQueriesContext(connection) as queries:
        record_event(action=Action.LOGIN_FAILED, username="nobody")
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert len(statements) == 1, statements
        assert statements[0].startswith("WITH head AS")
    else:
        assert any("INSERT" in s for s in statements)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_gap_free_chain() -> None:
    """Writers in autocommit (each append its own transaction) and writers inside longer
    transactions, all at once: no lost, duplicated or mislinked sequence number."""
    record_event(action=Action.LOGIN_FAILED, username="warm-up")
    writers, per_writer = 4, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            barrier.wait()
            for n in range(per_writer):
                if index % 2:
                    with transaction.atomic():
                        record_event(action=Action.LOGIN_FAILED, username=f"w{index}-{n}")
                else:
                    record_event(action=Action.LOGIN_FAILED, username=f"w{index}-{n}")
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if connection.vendor == "sqlite" and errors:
        # The in-memory SQLite test database answers "table is locked" to a second writer at
        # once instead of waiting; the chain must still be intact.
        assert all("locked" in str(e) for e in errors), errors
    else:
        assert not errors, errors
        assert AuditEvent.objects.count() == 1 + writers * per_writer
    events = list(AuditEvent.objects.order_by("seq"))
    assert_chained(events)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"Audit chain intact: {len(events)} entries verified." in out.getvalue()


@pytest.mark.django_db
def test_a_joined_write_appends_only_when_its_condition_holds() -> None:
    """PostgreSQL: writes joined to the append's statement (`append_joined`) get their audit
    row in the same statement, or none when the condition fails; elsewhere not used."""
    if connection.vendor != "postgresql":
        # SQLite has no one-statement append: an event and the caller's write share the
        # caller's transaction on the general path, and leave nothing when it fails.
        with pytest.raises(RuntimeError), transaction.atomic():
            record_event(action=Action.LOGIN_FAILED, username="rolled back")
            raise RuntimeError("the caller's write failed")
        assert not AuditEvent.objects.filter(username="rolled back").exists()
        kept = record_event(action=Action.LOGIN_FAILED, username="kept")
        assert AuditEvent.objects.get(username="kept") == kept
        return
    from ketaclinic.audit.services import JoinedWrite, append_joined, new_event

    first = record_event(action=Action.LOGIN_FAILED, username="warm-up")  # the head exists
    joined = JoinedWrite(
        ctes="probe AS (SELECT CAST(%s AS integer) AS n)",
        only_if="EXISTS (SELECT 1 FROM probe WHERE n > 0)",
        returning="(SELECT n * 2 FROM probe)",
    )
    refused = new_event(action=Action.LOGIN_FAILED, username="no", changes={"n": "é\\"})
    with CaptureQueriesContext(connection) as queries:
        assert append_joined(refused, joined, [0]) is None
    assert len(queries.captured_queries) == 1
    assert refused.pk is None and AuditEvent.objects.order_by("-seq").first() == first
    made = new_event(action=Action.LOGIN_FAILED, username="yes", changes={"n": "é\\"})
    assert append_joined(made, joined, [21]) == (42,)
    assert (made.seq, made.prev_hash) == (first.seq + 1, first.entry_hash)
    assert_chained([first, made])


@pytest.mark.django_db
def test_a_pending_append_sent_with_reads_writes_what_record_event_writes() -> None:
    """An append sent with the caller's reads (`pending_append`, one round trip on PostgreSQL)
    chains as record_event does; with no chain head yet (nothing appended by the statement), or
    not sent at all, `finish` appends it by record_event's own path."""
    from ketaclinic.audit.services import pending_append
    from ketaclinic.core.compiled_query import PreparedText, objects_together
    from tests.test_compiled_query import _EVENTS_SINCE

    by_statement = []

    def sent(username: str) -> AuditEvent:
        pending = pending_append(action=Action.LOGIN_FAILED, username=username, changes=TEXT)
        if pending.statement is None:  # SQLite: no one-statement append, nothing to send
            assert connection.vendor != "postgresql"
            return pending.finish(None)
        sql, params = pending.statement
        reads = [(_EVENTS_SINCE, {"user_id": 0, "since": GENESIS_TIME, "action": "x"})]
        with CaptureQueriesContext(connection) as queries:
            found, rows = objects_together([*reads, (PreparedText(sql), {"params": params})])
        assert found == [] and len(queries.captured_queries) == 1
        by_statement.append(AuditEvent.objects.filter(username=username).exists())
        return pending.finish(rows)

    AuditChainHead.objects.all().delete()
    first = sent("no head yet")  # the statement appends nothing: the general path does
    second = sent("sent with reads")
    # The stand-in inside the text: no one-statement append to send (None), nor on SQLite.
    unsplit = pending_append(action=Action.LOGIN_FAILED, username="not sent", changes=AWKWARD)
    assert unsplit.statement is None
    third = unsplit.finish(None)
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert AuditEvent.objects.get(pk=second.pk).changes == TEXT
    assert by_statement == ([False, True] if connection.vendor == "postgresql" else [])
    assert_chained([first, second, third])
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit chain intact: 3 entries verified." in out.getvalue()
