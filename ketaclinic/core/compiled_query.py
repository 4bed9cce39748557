"""Fixed-shape ORM queries compiled to SQL once per process, then run with fresh values.

Why: the patient chart reads one patient through a few heavily annotated queries (a dozen
subqueries each). Django spends longer turning such a query into SQL than the database spends
running it, on every request. The SQL text depends only on the query's shape, so it is compiled
once per database with placeholder values and then executed with the real ones.

Only SQL text is kept: every call reads the database afresh, and the rows go through Django's own
converters (dates, booleans and JSON read the same as from the ORM, on PostgreSQL and SQLite).

On PostgreSQL the statement is also prepared on the server, once per connection: its parameters
are bound on the server (not merged into the text, as Django's client-side cursor does), so
PostgreSQL parses and plans the fixed text once and then only executes it. A heavily annotated
query spends more time in the planner than in execution (about 1.3 ms against 0.2 ms for the
alert inbox's), and persistent connections (CONN_MAX_AGE) keep the prepared statements.

    _SUMMARY = CompiledValuesQuery(
        lambda patient_id: Patient.objects.filter(pk=patient_id).annotate(...).values(...),
        patient_id=PLACEHOLDER_ID,
    )
    rows = _SUMMARY.rows(patient_id=patient.pk)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import QuerySet
from django.db.models.query import (  # type: ignore[attr-defined]
    ValuesIterable,
    get_related_populators,
)

# Placeholder values that no real query uses: each must appear in the compiled parameters only
# where the caller's value goes.
PLACEHOLDER_ID = -918_273_645
PLACEHOLDER_DATETIME = datetime(1901, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)
# A second one, for queries that take two datetimes (the start and end of a range).
PLACEHOLDER_DATETIME_END = datetime(1901, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)
# A time zone's IANA name (a real one: the query is built with it), for queries that work out
# local days or times in the database.
PLACEHOLDER_ZONE = "Antarctica/Troll"


def _adapt(connection: Any, value: Any) -> Any:
    """The value as the compiler puts it into the parameters (datetimes are adapted per
    backend: PostgreSQL takes them as they are, SQLite as naive UTC text)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _preparing_psycopg_cursor(connection: Any, sql: str | None = None) -> Any:
    """A psycopg cursor on Django's connection that binds on the server and prepares what it
    executes, with the connection's time zone for timestamptz values (as Django's
    create_cursor() does); None where that is not available (SQLite, psycopg 2).

    Given the SQL it will run, the cursor is kept with the connection and handed out again for
    the same text: psycopg then keeps its parameter dumpers and row loaders from one execute to
    the next instead of building them (a timestamp loader costs more than reading the value)."""
    if connection.vendor != "postgresql" or _PreparingCursor is None:
        return None
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    kept: dict[str, Any] | None = None
    if sql is not None:
        kept = raw.__dict__.setdefault("_ketaclinic_prepared_cursors", {})
        cursor = kept.get(sql)
        if cursor is not None and not cursor.closed:
            return cursor
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg import adapters
    from psycopg.pq import Format

    with connection.wrap_database_errors:
        cursor = _PreparingCursor(raw)
        timestamptz = adapters.types["timestamptz"].oid
        if connection.timezone != raw.adapters.get_loader(timestamptz, Format.TEXT).timezone:
            register_tzloader(connection.timezone, cursor)
    if kept is not None:
        kept[sql] = cursor  # type: ignore[index]
    return cursor


def _wrapped(cursor: Any, connection: Any) -> CursorWrapper:
    """Django's wrapper around a cursor: execute wrappers, and the query log when it is on."""
    connection.validate_thread_sharing()
    if connection.queries_logged:
        return _LoggedAsWritten(cursor, connection)
    return CursorWrapper(cursor, connection)


