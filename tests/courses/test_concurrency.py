"""Two requests booking the same chair, or the same patient, at the same moment: exactly one
wins and the other gets a clear error.

On PostgreSQL the services lock the patient row and then the chair rows inside the transaction,
so the second request waits and then sees the first booking. On SQLite the IMMEDIATE
transaction mode serialises writers; a file database waits for the lock (busy timeout), but the
in-memory test database answers "table is locked" at once, so there the worker retries the
whole request, as the busy timeout would.
"""

from __future__ import annotations

import threading
import time as clock
from datetime import date, time

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection

from ketaclinic.courses import services
from ketaclinic.courses.models import Appointment, TreatmentCourse
from ketaclinic.screening import services as screening
from tests.factories import PatientFactory
from tests.screening.builders import TODAY, chair, plan, screen


@pytest.fixture(autouse=True)
def slow_checks(monkeypatch):
    """Widen the race: each availability check takes a moment before the booking is written,
    so without row locks both requests would see a free chair and both would book it."""
    from ketaclinic.courses import scheduling

    for name in ("chair_is_free", "patient_clash"):
        original = getattr(scheduling, name)

        def slow(*args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            answer = _original(*args, **kwargs)
            clock.sleep(0.02)
            return answer

        monkeypatch.setattr(scheduling, name, slow)


def run_together(*calls):
    """Start the calls at the same instant in threads; return each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(index: int, call) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            for _ in range(200):
                try:
                    results[index] = call()
                except OperationalError as exc:
                    if connection.vendor != "sqlite" or "locked" not in str(exc):
                        raise
                    clock.sleep(0.05)
                else:
                    break
        except Exception as exc:  # noqa: BLE001 (the outcome under test)
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frozen_now")
def test_concurrent_courses_cannot_take_the_same_chair(world):
    one = chair(world.clinic_a)
    first, second = (PatientFactory(clinic=world.clinic_a) for _ in range(2))
    for patient in (first, second):
        screen(world.users["nurse"], patient)
    prescriber = world.users["prescriber"]
    results = run_together(
        lambda: plan(prescriber, first, chair_id=one.pk),
        lambda: plan(prescriber, second, chair_id=one.pk),
    )
    winners = [r for r in results if isinstance(r, TreatmentCourse)]
    losers = [r for r in results if isinstance(r, ValidationError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert "Chair 1 is fully booked then." in " ".join(losers[0].messages)
    assert TreatmentCourse.objects.count() == 1
    assert Appointment.objects.count() == 12
    assert set(Appointment.objects.values_list("course_id", flat=True)) == {winners[0].pk}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frozen_now")
def test_concurrent_boosters_cannot_book_one_patient_twice(world):
    chair(world.clinic_a, "Chair 1")
    chair(world.clinic_a, "Chair 2")
    patient = world.patient_a2
    screen(world.users["nurse"], patient)
    screening.consent_sign(
        actor=world.users["nurse"],
        patient=patient,
        kind="ketamine_off_label",
        data={"patient_signature": patient.full_name, "patient_signed_on": TODAY},
    )
    prescriber = world.users["prescriber"]
    course = plan(prescriber, patient, "iv_ketamine_induction")
    services.course_start(actor=world.users["nurse"], course=course)
    chairs = list(world.clinic_a.chairs.order_by("name"))

    def booster(chair_id: int):  # type: ignore[no-untyped-def]
        return lambda: services.booster_add(
            actor=prescriber,
            course=course,
            day=date(2026, 4, 8),
            session_time=time(9, 0),
            reason="Symptoms returning",
            chair_id=chair_id,
        )

    results = run_together(booster(chairs[0].pk), booster(chairs[1].pk))
    booked = [r for r in results if isinstance(r, Appointment)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(booked) == 1 and len(refused) == 1, results
    assert "already has a session then" in " ".join(refused[0].messages)
    assert course.appointments.filter(phase="booster").count() == 1
