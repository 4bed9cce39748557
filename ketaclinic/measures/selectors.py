"""Reads of measurement-based care, always scoped through `accounts.access`.

Staff reach a patient's measures with `measures.view` at the patient's clinic; a patient reaches
only their own record through `portal.own` (security R2). Selectors own their joins so list pages
and the chart panel run a fixed number of queries whatever the record counts.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import (
    Case,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models import Count as DbCount
from django.db.models.functions import Cast, TruncDate
from django.http import Http404

from ketaclinic.accounts import access
from ketaclinic.accounts.models import User
from ketaclinic.clinical import ClinicalSettings
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_DATETIME,
    PLACEHOLDER_ID,
    PLACEHOLDER_ZONE,
    CompiledModelQuery,
    CompiledValuesQuery,
    PreparedText,
    objects_together,
)
from ketaclinic.courses.choices import OPEN_COURSE_STATUSES
from ketaclinic.courses.models import Appointment, TreatmentCourse
from ketaclinic.measures import benchmarks, trajectories
from ketaclinic.measures.choices import AlertPriority, AssignmentStatus, EnrolmentStatus
from ketaclinic.measures.models import (
    Assignment,
    BoosterRecommendation,
    CheckIn,
    ClinicMeasurePolicy,
    JournalEntry,
    MeasurementEnrolment,
    MeasurementPlan,
    OnDutyShift,
    Response,
    SafetyAlert,
)
from ketaclinic.measures.timeline import (
    SESSION_STATUSES,
    CareTimeline,
    course_appointments_prefetch,
    timeline_for,
)
from ketaclinic.measures.trajectories import ScorePoint, Trajectory, point_from
from ketaclinic.patients.models import Patient

# --- Scope -----------------------------------------------------------------------------------


def patient_for(user: Any, patient_id: Any) -> Patient:
    """A patient whose measures the user may read: staff with measures.view at the patient's
    clinic, or the patient themself. 404 otherwise (missing and forbidden look alike)."""
    if not access.has_permission(user, "portal.own"):
        return access.get_patient(user, patient_id, "measures.view")
    if access.has_permission(user, "measures.view"):
        try:
            return access.get_patient(user, patient_id, "measures.view")
        except Http404:
            pass
    return access.get_patient(user, patient_id, "portal.own")


def readable_patients(user: Any) -> QuerySet[Patient]:
    """Every patient whose measures the user may read (one query when used as a subquery)."""
    staff = access.clinic_ids_for(user, "measures.view")
    own = access.patients_for(user, "portal.own").values("pk")
    return Patient.objects.filter(Q(clinic_id__in=staff) | Q(pk__in=own))


def portal_patient(user: Any) -> Patient:
    """The signed-in patient's own record; 404 for anyone without one."""
    patient = access.patients_for(user, "portal.own").select_related("clinic").first()
    if patient is None:
        raise Http404
    return patient


# --- Policy, plans, enrolments ---------------------------------------------------------------


def policy_for(clinic_id: int) -> ClinicMeasurePolicy:
    """The clinic's policy, or the defaults (unsaved) when it never changed them."""
    return ClinicMeasurePolicy.objects.filter(clinic_id=clinic_id).first() or ClinicMeasurePolicy(
        clinic_id=clinic_id
    )


def policies_for(clinic_ids: Iterable[int]) -> dict[int, ClinicMeasurePolicy]:
    ids = set(clinic_ids)
    found = {p.clinic_id: p for p in ClinicMeasurePolicy.objects.filter(clinic_id__in=ids)}
    return {cid: found.get(cid) or ClinicMeasurePolicy(clinic_id=cid) for cid in ids}


def clinical_settings_for(clinic_id: int) -> ClinicalSettings:
    return ClinicalSettings(madrs_remission_max=policy_for(clinic_id).madrs_remission_max)


def plans_for(user: Any, permission: str = "measures.configure") -> QuerySet[MeasurementPlan]:
    return (
        MeasurementPlan.objects.filter(clinic_id__in=access.clinic_ids_for(user, permission))
        .select_related("clinic")
        .prefetch_related("items")
        .order_by("clinic__name", "-is_active", "name")
    )


def plan_for(user: Any, plan_id: Any, permission: str = "measures.configure") -> MeasurementPlan:
    """A plan of one of the user's clinics: 403 without the permission anywhere, else 404."""
    access.require(user, permission)
    try:
        pk = int(plan_id)
    except (TypeError, ValueError):
        raise Http404 from None
    plan = plans_for(user, permission).filter(pk=pk).first()
    if plan is None:
        raise Http404
    return plan


def courses_to_measure(patient_id: int) -> QuerySet[TreatmentCourse]:
    """The patient's open treatment courses that no measurement plan follows yet."""
    return TreatmentCourse.objects.filter(
        patient_id=patient_id,
        status__in=OPEN_COURSE_STATUSES,
        measurement_enrolments__isnull=True,
    ).order_by("-start_date", "-pk")


