"""Background work of measurement-based care, run by `ketaclinic worker` (django-tasks).

`measurement_tick` runs every KETACLINIC_MEASURES_TICK_SECONDS: it puts new treatment courses
on the clinic's default plan, creates the questionnaires that fell due, delivers them, sends
reminders, expires what closed and escalates alerts that waited too long. Alert notices and
ad-hoc questionnaires are queued at once when they happen.
"""

from __future__ import annotations

from django_tasks import task

from ketaclinic.core import periodic
from ketaclinic.measures import services


@task()
def deliver_assignment(assignment_id: int) -> list[str]:
    """Send a questionnaire's one-time link; returns the channels used."""
    return services.assignment_deliver(assignment_id=assignment_id)


@task()
def notify_alert(alert_id: int, escalated: bool = False) -> int:
    """Tell the alert's recipients it is waiting; returns how many were emailed."""
    return services.alert_notify(alert_id=alert_id, escalated=escalated)


@task()
def measurement_tick() -> dict[str, int]:
    """The periodic run; returns what it did, kept on the task result for operators."""
    try:
        followed = services.enrolments_follow_courses()
        created = services.assignments_schedule()
        return {
            "enrolments": followed,
            "scheduled": len(created),
            "delivered": services.assignments_deliver_due(),
            "reminded": services.assignments_remind(),
            "expired": services.assignments_expire(),
            "escalated": services.alerts_escalate(),
        }
    finally:
        periodic.reschedule(measurement_tick)
