"""Courses: the eligibility and screening gates, plans booked as appointments, the start gates
(consent, REMS patient enrolment, clinic certification), doses, status changes, maintenance and
boosters. Every refusal leaves the database as it was."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.courses import services
from ketaclinic.courses.models import Appointment, TreatmentCourse
from ketaclinic.screening import services as screening
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.models import Intake, SignedConsent
from tests.screening.builders import TODAY, chair, plan, ready_for_esketamine, screen

pytestmark = pytest.mark.usefixtures("frozen_now")
BOSTON = ZoneInfo("America/New_York")
OVERRIDE = "Lorazepam at night only; sedation risk discussed; two failed trials documented."


@pytest.fixture
def prepared(world):
    """Patient A2 referred and fully screened (eligible for esketamine TRD), one chair."""
    screening.referral_create(
        actor=world.users["front_desk"],
        clinic_id=world.clinic_a.pk,
        patient=world.patient_a2,
        data={
            "referral_source": "self",
            "referred_on": TODAY,
            "intended_treatment": "esketamine_trd",
        },
    )
    screen(world.users["nurse"], world.patient_a2)
    chair(world.clinic_a)
    return world


def test_plan_becomes_appointments_on_clinic_days_at_the_chosen_time(prepared):
    world = prepared
    course = plan(world.users["prescriber"], world.patient_a2, dose_mg=84)
    rows = list(course.appointments.order_by("number"))
    assert len(rows) == 12  # label schedule weeks 1-8: 4 x 2 + 4 x 1
    assert [r.phase for r in rows] == ["induction"] * 8 + ["maintenance"] * 4
    assert all(r.starts_at.astimezone(BOSTON).time() == time(9, 0) for r in rows)
    assert all(r.starts_at.astimezone(BOSTON).weekday() < 5 for r in rows)
    assert all(r.ends_at - r.starts_at == timedelta(minutes=135) for r in rows)  # >= 2 h 15
    assert rows[0].dose_mg == 56 and {r.dose_mg for r in rows[1:]} == {84}  # day 1 = 56 mg
    assert course.status == "planned" and course.eligibility_decision.status == "eligible"
    assert Intake.objects.get().status == "accepted"
    event = AuditEvent.objects.filter(object_type="courses.treatmentcourse").get()
    assert event.changes["sessions"] == 12 and event.changes["intake_status"]["new"] == "accepted"
    assert len(event.changes["appointments"]) == 12


def test_iv_course_lengths_and_dose(prepared):
    world = prepared
    screening.history_item_add(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="diagnosis",
        data={"icd10_code": "F43.12"},
    )
    course = plan(
        world.users["prescriber"],
        world.patient_a2,
        "iv_ketamine_induction",
        dose_mg_per_kg=Decimal("0.75"),
    )
    rows = list(course.appointments.all())
    assert len(rows) == 6 and (rows[-1].starts_at - rows[0].starts_at).days < 21
    assert all(r.ends_at - r.starts_at == timedelta(minutes=90) for r in rows)
    assert {(r.dose_mg_per_kg, r.infusion_minutes) for r in rows} == {(Decimal("0.75"), 40)}


def test_ineligible_blocks_course_creation_with_its_reasons(prepared):
    world = prepared
    screening.medical_history_update(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        data={
            "no_known_allergies": True,
            "takes_no_medications": True,
            "intracerebral_hemorrhage_history": True,
        },
    )
    with pytest.raises(Blocked) as raised:
        plan(world.users["prescriber"], world.patient_a2)
    assert "Ineligible" in raised.value.summary
    assert [r.code for r in raised.value.reasons] == ["intracerebral_hemorrhage_history"]
    assert raised.value.reasons[0].source.startswith("Spravato PI §4")
    assert not TreatmentCourse.objects.exists() and not Appointment.objects.exists()
    assert Intake.objects.get().status == "screening"


def test_needs_review_blocks_until_a_prescriber_signs_an_override(prepared):
    world = prepared
    screening.history_item_add(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="medication",
        data={"name": "lorazepam"},
    )
    with pytest.raises(Blocked) as raised:
        plan(world.users["prescriber"], world.patient_a2)
    assert "Needs review" in raised.value.summary
    assert [r.code for r in raised.value.reasons] == ["cns_depressant"]
    assert not TreatmentCourse.objects.exists()
    override = screening.eligibility_override_sign(
        actor=world.users["prescriber"],
        patient=world.patient_a2,
        treatment="esketamine_trd",
        reason=OVERRIDE,
    )
    course = plan(world.users["prescriber"], world.patient_a2)
    assert course.eligibility_override == override


def test_incomplete_screening_blocks(world):
    chair(world.clinic_a)
    with pytest.raises(Blocked) as raised:
        plan(world.users["prescriber"], world.patient_a2)
    assert {r.code for r in raised.value.reasons} >= {
        "medical_history_missing",
        "diagnosis_missing",
    }


def test_only_prescribers_plan_courses(prepared):
    world = prepared
    for persona in ("nurse", "front_desk", "clinic_admin", "auditor", "other_clinic_nurse"):
        with pytest.raises(PermissionDenied):
            plan(world.users[persona], world.patient_a2)
    assert not TreatmentCourse.objects.exists()


def test_one_open_course_per_patient_and_bad_input(prepared):
    world = prepared
    prescriber, patient = world.users["prescriber"], world.patient_a2
    cases = [
        ({"protocol": "made_up"}, "protocol"),
        ({"start_date": TODAY - timedelta(days=1)}, "start_date"),
        ({"weeks": 0}, "weeks"),
        ({"dose_mg": 28}, "dose_mg"),  # TRD allows 56 or 84
        ({"dose_mg": 100}, "dose_mg"),
        ({"chair_id": 999999}, "chair"),
        ({"session_time": time(17, 0)}, "__all__"),  # 17:00 + 2 h 15 runs past closing
        ({"session_time": time(6, 0)}, "__all__"),
        ({"goals": [{"kind": "target_score", "instrument": "phq9", "target_total": 40}]}, "goals"),
    ]
    for overrides, field in cases:
        protocol = overrides.pop("protocol", "esketamine_trd")
        with pytest.raises(ValidationError) as raised:
            plan(prescriber, patient, protocol, **overrides)
        assert field in raised.value.message_dict, (overrides, raised.value.message_dict)
    assert not TreatmentCourse.objects.exists() and not Appointment.objects.exists()
    plan(prescriber, patient)
    with pytest.raises(ValidationError, match="already has an open course"):
        plan(prescriber, patient, "iv_ketamine_induction")


def test_esketamine_first_session_needs_consent_rems_and_a_certified_clinic(prepared):
    world = prepared
    nurse = world.users["nurse"]
    course = plan(world.users["prescriber"], world.patient_a2)
    with pytest.raises(Blocked) as raised:
        services.course_start(actor=nurse, course=course)
    assert [r.code for r in raised.value.reasons] == [
        "consent_unsigned",
        "rems_patient_not_enrolled",
        "rems_setting_not_certified",
    ]
    assert all(r.source for r in raised.value.reasons)
    ready_for_esketamine(nurse, world.patient_a2)
    with pytest.raises(Blocked) as raised:
        services.course_start(actor=nurse, course=course)
    assert [r.code for r in raised.value.reasons] == ["rems_setting_not_certified"]
    world.clinic_a.rems_certified = True
    world.clinic_a.save()
    course.refresh_from_db()
    started = services.course_start(actor=nurse, course=course)
    assert started.status == "active" and started.started_at is not None
    with pytest.raises(PermissionDenied):
        services.course_start(actor=world.users["front_desk"], course=course)


def test_racemic_ketamine_needs_the_signed_off_label_consent(prepared):
    world = prepared
    course = plan(world.users["prescriber"], world.patient_a2, "iv_ketamine_induction")
    with pytest.raises(Blocked) as raised:
        services.course_start(actor=world.users["nurse"], course=course)
    assert [r.code for r in raised.value.reasons] == ["consent_unsigned"]
    screening.consent_sign(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="esketamine",
        data={"patient_signature": world.patient_a2.full_name, "patient_signed_on": TODAY},
    )
    with pytest.raises(Blocked):  # the esketamine form is not the off-label consent
        services.course_start(actor=world.users["nurse"], course=course)
    screening.consent_sign(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="ketamine_off_label",
        data={"patient_signature": world.patient_a2.full_name, "patient_signed_on": TODAY},
    )
    assert services.course_start(actor=world.users["nurse"], course=course).status == "active"


def test_recording_sessions_rechecks_the_gates(prepared, time_machine):
    world = prepared
    world.clinic_a.rems_certified = True
    world.clinic_a.save()
    nurse = world.users["nurse"]
    ready_for_esketamine(nurse, world.patient_a2)
    course = plan(world.users["prescriber"], world.patient_a2)
    first, second = course.appointments.order_by("number")[:2]
    with pytest.raises(ValidationError, match="future session"):
        services.appointment_complete(actor=nurse, appointment=first)
    time_machine.move_to(first.starts_at + timedelta(minutes=130))
    done = services.appointment_complete(actor=nurse, appointment=first)
    course.refresh_from_db()
    assert done.status == "completed" and course.status == "active"
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.changes["course_status"] == {"old": "planned", "new": "active"}
    # Consent withdrawn: the next session is refused with the reason.
    screening.consent_withdraw(actor=nurse, consent=SignedConsent.objects.get(), reason="stop")
    time_machine.move_to(second.starts_at + timedelta(minutes=10))
    with pytest.raises(Blocked) as raised:
        services.appointment_complete(actor=nurse, appointment=second)
    assert [r.code for r in raised.value.reasons] == ["consent_unsigned"]
    second.refresh_from_db()
    assert second.status == "scheduled"


def test_dose_changes(prepared):
    world = prepared
    prescriber = world.users["prescriber"]
    course = plan(prescriber, world.patient_a2)
    first, second = course.appointments.order_by("number")[:2]
    with pytest.raises(ValidationError, match="Session 1 is 56 mg"):
        services.appointment_set_dose(actor=prescriber, appointment=first, dose_mg=84, reason="x")
    with pytest.raises(ValidationError) as raised:
        services.appointment_set_dose(actor=prescriber, appointment=second, dose_mg=70, reason="x")
    assert "dose_mg" in raised.value.message_dict
    with pytest.raises(ValidationError, match="reason"):
        services.appointment_set_dose(actor=prescriber, appointment=second, dose_mg=84, reason="")
    with pytest.raises(PermissionDenied):
        services.appointment_set_dose(
            actor=world.users["nurse"], appointment=second, dose_mg=84, reason="x"
        )
    changed = services.appointment_set_dose(
        actor=prescriber, appointment=second, dose_mg=84, reason="Partial response at 56 mg"
    )
    assert changed.dose_mg == 84
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.changes["dose_mg"] == {"old": 56, "new": 84}


def test_iv_dose_limit_comes_from_the_clinical_settings(prepared):
    world = prepared
    with pytest.raises(ValidationError) as raised:
        plan(
            world.users["prescriber"],
            world.patient_a2,
            "iv_ketamine_induction",
            dose_mg_per_kg=Decimal("2.5"),
        )
    assert "above the limit of 2 mg/kg" in raised.value.message_dict["dose_mg_per_kg"][0]


def test_status_changes_follow_the_table_and_cancel_what_is_left(prepared):
    world = prepared
    prescriber = world.users["prescriber"]
    world.clinic_a.rems_certified = True
    world.clinic_a.save()
    ready_for_esketamine(world.users["nurse"], world.patient_a2)
    course = plan(prescriber, world.patient_a2)
    with pytest.raises(ValidationError, match="cannot become"):
        services.course_change_status(actor=prescriber, course=course, status="paused", reason="x")
    services.course_start(actor=world.users["nurse"], course=course)
    with pytest.raises(ValidationError, match="reason"):
        services.course_change_status(actor=prescriber, course=course, status="paused")
    services.course_change_status(actor=prescriber, course=course, status="paused", reason="Flu")
    services.course_change_status(actor=prescriber, course=course, status="active")
    stopped = services.course_change_status(
        actor=prescriber, course=course, status="stopped", reason="Dissociation too distressing"
    )
    assert stopped.status == "stopped" and stopped.ended_at
    statuses = set(course.appointments.values_list("status", "status_reason"))
    assert statuses == {("cancelled", "Course stopped: Dissociation too distressing")}
    with pytest.raises(ValidationError):
        services.course_change_status(actor=prescriber, course=course, status="active")


def test_esketamine_maintenance_on_the_label_schedule_and_weekly(prepared):
    world = prepared
    prescriber = world.users["prescriber"]
    world.clinic_a.rems_certified = True
    world.clinic_a.save()
    ready_for_esketamine(world.users["nurse"], world.patient_a2)
    course = plan(prescriber, world.patient_a2)
    services.course_start(actor=world.users["nurse"], course=course)
    week5 = course.start_date + timedelta(weeks=4)
    booked = services.course_start_maintenance(
        actor=prescriber,
        course=course,
        from_date=week5,
        cadence="label",
        session_time=time(10, 0),
        weeks=16,
    )
    days = [a.starts_at.astimezone(BOSTON).date() for a in booked]
    gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
    assert len(booked) == 8  # weekly in weeks 5-8, then every 2 weeks to week 16
    assert all(5 <= g <= 9 for g in gaps[:3]) and all(12 <= g <= 16 for g in gaps[4:])
    cancelled = course.appointments.filter(status="cancelled")
    assert cancelled.count() == 4 and all(a.phase == "maintenance" for a in cancelled)
    course.refresh_from_db()
    assert (course.phase, course.maintenance_cadence) == ("maintenance", "label")

    weekly = services.course_start_maintenance(
        actor=prescriber,
        course=course,
        from_date=week5,
        cadence="weekly",
        session_time=time(10, 0),
        weeks=12,
    )
    weekly_days = [a.starts_at.astimezone(BOSTON).date() for a in weekly]
    assert len(weekly) == 8 and all(
        (b - a).days in (6, 7, 8) for a, b in zip(weekly_days, weekly_days[1:], strict=False)
    )
    with pytest.raises(ValidationError) as raised:
        services.course_start_maintenance(
            actor=prescriber,
            course=course,
            from_date=week5,
            cadence="every_n_weeks",
            session_time=time(10, 0),
            interval_weeks=3,
            sessions=2,
        )
    assert "cadence" in raised.value.message_dict


def test_iv_maintenance_every_n_weeks_and_mdsi_has_none(prepared):
    world = prepared
    prescriber = world.users["prescriber"]
    screening.consent_sign(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="ketamine_off_label",
        data={"patient_signature": world.patient_a2.full_name, "patient_signed_on": TODAY},
    )
    course = plan(prescriber, world.patient_a2, "iv_ketamine_induction")
    with pytest.raises(ValidationError, match="active course"):
        services.course_start_maintenance(
            actor=prescriber,
            course=course,
            from_date=TODAY + timedelta(days=30),
            cadence="every_n_weeks",
            session_time=time(9, 0),
            interval_weeks=3,
            sessions=3,
        )
    services.course_start(actor=world.users["nurse"], course=course)
    booked = services.course_start_maintenance(
        actor=prescriber,
        course=course,
        from_date=date(2026, 4, 6),
        cadence="every_n_weeks",
        session_time=time(9, 0),
        interval_weeks=3,
        sessions=3,
    )
    assert [a.starts_at.astimezone(BOSTON).date() for a in booked] == [
        date(2026, 4, 6),
        date(2026, 4, 27),
        date(2026, 5, 18),
    ]
    assert [a.number for a in booked] == [7, 8, 9]


def test_boosters_need_a_reason_and_reopen_a_completed_course(prepared):
    world = prepared
    prescriber = world.users["prescriber"]
    screening.consent_sign(
        actor=world.users["nurse"],
        patient=world.patient_a2,
        kind="ketamine_off_label",
        data={"patient_signature": world.patient_a2.full_name, "patient_signed_on": TODAY},
    )
    course = plan(prescriber, world.patient_a2, "iv_ketamine_induction")
    services.course_start(actor=world.users["nurse"], course=course)
    services.course_change_status(actor=prescriber, course=course, status="completed")
    with pytest.raises(ValidationError, match="reason"):
        services.booster_add(
            actor=prescriber,
            course=course,
            day=date(2026, 5, 4),
            session_time=time(9, 0),
            reason=" ",
        )
    with pytest.raises(PermissionDenied):
        services.booster_add(
            actor=world.users["nurse"],
            course=course,
            day=date(2026, 5, 4),
            session_time=time(9, 0),
            reason="PHQ-9 up to 14",
        )
    booster = services.booster_add(
        actor=prescriber,
        course=course,
        day=date(2026, 5, 4),
        session_time=time(9, 0),
        reason="PHQ-9 back up to 14",
    )
    course.refresh_from_db()
    assert (booster.phase, booster.booster_reason, course.status) == (
        "booster",
        "PHQ-9 back up to 14",
        "active",
    )
    assert booster.dose_mg_per_kg == Decimal("0.5")