def active_enrolment(patient_id: int) -> MeasurementEnrolment | None:
    return (
        MeasurementEnrolment.objects.filter(patient_id=patient_id, status=EnrolmentStatus.ACTIVE)
        .select_related("plan", "prescriber", "clinic", "course")
        .first()
    )


def _latest_enrolment_order() -> tuple[Any, ...]:
    # The id last: `_latest_course_sessions_query` must pick the same enrolment.
    return (
        Case(When(status=EnrolmentStatus.ACTIVE, then=Value(0)), default=Value(1)),
        "-started_at",
        "-id",
    )


def _latest_enrolment_query(patient_id: int) -> QuerySet[MeasurementEnrolment]:
    return (
        MeasurementEnrolment.objects.filter(patient_id=patient_id)
        .select_related("plan", "prescriber", "clinic", "course")
        .order_by(*_latest_enrolment_order())[:1]
    )


def _latest_course_sessions_query(patient_id: int) -> QuerySet[Appointment]:
    """The appointments `timeline.course_appointments` reads for the course of the patient's
    latest enrolment (none when it has no course), without the enrolment in hand: so the
    chart can read them together with the enrolment."""
    course_id = (
        MeasurementEnrolment.objects.filter(patient_id=patient_id)
        .order_by(*_latest_enrolment_order())
        .values("course_id")[:1]
    )
    return Appointment.objects.filter(
        course_id=Subquery(course_id), status__in=sorted(SESSION_STATUSES)
    ).order_by("starts_at", "pk")


# Read on every chart of an enrolled patient: compiled once (core.compiled_query).
_LATEST_ENROLMENT = CompiledModelQuery(_latest_enrolment_query, patient_id=PLACEHOLDER_ID)
_LATEST_COURSE_SESSIONS = CompiledModelQuery(
    _latest_course_sessions_query, patient_id=PLACEHOLDER_ID
)


def outcomes_reads(patient: Patient, present: Presence, reads: Any) -> dict[str, Any]:
    """Ask the chart's reads (patients.chart.ChartReads) for what `patient_outcomes` and the
    panel's alerts read, as far as `present` says there is anything."""
    patient_id = patient.pk
    return {
        "enrolment": reads.add(_LATEST_ENROLMENT, patient_id=patient_id)
        if present.enrolment
        else None,
        "course_sessions": reads.add(_LATEST_COURSE_SESSIONS, patient_id=patient_id)
        if present.enrolment
        else None,
        "alerts": reads.add(_PATIENT_ALERTS, patient_id=patient_id) if present.alerts else None,
        "points": reads.add(_POINTS, patient_id=patient_id, zone=patient.clinic.timezone)
        if present.responses
        else None,
    }


def latest_enrolment(patient_id: int) -> MeasurementEnrolment | None:
    """The active enrolment, else the most recent one that ended."""
    found = _LATEST_ENROLMENT.objects(patient_id=patient_id)
    return found[0] if found else None


# --- Scores and trajectories -----------------------------------------------------------------

_POINT_FIELDS = ("pk", "instrument", "completed_at", "total", "severity", "flags")


def score_points(patient_id: int, instrument: str, tz: ZoneInfo) -> list[ScorePoint]:
    rows = (
        Response.objects.filter(patient_id=patient_id, instrument=instrument)
        .only(*_POINT_FIELDS)
        .order_by("completed_at", "pk")
    )
    return [point_from(row, tz) for row in rows]


class _LocalDay(TruncDate):
    """TruncDate, without its Python pass over every row on PostgreSQL: psycopg reads a date
    as a date already, and the pass (a converter turns each row into a list) cost more than
    the conversion it replaced on a two-year chart."""

    def get_db_converters(self, connection: Any) -> list[Any]:
        if connection.vendor == "postgresql":
            return []
        return super().get_db_converters(connection)  # type: ignore[no-any-return]


_POINTS = CompiledValuesQuery(
    lambda patient_id, zone: (
        Response.objects.filter(patient_id=patient_id)
        .order_by("completed_at", "pk")
        .annotate(
            # The day in the clinic's time zone, from the database: converting each time in
            # Python (astimezone) cost more than the rest of the row on a two-year chart.
            local_day=_LocalDay("completed_at", tzinfo=ZoneInfo(zone)),
            # The flags as their JSON text: nearly every score has none ("[]"), and decoding a
            # JSON list per score costs more than the rest of the row.
            flags_json=Cast("flags", TextField()),
        )
        .values("pk", "instrument", "completed_at", "local_day", "total", "severity", "flags_json")
    ),
    patient_id=PLACEHOLDER_ID,
    zone=PLACEHOLDER_ZONE,
)


