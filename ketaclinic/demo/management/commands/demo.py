"""`ketaclinic demo`: migrate, load the demo clinic, print the logins, serve on 127.0.0.1:8000."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the demo clinic: migrate, seed, print logins and serve on http://127.0.0.1:8000."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Prepare only; do not serve.")
        parser.add_argument("--patients", type=int, default=200)

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("Set KETACLINIC_DEMO=1 to run the demo (`make demo` does).")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("seed", patients=options["patients"], seed=2026)
        if options["no_serve"]:
            return
        self.stdout.write(f"\nOpen http://{options['addrport']}/ and sign in with a login above.\n")
        call_command("runserver", options["addrport"], use_reloader=False)
