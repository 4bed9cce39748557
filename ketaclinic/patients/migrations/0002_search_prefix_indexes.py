"""Index-backed patient search on PostgreSQL.

Search (patients.selectors.patient_search) filters `last_name__istartswith`,
`first_name__istartswith` and `mrn__iexact`, which Django compiles to
`UPPER(col::text) LIKE UPPER('word%')` and `UPPER(mrn::text) = UPPER('word')`. No existing index
matches those expressions, so every search scanned the whole patient table twice (page and count):
~8 ms at 10,000 patients, growing with the table. A btree on the same expression with
`text_pattern_ops` serves the prefix LIKE under any database collation; the planner combines the
three with a BitmapOr (~0.4 ms at 10,000 patients).

`text_pattern_ops` is PostgreSQL-only and cannot be declared in Model.Meta.indexes while SQLite is
supported, so the indexes live here and nothing happens on other databases.
"""

from django.db import migrations

INDEXES = (
    ("patient_last_name_prefix", 'UPPER("last_name"::text) text_pattern_ops'),
    ("patient_first_name_prefix", 'UPPER("first_name"::text) text_pattern_ops'),
    ("patient_mrn_upper", 'UPPER("mrn"::text)'),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "patients_patient" ({expression})'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