def _flags(text: str | None) -> tuple[str, ...]:
    if not text or text == "[]":
        return ()
    return tuple(json.loads(text))


def points_by_instrument(
    patient_id: int, tz: ZoneInfo, rows: list[Any] | None = None
) -> dict[str, list[ScorePoint]]:
    """Every score of a patient by instrument, oldest first (plain tuples: a two-year chart
    reads hundreds of them), each on its day in `tz`; `rows`: the same read made already with
    the chart's reads (`outcomes_reads`, in the zone of the patient's clinic, as `tz` is)."""
    grouped: dict[str, list[ScorePoint]] = defaultdict(list)
    if rows is None:
        rows = _POINTS.tuples(patient_id=patient_id, zone=tz.key)
    # Each named tuple made from a tuple, not through its __new__ (one call fewer per score).
    make = tuple.__new__
    for pk, instrument, completed_at, day, total, severity, flags in rows:
        grouped[instrument].append(
            make(ScorePoint, (pk, completed_at, day, total, severity,
                              () if flags == "[]" else _flags(flags)))
        )  # fmt: skip
    return dict(grouped)


# Order in which instruments appear on charts and reports.
DISPLAY_ORDER = (
    "phq9",
    "madrs",
    "gad7",
    "qids_sr16",
    "hamd17",
    "pcl5",
    "ybocs",
    "bprs",
    "pain_nrs",
    "cssrs_screener",
)


@dataclass(frozen=True)
class PatientOutcomes:
    patient: Patient
    enrolment: MeasurementEnrolment | None
    timeline: CareTimeline | None
    trajectories: tuple[Trajectory, ...]
    tz: ZoneInfo

    @property
    def primary(self) -> Trajectory | None:
        """The trajectory that decides the course status: the first depression scale measured
        against a baseline (PHQ-9, then MADRS, ...)."""
        for item in self.trajectories:
            if item.has_outcomes and item.baseline is not None:
                return item
        return None

    @property
    def late_responder(self) -> bool:
        return any(t.late_responder for t in self.trajectories)


@dataclass(frozen=True)
class Presence:
    """Which kinds of measures a patient has, from one query, so pages skip the lists that
    would come back empty (most patients of a large clinic have no measures at all)."""

    enrolment: bool = True
    responses: bool = True
    assignments: bool = True
    alerts: bool = True
    boosters: bool = True
    checkins: bool = True
    journal: bool = True
    # The clinic's MADRS remission cut-off (None: ask the policy table when needed).
    madrs_remission_max: int | None = None


def presence_facts(checkins_since: datetime) -> dict[str, Any]:
    """The presence flags as annotations on a patient row (also read with the other chart
    panels' facts, patients.chart)."""

    def has(model: Any, **filters: Any) -> Exists:
        return Exists(model.objects.filter(patient_id=OuterRef("pk"), **filters))

    return {
        "has_enrolment": has(MeasurementEnrolment),
        "has_responses": has(Response),
        "has_assignments": has(Assignment, status=AssignmentStatus.PENDING),
        "has_alerts": has(SafetyAlert),
        "has_boosters": has(BoosterRecommendation, resolved_at__isnull=True),
        "has_checkins": has(CheckIn, recorded_at__gte=checkins_since),
        "has_journal": has(JournalEntry, shared_with_care_team=True),
        "madrs_cutoff": Subquery(
            ClinicMeasurePolicy.objects.filter(clinic_id=OuterRef("clinic_id")).values(
                "madrs_remission_max"
            )[:1]
        ),
    }


def _presence_query(patient_id: int, checkins_since: datetime) -> QuerySet[Any, dict[str, Any]]:
    annotations = presence_facts(checkins_since)
    return Patient.objects.filter(pk=patient_id).annotate(**annotations).values(*annotations)


# Eight subqueries: compiled to SQL once, not on every chart (see core.compiled_query).
_PRESENCE = CompiledValuesQuery(
    _presence_query, patient_id=PLACEHOLDER_ID, checkins_since=PLACEHOLDER_DATETIME
)


def presence(patient_id: int, *, checkins_since: datetime) -> Presence:
    found = _PRESENCE.rows(patient_id=patient_id, checkins_since=checkins_since)
    return presence_from(found[0] if found else None)


def presence_from(row: Mapping[str, Any] | None) -> Presence:
    """The Presence from a row of `presence_facts` (None: no such patient)."""
    if not row:
        return Presence(*(False,) * 7)
    values = dict(row)
    cutoff = values.pop("madrs_cutoff")
    return Presence(
        **{key.removeprefix("has_"): bool(value) for key, value in values.items()},
        madrs_remission_max=cutoff or ClinicMeasurePolicy().madrs_remission_max,
    )


