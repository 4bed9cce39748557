"""Chairs, chair time, opening hours, no double booking, reschedule/cancel/no-show, the
missed-dose suggestion, clinic settings and the cost estimate."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.courses import estimates, scheduling, selectors, services
from ketaclinic.courses.models import Appointment
from ketaclinic.screening import services as screening
from tests.factories import PatientFactory
from tests.screening.builders import TODAY, chair, plan, screen

pytestmark = pytest.mark.usefixtures("frozen_now")
BOSTON = ZoneInfo("America/New_York")


def screened(world, patient=None):
    patient = patient or PatientFactory(clinic=world.clinic_a)
    screen(world.users["nurse"], patient)
    return patient


def test_chair_time_floors_come_from_the_clinical_rules():
    # 120 min observation from the first device + 10 min for three devices + 5 min pre-dose.
    assert scheduling.chair_minutes_floor("esketamine_trd") == 135
    assert scheduling.chair_minutes_floor("esketamine_mdsi") == 135
    # 40 min infusion + the racemic minimum observation after it.
    assert scheduling.chair_minutes_floor("iv_ketamine") == 70


def test_a_chair_is_never_double_booked_and_nothing_is_half_written(world):
    one = chair(world.clinic_a)
    first, second = screened(world), screened(world)
    plan(world.users["prescriber"], first, chair_id=one.pk)
    before = Appointment.objects.count()
    with pytest.raises(ValidationError) as raised:
        plan(world.users["prescriber"], second, chair_id=one.pk)
    problems = raised.value.message_dict["__all__"]
    assert len(problems) == 12 and "Chair 1 is fully booked then." in problems[0]
    assert Appointment.objects.count() == before
    assert not second.courses.exists()


def test_any_free_chair_and_capacity(world):
    chair(world.clinic_a, "Chair 1")
    group = chair(world.clinic_a, "Group room", capacity=2)
    a, b, c = screened(world), screened(world), screened(world)
    plan(world.users["prescriber"], a)
    plan(world.users["prescriber"], b)  # the first chair is taken: the next free one
    assert set(b.courses.get().appointments.values_list("chair__name", flat=True)) == {"Group room"}
    plan(world.users["prescriber"], c, chair_id=group.pk)  # a second place in the group room
    with pytest.raises(ValidationError, match="No chair is free then"):
        plan(world.users["prescriber"], screened(world))


def test_peak_overlap_counts_only_simultaneous_patients():
    def t(hour: int) -> datetime:
        return datetime(2026, 3, 3, hour, tzinfo=BOSTON)

    assert scheduling._peak_overlap([(t(9), t(10)), (t(10), t(11))]) == 1
    assert scheduling._peak_overlap([(t(9), t(11)), (t(10), t(12)), (t(11), t(13))]) == 2


def test_a_patient_is_never_in_two_places_nor_dosed_on_consecutive_days(world):
    chair(world.clinic_a, "Chair 1")
    chair(world.clinic_a, "Chair 2")
    patient = screened(world)
    screening.consent_sign(
        actor=world.users["nurse"],
        patient=patient,
        kind="ketamine_off_label",
        data={"patient_signature": patient.full_name, "patient_signed_on": TODAY},
    )
    course = plan(world.users["prescriber"], patient, "iv_ketamine_induction")
    services.course_start(actor=world.users["nurse"], course=course)
    first = course.appointments.order_by("number").first()
    day = first.starts_at.astimezone(BOSTON).date()
    with pytest.raises(ValidationError, match="already has a session then"):
        services.booster_add(
            actor=world.users["prescriber"],
            course=course,
            day=day,
            session_time=time(10, 0),
            reason="extra",
        )
    with pytest.raises(ValidationError, match="at least 2 calendar days apart"):
        services.booster_add(
            actor=world.users["prescriber"],
            course=course,
            day=day + timedelta(days=1),
            session_time=time(15, 0),
            reason="extra",
        )


def test_opening_days_hours_and_the_past(world):
    chair(world.clinic_a)
    patient = screened(world)
    course = plan(world.users["prescriber"], patient, "iv_ketamine_induction")
    appointment = course.appointments.order_by("number").first()
    reschedule = lambda day, at: services.appointment_reschedule(  # noqa: E731
        actor=world.users["front_desk"],
        appointment=appointment,
        day=day,
        session_time=at,
        reason="patient asked",
    )
    with pytest.raises(ValidationError, match="closed on Sat"):
        reschedule(date(2026, 3, 7), time(9, 0))
    with pytest.raises(ValidationError, match="opening hours 08:00-18:00"):
        reschedule(date(2026, 3, 4), time(17, 0))
    with pytest.raises(ValidationError, match="already passed"):
        reschedule(date(2026, 3, 2), time(9, 0))
    appointment.refresh_from_db()
    assert appointment.status == "scheduled"


def test_reschedule_keeps_the_session_and_links_old_to_new(world):
    chair(world.clinic_a)
    patient = screened(world)
    course = plan(world.users["prescriber"], patient)
    old = course.appointments.order_by("number").first()
    with pytest.raises(ValidationError, match="reason"):
        services.appointment_reschedule(
            actor=world.users["front_desk"],
            appointment=old,
            day=date(2026, 3, 4),
            session_time=time(11, 0),
            reason="",
        )
    with pytest.raises(PermissionDenied):
        services.appointment_reschedule(
            actor=world.users["auditor"],
            appointment=old,
            day=date(2026, 3, 4),
            session_time=time(11, 0),
            reason="x",
        )
    new = services.appointment_reschedule(
        actor=world.users["front_desk"],
        appointment=old,
        day=date(2026, 3, 4),
        session_time=time(11, 0),
        reason="Ride fell through",
    )
    old.refresh_from_db()
    assert (old.status, old.status_reason) == ("rescheduled", "Ride fell through")
    assert (new.number, new.dose_mg, new.phase, new.replaces_id) == (1, 56, "induction", old.pk)
    assert (
        new.starts_at.astimezone(BOSTON).replace(tzinfo=None).isoformat() == "2026-03-04T11:00:00"
    )
    with pytest.raises(ValidationError, match="cannot be rescheduled"):
        services.appointment_reschedule(
            actor=world.users["front_desk"],
            appointment=old,
            day=date(2026, 3, 5),
            session_time=time(11, 0),
            reason="x",
        )


def test_cancel_needs_a_reason(world):
    chair(world.clinic_a)
    course = plan(world.users["prescriber"], screened(world))
    appointment = course.appointments.order_by("number").last()
    with pytest.raises(ValidationError, match="reason"):
        services.appointment_cancel(actor=world.users["nurse"], appointment=appointment, reason="")
    cancelled = services.appointment_cancel(
        actor=world.users["nurse"], appointment=appointment, reason="Travelling"
    )
    assert (cancelled.status, cancelled.status_reason) == ("cancelled", "Travelling")
    with pytest.raises(ValidationError):
        services.appointment_cancel(actor=world.users["nurse"], appointment=appointment, reason="x")


def test_missed_esketamine_doses_get_the_label_suggestion_by_phase(world, time_machine):
    chair(world.clinic_a)
    course = plan(world.users["prescriber"], screened(world))
    rows = list(course.appointments.order_by("number"))
    with pytest.raises(ValidationError, match="once it has begun"):
        services.appointment_mark_missed(actor=world.users["front_desk"], appointment=rows[0])
    time_machine.move_to(rows[9].starts_at + timedelta(hours=3))
    services.appointment_mark_missed(actor=world.users["front_desk"], appointment=rows[1])
    services.appointment_mark_missed(actor=world.users["front_desk"], appointment=rows[9])
    detail = selectors.course_detail(course)
    induction, maintenance = detail.missed_advice[rows[1].pk], detail.missed_advice[rows[9].pk]
    assert "continue the current twice-weekly schedule" in induction.message
    assert "previous dosing frequency (twice weekly)" in maintenance.message
    assert "Management of Missed Dose" in maintenance.source
    missed = Appointment.objects.get(pk=rows[1].pk)
    assert missed.status_reason == "Did not attend"
    # A missed session can be rebooked once; the missed row stays missed.
    rebooked = services.appointment_reschedule(
        actor=world.users["front_desk"],
        appointment=missed,
        day=rows[9].starts_at.astimezone(BOSTON).date() + timedelta(days=3),
        session_time=time(14, 0),
        reason="Rebooked by phone",
    )
    missed.refresh_from_db()
    assert missed.status == "missed" and rebooked.replaces_id == missed.pk


def test_missed_iv_session_has_no_label_rule(world, time_machine):
    chair(world.clinic_a)
    course = plan(world.users["prescriber"], screened(world), "iv_ketamine_induction")
    first = course.appointments.order_by("number").first()
    time_machine.move_to(first.starts_at + timedelta(hours=1))
    services.appointment_mark_missed(actor=world.users["nurse"], appointment=first)
    assert selectors.course_detail(course).missed_advice == {}


def test_clinic_settings_are_for_administrators_and_keep_the_floor(world):
    admin = world.users["clinic_admin"]
    with pytest.raises(PermissionDenied):
        services.clinic_schedule_update(
            actor=world.users["prescriber"], clinic=world.clinic_a, data={"iv_chair_minutes": 120}
        )
    with pytest.raises(ValidationError) as raised:
        services.clinic_schedule_update(
            actor=admin,
            clinic=world.clinic_a,
            data={
                "esketamine_chair_minutes": 120,
                "clinic_days": "",
                "opens_at": time(18, 0),
                "closes_at": time(8, 0),
            },
        )
    assert set(raised.value.message_dict) == {
        "esketamine_chair_minutes",
        "clinic_days",
        "closes_at",
    }
    schedule = services.clinic_schedule_update(
        actor=admin,
        clinic=world.clinic_a,
        data={"esketamine_chair_minutes": 150, "clinic_days": "5,0,1"},
    )
    assert schedule.weekdays == (0, 1, 5) and schedule.clinic_days == "0,1,5"
    chair(world.clinic_a)
    course = plan(world.users["prescriber"], screened(world), start_date=date(2026, 3, 7))
    first = course.appointments.order_by("number").first()
    assert first.ends_at - first.starts_at == timedelta(minutes=150)
    assert first.starts_at.astimezone(BOSTON).weekday() == 5
    with pytest.raises(ValidationError, match="Another chair"):
        services.chair_save(actor=admin, clinic_id=world.clinic_a.pk, data={"name": "chair 1"})
    with pytest.raises(PermissionDenied):
        services.chair_save(actor=admin, clinic_id=world.clinic_b.pk, data={"name": "X"})


def test_cost_estimate_uses_the_price_list_and_billing_codes(world):
    admin = world.users["clinic_admin"]
    for kind, price in [
        ("consult", "400"),
        ("esketamine_up_to_56", "850"),
        ("esketamine_over_56", "950"),
        ("iv_infusion", "550"),
    ]:
        services.price_item_set(
            actor=admin,
            clinic_id=world.clinic_a.pk,
            kind=kind,
            unit_price=Decimal(price),
            billing_codes="",
        )
    services.price_item_set(
        actor=admin,
        clinic_id=world.clinic_a.pk,
        kind="esketamine_over_56",
        unit_price=Decimal("975.00"),
        billing_codes="G2083",
    )
    with pytest.raises(ValidationError):
        services.price_item_set(
            actor=admin,
            clinic_id=world.clinic_a.pk,
            kind="consult",
            unit_price="-1",
            billing_codes="",
        )
    chair(world.clinic_a)
    course = plan(world.users["prescriber"], screened(world), dose_mg=84)
    result = estimates.course_estimate(course, list(course.appointments.all()))
    lines = {line.kind: line for line in result.lines}
    assert lines["consult"].total == Decimal("400")
    assert (lines["esketamine_up_to_56"].quantity, lines["esketamine_over_56"].quantity) == (1, 11)
    assert lines["esketamine_over_56"].billing_codes == "G2083"
    assert "esketamine_drug_per_mg" not in lines  # not bought and billed at this clinic
    assert result.total == Decimal("400") + Decimal("850") + 11 * Decimal("975")
    assert estimates.extra_infusion_hours(40) == 0
    assert estimates.extra_infusion_hours(91) == 1
    assert estimates.extra_infusion_hours(240) == 3
