"""Two nurses drawing from the same lot at the same moment never oversubtract (R26).

Real threads, each with its own database connection, start together at a barrier. On PostgreSQL
the balance row lock makes the second wait and then see the first one's balance; SQLite takes the
write lock at BEGIN (IMMEDIATE), so the same requests run one after the other. (The test database
is SQLite's shared in-memory one, whose table locks fail at once instead of waiting like the
busy timeout of the file database the app runs on; `_begin_waiting` waits and retries instead,
which is what the busy timeout does: BEGIN either takes the lock or changes nothing.)

A pause injected between reading the balance and writing the entries widens the race window, so
without the lock both would pass the stock check.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, close_old_connections, connection, connections

from ketaclinic.controlled_substances import ledger, selectors, services
from ketaclinic.controlled_substances.models import Balance, LedgerEntry
from tests.controlled_substances.conftest import Ledger


def _begin_waiting(call: Any) -> Any:
    """SQLite only: wait for the write lock like the file database's busy timeout would."""
    for _ in range(400):
        try:
            return call()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc):
                raise
            time.sleep(0.01)
    raise AssertionError("the write lock was never granted")


def _race(lg: Ledger, lot: Any, doses_mg: list[int]) -> tuple[list[Any], list[str]]:
    barrier = threading.Barrier(len(doses_mg))
    done: list[Any] = []
    refused: list[str] = []
    lock = threading.Lock()
    patients = [lg.patient, lg.patient2]

    def nurse(index: int, dose: int) -> None:
        try:
            barrier.wait(timeout=10)
            record = _begin_waiting(
                lambda: services.administration_record(
                    actor=lg.user("nurse" if index % 2 == 0 else "prescriber"),
                    clinic=lg.clinic,
                    location=lg.safe,
                    lot=lot,
                    patient=patients[index % 2],
                    dose_mg=Decimal(dose),
                    witness=None,
                )
            )
            with lock:
                done.append(record)
        except ValidationError as exc:
            with lock:
                refused.append(" ".join(exc.messages))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=nurse, args=(i, d)) for i, d in enumerate(doses_mg)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    return done, refused


@pytest.fixture
def slow_stock_check(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ledger._check_stock

    def slow(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        time.sleep(0.05)  # between the stock check and the write: the race window

    monkeypatch.setattr(ledger, "_check_stock", slow)


def test_two_parallel_administrations_never_oversubtract(
    transactional_db: Any, lg: Ledger, slow_stock_check: None
) -> None:
    lot = lg.receive(containers=1)  # 500 mg
    done, refused = _race(lg, lot, [300, 300])
    assert len(done) == 1 and len(refused) == 1
    assert "Only 200 mg" in refused[0] and "Nothing was recorded" in refused[0]
    assert Balance.objects.get(lot=lot).quantity_mg == Decimal("200")
    assert LedgerEntry.objects.filter(kind="administer").count() == 1
    assert selectors.verify_ledger().ok


def test_many_parallel_administrations_take_exactly_what_is_there(
    transactional_db: Any, lg: Ledger, slow_stock_check: None
) -> None:
    lot = lg.receive(containers=1)  # 500 mg
    for _round in range(3):
        done, refused = _race(lg, lot, [100] * 6)
        on_hand = Balance.objects.get(lot=lot).quantity_mg
        assert on_hand >= 0
        assert (
            on_hand == Decimal("500") - 100 * LedgerEntry.objects.filter(kind="administer").count()
        )
        if on_hand:
            lg.receive(containers=1)
    total_given = -sum(e.quantity_mg for e in LedgerEntry.objects.filter(kind="administer"))
    received = sum(e.quantity_mg for e in LedgerEntry.objects.filter(kind="receive"))
    assert total_given + Balance.objects.get(lot=lot).quantity_mg == received
    assert LedgerEntry.objects.filter(kind="administer").count() >= 5
    verdict = selectors.verify_ledger()
    assert verdict.ok, verdict.reason
    seqs = list(LedgerEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)), "gap-free under concurrency"