def patient_outcomes(
    patient: Patient, *, present: Presence | None = None, read: Mapping[str, Any] | None = None
) -> PatientOutcomes:
    """Every instrument's trajectory for one patient against their (latest) course timeline
    (`read`: the handles from `outcomes_reads`, when the chart read them with its other reads)."""
    present = present or Presence()
    tz = ZoneInfo(patient.clinic.timezone)
    if read is not None:
        found = read["enrolment"].rows() if read["enrolment"] is not None else []
        enrolment = found[0] if found else None
        if enrolment is not None and enrolment.course_id is not None:
            # What timeline.course_appointments would read (same filter and order).
            enrolment.course.timeline_appointments = read["course_sessions"].rows()
    else:
        enrolment = latest_enrolment(patient.pk) if present.enrolment else None
    timeline = timeline_for(enrolment) if enrolment else None
    if read is not None:
        grouped = (
            points_by_instrument(patient.pk, tz, read["points"].rows())
            if read["points"] is not None
            else {}
        )
    else:
        grouped = points_by_instrument(patient.pk, tz) if present.responses else {}
    # The clinic's only outcome choice is the MADRS remission cut-off: read it when it matters.
    settings = None
    if "madrs" in grouped:
        settings = (
            ClinicalSettings(madrs_remission_max=present.madrs_remission_max)
            if present.madrs_remission_max is not None
            else clinical_settings_for(patient.clinic_id)
        )
    ordered = sorted(
        grouped, key=lambda code: DISPLAY_ORDER.index(code) if code in DISPLAY_ORDER else 99
    )
    return PatientOutcomes(
        patient=patient,
        enrolment=enrolment,
        timeline=timeline,
        trajectories=tuple(
            trajectories.trajectory(code, grouped[code], timeline, settings=settings)
            for code in ordered
        ),
        tz=tz,
    )


def responses_for(patient_id: int, instrument: str | None = None) -> QuerySet[Response]:
    qs = Response.objects.filter(patient_id=patient_id).select_related("entered_by")
    if instrument:
        qs = qs.filter(instrument=instrument)
    return qs.order_by("-completed_at", "-pk")


def response_for(user: Any, response_id: Any) -> Response:
    try:
        pk = int(response_id)
    except (TypeError, ValueError):
        raise Http404 from None
    response = (
        Response.objects.filter(pk=pk, patient__in=readable_patients(user))
        .select_related("patient", "patient__clinic", "entered_by")
        .first()
    )
    if response is None:
        raise Http404
    return response


# --- Assignments -----------------------------------------------------------------------------


def open_assignments(patient_id: int, *, respondent: str | None = None) -> QuerySet[Assignment]:
    qs = Assignment.objects.filter(patient_id=patient_id, status=AssignmentStatus.PENDING)
    if respondent:
        qs = qs.filter(respondent=respondent)
    return qs.order_by("due_at", "pk")


def portal_assignment(user: Any, assignment_id: Any, *, now: datetime) -> Assignment:
    """One of the signed-in patient's own open questionnaires; 404 otherwise."""
    try:
        pk = int(assignment_id)
    except (TypeError, ValueError):
        raise Http404 from None
    assignment = (
        Assignment.objects.filter(
            pk=pk,
            patient__in=access.patients_for(user, "portal.own"),
            respondent="patient",
        )
        .select_related("patient", "clinic")
        .first()
    )
    if assignment is None:
        raise Http404
    return assignment


def assignments_for(user: Any, *, patient_id: int | None, status: str | None) -> QuerySet:
    qs = Assignment.objects.filter(patient__in=readable_patients(user))
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-due_at", "-pk")


# --- Alerts ----------------------------------------------------------------------------------


def on_duty_clinicians(clinic_id: int, now: datetime) -> list[User]:
    ids = OnDutyShift.objects.filter(
        clinic_id=clinic_id, starts_at__lte=now, ends_at__gt=now
    ).values("user_id")
    return list(User.objects.filter(pk__in=ids, is_active=True))


def on_duty_shifts(user: Any, now: datetime) -> dict[int, OnDutyShift]:
    """The user's current shift per clinic (one query)."""
    shifts = _ON_DUTY_SHIFTS.objects(user_id=user.pk, now=now)
    return {shift.clinic_id: shift for shift in shifts}


# On every inbox page: compiled once (core.compiled_query).
_ON_DUTY_SHIFTS = CompiledModelQuery(
    lambda user_id, now: OnDutyShift.objects.filter(
        user_id=user_id, starts_at__lte=now, ends_at__gt=now
    ).order_by("ends_at"),
    user_id=PLACEHOLDER_ID,
    now=PLACEHOLDER_DATETIME,
)


