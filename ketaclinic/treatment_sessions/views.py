"""Pages of one treatment session: the nurse's and prescriber's workspace at /sessions/<id>/.

One page shows the patient, the step list and the forms of the current step; every action is a
POST to its own URL that calls one service and goes back to the page (or shows the page again
with the form's errors and status 400, having changed nothing). A refused safety rule shows its
reasons in the page. Reading the page, the note and printing the instructions are audited.

Permissions: everyone on staff with `course.view` reads; recording needs `session.record`
(nurses, prescribers); acknowledging a review/hold and signing need `session.sign`
(prescribers). A session of another clinic is 404, exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import (
    InvalidInput,
    UnsafeOrder,
    esketamine_administration,
    get_treatment,
    iv_infusion,
)
from ketaclinic.core import clock
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.validation import add_service_errors
from ketaclinic.courses import selectors as course_selectors
from ketaclinic.treatment_sessions import forms as f
from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.choices import GateStatus, SessionStatus
from ketaclinic.treatment_sessions.models import TreatmentSession, VitalAlert
from ketaclinic.treatment_sessions.note import note_text
from ketaclinic.treatment_sessions.rems import REQUIRED as REMS_REQUIRED
from ketaclinic.treatment_sessions.rems import rems_form, rems_missing

S = SessionStatus
# Statuses in which the discharge criteria are assessed and the observation timer runs.
OBSERVATION = frozenset({S.OBSERVING, S.READY_FOR_DISCHARGE})
NOTE_READY = frozenset({S.DISCHARGED, S.STOPPED_EARLY, S.SIGNED})


def _url(session: TreatmentSession, anchor: str = "") -> HttpResponseRedirect:
    url = reverse("treatment_sessions:workspace", args=[session.pk])
    return HttpResponseRedirect(f"{url}#{anchor}" if anchor else url)


def _zone(session: TreatmentSession) -> ZoneInfo:
    return ZoneInfo(session.clinic.timezone)


class _SessionPaths(Mapping[str, str]):
    """`paths.vitals` in the workspace: reverse("treatment_sessions:vitals", args=[session.pk]).

    Each action's path is reversed once per process with a stand-in id (and script prefix),
    then filled in with the session's: the page links to a dozen actions, and reverse() for
    each took about a millisecond per page. A pattern where the stand-in does not appear exactly
    once is reversed as usual.
    """

    _STAND_IN = "918273645"
    _patterns: ClassVar[dict[tuple[str, str], tuple[str, ...]]] = {}

    def __init__(self, session_id: int) -> None:
        self._session_id = session_id

    def __getitem__(self, name: str) -> str:
        key = (get_script_prefix(), name)
        parts = self._patterns.get(key)
        if parts is None:
            try:
                path = reverse(f"treatment_sessions:{name}", args=[self._STAND_IN])
            except NoReverseMatch:
                raise KeyError(name) from None
            parts = self._patterns[key] = tuple(path.split(self._STAND_IN))
        if len(parts) != 2:
            return reverse(f"treatment_sessions:{name}", args=[self._session_id])
        return f"{parts[0]}{self._session_id}{parts[1]}"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _read(request: AuthenticatedRequest, session: TreatmentSession, detail: str) -> None:
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        obj=session,
        detail=detail,
    )


# --- What the workspace shows ------------------------------------------------------------------


def _steps(session: TreatmentSession) -> list[dict[str, Any]]:
    """The step list: done, current or to do, from the timestamps the state machine sets."""
    esketamine = get_treatment(session.treatment).is_esketamine
    rows = [
        ("check_in", "Check-in", session.checked_in_at),
        ("gate", "Pre-dose check and gate", session.gate_passed_at),
        ("dosing", "Dose" + (" (devices)" if esketamine else ""), session.observing_started_at),
        ("monitoring", "Monitoring and observation", session.ready_at),
        ("discharge", "Discharge", session.discharged_at),
        ("sign", "Prescriber sign-off", session.signed_at),
    ]
    ended = session.status in (S.CANCELLED, S.STOPPED_EARLY)
    steps, current_found = [], False
    for key, label, done_at in rows:
        if done_at is not None:
            state = "done"
        elif ended and key != "sign":
            state = "skipped"
        elif not current_found:
            state, current_found = "current", True
        else:
            state = "todo"
        steps.append({"key": key, "label": label, "state": state, "at": done_at})
    return steps


def _steps_html(steps: list[dict[str, Any]]) -> SafeString:
    """The step list's items (keys and states are fixed words; labels escaped anyway)."""
    return SafeString(
        "".join(
            f'<li class="{step["state"]}" data-testid="step-{step["key"]}" '
            f'data-state="{step["state"]}">{number}. {escape(step["label"])}'
            f"{' ✓ ' + _hm(step['at']) if step['at'] else ''}</li>"
            for number, step in enumerate(steps, start=1)
        )
    )


