"""`ketaclinic seed --patients N --seed S`: load the deterministic demo clinic."""

import time

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.demo.seed import DEMO_PASSWORD, seed_clinic


class Command(BaseCommand):
    help = "Load the demo organisation, clinics, staff of every role and N patients."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--patients", type=int, default=200)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args: object, **options: int) -> None:
        if options["patients"] < 1:
            raise CommandError("--patients must be at least 1.")
        started = time.perf_counter()
        logins = seed_clinic(patients=options["patients"], seed=options["seed"])
        elapsed = time.perf_counter() - started
        self.stdout.write(f"Demo clinic ready ({options['patients']} patients) in {elapsed:.1f}s.")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for login in logins:
            self.stdout.write(f"  {login.username:<14} {login.role:<22} {login.clinic}")