@dataclass(frozen=True)
class InboxReads:
    """What every inbox page reads before it is written."""

    clinics: list[Any]  # the user's clinics with measures.view, by name (as access.clinics_for)
    shifts: dict[int, OnDutyShift]  # on_duty_shifts(user, now)
    counts: dict[str, int]  # alert_counts(user)
    boosters: list[tuple[Any, ...]]  # newest_open_boosters(user)
    # The first page of the default view (waiting alerts of all the user's clinics) as tuples of
    # INBOX_COLUMNS, when asked for and the user has few enough clinics; else None.
    first_page: list[tuple[Any, ...]] | None
    # The rows of the caller's statement, when it was sent with the reads; else None.
    statement_rows: list[Any] | None = None


def inbox_reads(
    user: Any,
    now: datetime,
    *,
    first_page_size: int | None = None,
    statement: tuple[str, list[Any]] | None = None,
) -> InboxReads:
    """The inbox's reads, in one round trip on PostgreSQL (core.compiled_query.objects_together)
    for a user of up to _ForClinics.MAX clinics; given first_page_size, also the first page of
    the default view (the page every clinician opens, asked for without filter or page). A
    `statement` (SQL, parameters) of the caller's goes last in the same round trip (its audit
    append: audit.services.PendingAppend); when it was not sent, statement_rows is None."""
    clinic_ids = access.clinic_ids_for(user, "measures.view")
    clinics, values = _CLINICS_BY_NAME.bind(clinic_ids)
    if clinics is None:
        return InboxReads(
            clinics=list(access.clinics_for(user, "measures.view")),
            shifts=on_duty_shifts(user, now),
            counts=alert_counts(user),
            boosters=newest_open_boosters(user),
            first_page=None,
        )
    # Each _ForClinics compiles one query per number of clinics: the same values name them.
    calls: list[tuple[Any, dict[str, Any]]] = [
        (clinics, values),
        (_ON_DUTY_SHIFTS, {"user_id": user.pk, "now": now}),
        (_OPEN_COUNTS.bind(clinic_ids)[0], values),
        (_NEWEST_OPEN_BOOSTERS.bind(clinic_ids)[0], values),
    ]
    if first_page_size is not None:
        calls.append((_first_open_page(first_page_size).bind(clinic_ids)[0], values))
    if statement is not None:
        calls.append((PreparedText(statement[0]), {"params": statement[1]}))
    found, shifts, counts, boosters, *rest = objects_together(calls)
    return InboxReads(
        clinics=found,
        shifts={shift.clinic_id: shift for shift in shifts},
        counts=_counts(counts),
        boosters=boosters,
        first_page=rest[0] if first_page_size is not None else None,
        statement_rows=rest[-1] if statement is not None else None,
    )


class _ForClinics:
    """A query over a list of clinic ids: its shape is fixed once the list's length is, so it
    is compiled once per length (core.compiled_query), up to MAX clinics (None beyond: the
    caller builds it with the ORM)."""

    MAX = 8

    def __init__(self, make: Any, build: Any, **placeholders: Any) -> None:
        self._make = make  # CompiledValuesQuery or CompiledModelQuery
        self._build = build  # build(clinic_ids, **values) -> QuerySet
        self._placeholders = placeholders
        self._by_length: dict[int, Any] = {}

    def bind(self, clinic_ids: list[int]) -> tuple[Any, dict[str, Any]]:
        """(the compiled query, the values naming these clinics), or (None, {})."""
        if not 0 < len(clinic_ids) <= self.MAX:
            return None, {}
        names = [f"clinic_{i}" for i in range(len(clinic_ids))]
        query = self._by_length.get(len(clinic_ids))
        if query is None:
            build = self._build

            def by_name(**values: Any) -> Any:
                return build([values.pop(name) for name in names], **values)

            # A distinct placeholder per clinic: the In lookup drops repeated values.
            slots = {name: PLACEHOLDER_ID - i for i, name in enumerate(names)}
            query = self._make(by_name, **slots, **self._placeholders)
            self._by_length[len(clinic_ids)] = query
        return query, dict(zip(names, clinic_ids, strict=True))


@dataclass(frozen=True)
class AlertFilter:
    status: str = "open"  # open, acknowledged, all
    mine: bool = False
    clinic_id: int | None = None


def _alerts_of(clinic_ids: list[int]) -> QuerySet[SafetyAlert]:
    return SafetyAlert.objects.filter(clinic_id__in=clinic_ids)


def _filtered(qs: QuerySet[SafetyAlert], user: Any, query: AlertFilter) -> QuerySet[SafetyAlert]:
    if query.clinic_id:
        qs = qs.filter(clinic_id=query.clinic_id)
    if query.mine:
        qs = qs.filter(assigned_to_id=user.pk)
    if query.status == "open":
        return qs.filter(acknowledged_at__isnull=True).order_by(
            # "immediate" sorts before "same_day".
            "priority",
            "created_at",
            "pk",
        )
    if query.status == "acknowledged":
        qs = qs.filter(acknowledged_at__isnull=False)
    return qs.order_by("-created_at", "-pk")


