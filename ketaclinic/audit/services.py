"""The one write path into the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Required, TypedDict, Unpack

from django.db import IntegrityError, connection, models, transaction

from ketaclinic.audit import context
from ketaclinic.audit.chain import GENESIS_HASH, canonical_json, chain_hash
from ketaclinic.audit.choices import Action
from ketaclinic.audit.models import AuditChainHead, AuditEvent
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import PLACEHOLDER_ID, CompiledModelQuery, run_prepared


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


class EventFields(TypedDict, total=False):
    """`new_event`'s arguments, for the functions that pass them on."""

    action: Required[Action | str]
    user: Any
    clinic: Any
    clinic_id: int | None
    patient_id: int | None
    obj: models.Model | None
    object_type: str
    object_id: str | int
    changes: Mapping[str, Any] | None
    detail: str
    username: str


def new_event(
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
    """The event `record_event` would append (unsaved, not yet chained)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    ctx = context.current()
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AuditEvent(
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
    )


def record_event(**event: Unpack[EventFields]) -> AuditEvent:
    """Append one event, chained to the previous one, inside the caller's transaction (the
    arguments are `new_event`'s)."""
    made = new_event(**event)
    _append(made)
    return made


def _append(event: AuditEvent) -> None:
    if connection.vendor == "postgresql" and _append_in_one_statement(event):
        return
    # No savepoint inside a caller's transaction (two round trips on every audited write): a
    # failed append must fail the caller's whole transaction anyway.
    with transaction.atomic(savepoint=False):
        head = _locked_head()
        event.seq = head.seq + 1
        event.prev_hash = head.entry_hash
        event.entry_hash = chain_hash(event.prev_hash, payload_of(event))
        head.seq = event.seq
        head.entry_hash = event.entry_hash
        if connection.vendor == "postgresql":
            _append_and_advance(event, head)
        else:
            event.save(force_insert=True)
            head.save(update_fields=["seq", "entry_hash"])


@dataclass
class PendingAppend:
    """An event `record_event` would append, to be sent with the caller's reads: on PostgreSQL
    `statement` is its one-statement append (None elsewhere), which the caller sends last in
    one round trip with them (core.compiled_query.objects_together, as a PreparedText) and then
    hands the statement's rows to `finish`. The row is the one record_event would write."""

    event: AuditEvent
    statement: tuple[str, list[Any]] | None

    def finish(self, rows: list[Any] | None) -> AuditEvent:
        """Done when `rows` say the statement appended the event; otherwise (not sent, no
        chain head yet) append it now by record_event's own path."""
        if rows is None or appended(self.event, rows) is None:
            _append(self.event)
        return self.event


def pending_append(**event: Unpack[EventFields]) -> PendingAppend:
    """record_event(**event), to send with the caller's reads (see PendingAppend)."""
    made = new_event(**event)
    statement = append_statement(made) if connection.vendor == "postgresql" else None
    return PendingAppend(made, statement)


# Stands in for the sequence number while the hashed text is built; real numbers start at 1.
_SEQ_STAND_IN = -7_301_934_285_117


def _hashed_text_around_seq(event: AuditEvent) -> tuple[str, str] | None:
    """The canonical JSON that `chain_hash` hashes, split where the sequence number goes:
    (text before the number, text after it). None when the split is not unambiguous."""
    event.seq = _SEQ_STAND_IN
    text = canonical_json(payload_of(event))
    marker = f'"seq":{_SEQ_STAND_IN}'
    if text.count(marker) != 1:
        return None
    before, after = text.split(marker)
    return before + '"seq":', after


def _sql_cast_type(field: Any) -> str:
    # Text rather than varchar(n): a cast to varchar(n) would silently truncate, an insert of a
    # too long text into the column fails loudly.
    if isinstance(field, models.CharField):
        return "text"
    return str(field.cast_db_type(connection))


def _one_statement_sql(joined: JoinedWrite | None = None) -> str:
    quote = connection.ops.quote_name
    head = quote(AuditChainHead._meta.db_table)
    fields = [
        f
        for f in AuditEvent._meta.concrete_fields
        if not f.primary_key and f.attname not in ("seq", "prev_hash", "entry_hash")
    ]
    columns = ", ".join(quote(f.column) for f in fields)
    values = ", ".join(f"CAST(%s AS {_sql_cast_type(f)})" for f in fields)
    # Identifiers and types come from the models' meta; every value is a query parameter.
    ctes = f"{joined.ctes}, " if joined else ""
    only_if = f" AND ({joined.only_if})" if joined else ""
    returning = f", {joined.returning}" if joined and joined.returning else ""
    return (
        f"WITH {ctes}head AS (SELECT {quote('seq')}, {quote('entry_hash')} "  # noqa: S608
        f"FROM {head} WHERE {quote('id')} = %s{only_if} FOR UPDATE), "
        f"new AS (SELECT {quote('seq')} + 1 AS next_seq, {quote('entry_hash')} AS prev, "
        f"encode(sha256(convert_to({quote('entry_hash')} || %s || ({quote('seq')} + 1)::text "
        f"|| %s, 'UTF8')), 'hex') AS hash FROM head), "
        f"appended AS (INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}, "
        f"{quote('seq')}, {quote('prev_hash')}, {quote('entry_hash')}) "
        f"SELECT {values}, next_seq, prev, hash FROM new "
        f"RETURNING {quote('id')}, {quote('seq')}, {quote('prev_hash')}, {quote('entry_hash')}) "
        f"UPDATE {head} SET {quote('seq')} = appended.{quote('seq')}, "
        f"{quote('entry_hash')} = appended.{quote('entry_hash')} FROM appended "
        f"WHERE {head}.{quote('id')} = %s RETURNING appended.{quote('id')}, "
        f"appended.{quote('seq')}, appended.{quote('prev_hash')}, appended.{quote('entry_hash')}"
        f"{returning}"
    )


@dataclass(frozen=True)
class JoinedWrite:
    """Writes that travel in the audit append's own statement (PostgreSQL), so a write and its
    audit row cost one round trip and are one atomic statement.

    `ctes` are data-modifying CTEs ("name AS (...), ...") put before the append's own; the
    event is appended only when `only_if` (an SQL condition, e.g. that a CTE wrote its row)
    holds, and `returning` adds expressions after the event's id, seq, prev_hash, entry_hash.
    The CTEs must write nothing unless `chain_head_exists_sql()` holds: without a chain head the
    append cannot be made in the statement, and a write must never go without its audit row.
    """

    ctes: str
    only_if: str
    returning: str = ""


_ONE_STATEMENT_SQL: dict[JoinedWrite | None, str] = {}


def chain_head_exists_sql() -> str:
    """An SQL condition: the chain head exists, so a joined append will be made."""
    quote = connection.ops.quote_name
    table = quote(AuditChainHead._meta.db_table)
    return f"EXISTS (SELECT 1 FROM {table} WHERE {quote('id')} = 1)"  # noqa: S608


def _append_in_one_statement(event: AuditEvent) -> bool:
    """PostgreSQL: lock the head, hash, insert the event and move the head in one statement,
    one round trip. Outside a transaction the statement is its own (durable) transaction, so an
    audited read costs one round trip instead of four (BEGIN, lock, insert, COMMIT).

    The database computes SHA-256(prev_hash || canonical JSON) with the text Python prepared
    around the sequence number, so `chain_hash` (and `verify-audit`) recompute the same hash.
    False, with nothing written, when the chain head does not exist yet or the text cannot be
    split; the caller then takes the general path."""
    return append_joined(event, None, []) is not None


def append_joined(
    event: AuditEvent, joined: JoinedWrite | None, params: list[Any]
) -> tuple[Any, ...] | None:
    """PostgreSQL: the caller's joined writes (with their `params`) and the append of `event`,
    in one statement. The extra `returning` values, or None when nothing was appended: the
    chain head is missing, the text cannot be split, or `only_if` did not hold (and then the
    joined writes must have written nothing either; see `JoinedWrite`)."""
    statement = append_statement(event, joined, params)
    if statement is None:
        return None
    # Prepared once per connection: every audited request runs one of these same texts.
    return appended(event, run_prepared(*statement))


def append_statement(
    event: AuditEvent, joined: JoinedWrite | None = None, params: list[Any] | None = None
) -> tuple[str, list[Any]] | None:
    """PostgreSQL: `append_joined`'s statement (SQL and parameters) without running it, for a
    caller that sends it in one round trip with its reads (core.compiled_query.objects_together
    with a PreparedText); `appended(event, rows)` then takes its rows. None when the text
    cannot be split (nothing to send: the caller takes record_event's path)."""
    parts = _hashed_text_around_seq(event)
    if parts is None:
        return None
    sql = _ONE_STATEMENT_SQL.get(joined)
    if sql is None:
        sql = _ONE_STATEMENT_SQL[joined] = _one_statement_sql(joined)
    fields = [
        f
        for f in AuditEvent._meta.concrete_fields
        if not f.primary_key and f.attname not in ("seq", "prev_hash", "entry_hash")
    ]
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    return sql, [*(params or []), 1, parts[0], parts[1], *values, 1]


def appended(event: AuditEvent, rows: list[Any]) -> tuple[Any, ...] | None:
    """The rows of an `append_statement` taken into `event` (its id, seq and hashes): the
    joined write's extra `returning` values, or None when nothing was appended."""
    row = rows[0] if rows else None
    if row is None:  # no chain head yet, or `only_if` false: nothing was inserted
        return None
    event.pk, event.seq, event.prev_hash, event.entry_hash = row[:4]
    event._state.adding = False
    event._state.db = connection.alias
    return tuple(row[4:])


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