def _first_dose_at(session: TreatmentSession, devices: list[Any]) -> datetime | None:
    if devices:
        return devices[0].administered_at
    return session.dosing_started_at


def _observation(session: TreatmentSession, devices: list[Any], now: datetime) -> dict[str, Any]:
    """The timer from the first dose, computed here so the page's number is the server's."""
    first = _first_dose_at(session, devices)
    if first is None:
        return {}
    end = session.discharged_at or session.ended_at or now
    seconds = max(0, int((end - first).total_seconds()))
    minimum = 120 if get_treatment(session.treatment).is_esketamine else None
    return {
        "first_dose_at": first,
        "elapsed_seconds": seconds,
        "elapsed": f"{seconds // 60:02d}:{seconds % 60:02d}",
        "running": end is now,
        "minimum_minutes": minimum,
        "earliest_discharge": first + timedelta(minutes=minimum) if minimum else None,
        "minimum_met": minimum is None or seconds >= minimum * 60,
    }


def _device_state(session: TreatmentSession, devices: list[Any], now: datetime) -> dict[str, Any]:
    """Esketamine: how many devices, and when the next one may be used."""
    try:
        plan = esketamine_administration(int(session.planned_dose_mg or 0))
    except UnsafeOrder as exc:
        return {"problem": str(exc)}
    state: dict[str, Any] = {"planned": plan.devices, "used": len(devices), "wait_seconds": 0}
    if devices and len(devices) < plan.devices:
        next_at = devices[-1].administered_at + timedelta(minutes=plan.minutes_between_devices)
        state["next_at"] = next_at
        state["wait_seconds"] = max(0, int((next_at - now).total_seconds()))
    return state


def _plain(number: Any) -> str:
    """36.30 → "36.3": pump numbers are read at a glance, without trailing zeros."""
    return f"{number.normalize():f}" if number is not None else ""


def _pump(order: Any) -> dict[str, str]:
    if order is None:
        return {}
    return {
        "mg": _plain(order.dose_mg),
        "ml": _plain(order.volume_ml),
        "rate": _plain(order.rate_ml_per_h),
        "vtbi": _plain(order.vtbi_ml),
    }


def _guard_reasons(
    session: TreatmentSession, to: str, rows: selectors.SessionRows | None = None
) -> list[str]:
    """What stops the move to `to` now (the same guards the service runs), for showing early."""
    reasons: list[str] = []
    try:
        for guard in services.GUARDS.get(to, ()):
            reasons.extend(guard(session, rows))
    except ValidationError as exc:
        reasons.extend(exc.messages)
    return reasons


def _hm(value: datetime) -> str:
    """`value|clock_time:"H:i"` (the current time zone, as the template shows times)."""
    return timezone.localtime(value).strftime("%H:%M")


def _or_dash(value: Any) -> str:
    """`value|default:"–"`, escaped."""
    return escape(value) if value else "–"


