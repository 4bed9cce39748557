from datetime import UTC
from functools import cache
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created

# Prepared statements a PostgreSQL connection keeps (psycopg's default is 100, fewer than the
# compiled queries of every page and API path, by parameter types; core.compiled_query).
PREPARED_STATEMENTS_PER_CONNECTION = 1000


def _keep_prepared_statements(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql" and hasattr(connection.connection, "prepared_max"):
        connection.connection.prepared_max = PREPARED_STATEMENTS_PER_CONNECTION


@cache
def _compiled_utc_timestamp_loader() -> type | None:
    """A loader for timestamptz that reads with psycopg's compiled one and has the `timezone`
    attribute Django checks (UTC; the compiled class cannot be subclassed); None where psycopg
    runs without its compiled part (nothing to gain)."""
    import psycopg
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    compiled = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)
    if compiled is None or compiled.__module__.startswith("psycopg."):
        return None
    reader: Any = compiled

    class UtcTimestamptzLoader(Loader):
        timezone = UTC

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._compiled_load = reader(oid, context).load
            # psycopg takes each column's `load` once per result and calls it per value: the
            # compiled loader's own, without the Python call of the method below in between.
            self.load = self._compiled_load  # type: ignore[method-assign]

        def load(self, data: Any) -> Any:
            return self._compiled_load(data)

    return UtcTimestamptzLoader


def _read_utc_timestamps_in_c(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Timestamps read by psycopg's compiled loader where it gives exactly what Django's does.

    Django registers a Python subclass of psycopg's timestamptz loader on every connection, to
    set each value's tzinfo: every timestamp is then parsed in Python and copied by replace().
    On the bench's two-year chart (47 timestamps) that was 1.6M of 45M instructions per
    request (callgrind). When Django's time zone is UTC and so is the session's, psycopg's
    compiled loader already returns the same aware datetimes, in datetime.UTC
    (tests/test_timestamps.py); it is registered instead."""
    if connection.vendor != "postgresql" or not settings.USE_TZ or connection.timezone is not UTC:
        return
    loader = _compiled_utc_timestamp_loader()
    raw = connection.connection
    if loader is not None and raw.info.parameter_status("TimeZone") == "UTC":
        raw.adapters.register_loader("timestamptz", loader)


class CoreConfig(AppConfig):
    name = "ketaclinic.core"
    label = "core"

    def ready(self) -> None:
        connection_created.connect(_keep_prepared_statements, dispatch_uid="core.prepared_max")
        connection_created.connect(_read_utc_timestamps_in_c, dispatch_uid="core.utc_timestamps")
