from django.db import migrations

from ketaclinic.core.append_only import append_only


class Migration(migrations.Migration):
    """Scored responses and check-ins are immutable (ARCHITECTURE rule 8): on PostgreSQL a trigger
    rejects UPDATE and DELETE whoever connects as the app."""

    dependencies = [("measures", "0001_initial")]

    operations = [append_only("measures_response"), append_only("measures_checkin")]
