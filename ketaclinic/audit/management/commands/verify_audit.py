"""`ketaclinic verify-audit`: walk the audit hash chain; exit 1 naming the first bad entry."""

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.audit.selectors import verify_audit_chain


class Command(BaseCommand):
    help = "Verify the audit trail's sequence and SHA-256 hash chain."

    def handle(self, *args: object, **options: object) -> None:
        verdict = verify_audit_chain()
        if not verdict.ok:
            raise CommandError(
                f"Audit chain broken at sequence {verdict.first_bad_seq}: {verdict.reason} "
                f"({verdict.checked} entries verified before it)."
            )
        self.stdout.write(f"Audit chain intact: {verdict.checked} entries verified.")