def _flowsheet_rows_html(check: Any, vitals: list[Any]) -> SafeString:
    """The flowsheet's rows (the pre-dose check, then every reading), every text escaped:
    the page a nurse reloads at the chair, written here rather than by a template loop."""
    head = ""
    if check:
        head = (
            f'<tr class="muted"><td>{_hm(check.recorded_at)} pre-dose</td>'
            f"<td>{escape(check.systolic_mmhg)}/{escape(check.diastolic_mmhg)}</td>"
            f"<td>{_or_dash(check.heart_rate_bpm)}</td><td>{_or_dash(check.spo2_pct)}</td>"
            f"<td>{_or_dash(check.respiratory_rate_per_min)}</td><td>–</td>"
            f"<td>{escape(check.recorded_by)}</td></tr>"
        )
    readings = "".join(
        f'<tr data-testid="vitals-row"><td>{_hm(v.taken_at)}</td>'
        f"<td>{_or_dash(v.systolic_mmhg)}/{_or_dash(v.diastolic_mmhg)}</td>"
        f"<td>{_or_dash(v.heart_rate_bpm)}</td><td>{_or_dash(v.spo2_pct)}</td>"
        f"<td>{_or_dash(v.respiratory_rate_per_min)}</td>"
        f"<td>{'–' if v.moaas is None else escape(v.moaas)}</td>"
        f"<td>{escape(v.recorded_by)}{' (device)' if v.source == 'device' else ''}</td></tr>"
        for v in vitals
    )
    return SafeString(f"{head}\n      {readings}")


def _history_html(history: list[Any]) -> SafeString:
    """The session's status changes as list items, every text escaped."""
    return SafeString(
        "".join(
            f"<li>{timezone.localtime(t.at).strftime('%Y-%m-%d %H:%M')} "
            f"{escape(t.get_from_status_display())} → {escape(t.get_to_status_display())} "
            f"by {escape(t.actor)}{f': {escape(t.reason)}' if t.reason else ''}</li>"
            for t in history
        )
    )


def _workspace(
    request: AuthenticatedRequest, session: TreatmentSession, **overrides: Any
) -> dict[str, Any]:
    user, clinic_id = request.user, session.clinic_id
    now = clock.now()
    treatment = get_treatment(session.treatment)
    can_record = access.has_permission(user, "session.record", clinic_id)
    can_sign = access.has_permission(user, "session.sign", clinic_id)
    status = session.status
    # Each of the session's tables read once; the guards below use these rows too.
    rows = selectors.session_rows(session)
    checks, check = rows.checks, rows.latest_check
    orders, order = rows.orders, rows.latest_order
    devices, drawn, discharges = rows.devices, rows.ledger, rows.discharges
    appointment = None
    pre_session: list[Any] = []
    if session.appointment_id:
        from ketaclinic.measures.selectors import pre_session_responses

        appointment = session.appointment
        pre_session = pre_session_responses([session.appointment_id]).get(
            session.appointment_id, []
        )
    context: dict[str, Any] = {
        "s": session,
        "paths": _SessionPaths(session.pk),
        "patient": session.patient,
        "clinic": session.clinic,
        "appointment": appointment,
        "treatment": treatment,
        "is_iv": treatment.route == "iv",
        "is_esketamine": treatment.is_esketamine,
        "can_record": can_record,
        "can_sign": can_sign,
        "steps_html": _steps_html(_steps(session)),
        "checks": checks,
        "check": check,
        "orders": orders,
        "order": order,
        "pump": _pump(order),
        "devices": devices,
        "drawn": rows.administrations,
        "ledger_entries": [
            {
                "kind": e.get_kind_display(),
                "mg": abs(e.quantity_mg),
                "lot": e.lot,
                "location": e.location,
                "witness": e.witness,
                "seq": e.seq,
            }
            for e in drawn
        ],
        "vitals": rows.vitals,
        "flowsheet_rows": _flowsheet_rows_html(check, rows.vitals),
        "alerts": rows.alerts,
        "open_alerts": rows.open_alerts,
        "cadss": rows.cadss,
        "interventions": rows.interventions,
        "events": rows.events,
        "discharges": discharges,
        "discharge": rows.latest_discharge,
        "history": rows.history,
        "history_items": _history_html(rows.history),
        "pre_session": pre_session,
        "safety_flags": rows.safety_flags,
        "observation": _observation(session, devices, now),
        "now": now,
        "GateStatus": GateStatus,
    }
    if status == S.CHECKED_IN:
        context["gate_blockers"] = services.gate_blockers(session, rows)
    if status == S.GATE_PASSED:
        context["dosing_blockers"] = services.dosing_blockers(session, rows)
    if treatment.is_esketamine and status in (S.GATE_PASSED, S.DOSING):
        context["device_state"] = _device_state(session, devices, now)
    if status == S.DOSING:
        context["observing_blockers"] = _guard_reasons(session, S.OBSERVING, rows)
    if status in (S.DOSING, *OBSERVATION):
        try:
            due = services.next_vitals_due(session, now, rows)
        except InvalidInput:  # an IV session without an order has no schedule to show
            due = None
        context["vitals_due"] = due
        context["vitals_overdue"] = due is not None and due < now
    if status == S.OBSERVING:
        context["ready_blockers"] = _guard_reasons(session, S.READY_FOR_DISCHARGE, rows)
    if status in NOTE_READY and status != S.SIGNED:
        context["sign_blockers"] = rems_missing(session, rows)
    if status == S.SIGNED:
        context["signature"] = getattr(session, "signature", None)
        context["amendments"] = list(session.amendments.select_related("author"))
    if can_record:
        context.update(_forms(request, session, status, check, order))
    if can_sign:
        context["ack_form"] = f.ReasonForm()
        context["sign_form"] = f.SignForm()
    context.update(overrides)
    return context