def run_prepared(sql: str, params: list[Any], *, using: str = DEFAULT_DB_ALIAS) -> list[Any]:
    """Run a fixed SQL text that every request runs (written by hand, values as parameters,
    each parameter's type clear from its context or a CAST) and fetch its rows: prepared once
    per connection on PostgreSQL (see the module's docstring), Django's usual cursor elsewhere."""
    connection = connections[using]
    cursor = _preparing_psycopg_cursor(connection, sql)
    if cursor is None:
        with connection.cursor() as usual:
            usual.execute(sql, params)
            return usual.fetchall()
    wrapped = _wrapped(cursor, connection)
    wrapped.execute(sql, params)
    return wrapped.fetchall()


class _LoggedAsWritten(CursorDebugWrapper):
    """Django's query log for a prepared statement: the SQL as written (psycopg keeps no text of
    its own for a statement executed by name, and Django's log would read None)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


class _Pipeline:
    """What Django's cursor wrapper drives for `objects_together` on PostgreSQL: its execute()
    sends every (sql, params) through psycopg's pipeline mode, prepared, and waits once. Django
    logs it, and execute wrappers see it, as one execute of the statements joined by ";"
    (one round trip, as the log has always counted them)."""

    def __init__(self, connection: Any, statements: list[tuple[str, list[Any]]]) -> None:
        self._connection = connection
        self._statements = statements
        self.results: list[list[Any]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        raw = self._connection.connection
        cursors: list[Any] = []
        extra: list[Any] = []
        for statement, _ in self._statements:
            # The kept cursor for a text's first use; a fresh one if the text comes again.
            if any(statement == other for other, _ in self._statements[: len(cursors)]):
                cursor = _preparing_psycopg_cursor(self._connection)
                extra.append(cursor)
            else:
                cursor = _preparing_psycopg_cursor(self._connection, statement)
            cursors.append(cursor)
        try:
            with raw.pipeline():
                for cursor, (statement, statement_params) in zip(
                    cursors, self._statements, strict=True
                ):
                    cursor.execute(statement, statement_params)
            self.results = [cursor.fetchall() for cursor in cursors]
        finally:
            for cursor in extra:
                cursor.close()

    def close(self) -> None:
        pass


def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql import base as postgresql

    class PreparingCursor(postgresql.ServerBindingCursor):  # type: ignore[name-defined,misc]
        """Prepares every statement it executes (psycopg keeps them per connection, up to
        `prepared_max`, and reuses them by text and parameter types)."""

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs.setdefault("prepare", True)
            return super().execute(query, params, **kwargs)

    return PreparingCursor


try:
    _PreparingCursor: Any = _preparing_cursor_class()
except ImportError:  # no psycopg 3 installed: SQLite only
    _PreparingCursor = None


@dataclass(frozen=True)
class _Compiled:
    compiler: Any
    sql: str
    params: tuple[Any, ...]
    names: tuple[str, ...]
    slots: dict[str, tuple[int, ...]]
    # Django's per-column converters (dates, booleans, JSON...), worked out once with the SQL.
    converters: dict[int, Any]

    def results(self, fetched: list[Any]) -> Any:
        """The fetched rows as the compiler's results_iter() gives them."""
        if self.converters:
            return self.compiler.apply_converters(fetched, self.converters)
        return fetched


