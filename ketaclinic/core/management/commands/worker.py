"""`ketaclinic worker`: run background tasks (reminders, deadlines) from the database queue."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from ketaclinic.core import periodic


class Command(BaseCommand):
    help = "Run the background task worker (django-tasks database backend)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--batch", action="store_true", help="Run queued tasks, then exit.")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args: object, **options: object) -> None:
        # Periodic jobs (questionnaire scheduling, reminders, escalations) queue their own next
        # run; make sure each has one waiting when a worker starts.
        periodic.ensure_scheduled()
        worker_args = ["--interval", str(options["interval"]), "--no-reload"]
        if options["batch"]:
            worker_args.append("--batch")
        call_command("db_worker", *worker_args)