def _forms(
    request: AuthenticatedRequest, session: TreatmentSession, status: str, check: Any, order: Any
) -> dict[str, Any]:
    esketamine = get_treatment(session.treatment).is_esketamine
    forms: dict[str, Any] = {"reason_form": f.ReasonForm()}
    if status == S.CHECKED_IN:
        initial = {}
        if check is not None:  # re-measuring starts from the last answers
            initial = {
                "weight_kg": check.weight_kg,
                "fasting_confirmed": check.fasting_confirmed,
                "ride_home_confirmed": check.ride_home_confirmed,
                "pregnancy_status": check.pregnancy_status,
            }
        forms["pre_dose_form"] = f.PreDoseForm(
            clinic_id=session.clinic_id, esketamine=esketamine, initial=initial
        )
    if status == S.GATE_PASSED and get_treatment(session.treatment).route == "iv":
        forms["order_form"] = f.InfusionOrderForm(
            initial={"dose_mg_per_kg": "0.5", "minutes": 40, "concentration_mg_per_ml": "1"}
        )
        if order is not None and order.checked_by_id is None:
            forms["check_form"] = f.SecondCheckForm(clinic=session.clinic, actor_id=request.user.pk)
    if status in (S.GATE_PASSED, S.DOSING):
        expected = order.dose_mg if order is not None else session.planned_dose_mg
        forms["draw_form"] = f.DrawForm(
            clinic=session.clinic, actor_id=request.user.pk, initial={"dose_mg": expected}
        )
    if status in (S.DOSING, *OBSERVATION):
        forms["vitals_form"] = f.VitalsForm()
        forms["alert_form"] = f.AlertAckForm()
        forms["cadss_form"] = f.CadssForm()
        forms["intervention_form"] = f.InterventionForm()
    if status in (S.CHECKED_IN, S.GATE_PASSED, S.DOSING, *OBSERVATION, S.DISCHARGED):
        forms["event_form"] = f.AdverseEventForm()
    if status in OBSERVATION:
        forms["discharge_form"] = f.DischargeForm()
    if status == S.SIGNED:
        forms["amend_form"] = f.AmendForm()
    return forms


