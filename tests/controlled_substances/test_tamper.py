"""Tampering with the ledger is detected (R20, R24): edits, deletions and reordering done with
raw SQL, as a DBA could, make `ketaclinic verify-ledger` name the first bad entry.

On PostgreSQL the append-only trigger refuses UPDATE and DELETE outright; these tests disable it
inside their own transaction to play the DBA who can. SQLite has no trigger: the chain is its
only protection, and these tests show it is enough to detect the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from ketaclinic.controlled_substances import selectors, services
from ketaclinic.controlled_substances.models import Count, LedgerEntry
from tests.controlled_substances.conftest import Ledger, attest

TABLE = "controlled_substances_ledgerentry"


@contextmanager
def as_dba() -> Iterator[None]:
    """Switch triggers off for the duration (PostgreSQL), as a superuser could: replica mode
    skips ordinary triggers, the append-only ones included."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        finally:
            if postgres:
                cursor.execute("SET session_replication_role = DEFAULT")


def sql(statement: str, params: list[object] | None = None) -> None:
    with as_dba(), connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@pytest.fixture
def history(lg: Ledger) -> list[LedgerEntry]:
    """Five entries: receipt, administration + waste, another administration, a transfer out."""
    lot = lg.receive(containers=2)
    services.administration_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        patient=lg.patient,
        dose_mg=Decimal("40"),
        waste_mg=Decimal("460"),
        witness=attest(lg.user("prescriber")),
    )
    services.administration_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        patient=lg.patient2,
        dose_mg=Decimal("50"),
        witness=None,
    )
    services.count_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        purpose="shift",
        lines=[services.CountLineInput(lot, 0, Decimal("9"))],
        second_counter=attest(lg.user("prescriber")),
    )
    entries = list(LedgerEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert selectors.verify_ledger().ok
    return entries


def broken_at(seq: int, reason: str) -> None:
    verdict = selectors.verify_ledger()
    assert not verdict.ok
    assert verdict.first_bad_seq == seq, verdict.reason
    assert reason in verdict.reason
    with pytest.raises(CommandError) as exc:
        call_command("verify_ledger")
    assert f"Ledger chain broken at entry {seq}:" in str(exc.value)


def test_an_intact_ledger_verifies(history: list[LedgerEntry], capsys) -> None:
    call_command("verify_ledger")
    assert "Ledger intact: 4 entries verified" in capsys.readouterr().out


def test_editing_a_quantity_is_named(history: list[LedgerEntry]) -> None:
    sql(f"UPDATE {TABLE} SET quantity_mg = %s WHERE seq = 3", ["-400.000"])
    broken_at(3, "entry 3 was altered")


def test_editing_a_signature_is_named(history: list[LedgerEntry]) -> None:
    # R24: the witness's name is bound to the entry's hash.
    sql(f"UPDATE {TABLE} SET witness_name = %s WHERE seq = 3", ["Someone Else"])
    broken_at(3, "entry 3 was altered")


def test_editing_a_patient_link_is_named(history: list[LedgerEntry], lg: Ledger) -> None:
    sql(f"UPDATE {TABLE} SET patient_id = %s WHERE seq = 4", [lg.patient.pk])
    broken_at(4, "entry 4 was altered")


def test_deleting_a_row_is_named(history: list[LedgerEntry]) -> None:
    sql(f"DELETE FROM {TABLE} WHERE seq = 2 AND kind = 'administer'")
    sql(f"UPDATE {TABLE} SET related_entry_id = NULL WHERE seq = 3")  # the FK would stop it
    broken_at(2, "entry 2 is missing")


def test_deleting_the_newest_row_is_caught_by_the_head(history: list[LedgerEntry]) -> None:
    sql(f"DELETE FROM {TABLE} WHERE seq = 4")
    broken_at(4, "entry 4 is missing (chain head records 4 entries)")


def test_reordering_rows_is_named(history: list[LedgerEntry]) -> None:
    # Swap the sequence numbers of entries 2 and 3 (via a free number: seq is unique).
    sql(f"UPDATE {TABLE} SET seq = 99 WHERE seq = 2")
    sql(f"UPDATE {TABLE} SET seq = 2 WHERE seq = 3")
    sql(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 99")
    broken_at(2, "entry 2")


def test_a_rehashed_row_still_breaks_the_link_to_the_next(history: list[LedgerEntry]) -> None:
    # A forger who recomputes one row's hash must recompute every later one and the head.
    sql(f"UPDATE {TABLE} SET entry_hash = %s WHERE seq = 2", ["f" * 64])
    broken_at(2, "entry 2 was altered")


def test_a_tampered_balance_cache_or_count_is_reported(history: list[LedgerEntry]) -> None:
    sql("UPDATE controlled_substances_balance SET quantity_mg = quantity_mg + 1")
    verdict = selectors.verify_ledger()
    assert not verdict.ok and verdict.first_bad_seq is None
    assert "cached 451.000 mg, ledger 450.000 mg" in verdict.reason
    sql("UPDATE controlled_substances_balance SET quantity_mg = quantity_mg - 1")
    count = Count.objects.get()
    sql("UPDATE controlled_substances_countline SET counted_mg = 0 WHERE count_id = %s", [count.pk])
    verdict = selectors.verify_ledger()
    assert f"count {count.pk} was altered" in verdict.reason
    with pytest.raises(CommandError) as exc:
        call_command("verify_ledger")
    assert "entries intact (4 verified), but: count" in str(exc.value)


def test_the_database_refuses_updates_and_deletes(history: list[LedgerEntry]) -> None:
    """PostgreSQL: the trigger refuses, whoever connects as the app. SQLite: no trigger, so the
    same statements go through, and the chain is what catches them (tests above)."""
    statements = [
        f"UPDATE {TABLE} SET reason = 'edited' WHERE seq = 1",
        f"DELETE FROM {TABLE} WHERE seq = 4",
        "UPDATE controlled_substances_count SET note = 'edited'",
        "DELETE FROM controlled_substances_countline",
    ]
    for statement in statements:
        if connection.vendor == "postgresql":
            with (
                pytest.raises(DatabaseError) as exc,
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement)
            assert "append-only" in str(exc.value)
        else:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(statement)
                transaction.set_rollback(True)
    assert LedgerEntry.objects.filter(reason="edited").count() == 0
    assert selectors.verify_ledger().ok
