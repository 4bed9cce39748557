"""What the authorization matrix (tests/test_authz_matrix.py) needs for the intake, screening,
course and scheduling routes (issue 5): the objects each scope picks, request bodies, a
snapshot of the tables these routes write, and the effect each successful write must have.

Objects are created directly (not through the services) so setup is quick and records no audit
rows; the matrix then checks the one row the request itself writes. Nothing here imports the
matrix.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.core import clock
from ketaclinic.courses.models import (
    Appointment,
    Chair,
    ClinicSchedule,
    CourseGoal,
    TreatmentCourse,
)
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services
from ketaclinic.screening.models import (
    Allergy,
    AntidepressantTrial,
    BaselineMeasure,
    BaselineVitals,
    ConsentText,
    Diagnosis,
    EligibilityDecision,
    EligibilityOverride,
    Intake,
    MedicalHistory,
    Medication,
    OtherTreatment,
    PdmpCheck,
    PsychiatricHistory,
    RemsEnrolment,
    SignedConsent,
    SubstanceUse,
    TransportPlan,
)

ITEM_MODELS: dict[str, Any] = {
    "diagnosis": Diagnosis,
    "antidepressant-trial": AntidepressantTrial,
    "other-treatment": OtherTreatment,
    "medication": Medication,
    "allergy": Allergy,
    "substance-use": SubstanceUse,
}
ITEM_ROWS: dict[str, dict[str, Any]] = {
    "diagnosis": {"icd10_code": "F33.1"},
    "antidepressant-trial": {
        "drug_name": "sertraline", "dose_mg": Decimal("100"), "weeks": 6, "adequate": True,
        "outcome": "no_response",
    },
    "other-treatment": {"kind": "tms", "outcome": "partial_response"},
    "medication": {"name": "sertraline"},
    "allergy": {"substance": "latex"},
    "substance-use": {"substance": "alcohol", "pattern": "past"},
}  # fmt: skip

TARGETS = {
    "intake": ("intake_id",),
    **{f"item:{kind}": ("item_id",) for kind in ITEM_MODELS},
    "consent": ("consent_id",),
    "needs_review_patient": ("patient_id",),
    "plannable_patient": ("patient_id",),
    "course": ("course_id",),
    "active_course": ("course_id",),
    "appointment": ("appointment_id",),
    "past_appointment": ("appointment_id",),
}
# Path parameters that are not objects.
FIXED_VALUES = {"kind": "diagnosis", "consent_kind": "esketamine"}


def _target_patients(world: Any, persona: str) -> tuple[Patient, Patient]:
    """(own, other): the patient's own record; a patient of a staff member's own clinic."""
    if persona == "patient":
        return world.patient_a, world.patient_b
    if persona == "other_clinic_nurse":
        return world.patient_b, world.patient_a2
    return world.patient_a2, world.patient_b


def _staff_of(patient: Patient, world: Any) -> Any:
    return world.users["nurse" if patient.clinic_id == world.clinic_a.pk else "other_clinic_nurse"]


def future_weekday(days: int) -> date:
    """A Monday-to-Wednesday at least `days` ahead (clear of every clinic's weekend)."""
    day = clock.now().date() + timedelta(days=days)
    while day.weekday() > 2:
        day += timedelta(days=1)
    return day


def yesterday() -> str:
    # Yesterday in every clinic's time zone, whatever the hour in UTC.
    return (clock.now().date() - timedelta(days=1)).isoformat()


def _screened(patient: Patient, world: Any) -> None:
    """The sections course planning requires (ineligible for nothing: eligible for IV)."""
    actor = _staff_of(patient, world)
    scoped = {"patient": patient, "clinic_id": patient.clinic_id}
    MedicalHistory.objects.create(
        **scoped, updated_by=actor, takes_no_medications=True, no_known_allergies=True
    )
    PsychiatricHistory.objects.create(**scoped, updated_by=actor)
    Diagnosis.objects.create(**scoped, recorded_by=actor, icd10_code="F33.2", is_primary=True)


def _chair(clinic_id: int) -> Chair:
    return Chair.objects.get_or_create(clinic_id=clinic_id, name="Matrix chair")[0]


def _decision(patient: Patient, actor: Any) -> EligibilityDecision:
    return EligibilityDecision.objects.create(
        patient=patient, clinic_id=patient.clinic_id, treatment="iv_ketamine",
        status="eligible", reasons=[], facts={}, facts_digest="0" * 64,
        as_of=clock.now().date(), decided_at=clock.now(), triggered_by=actor, trigger="matrix",
    )  # fmt: skip


def _consent(patient: Patient, actor: Any, kind: str = "ketamine_off_label") -> SignedConsent:
    text = services.consent_text_current(patient.organisation_id, kind)
    if text.pk is None:
        text.save()
    return SignedConsent.objects.create(
        patient=patient, clinic_id=patient.clinic_id, consent_text=text, kind=kind,
        text_sha256="0" * 64, patient_signature=patient.full_name,
        patient_signed_on=clock.now().date(), clinician=actor, clinician_signature="Matrix",
        clinician_signed_at=clock.now(),
    )  # fmt: skip


def _at(patient: Patient, day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(patient.clinic.timezone))


def _course(patient: Patient, world: Any, *, status: str) -> TreatmentCourse:
    """An IV course with a future session (+14 days) and one that began an hour ago."""
    actor = _staff_of(patient, world)
    prescriber = world.users["prescriber"]
    chair = _chair(patient.clinic_id)
    course = TreatmentCourse.objects.create(
        patient=patient, clinic_id=patient.clinic_id, treatment="iv_ketamine",
        protocol="iv_ketamine_induction", status=status, start_date=clock.now().date(),
        planned_weeks=3, eligibility_decision=_decision(patient, actor), prescriber=prescriber,
    )  # fmt: skip
    _consent(patient, actor)
    started = clock.now() - timedelta(hours=1)
    for number, (starts, state) in enumerate(
        [(started, "scheduled"), (_at(patient, future_weekday(14), 9), "scheduled")], start=1
    ):
        Appointment.objects.create(
            course=course, patient=patient, clinic_id=patient.clinic_id, chair=chair,
            starts_at=starts, ends_at=starts + timedelta(minutes=90), number=number,
            phase="induction", dose_mg_per_kg=Decimal("0.5"), infusion_minutes=40,
            status=state, created_by=actor,
        )  # fmt: skip
    return course


def fill(target: str, scope: str, persona: str, world: Any, ctx: Any) -> None:
    """Create the object the scope picks; put its id in ctx.values and whose record it is in
    ctx.patient (for the audit checks)."""
    own, other = _target_patients(world, persona)
    patient = own if scope == "own" else other
    actor = _staff_of(patient, world)
    values: dict[str, Any] = {}
    if target == "intake":
        intake = Intake.objects.create(
            patient=patient, clinic_id=patient.clinic_id, referral_source="self",
            referred_on=clock.now().date() - timedelta(days=2), created_by=actor,
        )  # fmt: skip
        values["intake_id"] = intake.pk
    elif target.startswith("item:"):
        kind = target.removeprefix("item:")
        item = ITEM_MODELS[kind].objects.create(
            patient=patient, clinic_id=patient.clinic_id, recorded_by=actor, **ITEM_ROWS[kind]
        )
        values["item_id"] = item.pk
    elif target == "consent":
        values["consent_id"] = _consent(patient, actor).pk
    elif target == "needs_review_patient":
        MedicalHistory.objects.create(
            patient=patient, clinic_id=patient.clinic_id, updated_by=actor, pregnant=True
        )
        values["patient_id"] = patient.pk
    elif target == "plannable_patient":
        _screened(patient, world)
        _chair(patient.clinic_id)
        values["patient_id"] = patient.pk
    elif target in {"course", "active_course", "appointment", "past_appointment"}:
        course = _course(
            patient, world, status="active" if target == "active_course" else "planned"
        )
        values["course_id"] = course.pk
        rows = list(course.appointments.order_by("starts_at"))
        values["appointment_id"] = (rows[0] if target == "past_appointment" else rows[1]).pk
    if scope == "missing":
        values = {key: _missing(key) for key in values}
        patient = None  # type: ignore[assignment]
    ctx.values.update(values)
    ctx.patient = patient
    ctx.patient_id = values.get("patient_id", patient.pk if patient else None)


_MODELS: dict[str, Any] = {
    "intake_id": Intake,
    "item_id": Diagnosis,
    "consent_id": SignedConsent,
    "patient_id": Patient,
    "course_id": TreatmentCourse,
    "appointment_id": Appointment,
}


def _missing(key: str) -> int:
    models = list(ITEM_MODELS.values()) if key == "item_id" else [_MODELS[key]]
    last = max(
        (m.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) for m in models
    )
    return last + 1000


# --- Bodies ---------------------------------------------------------------------------------

NEW_REFERRAL_NAME = "Matrixreferred"
MADRS = {f"q{n}": 2 for n in range(1, 11)}


def _patient_name(ctx: Any) -> str:
    return ctx.patient.full_name if ctx.patient else "Nobody Here"


def bodies() -> dict[str, Any]:
    referral = {
        "referral_source": "psychiatrist",
        "referred_on": yesterday(),
        "intended_treatment": "iv_ketamine",
        "referring_clinician_name": "Dr. Matrix",
    }
    new_patient = {
        "first_name": "Morgan",
        "last_name": NEW_REFERRAL_NAME,
        "date_of_birth": "1990-05-17",
        "sex_at_birth": "female",
    }
    api_items = {
        "diagnosis": {"icd10_code": "F43.12"},
        "antidepressant-trial": {"drug_name": "escitalopram", "dose_mg": "20", "weeks": 8,
                                 "adequate": True, "outcome": "no_response"},
        "other-treatment": {"kind": "ect", "outcome": "response"},
        "medication": {"name": "bupropion", "dose": "150 mg"},
        "allergy": {"substance": "penicillin"},
        "substance-use": {"substance": "cannabis", "pattern": "current"},
    }  # fmt: skip
    later = future_weekday(28)
    return {
        "referral_new_form": lambda ctx: {
            "p-clinic": ctx.clinic_id, **{f"p-{k}": v for k, v in new_patient.items()},
            **{f"r-{k}": v for k, v in referral.items()},
        },
        "referral_form": lambda ctx: referral,
        "referral_json": lambda ctx: {
            **referral, "clinic_id": ctx.patient.clinic_id if ctx.patient else 1,
            "patient_id": ctx.patient_id,
        },
        "intake_form": lambda ctx: {**referral, "referring_clinician_name": "Dr. Changed"},
        "intake_patch": lambda ctx: {"referring_clinician_name": "Dr. Changed"},
        "intake_status_form": lambda ctx: {"status": "withdrawn", "reason": "matrix"},
        "psychiatric_form": lambda ctx: {"psychiatric_hospitalisations": 0},
        "medical_form": lambda ctx: {"no_known_allergies": "on"},
        "pdmp_form": lambda ctx: {"checked_on": yesterday(), "state": "MA"},
        "vitals_form": lambda ctx: {"measured_on": yesterday(), "weight_kg": "80"},
        "transport_form": lambda ctx: {"escort_name": "Matrix Driver"},
        "rems_form": lambda ctx: {"enrolment_id": "SPR-MATRIX", "enrolled_on": yesterday()},
        "diagnosis_form": lambda ctx: {"icd10_code": "F33.2"},
        "remove_form": lambda ctx: {"reason": "matrix"},
        "madrs_form": lambda ctx: {"administered_on": yesterday(), **MADRS},
        "check_form": lambda ctx: {"treatment": "iv_ketamine"},
        "override_form": lambda ctx: {
            "treatment": "iv_ketamine", "reason": "Pregnancy discussed; patient prefers this.",
        },
        "consent_form": lambda ctx: {
            "patient_signature": _patient_name(ctx), "patient_signed_on": yesterday(),
            "confirm": "on",
        },
        "consent_text_form": lambda ctx: {
            "kind": "esketamine", "title": "Matrix consent", "body": "Matrix wording. " * 10,
        },
        "empty_json": lambda ctx: {},
        "medical_json": lambda ctx: {"no_known_allergies": True},
        **{f"add_{kind}_json": (lambda ctx, body=body: body) for kind, body in api_items.items()},
        **{f"put_{kind}_json": (lambda ctx, body=body: body) for kind, body in api_items.items()},
        "pdmp_json": lambda ctx: {"checked_on": yesterday(), "state": "MA"},
        "vitals_json": lambda ctx: {"measured_on": yesterday(), "weight_kg": "80"},
        "measure_json": lambda ctx: {
            "instrument": "phq9", "administered_on": yesterday(), "answers": [1] * 9,
        },
        "check_json": lambda ctx: {"treatment": "iv_ketamine"},
        "override_json": lambda ctx: {
            "treatment": "iv_ketamine", "reason": "Pregnancy discussed; patient prefers this.",
        },
        "consent_json": lambda ctx: {
            "kind": "esketamine", "patient_signature": _patient_name(ctx),
            "patient_signed_on": yesterday(),
        },
        "reason_json": lambda ctx: {"reason": "matrix"},
        "rems_json": lambda ctx: {"enrolment_id": "SPR-MATRIX", "enrolled_on": yesterday()},
        "transport_json": lambda ctx: {"escort_name": "Matrix Driver"},
        # courses
        "schedule_form": lambda ctx: {
            "section": "schedule", "clinic_id": ctx.clinic_id, "clinic_days": ["0", "1", "2"],
            "opens_at": "07:00", "closes_at": "19:00", "esketamine_chair_minutes": "150",
            "iv_chair_minutes": "90", "im_chair_minutes": "90", "oral_chair_minutes": "120",
        },
        "course_form": lambda ctx: {
            "protocol": "iv_ketamine_induction", "start_date": future_weekday(7).isoformat(),
            "session_time": "09:00",
        },
        "course_json": lambda ctx: {
            "patient_id": ctx.patient_id, "protocol": "iv_ketamine_induction",
            "start_date": future_weekday(7).isoformat(), "session_time": "09:00",
        },
        "stop_form": lambda ctx: {"status": "stopped", "reason": "matrix"},
        "goal_form": lambda ctx: {"personal_goal": "Walk the dog again"},
        "goal_json": lambda ctx: {"kind": "personal", "text": "Walk the dog again"},
        "course_booster_form": lambda ctx: {
            "day": later.isoformat(), "session_time": "09:00", "reason": "matrix booster",
        },
        "maintenance_form": lambda ctx: {
            "from_date": later.isoformat(), "cadence": "every_n_weeks", "interval_weeks": 3,
            "sessions": 1, "session_time": "09:00",
        },
        "reschedule_form": lambda ctx: {
            "day": later.isoformat(), "session_time": "10:00", "reason": "matrix",
        },
        "dose_form": lambda ctx: {"dose_mg_per_kg": "0.6", "reason": "matrix"},
        "dose_json": lambda ctx: {"dose_mg_per_kg": "0.6", "reason": "matrix"},
        "chair_json": lambda ctx: {"clinic_id": ctx.clinic_id, "name": "Matrix bay"},
    }  # fmt: skip


# --- State and effects ----------------------------------------------------------------------


def _tagged(**models: Any) -> list[tuple[str, int]]:
    """(table name, patient id) of every row of these tables."""
    return sorted(
        (name, patient_id)
        for name, model in models.items()
        for patient_id in model.objects.values_list("patient_id", flat=True)
    )


def state() -> dict[str, Any]:
    items = {
        kind: sorted(
            model.objects.values_list("pk", "patient_id", "entered_in_error", "updated_at")
        )
        for kind, model in ITEM_MODELS.items()
    }
    return {
        "intakes": sorted(
            Intake.objects.values_list("pk", "patient_id", "status", "referring_clinician_name")
        ),
        **{f"items:{kind}": rows for kind, rows in items.items()},
        "diagnosis_codes": sorted(Diagnosis.objects.values_list("pk", "icd10_code")),
        "singletons": _tagged(
            psychiatric=PsychiatricHistory,
            medical=MedicalHistory,
            transport=TransportPlan,
            rems=RemsEnrolment,
        ),
        "records": _tagged(pdmp=PdmpCheck, vitals=BaselineVitals, measure=BaselineMeasure),
        "decisions": sorted(EligibilityDecision.objects.values_list("pk", "patient_id", "status")),
        "overrides": sorted(EligibilityOverride.objects.values_list("pk", "patient_id")),
        "consents": sorted(SignedConsent.objects.values_list("pk", "patient_id", "withdrawn_at")),
        "consent_texts": sorted(ConsentText.objects.values_list("pk", "version")),
        "courses": sorted(
            TreatmentCourse.objects.values_list("pk", "patient_id", "status", "phase")
        ),
        "goals": sorted(CourseGoal.objects.values_list("pk", "course_id")),
        "appointments": sorted(
            Appointment.objects.values_list("pk", "course_id", "status", "dose_mg_per_kg")
        ),
        "chairs": sorted(Chair.objects.values_list("pk", "clinic_id", "name")),
        "schedules": sorted(ClinicSchedule.objects.values_list("clinic_id", "clinic_days")),
    }


KEY = "treatment"  # this module's key in the matrix's state()


def _new(before: dict, after: dict, key: str) -> list[Any]:
    return sorted(set(after[KEY][key]) - set(before[KEY][key]))


def _only(before: dict, after: dict, *keys: str) -> None:
    """Nothing outside `keys` changed, in these tables or elsewhere (patients, tokens)."""
    for name in ("patients", "tokens"):
        assert after[name] == before[name], name
    for key in after[KEY]:
        if key not in keys:
            assert after[KEY][key] == before[KEY][key], key


def _one_new(key: str, *also: str, check: Any = None) -> Any:
    def effect(before: dict, after: dict, ctx: Any, response: Any) -> None:
        new = _new(before, after, key)
        assert len(new) == 1, (key, new)
        if check is not None:
            check(new[0], ctx)
        _only(before, after, key, *also)

    return effect


def _of_patient(row: Any, ctx: Any) -> None:
    assert row[1] == ctx.patient_id, (row, ctx.patient_id)


def _referral_with_patient(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new_patients = sorted(set(after["patients"]) - set(before["patients"]))
    assert [(p[1], p[2]) for p in new_patients] == [(ctx.clinic_id, NEW_REFERRAL_NAME)]
    new = _new(before, after, "intakes")
    assert [row[1] for row in new] == [new_patients[0][0]]
    for key in after[KEY]:
        if key not in {"intakes", "decisions"}:
            assert after[KEY][key] == before[KEY][key], key


def _changed(key: str, expect: Any, *also: str) -> Any:
    """One row of `key` changed (same count) and `expect(new_row, ctx)` holds."""

    def effect(before: dict, after: dict, ctx: Any, response: Any) -> None:
        new = _new(before, after, key)
        assert len(new) == 1 and len(after[KEY][key]) == len(before[KEY][key]), new
        expect(new[0], ctx)
        _only(before, after, key, *also)

    return effect


def _appointment_is(status: str) -> Any:
    def expect(row: Any, ctx: Any) -> None:
        assert (row[0], row[2]) == (ctx.values["appointment_id"], status)

    return expect


def effects() -> dict[str, Any]:
    table = {
        "referral_with_patient": _referral_with_patient,
        "intake_created": _one_new("intakes", "decisions", check=_of_patient),
        "intake_updated": _changed(
            "intakes", lambda row, ctx: row[3] == "Dr. Changed" or _fail(row), "decisions"
        ),
        "intake_withdrawn": _changed(
            "intakes", lambda row, ctx: row[2] == "withdrawn" or _fail(row)
        ),
        "singleton_created": _one_new("singletons", "decisions", "intakes"),
        "record_created": _one_new("records", "intakes"),
        "decision_created": _one_new("decisions", check=_of_patient),
        "override_created": _one_new("overrides", "decisions", check=_of_patient),
        "consent_created": _one_new("consents", "consent_texts", check=_of_patient),
        "consent_withdrawn": _changed(
            "consents", lambda row, ctx: row[2] is not None or _fail(row)
        ),
        "consent_text_created": _one_new("consent_texts"),
        "diagnosis_changed": _changed(
            "diagnosis_codes",
            lambda row, ctx: row[1] == "F33.2" or _fail(row),
            "decisions",
            "items:diagnosis",
        ),
        "course_created": _one_new(
            "courses", "appointments", "decisions", "intakes", check=_of_patient
        ),
        "course_stopped": _changed(
            "courses", lambda row, ctx: row[2] == "stopped" or _fail(row), "appointments"
        ),
        "course_started": _changed("courses", lambda row, ctx: row[2] == "active" or _fail(row)),
        "course_in_maintenance": _changed(
            "courses", lambda row, ctx: row[3] == "maintenance" or _fail(row), "appointments"
        ),
        "goal_created": _one_new("goals"),
        "appointment_booked": _one_new("appointments", "courses"),
        "appointment_moved": _rescheduled,
        "appointment_cancelled": _changed("appointments", _appointment_is("cancelled")),
        "appointment_missed": _changed("appointments", _appointment_is("missed")),
        "appointment_given": _changed("appointments", _appointment_is("completed"), "courses"),
        "dose_changed": _changed(
            "appointments", lambda row, ctx: row[3] == Decimal("0.6") or _fail(row)
        ),
        "chair_created": _one_new("chairs"),
        "schedule_created": _one_new("schedules"),
    }
    for kind in ITEM_MODELS:
        table[f"{kind}_added"] = _one_new(f"items:{kind}", "decisions", "intakes",
                                          "diagnosis_codes", check=_of_patient)  # fmt: skip
        table[f"{kind}_removed"] = _changed(
            f"items:{kind}", lambda row, ctx: row[2] is True or _fail(row), "decisions"
        )
        table[f"{kind}_replaced"] = _changed(
            f"items:{kind}",
            lambda row, ctx: row[0] == ctx.values["item_id"] or _fail(row),
            "decisions",
            "diagnosis_codes",
        )
    return table


def _rescheduled(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = _new(before, after, "appointments")
    moved = [row for row in new if row[0] == ctx.values["appointment_id"]]
    booked = [row for row in new if row[0] != ctx.values["appointment_id"]]
    assert [row[2] for row in moved] == ["rescheduled"] and len(booked) == 1, new
    _only(before, after, "appointments")


def _fail(row: Any) -> bool:
    raise AssertionError(row)
