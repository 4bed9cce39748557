"""Database-level append-only protection, used by the audit trail and the ledger.

On PostgreSQL a trigger rejects UPDATE and DELETE on the table, whoever connects as the app
(security.md R8). SQLite, the embedded demo database, relies on the hash chain to detect changes.
TRUNCATE is left to the database owner (it is how test runs reset tables).
"""

from __future__ import annotations

from django.db import migrations

_FUNCTION = """
CREATE OR REPLACE FUNCTION ketaclinic_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def trigger_name(table: str) -> str:
    return f"{table}_append_only"


def append_only(table: str) -> migrations.RunPython:
    """A migration operation installing (and on reverse removing) the trigger on PostgreSQL."""

    def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(_FUNCTION, params=None)  # None: the % are plpgsql, not placeholders
        schema_editor.execute(
            f"CREATE TRIGGER {trigger_name(table)} BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ketaclinic_reject_change()"
        )

    def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger_name(table)} ON {table}")

    return migrations.RunPython(forwards, backwards, elidable=False)
