"""Hash-chain arithmetic shared by the audit trail and the controlled-substance ledger."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Stable text for hashing: sorted keys, no spaces, non-JSON values as strings."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def chain_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    seq: int
    prev_hash: str
    entry_hash: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(
    entries: Iterable[ChainEntry], *, head_seq: int | None, head_hash: str | None
) -> ChainVerdict:
    """Walk entries in sequence order and name the first one that breaks the chain.

    A missing row shows as a gap in the sequence, an edited row as a hash mismatch, a moved row
    as a sequence or link mismatch; deleting the newest rows is caught against the head.
    """
    expected_seq = 1
    running = GENESIS_HASH
    checked = 0
    for entry in entries:
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                reason = f"entry {expected_seq} is missing (next entry found is {entry.seq})"
            else:
                reason = f"entry {entry.seq} appears out of order after {expected_seq - 1}"
            return ChainVerdict(False, checked, expected_seq, reason)
        if entry.prev_hash != running:
            return ChainVerdict(
                False, checked, entry.seq, f"entry {entry.seq} does not link to entry before it"
            )
        recomputed = chain_hash(entry.prev_hash, entry.payload)
        if recomputed != entry.entry_hash:
            return ChainVerdict(
                False, checked, entry.seq, f"entry {entry.seq} was altered (hash mismatch)"
            )
        running = entry.entry_hash
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    if head_seq is not None and head_seq != last_seq:
        if head_seq > last_seq:
            reason = f"entry {last_seq + 1} is missing (chain head records {head_seq} entries)"
            return ChainVerdict(False, checked, last_seq + 1, reason)
        return ChainVerdict(False, checked, head_seq + 1, "entries exist beyond the chain head")
    if head_hash is not None and head_seq and head_hash != running:
        return ChainVerdict(False, checked, last_seq, "the newest entry does not match the head")
    return ChainVerdict(True, checked)
