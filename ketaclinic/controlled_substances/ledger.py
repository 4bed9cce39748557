"""Posting to the ledger: sequence, hash chain, running balances and audit, in one transaction.

Services (`services.py`) decide *whether* an entry may be written (permission, clinical rule,
signatures); this module is how it is written. Lock order, the same for every writer so that two
transactions never wait on each other in a circle: the affected `Balance` rows in (location, lot)
order, then `LedgerHead`, then the audit chain head (inside `record_event`).

On PostgreSQL the balance row lock is what makes two nurses drawing from the same lot at the same
moment safe: the second waits, then sees the first one's balance. SQLite runs every transaction
with BEGIN IMMEDIATE (config/settings.py), which serialises writers outright.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from ketaclinic.audit.chain import GENESIS_HASH, ChainEntry, canonical_json, chain_hash
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.controlled_substances.choices import (
    DisposalMethod,
    EntryKind,
)
from ketaclinic.controlled_substances.models import (
    Balance,
    Count,
    CountLine,
    LedgerDayTotal,
    LedgerEntry,
    LedgerHead,
)
from ketaclinic.controlled_substances.quantities import fmt_mg, q3, text

BalanceKey = tuple[int, int]  # (location id, lot id)


def _utc(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def payload_of(entry: LedgerEntry) -> dict[str, Any]:
    """What the hash covers: every column but the hashes, in values that read back identically.

    Adding a column later must not change the payload of existing rows: new columns go into a
    new `hash_version`, with this function choosing the field list by version.
    """
    return {
        "v": entry.hash_version,
        "seq": entry.seq,
        "kind": entry.kind,
        "occurred_at": _utc(entry.occurred_at),
        "recorded_at": _utc(entry.recorded_at),
        "clinic_id": entry.clinic_id,
        "location_id": entry.location_id,
        "lot_id": entry.lot_id,
        "quantity_mg": text(entry.quantity_mg),
        "volume_ml": text(entry.volume_ml),
        "units": entry.units,
        "balance_after_mg": text(entry.balance_after_mg),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "witness_id": entry.witness_id,
        "witness_name": entry.witness_name,
        "witness_signed_at": _utc(entry.witness_signed_at),
        "witness_meaning": entry.witness_meaning,
        "second_witness_id": entry.second_witness_id,
        "second_witness_name": entry.second_witness_name,
        "second_witness_signed_at": _utc(entry.second_witness_signed_at),
        "second_witness_meaning": entry.second_witness_meaning,
        "patient_id": entry.patient_id,
        "patient_name": entry.patient_name,
        "patient_address": entry.patient_address,
        "treatment_session_id": entry.treatment_session_id,
        "counterparty_name": entry.counterparty_name,
        "counterparty_address": entry.counterparty_address,
        "counterparty_dea_number": entry.counterparty_dea_number,
        "document_number": entry.document_number,
        "document_date": entry.document_date.isoformat() if entry.document_date else None,
        "disposal_method": entry.disposal_method,
        "destruction_method": entry.destruction_method,
        "reason": entry.reason,
        "reverses_id": entry.reverses_id,
        "related_entry_id": entry.related_entry_id,
        "count_id": entry.count_id,
        "investigation_id": entry.investigation_id,
    }


def chain_entry(entry: LedgerEntry) -> ChainEntry:
    return ChainEntry(entry.seq, entry.prev_hash, entry.entry_hash, payload_of(entry))


def missing_record_elements(entry: LedgerEntry) -> list[str]:
    """The elements a DEA record of this kind must carry that this entry lacks (empty: complete).

    21 CFR 1304.22(c): receipts name the supplier (name, address, DEA number) and the containers;
    administrations the patient's name and address and who administered. Waste, disposal,
    adjustment, loss and reversal carry a second signer (R21); on-site destruction two (1317.95).
    """
    missing = []
    if not entry.occurred_at:
        missing.append("date")
    if not entry.actor_name:
        missing.append("recorded by")
    if not entry.quantity_mg:
        missing.append("quantity")
    kind = entry.kind
    if kind == EntryKind.RECEIVE:
        for name in ("counterparty_name", "counterparty_address", "counterparty_dea_number"):
            if not getattr(entry, name):
                missing.append(name.replace("counterparty", "supplier").replace("_", " "))
        if not entry.document_number:
            missing.append("invoice number")
        if not entry.units:
            missing.append("containers")
    if kind == EntryKind.ADMINISTER:
        if not entry.patient_id:
            missing.append("patient")
        if not entry.patient_name:
            missing.append("patient name")
        if not entry.patient_address:
            missing.append("patient address")
    witnessed = {
        EntryKind.WASTE,
        EntryKind.DISPOSE,
        EntryKind.ADJUST,
        EntryKind.LOSS,
        EntryKind.REVERSAL,
    }
    if kind in witnessed and not (entry.witness_id and entry.witness_signed_at):
        missing.append("witness signature")
    if entry.witness_id and entry.witness_id == entry.actor_id:
        missing.append("a witness other than the recorder")
    if kind == EntryKind.DISPOSE:
        if not entry.disposal_method:
            missing.append("disposal method")
        if entry.disposal_method == DisposalMethod.ONSITE_DESTRUCTION:
            if not (entry.second_witness_id and entry.second_witness_signed_at):
                missing.append("second witness signature")
            if not entry.destruction_method:
                missing.append("destruction method")
        if entry.disposal_method == DisposalMethod.REVERSE_DISTRIBUTOR:
            for name in ("counterparty_name", "counterparty_address", "counterparty_dea_number"):
                if not getattr(entry, name):
                    missing.append(name.replace("counterparty", "reverse distributor"))
    if kind in {EntryKind.ADJUST, EntryKind.LOSS, EntryKind.REVERSAL} and not entry.reason:
        missing.append("reason")
    if kind == EntryKind.REVERSAL and not entry.reverses_id:
        missing.append("reversed entry")
    if kind == EntryKind.TRANSFER_IN and not entry.related_entry_id:
        missing.append("matching transfer out")
    return missing


def _locked_head() -> LedgerHead:
    head = LedgerHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        try:
            with transaction.atomic():
                LedgerHead.objects.create(pk=1, seq=0, entry_hash=GENESIS_HASH)
        except IntegrityError:
            pass  # another writer created it first
        head = LedgerHead.objects.select_for_update().get(pk=1)
    return head


def _locked_balance(clinic_id: int, key: BalanceKey) -> Balance:
    location_id, lot_id = key
    rows = Balance.objects.select_for_update()
    balance = rows.filter(location_id=location_id, lot_id=lot_id).first()
    if balance is None:
        try:
            with transaction.atomic():
                Balance.objects.create(clinic_id=clinic_id, location_id=location_id, lot_id=lot_id)
        except IntegrityError:
            pass  # a concurrent receipt created it first
        balance = rows.get(location_id=location_id, lot_id=lot_id)
    return balance


def lock_balances(keys: Iterable[tuple[int, BalanceKey]]) -> dict[BalanceKey, Balance]:
    """Lock (creating where needed) the balance rows, always in (location, lot) order."""
    by_key = dict((key, clinic_id) for clinic_id, key in keys)
    return {key: _locked_balance(by_key[key], key) for key in sorted(by_key)}


class InsufficientStock(ValidationError):
    pass


def _check_stock(drafts: Sequence[LedgerEntry], on_hand: dict[BalanceKey, Any], field: str) -> None:
    """Refuse the whole batch, before writing anything, if any balance would go below zero."""
    running = dict(on_hand)
    for draft in drafts:
        key = (draft.location_id, draft.lot_id)
        running[key] = running[key] + q3(draft.quantity_mg)
        if running[key] < 0:
            needed = -sum(
                (
                    q3(d.quantity_mg)
                    for d in drafts
                    if (d.location_id, d.lot_id) == key and d.quantity_mg < 0
                ),
                Decimal("0"),
            )
            lot = draft.lot
            raise InsufficientStock(
                {
                    field: [
                        f"Only {fmt_mg(on_hand[key])} mg of {lot.product.name} lot "
                        f"{lot.lot_number} is on hand at {draft.location.name}; this needs "
                        f"{fmt_mg(needed)} mg. Nothing was recorded."
                    ]
                }
            )


def _link_pending_foreign_keys(entry: LedgerEntry) -> None:
    # An entry may point at one saved earlier in the same batch; its id exists only now.
    for name in ("related_entry", "reverses"):
        if getattr(entry, f"{name}_id") is None and name in entry._state.fields_cache:
            target = entry._state.fields_cache[name]
            if target is not None:
                setattr(entry, f"{name}_id", target.pk)


def post(
    drafts: Sequence[LedgerEntry],
    *,
    at: datetime,
    shortage_field: str = "quantity",
    audit: bool = True,
) -> list[LedgerEntry]:
    """Append the drafts in order, all or none; InsufficientStock if any balance would go below 0.

    Each draft has its kind, clinic, location, lot, signed quantity, actor and record elements set;
    this fills in seq, the chain hashes, recorded_at and the running balance.
    """
    with transaction.atomic():
        balances = lock_balances((d.clinic_id, (d.location_id, d.lot_id)) for d in drafts)
        running = {key: balance.quantity_mg for key, balance in balances.items()}
        _check_stock(drafts, running, shortage_field)
        head = _locked_head()
        for draft in drafts:
            key = (draft.location_id, draft.lot_id)
            draft.quantity_mg = q3(draft.quantity_mg)
            after = q3(running[key] + draft.quantity_mg)
            running[key] = after
            _link_pending_foreign_keys(draft)
            draft.balance_after_mg = after
            draft.seq = head.seq + 1
            draft.hash_version = LedgerEntry.HASH_VERSION
            draft.recorded_at = at
            if draft.occurred_at is None:
                draft.occurred_at = at
            draft.prev_hash = head.entry_hash
            draft.entry_hash = chain_hash(draft.prev_hash, payload_of(draft))
            draft.save(force_insert=True)
            head.seq, head.entry_hash = draft.seq, draft.entry_hash
            if audit:
                record_event(
                    action=Action.CREATE,
                    user=draft.actor,
                    clinic_id=draft.clinic_id,
                    patient_id=draft.patient_id,
                    object_type="controlled_substances.ledgerentry",
                    object_id=draft.seq,
                    changes=_audit_summary(draft),
                    detail=f"ledger #{draft.seq} {draft.kind} {fmt_mg(draft.quantity_mg)} mg",
                )
        head.save(update_fields=["seq", "entry_hash"])
        add_to_day_totals(drafts)
        for key, balance in balances.items():
            balance.quantity_mg = running[key]
            balance.last_seq = head.seq
            balance.save(update_fields=["quantity_mg", "last_seq"])
    return list(drafts)


DayKey = tuple[int, str, str, date]  # (clinic id, kind, kind of the reversed entry, UTC day)
_DAY_TOTALS = LedgerDayTotal._meta.db_table
_UPSERT_ROWS = 500


def day_key(entry: LedgerEntry, reversed_kind: str = "") -> DayKey:
    """The LedgerDayTotal row an entry adds to."""
    return (entry.clinic_id, entry.kind, reversed_kind, entry.occurred_at.astimezone(UTC).date())


def add_to_day_totals(entries: Iterable[LedgerEntry]) -> None:
    """Add just-appended entries to their LedgerDayTotal rows, creating the rows as needed.

    Called inside the append transaction while the ledger head is locked (so appends add up
    one after another); the upsert is a single statement per 500 rows either way, and adds to
    a row another transaction created rather than failing on it.
    """
    groups: dict[DayKey, list[Any]] = {}
    for entry in entries:
        reversed_kind = entry.reverses.kind if entry.reverses_id else ""  # type: ignore[union-attr]
        group = groups.setdefault(day_key(entry, reversed_kind), [0, Decimal("0")])
        group[0] += 1
        group[1] += entry.quantity_mg
    ops = connection.ops
    rows = [
        (clinic_id, kind, reversed_kind, ops.adapt_datefield_value(day), n,
         ops.adapt_decimalfield_value(total, 16, 3))
        for (clinic_id, kind, reversed_kind, day), (n, total) in sorted(groups.items())
    ]  # fmt: skip
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _UPSERT_ROWS):
            chunk = rows[start : start + _UPSERT_ROWS]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {_DAY_TOTALS} "  # noqa: S608 (table name from the model)
                "(clinic_id, kind, reversed_kind, day, entries, quantity_mg) "
                f"VALUES {values} ON CONFLICT (clinic_id, kind, reversed_kind, day) DO UPDATE "
                f"SET entries = {_DAY_TOTALS}.entries + excluded.entries, "
                f"quantity_mg = {_DAY_TOTALS}.quantity_mg + excluded.quantity_mg",
                [value for row in chunk for value in row],
            )


def _audit_summary(entry: LedgerEntry) -> dict[str, Any]:
    summary = {
        "kind": entry.kind,
        "quantity_mg": text(entry.quantity_mg),
        "lot_id": entry.lot_id,
        "location_id": entry.location_id,
        "balance_after_mg": text(entry.balance_after_mg),
        "entry_hash": entry.entry_hash,
    }
    for name in (
        "witness_id",
        "second_witness_id",
        "reverses_id",
        "related_entry_id",
        "treatment_session_id",
        "count_id",
        "investigation_id",
    ):
        value = getattr(entry, name)
        if value is not None:
            summary[name] = value
    return summary


def count_payload(count: Count, lines: Sequence[CountLine]) -> dict[str, Any]:
    """What a count's content hash covers, including both signatures (R24)."""
    return {
        "clinic_id": count.clinic_id,
        "location_id": count.location_id,
        "purpose": count.purpose,
        "business_time": count.business_time,
        "counted_at": _utc(count.counted_at),
        "ledger_seq": count.ledger_seq,
        "counted_by_id": count.counted_by_id,
        "counted_by_name": count.counted_by_name,
        "second_counter_id": count.second_counter_id,
        "second_counter_name": count.second_counter_name,
        "second_signed_at": _utc(count.second_signed_at),
        "note": count.note,
        "has_discrepancy": count.has_discrepancy,
        "lines": [
            {
                "lot_id": line.lot_id,
                "expected_mg": text(line.expected_mg),
                "counted_mg": text(line.counted_mg),
                "full_containers": line.full_containers,
                "open_ml": text(line.open_ml),
                "open_is_estimate": line.open_is_estimate,
            }
            for line in sorted(lines, key=lambda line: line.lot_id)
        ],
    }


def count_hash(count: Count, lines: Sequence[CountLine]) -> str:
    return hashlib.sha256(canonical_json(count_payload(count, lines)).encode()).hexdigest()