def _render(
    request: AuthenticatedRequest, session: TreatmentSession, *, status: int = 200, **extra: Any
) -> HttpResponse:
    with timezone.override(_zone(session)):
        return render(
            request,
            "treatment_sessions/workspace.html",
            _workspace(request, session, **extra),
            status=status,
        )


def _refused(
    request: AuthenticatedRequest,
    session: TreatmentSession,
    exc: ValidationError,
    form_name: str,
    form: Any,
) -> HttpResponse:
    """The page again, the service's reasons on the form, status 400 (nothing was written)."""
    add_service_errors(form, exc)
    session.refresh_from_db()
    # A refusal that is not about one field (the state, a gate) is also shown at the top: the
    # form it came from may not be on the page in the session's state.
    blocked = list(form.non_field_errors())
    return _render(
        request, session, status=400, blocked=blocked, **{form_name: form, "failed": form_name}
    )


# --- The workspace and the way in ------------------------------------------------------------


@login_required
@require_GET
def workspace(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = selectors.get_session(request.user, session_id)
    _read(request, session, "treatment session workspace")
    return _render(request, session)


@login_required
@require_http_methods(["GET", "POST"])
def for_appointment(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    """Open the appointment's session, or start one (POST) when there is none yet."""
    access.require(request.user, "session.record")
    appointment = course_selectors.get_appointment(request.user, appointment_id)
    if not access.has_permission(request.user, "session.record", appointment.clinic_id):
        raise Http404
    existing = TreatmentSession.objects.filter(appointment=appointment).first()
    if existing is not None:
        return _url(existing)
    error: list[str] = []
    if request.method == "POST":
        try:
            session = services.session_create(actor=request.user, appointment=appointment)
        except ValidationError as exc:
            error = exc.messages
        else:
            messages.success(request, "Session opened.")
            return _url(session)
    else:
        record_event(
            action=Action.READ,
            user=request.user,
            clinic_id=appointment.clinic_id,
            patient_id=appointment.patient_id,
            obj=appointment,
            detail="start a treatment session",
        )
    with timezone.override(ZoneInfo(appointment.clinic.timezone)):
        return render(
            request,
            "treatment_sessions/start.html",
            {
                "a": appointment,
                "patient": appointment.patient,
                "treatment": get_treatment(appointment.course.treatment),
                "errors": error,
            },
            status=400 if error else 200,
        )


# --- Actions -----------------------------------------------------------------------------------


def _recording(request: AuthenticatedRequest, session_id: int) -> TreatmentSession:
    return selectors.get_session(request.user, session_id, "session.record")


def _transition(
    request: AuthenticatedRequest, session_id: int, to: str, done: str, anchor: str
) -> HttpResponse:
    """A move without input (check in, pass the gate, start dosing, ...): its guards' reasons
    are shown on the page when it is refused."""
    session = _recording(request, session_id)
    try:
        services.session_transition(actor=request.user, session=session, to=to)
    except ValidationError as exc:
        session.refresh_from_db()
        return _render(request, session, status=400, blocked=exc.messages, failed=anchor)
    messages.success(request, done)
    return _url(session, anchor)


@login_required
@require_POST
def check_in(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _transition(request, session_id, S.CHECKED_IN, "Patient checked in.", "gate")


@login_required
@require_POST
def pass_gate(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _transition(request, session_id, S.GATE_PASSED, "Pre-dose gate passed.", "dosing")


@login_required
@require_POST
def start_dosing(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _transition(request, session_id, S.DOSING, "Dosing started.", "dosing")


@login_required
@require_POST
def start_observation(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _transition(
        request, session_id, S.OBSERVING, "Dose complete; observation.", "monitoring"
    )


@login_required
@require_POST
def ready(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _transition(
        request, session_id, S.READY_FOR_DISCHARGE, "Ready for discharge.", "discharge"
    )


@login_required
@require_POST
def discharge(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _transition(request, session_id, S.DISCHARGED, "Patient discharged.", "sign")


@login_required
@require_POST
def pre_dose(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.PreDoseForm(
        request.POST,
        clinic_id=session.clinic_id,
        esketamine=get_treatment(session.treatment).is_esketamine,
    )
    if form.is_valid():
        try:
            check = services.session_record_pre_dose(
                actor=request.user, session=session, data=form.service_data()
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "pre_dose_form", form)
        messages.success(request, f"Pre-dose check recorded: {check.get_gate_status_display()}.")
        return _url(session, "gate")
    return _render(request, session, status=400, pre_dose_form=form, failed="pre_dose_form")


@login_required
@require_POST
def acknowledge_gate(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = selectors.get_session(request.user, session_id, "session.sign")
    form = f.ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.session_acknowledge_gate(
                actor=request.user, session=session, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "ack_form", form)
        messages.success(request, "The prescriber's answer is recorded.")
        return _url(session, "gate")
    return _render(request, session, status=400, ack_form=form, failed="ack_form")


@login_required
@require_POST
def order(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.InfusionOrderForm(request.POST)
    if form.is_valid():
        try:
            placed = services.session_order_infusion(
                actor=request.user, session=session, **form.cleaned_data
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "order_form", form)
        messages.success(
            request,
            f"Order: {placed.dose_mg} mg, {placed.rate_ml_per_h} mL/h, VTBI {placed.vtbi_ml} mL. "
            "A second clinician checks it now.",
        )
        return _url(session, "dosing")
    return _render(request, session, status=400, order_form=form, failed="order_form")


@login_required
@require_GET
def order_preview(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    """htmx: as the nurse types mg/kg, minutes and concentration, show the mg, mL, mL/h and VTBI
    the order will have, from today's weight. Nothing is written; the numbers come from the same
    `clinical.iv_infusion` the order uses, and an unsafe order says why. Not audited per
    keystroke: the workspace read that shows the weight already is."""
    session = _recording(request, session_id)
    check = services.latest_check(session)
    form = f.InfusionOrderForm(request.GET)
    context: dict[str, Any] = {"problem": "", "pump": {}}
    if check is None:
        context["problem"] = "Record today's weight first."
    elif form.is_valid():
        data = form.cleaned_data
        try:
            infusion = iv_infusion(
                weight_kg=check.weight_kg,
                dose_mg_per_kg=data["dose_mg_per_kg"],
                minutes=data["minutes"],
                concentration_mg_per_ml=data["concentration_mg_per_ml"],
            )
        except (UnsafeOrder, InvalidInput) as exc:
            context["problem"] = str(exc)
        else:
            context["pump"] = {
                "mg": _plain(infusion.dose_mg),
                "ml": _plain(infusion.volume_ml),
                "rate": _plain(infusion.rate_ml_per_h),
                "vtbi": _plain(infusion.vtbi_ml),
            }
            context["weight_kg"] = _plain(check.weight_kg)
    else:
        context["problem"] = "Enter the dose, minutes and concentration."
    return render(request, "treatment_sessions/_order_preview.html", context)


@login_required
@require_POST
def second_check(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.SecondCheckForm(request.POST, clinic=session.clinic, actor_id=request.user.pk)
    if form.is_valid():
        try:
            checked = services.session_second_check(
                actor=request.user, session=session, attestation=form.attestation()
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "check_form", form)
        messages.success(request, f"Order checked by {checked.checked_by}.")
        return _url(session, "dosing")
    return _render(request, session, status=400, check_form=form, failed="check_form")


@login_required
@require_POST
def draw(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.DrawForm(request.POST, clinic=session.clinic, actor_id=request.user.pk)
    if form.is_valid():
        data = form.cleaned_data
        try:
            record = services.session_record_administration(
                actor=request.user,
                session=session,
                location=data["stock"].location,
                lot=data["stock"].lot,
                dose_mg=data["dose_mg"],
                waste_mg=data["waste_mg"],
                witness=form.witness(),
            )
        except ValidationError as exc:
            renames = {"lot": "stock", "location": "stock", "waste": "waste_mg"}
            if hasattr(exc, "error_dict"):
                exc = ValidationError({renames.get(k, k): v for k, v in exc.message_dict.items()})
            return _refused(request, session, exc, "draw_form", form)
        wasted = -record.waste.quantity_mg if record.waste else 0
        messages.success(
            request,
            f"Dose drawn: {-record.administration.quantity_mg} mg; wasted {wasted} mg.",
        )
        return _url(session, "dosing")
    return _render(request, session, status=400, draw_form=form, failed="draw_form")


@login_required
@require_POST
def device(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    try:
        used = services.session_record_device(actor=request.user, session=session)
    except ValidationError as exc:
        session.refresh_from_db()
        return _render(request, session, status=400, blocked=exc.messages, failed="dosing")
    messages.success(request, f"Device {used.number} recorded.")
    return _url(session, "dosing")


@login_required
@require_POST
def vitals(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.VitalsForm(request.POST)
    if form.is_valid():
        try:
            _, raised = services.session_record_vitals(
                actor=request.user, session=session, data=form.cleaned_data
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "vitals_form", form)
        if raised:
            messages.warning(
                request, "Alert: " + "; ".join(a.message for a in raised) + " Acknowledge below."
            )
        else:
            messages.success(request, "Vital signs recorded.")
        return _url(session, "monitoring")
    return _render(request, session, status=400, vitals_form=form, failed="vitals_form")


@login_required
@require_POST
def acknowledge_alert(request: AuthenticatedRequest, alert_id: int) -> HttpResponse:
    access.require(request.user, "session.record")
    alert = (
        VitalAlert.objects.filter(
            pk=alert_id,
            session__clinic_id__in=access.clinic_ids_for(request.user, "session.record"),
        )
        .select_related("session")
        .first()
    )
    if alert is None:
        raise Http404
    session = selectors.get_session(request.user, alert.session_id, "session.record")
    form = f.AlertAckForm(request.POST)
    if form.is_valid():
        try:
            services.session_acknowledge_alert(
                actor=request.user, alert=alert, action=form.cleaned_data["action"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Alert acknowledged.")
            return _url(session, "monitoring")
    return _render(
        request, session, status=400, alert_form=form, failed_alert=alert.pk, failed="alert_form"
    )


@login_required
@require_POST
def cadss(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.CadssForm(request.POST)
    if form.is_valid():
        try:
            services.session_record_cadss(
                actor=request.user, session=session, total=form.cleaned_data["total"]
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "cadss_form", form)
        messages.success(request, "CADSS recorded.")
        return _url(session, "monitoring")
    return _render(request, session, status=400, cadss_form=form, failed="cadss_form")


@login_required
@require_POST
def intervention(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.InterventionForm(request.POST)
    if form.is_valid():
        try:
            done = services.session_record_intervention(
                actor=request.user,
                session=session,
                kind=form.cleaned_data["kind"],
                detail=form.cleaned_data["detail"],
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "intervention_form", form)
        messages.success(request, f"{done.get_kind_display()} recorded.")
        return _url(session, "monitoring")
    return _render(request, session, status=400, intervention_form=form, failed="intervention_form")


@login_required
@require_POST
def adverse_event(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.AdverseEventForm(request.POST)
    if form.is_valid():
        try:
            services.session_record_adverse_event(
                actor=request.user, session=session, data=form.cleaned_data
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "event_form", form)
        messages.success(request, "Adverse event recorded.")
        return _url(session, "monitoring")
    return _render(request, session, status=400, event_form=form, failed="event_form")


@login_required
@require_POST
def assess_discharge(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.DischargeForm(request.POST)
    if form.is_valid():
        try:
            done = services.session_assess_discharge(
                actor=request.user, session=session, data=form.cleaned_data
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "discharge_form", form)
        if done.gate_status == GateStatus.PROCEED:
            messages.success(request, "Discharge criteria met.")
        else:
            messages.warning(
                request, "Not yet: " + " ".join(r["message"] for r in done.gate_reasons)
            )
        return _url(session, "discharge")
    return _render(request, session, status=400, discharge_form=form, failed="discharge_form")


@login_required
@require_POST
def sign(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = selectors.get_session(request.user, session_id, "session.sign")
    form = f.SignForm(request.POST)
    if form.is_valid():
        try:
            services.session_sign(
                actor=request.user, session=session, meaning=form.cleaned_data["meaning"]
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "sign_form", form)
        messages.success(request, "Note signed.")
        return HttpResponseRedirect(reverse("treatment_sessions:note", args=[session.pk]))
    return _render(request, session, status=400, sign_form=form, failed="sign_form")


@login_required
@require_POST
def amend(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.AmendForm(request.POST)
    if form.is_valid():
        try:
            services.session_amend(
                actor=request.user, session=session, text=form.cleaned_data["text"]
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "amend_form", form)
        messages.success(request, "Amendment added.")
        return HttpResponseRedirect(reverse("treatment_sessions:note", args=[session.pk]))
    return _render(request, session, status=400, amend_form=form, failed="amend_form")


def _end(request: AuthenticatedRequest, session_id: int, to: str) -> HttpResponse:
    session = _recording(request, session_id)
    form = f.ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.session_transition(
                actor=request.user, session=session, to=to, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            return _refused(request, session, exc, "reason_form", form)
        label = "cancelled" if to == S.CANCELLED else "stopped early"
        messages.success(request, f"Session {label}.")
        return _url(session)
    return _render(request, session, status=400, reason_form=form, failed="reason_form")


@login_required
@require_POST
def cancel(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _end(request, session_id, S.CANCELLED)


@login_required
@require_POST
def stop_early(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    return _end(request, session_id, S.STOPPED_EARLY)


# --- Note and discharge instructions -------------------------------------------------------------


@login_required
@require_GET
def note(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    """The note as a clinician reads it, with the signature (and whether it still verifies)."""
    session = selectors.get_session(request.user, session_id)
    _read(request, session, "treatment session note")
    context = _workspace(request, session)
    signature = getattr(session, "signature", None) if session.status == S.SIGNED else None
    context.update(
        {
            "signature": signature,
            "verified": services.verify_signature(session) if signature else None,
            "amendments": list(session.amendments.select_related("author")),
            "note_text": note_text(session) if signature is None else signature.content,
        }
    )
    if context["is_esketamine"]:
        context["rems_rows"] = _rems_rows(session)
        context["rems_missing"] = rems_missing(session)
    with timezone.override(_zone(session)):
        return render(request, "treatment_sessions/note.html", context)


def _rems_rows(session: TreatmentSession) -> list[tuple[str, Any]]:
    """The REMS Patient Monitoring Form as label/value rows for the note page."""
    form = rems_form(session)
    labels = {"form_version": "Form version", **REMS_REQUIRED}
    return [(labels.get(key, key.replace("_", " ")), value) for key, value in form.items()]


INSTRUCTIONS = {
    "iv": "You had a ketamine infusion today.",
    "im": "You had a ketamine injection today.",
    "oral": "You took ketamine by mouth today.",
    "intranasal": "You had esketamine (Spravato) nasal spray today.",
}


@login_required
@require_GET
def instructions(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    """Printable discharge instructions for this treatment; printing is audited."""
    session = selectors.get_session(request.user, session_id)
    treatment = get_treatment(session.treatment)
    record_event(
        action=Action.PRINT,
        user=request.user,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        obj=session,
        detail="discharge instructions printed",
    )
    with timezone.override(_zone(session)):
        return render(
            request,
            "treatment_sessions/instructions.html",
            {
                "s": session,
                "patient": session.patient,
                "clinic": session.clinic,
                "treatment": treatment,
                "intro": INSTRUCTIONS.get(treatment.route, "You had ketamine treatment today."),
                "is_esketamine": treatment.is_esketamine,
                "printed_at": clock.now(),
            },
        )
