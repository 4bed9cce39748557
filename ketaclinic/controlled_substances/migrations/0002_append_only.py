from django.db import migrations

from ketaclinic.core.append_only import append_only


class Migration(migrations.Migration):
    """The ledger and the counts are records: PostgreSQL refuses to update or delete them."""

    dependencies = [("controlled_substances", "0001_initial")]

    operations = [
        append_only("controlled_substances_ledgerentry"),
        append_only("controlled_substances_count"),
        append_only("controlled_substances_countline"),
    ]
