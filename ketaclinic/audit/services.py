"""The one write path into the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, models, transaction

from ketaclinic.audit import context
from ketaclinic.audit.chain import GENESIS_HASH, chain_hash
from ketaclinic.audit.choices import Action
from ketaclinic.audit.models import AuditChainHead, AuditEvent
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import PLACEHOLDER_ID, CompiledModelQuery


def _plain(value: Any) -> Any:
    """Values as they will read back from a JSON column, so the hash verifies later."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def payload_of(event: AuditEvent) -> dict[str, Any]:
    """The fields the hash covers (everything but the hashes themselves)."""
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(),
        "user_id": event.user_id,
        "username": event.username,
        "clinic_id": event.clinic_id,
        "patient_id": event.patient_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "request_id": event.request_id,
        "source_ip": event.source_ip,
        "changes": event.changes,
        "detail": event.detail,
    }


# Locked by every audited request: compiled to SQL once (core.compiled_query).
_HEAD_FOR_UPDATE = CompiledModelQuery(
    lambda head_id: AuditChainHead.objects.select_for_update().filter(pk=head_id),
    head_id=PLACEHOLDER_ID,
)


def _locked_head() -> AuditChainHead:
    found = _HEAD_FOR_UPDATE.objects(head_id=1)
    head = found[0] if found else None
    if head is None:
        try:
            with transaction.atomic():
                AuditChainHead.objects.create(pk=1, seq=0, entry_hash=GENESIS_HASH)
        except IntegrityError:
            pass  # another writer created it first
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def record_event(
    *,
    action: Action | str,
    user: Any = None,
    clinic: Any = None,
    clinic_id: int | None = None,
    patient_id: int | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    changes: Mapping[str, Any] | None = None,
    detail: str = "",
    username: str = "",
) -> AuditEvent:
    """Append one event, chained to the previous one, inside the caller's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    ctx = context.current()
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    # No savepoint inside a caller's transaction (two round trips on every audited write): a
    # failed append must fail the caller's whole transaction anyway.
    with transaction.atomic(savepoint=False):
        head = _locked_head()
        event = AuditEvent(
            seq=head.seq + 1,
            occurred_at=clock.now(),
            user=user if authenticated else None,
            username=(user.get_username() if authenticated else username)[:150],
            clinic_id=clinic.pk if clinic is not None else clinic_id,
            patient_id=patient_id,
            action=str(action),
            object_type=object_type,
            object_id=str(object_id),
            request_id=ctx.request_id,
            source_ip=ctx.source_ip,
            changes=_plain(dict(changes or {})),
            detail=detail[:500],
            prev_hash=head.entry_hash,
        )
        event.entry_hash = chain_hash(event.prev_hash, payload_of(event))
        head.seq = event.seq
        head.entry_hash = event.entry_hash
        if connection.vendor == "postgresql":
            _append_and_advance(event, head)
        else:
            event.save(force_insert=True)
            head.save(update_fields=["seq", "entry_hash"])
    return event


def _append_and_advance(event: AuditEvent, head: AuditChainHead) -> None:
    """Insert the event and move the head in one statement (PostgreSQL: a data-modifying CTE),
    still under the head's row lock and in the same transaction: every audited page saves a
    round trip and two ORM saves. Values are prepared by the model's own fields."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    # Identifiers come from the models' meta (quoted); every value is a query parameter.
    sql = (
        f"WITH appended AS (INSERT INTO {quote(AuditEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote('id')}) "
        f"UPDATE {quote(AuditChainHead._meta.db_table)} SET {quote('seq')} = %s, "
        f"{quote('entry_hash')} = %s WHERE {quote('id')} = %s "
        f"RETURNING (SELECT {quote('id')} FROM appended)"
    )
    params = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, head.seq, head.entry_hash, head.pk])
        row = cursor.fetchone()
    if row is None or row[0] is None:  # the head row vanished under its own lock: never silent
        raise RuntimeError("audit chain head missing while appending")
    event.pk = row[0]
    event._state.adding = False
    event._state.db = connection.alias


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Old → new values for the fields that changed."""
    return {
        key: {"old": _plain(old.get(key)), "new": _plain(new.get(key))}
        for key in sorted(set(old) | set(new))
        if _plain(old.get(key)) != _plain(new.get(key))
    }