def alert_inbox(user: Any, query: AlertFilter) -> QuerySet[SafetyAlert]:
    """Alerts of the user's clinics, most urgent first: immediate before same-day, then oldest
    waiting first while open (newest first once acknowledged)."""
    qs = _alerts_of(access.clinic_ids_for(user, "measures.view")).select_related(
        "patient", "clinic", "assigned_to", "acknowledged_by"
    )
    return _filtered(qs, user, query)


def _clinics_by_name(clinic_ids: list[int]) -> QuerySet[Any]:
    from ketaclinic.accounts.models import Clinic

    return Clinic.objects.filter(pk__in=clinic_ids).order_by("name")


_CLINICS_BY_NAME = _ForClinics(CompiledModelQuery, _clinics_by_name)


# What a row of the inbox shows (the patient, clinic and users have many more columns).
_USER_COLUMNS = ("display_name", "first_name", "last_name", "username")
INBOX_COLUMNS = (
    "pk",
    "patient_id",
    "priority",
    "escalation_count",
    "summary",
    "created_at",
    "acknowledged_at",
    "action",
    "patient__last_name",
    "patient__first_name",
    "patient__mrn",
    "clinic__name",
    "assigned_to_id",
    *(f"assigned_to__{name}" for name in _USER_COLUMNS),
    "acknowledged_by_id",
    *(f"acknowledged_by__{name}" for name in _USER_COLUMNS),
)
# The first page of the default view (open alerts of all the user's clinics), which every
# clinician opens: compiled once per page size and number of clinics.
_FIRST_OPEN_PAGE: dict[int, _ForClinics] = {}


def _first_open_page(size: int) -> _ForClinics:
    first = _FIRST_OPEN_PAGE.get(size)
    if first is None:
        first = _FIRST_OPEN_PAGE.setdefault(
            size,
            _ForClinics(
                CompiledValuesQuery,
                lambda clinic_ids: _filtered(_alerts_of(clinic_ids), None, AlertFilter()).values(
                    *INBOX_COLUMNS
                )[:size],
            ),
        )
    return first


def alert_inbox_rows(user: Any, query: AlertFilter, page: Any, size: int) -> list[tuple[Any, ...]]:
    """The alerts of one page of the inbox as tuples of INBOX_COLUMNS (`page` is the
    paginator's page of alert_inbox_values())."""
    if page.number == 1 and query == AlertFilter():
        compiled, values = _first_open_page(size).bind(access.clinic_ids_for(user, "measures.view"))
        if compiled is not None:
            return list(compiled.tuples(**values))
    return list(page.object_list)


def alert_inbox_values(user: Any, query: AlertFilter) -> QuerySet[Any]:
    """alert_inbox() as tuples of INBOX_COLUMNS, for the paginator."""
    return alert_inbox(user, query).values_list(*INBOX_COLUMNS)


def _open_counts(clinic_ids: list[int]) -> QuerySet[Any]:
    return (
        _alerts_of(clinic_ids)
        .filter(acknowledged_at__isnull=True)
        .order_by()  # no sort of every waiting alert just to count them
        .values("priority")
        .annotate(n=DbCount("pk"))
    )


_OPEN_COUNTS = _ForClinics(CompiledValuesQuery, _open_counts)


def alert_counts(user: Any) -> dict[str, int]:
    """Open alerts of the user's clinics by priority (for the inbox header)."""
    clinic_ids = access.clinic_ids_for(user, "measures.view")
    compiled, values = _OPEN_COUNTS.bind(clinic_ids)
    rows = (
        compiled.tuples(**values)
        if compiled is not None
        else _open_counts(clinic_ids).values_list("priority", "n")
    )
    return _counts(rows)