class _CompiledQuery:
    """A queryset built by `build(**placeholders)`, compiled on first use."""

    values_query = True

    def __init__(self, build: Callable[..., QuerySet[Any]], **placeholders: Any) -> None:
        self._build = build
        self._placeholders = placeholders
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> _Compiled:
        connection = connections[alias]
        queryset = self._build(**self._placeholders)
        if issubclass(queryset._iterable_class, ValuesIterable) != self.values_query:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a {'.values()' if self.values_query else 'model'} "
                "queryset"
            )
        if queryset._prefetch_related_lookups or queryset._known_related_objects:  # type: ignore[attr-defined]
            raise ImproperlyConfigured("prefetch_related() is not supported")
        query = queryset.query
        names = (
            list(query.selected)
            if query.selected
            else [*query.extra_select, *query.values_select, *query.annotation_select]
        )
        compiler = query.get_compiler(alias)
        sql, params = compiler.as_sql()
        slots = {}
        for name, value in self._placeholders.items():
            adapted = _adapt(connection, value)
            positions = tuple(
                i for i, p in enumerate(params) if type(p) is type(adapted) and p == adapted
            )
            if not positions:
                raise ImproperlyConfigured(f"placeholder {name!r} is not among the parameters")
            slots[name] = positions
        fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
        if compiler.has_composite_fields(fields):
            raise ImproperlyConfigured("composite primary keys are not supported")
        converters = compiler.get_converters(fields)
        return _Compiled(compiler, sql, tuple(params), tuple(names), slots, converters)

    def _bind(self, using: str, values: dict[str, Any]) -> tuple[_Compiled, list[Any]]:
        """The compiled query for this database and its parameters with these values."""
        connection = connections[using]
        key = (using, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compile(using)
                self._compiled[key] = compiled
        params = list(compiled.params)
        for name, positions in compiled.slots.items():
            value = _adapt(connection, values[name])
            for index in positions:
                params[index] = value
        return compiled, params

    def _run(self, using: str, values: dict[str, Any]) -> tuple[_Compiled, list[Any]]:
        compiled, params = self._bind(using, values)
        return compiled, run_prepared(compiled.sql, params, using=using)

    def _read(self, using: str, values: dict[str, Any], result: Callable[..., Any]) -> Read:
        compiled, params = self._bind(using, values)
        return Read(compiled.sql, params, lambda fetched: result(compiled, fetched))


class CompiledValuesQuery(_CompiledQuery):
    """A `.values()` queryset, compiled once; `rows()` runs it."""

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[dict[str, Any]]:
        """Run the query with these values; one dict per row, as `.values()` gives."""
        compiled, fetched = self._run(using, values)
        return self._dicts(compiled, fetched)

    def read(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> Read:
        """`rows(**values)` as a Read, for `read_together`."""
        return self._read(using, values, self._dicts)

    @staticmethod
    def _dicts(compiled: _Compiled, fetched: list[Any]) -> list[dict[str, Any]]:
        names = compiled.names
        return [dict(zip(names, row, strict=True)) for row in compiled.results(fetched)]

    def columns(self, *, using: str = DEFAULT_DB_ALIAS) -> tuple[str, ...]:
        """The names of the values in each of `tuples()`'s rows, in order."""
        return self._bind(using, self._placeholders)[0].names

    def tuples(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Any]:
        """Run the query with these values; one tuple per row in the order of `.values()`
        (as `.values_list()` gives: no dict per row, for long lists read on hot paths)."""
        compiled, fetched = self._run(using, values)
        return self._tuples(compiled, fetched)

    def read_tuples(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> Read:
        """`tuples(**values)` as a Read, for `read_together` (what `objects_together` gives
        for a values query)."""
        return self._read(using, values, self._tuples)

    @staticmethod
    def _tuples(compiled: _Compiled, fetched: list[Any]) -> list[Any]:
        return [tuple(row) for row in compiled.results(fetched)]


class CompiledModelQuery(_CompiledQuery):
    """A model queryset (select_related and annotations allowed, no prefetch_related), compiled
    once; `objects()` runs it and builds the instances as Django's ModelIterable does."""

    values_query = False

    def objects(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Any]:
        compiled, fetched = self._run(using, values)
        return self._instances(compiled, fetched, using)

    def read(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> Read:
        """`objects(**values)` as a Read, for `read_together`."""
        return self._read(
            using, values, lambda compiled, fetched: self._instances(compiled, fetched, using)
        )

    def _instances(self, compiled: _Compiled, fetched: list[Any], using: str) -> list[Any]:
        compiler = compiled.compiler
        select, klass_info = compiler.select, compiler.klass_info
        annotation_col_map = compiler.annotation_col_map
        model_cls = klass_info["model"]
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        init_list = [f[0].target.attname for f in select[start:end]]
        populators = get_related_populators(klass_info, select, using)
        found = []
        for row in compiled.results(fetched):
            obj = model_cls.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for attr_name, col_pos in (annotation_col_map or {}).items():
                setattr(obj, attr_name, row[col_pos])
            found.append(obj)
        return found


@dataclass(frozen=True)
class Read:
    """One statement for `read_together`: its SQL (a fixed text, values as parameters, as for
    `run_prepared`), its parameters, and what its fetched rows become."""

    sql: str
    params: list[Any]
    result: Callable[[list[Any]], Any]


def read_together(reads: list[Read], *, using: str = DEFAULT_DB_ALIAS) -> list[Any]:
    """Each read's result, in one round trip on PostgreSQL (see `objects_together`); one
    statement after another elsewhere."""
    connection = connections[using]
    if connection.vendor != "postgresql" or len(reads) < 2 or _PreparingCursor is None:
        return [read.result(run_prepared(read.sql, read.params, using=using)) for read in reads]
    pipeline = _Pipeline(connection, [(read.sql, read.params) for read in reads])
    connection.validate_thread_sharing()
    wrapper: Any = _LoggedAsWritten if connection.queries_logged else CursorWrapper
    with wrapper(pipeline, connection) as cursor:
        cursor.execute(
            ";\n".join(read.sql for read in reads),
            [param for read in reads for param in read.params],
        )
    return [read.result(rows) for read, rows in zip(reads, pipeline.results, strict=True)]


class PreparedText:
    """A fixed SQL text written by hand (as `run_prepared` runs it), to send with compiled
    queries in `objects_together` with values {"params": [...]}: its rows come back as fetched."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def read(self, *, using: str = DEFAULT_DB_ALIAS, params: list[Any]) -> Read:
        return Read(self.sql, list(params), _as_fetched)


def _as_fetched(rows: list[Any]) -> list[Any]:
    return rows


# Sent around statements in one pipeline (PostgreSQL only): the prepared statements between
# GENERIC_PLANS and PLANS_AS_USUAL run on generic plans, planned once per connection, instead
# of whatever PostgreSQL would choose. Why: it keeps re-planning ("custom plans") a statement
# whose generic plan it estimates dearer than the plans made with the parameters, even when
# both are the same plan: the chart's ledger read spent 0.4-0.9 ms planning on every chart for
# 0.1 ms of work. Only for statements that look up one record's rows by key, where the values
# do not change the best plan. The setting is local to the transaction (the pipeline's own,
# without one) and PLANS_AS_USUAL restores it when the pipeline runs inside a longer one.
GENERIC_PLANS = PreparedText("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
PLANS_AS_USUAL = PreparedText("SELECT set_config('plan_cache_mode', 'auto', true)")


def _together(
    query: CompiledModelQuery | CompiledValuesQuery | PreparedText,
    using: str,
    values: dict[str, Any],
) -> Read:
    if isinstance(query, CompiledValuesQuery):
        return query.read_tuples(using=using, **values)
    return query.read(using=using, **values)


def objects_together(
    calls: Sequence[tuple[CompiledModelQuery | CompiledValuesQuery | PreparedText, dict[str, Any]]],
    *,
    using: str = DEFAULT_DB_ALIAS,
) -> list[list[Any]]:
    """`query.objects(**values)` for each (query, values), in one round trip on PostgreSQL
    (`query.tuples(**values)` for a CompiledValuesQuery, the fetched rows of a PreparedText).
    Without a transaction the statements are one implicit transaction there, committed before
    the results come back: a write sent last, such as an audit append, is durable when they
    do, and is not made if a statement before it fails.

    Why: a page that reads a dozen small tables of one record waited for a dozen round trips.
    On PostgreSQL the prepared statements go through psycopg's pipeline mode: all are sent, then
    one Sync, and the results come back together; on other databases they run one after
    another. Each statement is the query's own compiled SQL, and the rows become instances
    exactly as `objects()` builds them.
    """
    return read_together([_together(query, using, values) for query, values in calls], using=using)
