"""Timestamps read back as Django reads them, whichever psycopg loader reads them.

On PostgreSQL with a UTC time zone, connections read timestamptz columns with psycopg's
compiled loader instead of Django's Python subclass of it (core.apps): the values must be the
same aware datetimes, in datetime.UTC, to the microsecond, through the ORM, the prepared
statements of core.compiled_query and a raw cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from ketaclinic.accounts.models import Clinic
from ketaclinic.core.compiled_query import PLACEHOLDER_ID, CompiledValuesQuery

_CREATED = CompiledValuesQuery(
    lambda pk: Clinic.objects.filter(pk=pk).values("created_at"), pk=PLACEHOLDER_ID
)

MOMENTS = [
    datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=UTC),  # a second before US clocks change
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, 123_456, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_timestamps_read_back_as_written_and_aware_in_utc(world, moment):
    Clinic.objects.filter(pk=world.clinic_a.pk).update(created_at=moment)
    read = [
        Clinic.objects.get(pk=world.clinic_a.pk).created_at,
        Clinic.objects.filter(pk=world.clinic_a.pk).values_list("created_at", flat=True)[0],
        _CREATED.tuples(pk=world.clinic_a.pk)[0][0],
    ]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT created_at FROM accounts_clinic WHERE id = %s", [world.clinic_a.pk]
            )
            read.append(cursor.fetchone()[0])
    assert read == [moment] * len(read)
    assert all(value.tzinfo is UTC for value in read)


@pytest.mark.django_db
def test_postgresql_connections_read_timestamps_with_the_compiled_loader():
    connection.ensure_connection()
    if connection.vendor != "postgresql":
        # SQLite: timestamps are text that Django parses; no psycopg loader to choose.
        assert not hasattr(connection.connection, "adapters")
        return
    from psycopg import adapters
    from psycopg.pq import Format

    loader = connection.connection.adapters.get_loader(
        adapters.types["timestamptz"].oid, Format.TEXT
    )
    assert loader.__name__ == "UtcTimestamptzLoader" and loader.timezone is UTC
