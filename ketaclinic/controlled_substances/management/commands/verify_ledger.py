"""`ketaclinic verify-ledger`: walk the ledger's hash chain and balances; exit 1 naming the first
bad entry."""

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.controlled_substances.selectors import verify_ledger


class Command(BaseCommand):
    help = "Verify the controlled-substance ledger: sequence, SHA-256 chain, balances and counts."

    def handle(self, *args: object, **options: object) -> None:
        verdict = verify_ledger()
        if not verdict.ok:
            if verdict.first_bad_seq is not None:
                raise CommandError(
                    f"Ledger chain broken at entry {verdict.first_bad_seq}: {verdict.reason} "
                    f"({verdict.checked} entries verified before it)."
                )
            raise CommandError(
                f"Ledger entries intact ({verdict.checked} verified), but: "
                + "; ".join(verdict.problems)
            )
        self.stdout.write(
            f"Ledger intact: {verdict.checked} entries verified; balances and counts match."
        )