def _counts(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    counts = dict(rows)
    return {
        "immediate": counts.get(AlertPriority.IMMEDIATE, 0),
        "same_day": counts.get(AlertPriority.SAME_DAY, 0),
    }


def alert_for(user: Any, alert_id: Any) -> SafetyAlert:
    """An alert of one of the user's clinics: 403 without measures.view anywhere, else 404."""
    access.require(user, "measures.view")
    try:
        pk = int(alert_id)
    except (TypeError, ValueError):
        raise Http404 from None
    alert = (
        alert_inbox(user, AlertFilter(status="all"))
        .select_related("response", "checkin", "journal_entry")
        .filter(pk=pk)
        .first()
    )
    if alert is None:
        raise Http404
    return alert


def _patient_alerts_query(patient_id: int, limit: int) -> QuerySet[SafetyAlert]:
    return (
        SafetyAlert.objects.filter(patient_id=patient_id)
        .select_related("acknowledged_by", "assigned_to")
        .order_by("acknowledged_at", "-created_at")[:limit]  # open ones (NULL) first
    )


# On every chart of a patient with alerts: compiled once (core.compiled_query).
_PATIENT_ALERTS = CompiledModelQuery(
    lambda patient_id: _patient_alerts_query(patient_id, 10), patient_id=PLACEHOLDER_ID
)


def patient_alerts(patient_id: int, *, limit: int = 10) -> list[SafetyAlert]:
    if limit == 10:
        return _PATIENT_ALERTS.objects(patient_id=patient_id)
    return list(_patient_alerts_query(patient_id, limit))


def _open_safety_flags(patient_id: int) -> QuerySet[SafetyAlert]:
    return SafetyAlert.objects.filter(patient_id=patient_id, acknowledged_at__isnull=True).order_by(
        "priority", "created_at"
    )


# One patient's open safety flags (the treatment session workspace), compiled once
# (core.compiled_query): the same rows, in the same order, as safety_flags_for_patients().
OPEN_SAFETY_FLAGS = CompiledModelQuery(_open_safety_flags, patient_id=PLACEHOLDER_ID)


def safety_flags_for_patients(patient_ids: Iterable[int]) -> dict[int, list[SafetyAlert]]:
    """Open safety alerts per patient, for boards that list many patients (one query).

    The day board (courses) shows "item 9 positive / C-SSRS / urgent" from this.
    """
    grouped: dict[int, list[SafetyAlert]] = defaultdict(list)
    for alert in SafetyAlert.objects.filter(
        patient_id__in=list(patient_ids), acknowledged_at__isnull=True
    ).order_by("priority", "created_at"):
        grouped[alert.patient_id].append(alert)
    return dict(grouped)


def pre_session_responses(appointment_ids: Iterable[int]) -> dict[int, list[Response]]:
    """The questionnaires answered for each appointment (before-session plan items), in one
    query, for the pre-dose gate and the day board: PHQ-9 item 9 and C-SSRS flags included."""
    grouped: dict[int, list[Response]] = defaultdict(list)
    rows = Response.objects.filter(
        assignment__appointment_id__in=list(appointment_ids)
    ).select_related("assignment")
    for row in rows.order_by("completed_at", "pk"):
        if row.assignment is not None and row.assignment.appointment_id is not None:
            grouped[row.assignment.appointment_id].append(row)
    return dict(grouped)


def booster_recommendations(user: Any, *, open_only: bool = True) -> QuerySet:
    return _boosters(access.clinic_ids_for(user, "measures.view"), open_only=open_only)


def _boosters(clinic_ids: list[int], *, open_only: bool = True) -> QuerySet:
    qs = BoosterRecommendation.objects.filter(clinic_id__in=clinic_ids).select_related(
        "patient", "prescriber"
    )
    if open_only:
        qs = qs.filter(resolved_at__isnull=True)
    return qs.order_by("-created_at")


# What the inbox shows of a recommendation (the patient and prescriber have many more columns).
BOOSTER_COLUMNS = (
    "patient_id",
    "patient__last_name",
    "patient__first_name",
    "instrument",
    "relapse_on",
    "baseline_total",
    "latest_total",
    "prescriber_id",
    *(f"prescriber__{name}" for name in _USER_COLUMNS),
)
# The inbox's ten newest open recommendations: compiled once per number of clinics.
_NEWEST_OPEN_BOOSTERS = _ForClinics(
    CompiledValuesQuery, lambda clinic_ids: _boosters(clinic_ids).values(*BOOSTER_COLUMNS)[:10]
)


def newest_open_boosters(user: Any) -> list[tuple[Any, ...]]:
    """booster_recommendations(user)[:10] as tuples of BOOSTER_COLUMNS."""
    clinic_ids = access.clinic_ids_for(user, "measures.view")
    compiled, values = _NEWEST_OPEN_BOOSTERS.bind(clinic_ids)
    if compiled is None:
        return list(_boosters(clinic_ids).values_list(*BOOSTER_COLUMNS)[:10])
    return list(compiled.tuples(**values))


def booster_for(user: Any, recommendation_id: Any) -> BoosterRecommendation:
    access.require(user, "measures.view")
    try:
        pk = int(recommendation_id)
    except (TypeError, ValueError):
        raise Http404 from None
    found = booster_recommendations(user, open_only=False).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


# --- Check-ins and journal -------------------------------------------------------------------


def checkins(patient_id: int, *, since: datetime | None = None) -> QuerySet[CheckIn]:
    qs = CheckIn.objects.filter(patient_id=patient_id)
    if since is not None:
        qs = qs.filter(recorded_at__gte=since)
    return qs.order_by("-recorded_at", "-pk")


def shared_journal(patient_id: int) -> QuerySet[JournalEntry]:
    """Entries the patient shared with the care team: the only ones staff ever see."""
    return JournalEntry.objects.filter(patient_id=patient_id, shared_with_care_team=True).order_by(
        "-created_at", "-pk"
    )


def own_journal(patient: Patient) -> QuerySet[JournalEntry]:
    return JournalEntry.objects.filter(patient=patient).order_by("-created_at", "-pk")


# --- Clinic outcome summary ------------------------------------------------------------------


def _pct(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100 * part) / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class InductionOutcome:
    instrument: str
    title: str
    evaluable: int = 0
    responded: int = 0  # response or remission
    remitted: int = 0
    worsened: int = 0
    without_score: int = 0
    published: list[benchmarks.PublishedOutcome] = field(default_factory=list)

    @property
    def response_pct(self) -> Decimal | None:
        return _pct(self.responded, self.evaluable)

    @property
    def remission_pct(self) -> Decimal | None:
        return _pct(self.remitted, self.evaluable)

    @property
    def worsened_pct(self) -> Decimal | None:
        return _pct(self.worsened, self.evaluable)


@dataclass
class OutcomeSummary:
    clinic_id: int
    active_courses: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    late_responders: int = 0
    open_boosters: int = 0
    induction: list[InductionOutcome] = field(default_factory=list)


STATUS_ORDER = (
    "remission",
    "response",
    "partial",
    "none",
    "worsened",
    "baseline_only",
    "no_baseline",
)
STATUS_LABELS = {
    **trajectories.STATUS_WORDS,
    "baseline_only": "Baseline only (no score since)",
    "no_baseline": "No baseline score",
}
SUMMARY_INSTRUMENTS = ("phq9", "madrs")


def outcome_summary(clinic_id: int, *, today: Any) -> OutcomeSummary:
    """Active courses by status (latest PHQ-9, else MADRS, against baseline) and response and
    remission at the end of induction, next to the published figures (reference §6)."""
    from ketaclinic.accounts.models import Clinic

    clinic = Clinic.objects.get(pk=clinic_id)
    tz = ZoneInfo(clinic.timezone)
    settings = clinical_settings_for(clinic_id)
    enrolments: list[MeasurementEnrolment] = list(
        MeasurementEnrolment.objects.filter(clinic_id=clinic_id)
        .select_related("clinic", "course")
        .prefetch_related(
            Prefetch(
                "patient__measure_responses",
                queryset=Response.objects.filter(instrument__in=SUMMARY_INSTRUMENTS)
                .only("pk", "patient_id", *_POINT_FIELDS[1:])
                .order_by("completed_at", "pk"),
                to_attr="summary_responses",
            ),
            course_appointments_prefetch("course__appointments"),
        )
    )
    summary = OutcomeSummary(clinic_id=clinic_id)
    status_counts: Counter[str] = Counter()
    induction = {
        code: InductionOutcome(
            code,
            "PHQ-9" if code == "phq9" else "MADRS",
            published=benchmarks.published_for(code),
        )
        for code in SUMMARY_INSTRUMENTS
    }
    latest_per_patient: dict[int, MeasurementEnrolment] = {}
    for enrolment in enrolments:
        current = latest_per_patient.get(enrolment.patient_id)
        if current is None or enrolment.started_at > current.started_at:
            latest_per_patient[enrolment.patient_id] = enrolment
    for course in latest_per_patient.values():
        timeline = timeline_for(course)
        grouped: dict[str, list[ScorePoint]] = defaultdict(list)
        for row in course.patient.summary_responses:  # type: ignore[attr-defined]
            grouped[row.instrument].append(point_from(row, tz))
        results = {
            code: trajectories.trajectory(code, grouped[code], timeline, settings=settings)
            for code in SUMMARY_INSTRUMENTS
        }
        last_induction = timeline.last_induction_session
        induction_over = (
            last_induction is not None
            and (today - last_induction.on).days > trajectories.END_OF_INDUCTION_WINDOW_DAYS
        )
        for code, result in results.items():
            if not induction_over or result.baseline is None:
                continue
            bucket = induction[code]
            if result.end_of_induction_status is None:
                bucket.without_score += 1
                continue
            bucket.evaluable += 1
            bucket.responded += result.end_of_induction_status in trajectories.RESPONDED
            bucket.remitted += result.end_of_induction_status == "remission"
            bucket.worsened += result.end_of_induction_status == "worsened"
        if course.status != EnrolmentStatus.ACTIVE:
            continue
        summary.active_courses += 1
        primary = next(
            (r for r in results.values() if r.baseline is not None),
            None,
        )
        if primary is None:
            status_counts["no_baseline"] += 1
        else:
            status_counts[primary.status or "baseline_only"] += 1
        summary.late_responders += any(r.late_responder for r in results.values())
    summary.status_counts = {key: status_counts.get(key, 0) for key in STATUS_ORDER}
    summary.open_boosters = BoosterRecommendation.objects.filter(
        clinic_id=clinic_id, resolved_at__isnull=True
    ).count()
    summary.induction = list(induction.values())
    return summary


def recent_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
