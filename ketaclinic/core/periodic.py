"""Periodic background jobs on django-tasks, which has no scheduler of its own.

A feature registers a task with `register(task, every=timedelta(...))`, from its AppConfig.ready()
(importing its tasks module). When a periodic task runs it queues its own next run (`reschedule`,
called at the end of the task), and `ketaclinic worker` queues every registered task that has no
run waiting when it starts (`ensure_scheduled`), so a restart or a lost run never stops the
cycle and there is never more than one run waiting per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ketaclinic.core import clock


@dataclass(frozen=True)
class PeriodicJob:
    task: Any  # a django_tasks Task
    every: timedelta

    @property
    def path(self) -> str:
        return str(self.task.module_path)


_JOBS: dict[str, PeriodicJob] = {}


def register(task: Any, *, every: timedelta) -> None:
    job = PeriodicJob(task, every)
    _JOBS[job.path] = job


def jobs() -> list[PeriodicJob]:
    return list(_JOBS.values())


def _waiting(path: str) -> bool:
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path=path, status=TaskResultStatus.READY).exists()


def _defers(task: Any) -> bool:
    return bool(getattr(task.get_backend(), "supports_defer", False))


def reschedule(task: Any) -> None:
    """Queue the next run of a registered periodic task, unless one is already waiting."""
    job = _JOBS.get(task.module_path)
    if job is None or not _defers(task) or _waiting(job.path):
        return
    task.using(run_after=clock.now() + job.every).enqueue()


def ensure_scheduled() -> int:
    """Queue every registered periodic task that has no run waiting; returns how many."""
    queued = 0
    for job in jobs():
        if _defers(job.task) and not _waiting(job.path):
            job.task.enqueue()
            queued += 1
    return queued
