"""Reads of treatment sessions, scoped to the user's clinics (ARCHITECTURE rule 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from ketaclinic.accounts import access
from ketaclinic.clinical import TREATMENTS, get_treatment
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import PLACEHOLDER_ID, CompiledModelQuery, objects_together
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import (
    AdverseEvent,
    DischargeAssessment,
    DissociationScore,
    EsketamineDevice,
    InfusionOrder,
    Intervention,
    PreDoseCheck,
    RemsSubmission,
    SessionTransition,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)


def sessions_for(user: Any, permission: str = "course.view") -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(
        clinic_id__in=access.clinic_ids_for(user, permission)
    ).select_related("patient", "clinic", "chair")


def get_session(
    user: Any,
    session_id: Any,
    permission: str = "course.view",
    *,
    query: CompiledModelQuery | None = None,
) -> TreatmentSession:
    """One session, or 404 when missing or at a clinic where the user lacks the permission.
    `query` (a compiled query of one session by `session_id`) reads it with other columns or
    annotations than the usual joins; the scope is the same."""
    return _scoped_session(user, session_id, permission, query or _SESSION)


def _scoped_session(
    user: Any, session_id: Any, permission: str, query: CompiledModelQuery
) -> TreatmentSession:
    """get_session() through `query` (the session with whatever else a page reads with it)."""
    access.require(user, permission)
    try:
        pk = int(session_id)
    except (TypeError, ValueError):
        raise Http404 from None
    if not 0 < pk < 2**63:  # outside any key column: no such session (and no database error)
        raise Http404
    found = query.objects(session_id=pk)
    session = found[0] if found else None
    # The same scope as sessions_for(): a clinic where the user holds the permission.
    if session is None or session.clinic_id not in access.clinic_ids_for(user, permission):
        raise Http404
    return session


# Every session page and API call reads its session first: compiled to SQL once
# (core.compiled_query), with what sessions_for() joins.
_SESSION = CompiledModelQuery(
    lambda session_id: TreatmentSession.objects.filter(pk=session_id).select_related(
        "patient", "clinic", "chair"
    ),
    session_id=PLACEHOLDER_ID,
)


# --- The printable REMS form: the session with the form's single values, in one query ----------


def _rems_print_session(session_id: int) -> QuerySet[TreatmentSession]:
    """The session as _SESSION reads it, its REMS submission, and each single value of the REMS
    form as a subquery: the first device (by number) and the devices' total dose, the newest
    pre-dose check and discharge assessment (with the assessor's name fields), and the lot of
    the ledger's first administration entry."""
    from django.db.models import OuterRef, Subquery, Sum

    from ketaclinic.controlled_substances.choices import EntryKind
    from ketaclinic.controlled_substances.models import LedgerEntry

    of_session = OuterRef("pk")
    devices = EsketamineDevice.objects.filter(session_id=of_session)
    check = PreDoseCheck.objects.filter(session_id=of_session).order_by("-recorded_at", "-id")
    discharge = DischargeAssessment.objects.filter(session_id=of_session).order_by(
        "-assessed_at", "-id"
    )
    administered = LedgerEntry.objects.filter(
        treatment_session_id=of_session, kind=EntryKind.ADMINISTER
    ).order_by("seq")

    def first(rows: QuerySet[Any], name: str) -> Subquery:
        return Subquery(rows.values(name)[:1])

    return (
        TreatmentSession.objects.filter(pk=session_id)
        .select_related("patient", "clinic", "chair", "rems_submission")
        .annotate(
            rems_first_device_at=first(devices.order_by("number"), "administered_at"),
            rems_dose_mg=Subquery(
                devices.order_by()
                .values("session_id")
                .annotate(total=Sum("dose_mg"))
                .values("total")
            ),
            rems_lot_number=first(administered, "lot__lot_number"),
            **{f"rems_check_{name}": first(check, name) for name in _REMS_CHECK_FIELDS},
            **{f"rems_discharge_{name}": first(discharge, name) for name in _REMS_DISCHARGE_FIELDS},
            **{
                f"rems_assessor_{name}": first(discharge, f"assessed_by__{name}")
                for name in _REMS_ASSESSOR_FIELDS
            },
        )
    )


_REMS_CHECK_FIELDS = (
    "id", "medication_changes", "systolic_mmhg", "diastolic_mmhg", "gate_status",
    "acknowledged_by_id",
)  # fmt: skip
_REMS_DISCHARGE_FIELDS = ("id", "vitals_acceptable", "assessed_by_id")
_REMS_ASSESSOR_FIELDS = ("display_name", "first_name", "last_name", "username")
_REMS_PRINT_SESSION = CompiledModelQuery(_rems_print_session, session_id=PLACEHOLDER_ID)


def _from_annotations(session: Any, model: Any, prefix: str, names: tuple[str, ...]) -> Any:
    """An unsaved `model` with the fields read into `session` as `<prefix><name>` (None when
    the row does not exist)."""
    values = {name: getattr(session, prefix + name) for name in names}
    return None if values["id"] is None else model(**values)


def rems_print_form(user: Any, session_id: Any) -> tuple[TreatmentSession, dict[str, Any]]:
    """The esketamine session (scoped as get_session() with "course.view", its REMS
    submission read along; 404 for other treatments) and its REMS form as rems.rems_form()
    fills it, in three queries instead of nine: the session with the form's single values,
    then its vital signs and adverse events (one round trip on PostgreSQL)."""
    from ketaclinic.accounts.models import User
    from ketaclinic.treatment_sessions.rems import form_from

    session: Any = _scoped_session(user, session_id, "course.view", _REMS_PRINT_SESSION)
    if not get_treatment(session.treatment).is_esketamine:
        raise Http404  # only esketamine sessions have a REMS monitoring form
    vitals, events = objects_together(
        [
            (_ROW_QUERIES["vitals"], {"session_id": session.pk}),
            (_ROW_QUERIES["events"], {"session_id": session.pk}),
        ]
    )
    check = _from_annotations(session, PreDoseCheck, "rems_check_", _REMS_CHECK_FIELDS)
    discharge = _from_annotations(
        session, DischargeAssessment, "rems_discharge_", _REMS_DISCHARGE_FIELDS
    )
    if discharge is not None:
        discharge.assessed_by = User(
            id=discharge.assessed_by_id,
            **{name: getattr(session, "rems_assessor_" + name) for name in _REMS_ASSESSOR_FIELDS},
        )
    form = form_from(
        session,
        first=session.rems_first_device_at,
        dose_mg=session.rems_dose_mg or None,
        vitals=vitals,
        check=check,
        discharge=discharge,
        lot_number=session.rems_lot_number,
        events=events,
    )
    return session, form


# --- Everything the workspace shows of one session, each table read once ----------------------


def _compiled(build: Any) -> CompiledModelQuery:
    return CompiledModelQuery(build, session_id=PLACEHOLDER_ID)


def _ledger_entries(session_id: int) -> QuerySet[Any]:
    from django.db.models.expressions import RawSQL

    from ketaclinic.controlled_substances.models import LedgerEntry

    # The ledger keeps the session id in a BigIntegerField, whose parameter PostgreSQL's driver
    # wraps (Int8) so the compiled query could not find its placeholder: a plain parameter
    # with an explicit cast instead (still the indexed column, on PostgreSQL and SQLite).
    as_bigint = RawSQL("CAST(%s AS BIGINT)", (session_id,))
    return (
        LedgerEntry.objects.filter(treatment_session_id=as_bigint)
        .select_related("lot__product", "location")
        .order_by("seq")
    )


# One compiled query per table (core.compiled_query): the workspace is opened at every step
# and on every reading, and Django took longer to build these queries than the database to run
# them. The staff named on the rows are read once for all tables (_PEOPLE): joining the users
# table into each query made PostgreSQL plan a join per table, longer than running them.
def _of_session(model: Any, *order: str) -> CompiledModelQuery:
    """One table's rows of a session, in display order, compiled once."""
    return _compiled(
        lambda session_id: model.objects.filter(session_id=session_id).order_by(*order)
    )


_ROW_QUERIES: dict[str, CompiledModelQuery] = {
    "checks": _of_session(PreDoseCheck, "recorded_at", "id"),
    "orders": _of_session(InfusionOrder, "ordered_at", "id"),
    "devices": _of_session(EsketamineDevice, "number"),
    "ledger": _compiled(_ledger_entries),
    "vitals": _of_session(VitalSign, "taken_at", "id"),
    "alerts": _of_session(VitalAlert, "id"),
    "discharges": _of_session(DischargeAssessment, "assessed_at", "id"),
    "cadss": _of_session(DissociationScore, "scored_at", "id"),
    "interventions": _of_session(Intervention, "given_at", "id"),
    "events": _of_session(AdverseEvent, "onset_at", "id"),
    "history": _of_session(SessionTransition, "at", "id"),
}

# The staff members each table's rows name (foreign keys to the user), by _ROW_QUERIES name.
_PEOPLE: dict[str, tuple[str, ...]] = {
    "checks": ("prescriber_on_site", "acknowledged_by", "recorded_by"),
    "orders": ("ordered_by", "checked_by"),
    "devices": ("recorded_by",),
    "ledger": ("witness",),
    "vitals": ("recorded_by",),
    "alerts": ("acknowledged_by",),
    "discharges": ("assessed_by",),
    "cadss": ("recorded_by",),
    "interventions": ("recorded_by",),
    "events": ("recorded_by",),
    "history": ("actor",),
}


def _people(session_id: int) -> QuerySet[Any]:
    """Every user named on the session's rows (the fields of _PEOPLE), in one query."""
    from django.db.models import Q

    from ketaclinic.accounts.models import User

    named = Q()
    for name, fields in _PEOPLE.items():
        rows = _ROW_QUERIES[name]._build(session_id=session_id).order_by()
        for name_field in fields:
            named |= Q(pk__in=rows.values(f"{name_field}_id"))
    return User.objects.filter(named).order_by("pk")


_PEOPLE_QUERY = _compiled(_people)


def _attach(found: dict[str, list[Any]], people: list[Any]) -> None:
    """Put the users read once onto the rows naming them, and each alert's reading (one of the
    session's vitals), as select_related would have: no query when the page reads them."""
    by_id = {user.pk: user for user in people}
    for name, fields in _PEOPLE.items():
        for row in found[name]:
            for name_field in fields:
                user_id = getattr(row, f"{name_field}_id")
                if user_id in by_id:
                    setattr(row, name_field, by_id[user_id])
    readings = {reading.pk: reading for reading in found["vitals"]}
    for alert in found["alerts"]:
        if alert.reading_id in readings:
            alert.reading = readings[alert.reading_id]


@dataclass(frozen=True)
class SessionRows:
    """The rows of one session's tables, each read once, oldest first (by the models' own
    ordering). The workspace shows them and hands them to the services' guards, the vitals
    schedule and the REMS form check, which would otherwise read the same tables again."""

    checks: list[PreDoseCheck]
    orders: list[InfusionOrder]
    devices: list[EsketamineDevice]
    ledger: list[Any]  # controlled_substances.LedgerEntry, by ledger sequence
    vitals: list[VitalSign]
    alerts: list[VitalAlert]
    discharges: list[DischargeAssessment]
    cadss: list[DissociationScore]
    interventions: list[Intervention]
    events: list[AdverseEvent]
    history: list[SessionTransition]
    safety_flags: list[Any]  # the patient's open measures.SafetyAlert rows, most urgent first

    @property
    def latest_check(self) -> PreDoseCheck | None:
        return self.checks[-1] if self.checks else None

    @property
    def latest_order(self) -> InfusionOrder | None:
        return self.orders[-1] if self.orders else None

    @property
    def latest_discharge(self) -> DischargeAssessment | None:
        return self.discharges[-1] if self.discharges else None

    @property
    def last_vitals_at(self) -> datetime | None:
        return self.vitals[-1].taken_at if self.vitals else None

    @property
    def administrations(self) -> list[Any]:
        """The ledger's administration entries (reversals are separate entries)."""
        from ketaclinic.controlled_substances.choices import EntryKind

        return [e for e in self.ledger if e.kind == EntryKind.ADMINISTER]

    @property
    def open_alerts(self) -> list[VitalAlert]:
        return [a for a in self.alerts if a.acknowledged_by_id is None]


def session_rows(session: TreatmentSession) -> SessionRows:
    """Every row the workspace needs of `session` (and the patient's open safety flags): one
    query per table whatever its size, all sent in one round trip on PostgreSQL
    (core.compiled_query.objects_together)."""
    from ketaclinic.measures.selectors import OPEN_SAFETY_FLAGS

    *tables, people, safety_flags = objects_together(
        [
            *((query, {"session_id": session.pk}) for query in _ROW_QUERIES.values()),
            (_PEOPLE_QUERY, {"session_id": session.pk}),
            (OPEN_SAFETY_FLAGS, {"patient_id": session.patient_id}),
        ]
    )
    found = dict(zip(_ROW_QUERIES, tables, strict=True))
    _attach(found, people)
    return SessionRows(**found, safety_flags=safety_flags)


@dataclass(frozen=True)
class SessionExposure:
    session_id: int
    dosed_at: datetime
    route: str
    dose_mg: Decimal
    dose_mg_per_kg: Decimal | None


@dataclass(frozen=True)
class Exposure:
    """Cumulative ketamine/esketamine exposure for the chart (clinical.md §10)."""

    sessions: list[SessionExposure]
    rolling_28_day_mg: Decimal
    sessions_last_30_days: int
    lifetime_mg_by_route: dict[str, Decimal]


def _dosed_sessions_query(patient_id: int) -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(
        patient_id=patient_id, dosing_started_at__isnull=False
    ).order_by("dosing_started_at", "id")


def _exposure_query(patient_id: int) -> QuerySet[TreatmentSession]:
    """The dosed sessions, each with the mg the ledger's administrations drew for it (None
    without any) and the weight of its last pre-dose check (None without any)."""
    from django.db.models import OuterRef, Subquery, Sum

    from ketaclinic.controlled_substances.choices import EntryKind
    from ketaclinic.controlled_substances.models import LedgerEntry

    administered = (
        LedgerEntry.objects.filter(treatment_session_id=OuterRef("pk"), kind=EntryKind.ADMINISTER)
        .order_by()
        .values("treatment_session_id")
        .annotate(total=Sum("quantity_mg"))
        .values("total")
    )
    weight = (
        PreDoseCheck.objects.filter(session_id=OuterRef("pk"))
        .order_by("-recorded_at", "-pk")
        .values("weight_kg")[:1]
    )
    return _dosed_sessions_query(patient_id).annotate(
        administered_mg=Subquery(administered), last_weight_kg=Subquery(weight)
    )


# On every chart with a dosed session: one query, compiled once (core.compiled_query).
_EXPOSURE = CompiledModelQuery(_exposure_query, patient_id=PLACEHOLDER_ID)


def exposure_read(patient_id: int, reads: Any) -> Any:
    """Ask the chart's reads (patients.chart.ChartReads) for `cumulative_exposure`'s query."""
    return reads.add(_EXPOSURE, patient_id=patient_id)


def cumulative_exposure(patient_id: int, as_of: datetime, *, read: Any = None) -> Exposure:
    """mg and mg/kg per session (from the ledger's administrations and the same-day weight),
    rolling 28-day total, sessions in the last 30 days and lifetime total per route (`read`:
    the handle from `exposure_read`, when the chart read it with its other reads)."""
    sessions: list[Any] = (
        read.rows() if read is not None else _EXPOSURE.objects(patient_id=patient_id)
    )
    # Administrations are recorded as negative quantities (stock leaving the safe).
    drawn: dict[int, Decimal] = {
        s.pk: Decimal(0) - s.administered_mg for s in sessions if s.administered_mg is not None
    }
    weights: dict[int, Decimal | None] = {s.pk: s.last_weight_kg for s in sessions}
    rows: list[SessionExposure] = []
    for session in sessions:
        if session.pk not in drawn or session.dosing_started_at is None:
            continue
        weight = weights.get(session.pk)
        dose = drawn[session.pk]
        rows.append(
            SessionExposure(
                session_id=session.pk,
                dosed_at=session.dosing_started_at,
                route=get_treatment(session.treatment).route,
                dose_mg=dose,
                dose_mg_per_kg=(dose / weight).quantize(Decimal("0.01")) if weight else None,
            )
        )
    lifetime: dict[str, Decimal] = {}
    for row in rows:
        lifetime[row.route] = lifetime.get(row.route, Decimal(0)) + row.dose_mg
    return Exposure(
        sessions=rows,
        rolling_28_day_mg=sum(
            (r.dose_mg for r in rows if as_of - timedelta(days=28) < r.dosed_at <= as_of),
            Decimal(0),
        ),
        sessions_last_30_days=sum(
            1 for r in rows if as_of - timedelta(days=30) < r.dosed_at <= as_of
        ),
        lifetime_mg_by_route=lifetime,
    )


# --- Room board (nurses: every chair of the clinic at a glance) -------------------------------


@dataclass(frozen=True)
class BoardSession:
    """One patient in a chair, with what the nurse needs to see without opening the session."""

    session: TreatmentSession
    minutes_since_first_dose: int | None
    next_vitals_due: datetime | None
    vitals_overdue: bool
    open_alerts: int


@dataclass(frozen=True)
class BoardChair:
    chair: Any  # courses.Chair, or None for sessions not placed in a chair
    sessions: list[BoardSession]


@dataclass(frozen=True)
class RoomBoard:
    clinic: Any
    now: datetime
    chairs: list[BoardChair]

    @property
    def active_count(self) -> int:
        return sum(len(c.sessions) for c in self.chairs)

    @property
    def open_alerts(self) -> int:
        return sum(s.open_alerts for c in self.chairs for s in c.sessions)


# A reading taken up to this long before a due time counts for it (as services.next_vitals_due).
_DUE_GRACE = timedelta(minutes=2)


def vitals_due_after(
    *,
    treatment: str,
    dosing_started_at: datetime | None,
    infusion_minutes: int | None,
    last_taken_at: datetime | None,
) -> datetime | None:
    """`services.next_vitals_due` from values a list query already fetched (no query per row)."""
    from ketaclinic.clinical import InvalidInput, vitals_due

    if dosing_started_at is None:
        return None
    try:
        due = vitals_due(
            treatment=treatment,
            dose_started_at=dosing_started_at,
            infusion_minutes=infusion_minutes,
        )
    except InvalidInput:
        return None  # an IV session without an infusion order has no schedule to show
    for moment in due:
        if last_taken_at is None or moment > last_taken_at + _DUE_GRACE:
            return moment
    return None


def board_clinics(user: Any) -> list[Any]:
    """Clinics whose room board the user may see (the clinic picker)."""
    return list(access.clinics_for(user, "course.view"))


def _board_sessions(clinic_id: int) -> QuerySet[TreatmentSession]:
    """The clinic's sessions in a chair, with the open alert count, the last reading and the
    infusion length as subqueries."""
    from django.db.models import Count, IntegerField, OuterRef, Subquery

    from ketaclinic.treatment_sessions.choices import ACTIVE_STATUSES
    from ketaclinic.treatment_sessions.models import InfusionOrder, VitalAlert, VitalSign

    open_alerts = (
        VitalAlert.objects.filter(session_id=OuterRef("pk"), acknowledged_by__isnull=True)
        .order_by()
        .values("session_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    last_reading = (
        VitalSign.objects.filter(session_id=OuterRef("pk"))
        .order_by("-taken_at", "-id")
        .values("taken_at")[:1]
    )
    order_minutes = (
        InfusionOrder.objects.filter(session_id=OuterRef("pk"))
        .order_by("-ordered_at", "-id")
        .values("minutes")[:1]
    )
    return (
        TreatmentSession.objects.filter(clinic_id=clinic_id, status__in=ACTIVE_STATUSES)
        .select_related("patient")
        .annotate(
            open_alert_count=Subquery(open_alerts, output_field=IntegerField()),
            last_reading_at=Subquery(last_reading),
            infusion_minutes=Subquery(order_minutes),
        )
        .order_by("checked_in_at", "id")
    )


def _board_chairs(clinic_id: int) -> QuerySet[Any]:
    from ketaclinic.courses.models import Chair

    return Chair.objects.filter(clinic_id=clinic_id, is_active=True).order_by("name", "id")


def _board_clinic(clinic_id: int) -> QuerySet[Any]:
    from ketaclinic.accounts.models import Clinic

    return Clinic.objects.filter(pk=clinic_id)


# The board is polled every few seconds by every screen: its three reads are compiled to SQL
# once (core.compiled_query) and go to PostgreSQL in one round trip.
_BOARD_CLINIC = CompiledModelQuery(_board_clinic, clinic_id=PLACEHOLDER_ID)
_BOARD_CHAIRS = CompiledModelQuery(_board_chairs, clinic_id=PLACEHOLDER_ID)
_BOARD_SESSIONS = CompiledModelQuery(_board_sessions, clinic_id=PLACEHOLDER_ID)


def room_board(user: Any, clinic_id: int, now: datetime) -> RoomBoard:
    """Every active chair of the clinic with the patients in it (checked in to ready for
    discharge). Three queries whatever the number of chairs (one round trip on PostgreSQL):
    clinic, chairs, sessions (with the open alert count, the last reading and the infusion
    length as subqueries)."""
    # As access.require_clinic(): 404 unless the user holds the permission at the clinic.
    if clinic_id not in access.clinic_ids_for(user, "course.view"):
        raise Http404
    values = {"clinic_id": clinic_id}
    found, chairs, sessions = objects_together(
        [(_BOARD_CLINIC, values), (_BOARD_CHAIRS, values), (_BOARD_SESSIONS, values)]
    )
    if not found:
        raise Http404
    clinic = found[0]
    by_chair: dict[int | None, list[BoardSession]] = {}
    for session in sessions:
        due = vitals_due_after(
            treatment=session.treatment,
            dosing_started_at=session.dosing_started_at,
            infusion_minutes=session.infusion_minutes,  # type: ignore[attr-defined]
            last_taken_at=session.last_reading_at,  # type: ignore[attr-defined]
        )
        started = session.dosing_started_at
        by_chair.setdefault(session.chair_id, []).append(
            BoardSession(
                session=session,
                minutes_since_first_dose=int((now - started).total_seconds() // 60)
                if started
                else None,
                next_vitals_due=due,
                vitals_overdue=due is not None and due < now,
                open_alerts=session.open_alert_count or 0,  # type: ignore[attr-defined]
            )
        )
    rows = [BoardChair(chair, by_chair.pop(chair.pk, [])) for chair in chairs]
    # Sessions in no chair (or a chair since retired) still show, last.
    unplaced = [s for group in by_chair.values() for s in group]
    if unplaced:
        rows.append(BoardChair(None, unplaced))
    return RoomBoard(clinic=clinic, now=now, chairs=rows)


# --- REMS Patient Monitoring Forms (clinical.md §4: due within 7 days of the session) ---------

REMS_DUE_DAYS = 7  # Spravato REMS: the monitoring form is submitted within 7 days.
SUBMITTED_SHOWN_DAYS = 90  # the worklist shows submissions of the last 90 days


def _esketamine_treatments() -> list[str]:
    return [key for key, treatment in TREATMENTS.items() if treatment.is_esketamine]


def rems_due_on(session: TreatmentSession) -> date:
    """The day the session's REMS form is due: the session date (clinic time) + 7 days."""
    from ketaclinic.treatment_sessions.services import session_date

    return session_date(session) + timedelta(days=REMS_DUE_DAYS)


@dataclass
class RemsWorklist:
    """Esketamine sessions' monitoring forms, oldest due first. Each row is a TreatmentSession
    with `.due_on`, `.days_left` (negative when overdue) and `.submission` (or None)."""

    today: date
    overdue: list[TreatmentSession] = field(default_factory=list)
    due: list[TreatmentSession] = field(default_factory=list)
    submitted: list[TreatmentSession] = field(default_factory=list)


def rems_worklist(user: Any, *, today: date | None = None, clinic_id: Any = None) -> RemsWorklist:
    """Every esketamine session given at the user's clinics whose form is outstanding, and the
    forms submitted in the last 90 days."""
    now = clock.now()
    rows = (
        sessions_for(user, "session.record")
        .filter(treatment__in=_esketamine_treatments(), dosing_started_at__isnull=False)
        .exclude(status=SessionStatus.CANCELLED)
        .select_related("rems_submission")
        .order_by("dosing_started_at", "id")
    )
    if clinic_id not in (None, ""):
        rows = rows.filter(clinic_id=clinic_id)
    oldest_shown = now - timedelta(days=SUBMITTED_SHOWN_DAYS)
    submitted_ids = RemsSubmission.objects.filter(session__in=rows).values("session_id")
    rows = rows.exclude(pk__in=submitted_ids, dosing_started_at__lt=oldest_shown)
    worklist = RemsWorklist(today=today or now.date())
    for session in rows:
        session.due_on = rems_due_on(session)  # type: ignore[attr-defined]
        local_today = today or now.astimezone(_zone(session.clinic.timezone)).date()
        session.days_left = (session.due_on - local_today).days  # type: ignore[attr-defined]
        try:
            session.submission = session.rems_submission  # type: ignore[attr-defined]
        except RemsSubmission.DoesNotExist:
            session.submission = None  # type: ignore[attr-defined]
        if session.submission is not None:  # type: ignore[attr-defined]
            worklist.submitted.append(session)
        elif session.days_left < 0:  # type: ignore[attr-defined]
            worklist.overdue.append(session)
        else:
            worklist.due.append(session)
    worklist.submitted.sort(key=lambda s: s.submission.submitted_on, reverse=True)  # type: ignore[attr-defined]
    return worklist


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
