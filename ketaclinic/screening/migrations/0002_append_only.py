from django.db import migrations

from ketaclinic.core.append_only import append_only


class Migration(migrations.Migration):
    """Scored questionnaires, eligibility decisions and signed overrides never change (rule 8)."""

    dependencies = [("screening", "0001_initial")]

    operations = [
        append_only("screening_baselinemeasure"),
        append_only("screening_eligibilitydecision"),
        append_only("screening_eligibilityoverride"),
    ]
