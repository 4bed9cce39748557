"""Course pages (prescribers plan and steer; everyone on staff reads), appointments (front desk
and nurses reschedule, cancel, record no-shows), the day board, the printable cost estimate and
the clinic's scheduling settings (administrators).

Times are shown and entered in the clinic's own time zone.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import PROTOCOLS, TREATMENTS
from ketaclinic.core import clock
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.validation import add_service_errors
from ketaclinic.courses import estimates, scheduling, selectors, services
from ketaclinic.courses import forms as f
from ketaclinic.courses.choices import (
    COURSE_TRANSITIONS,
    DEFAULT_BILLING_CODES,
    CourseStatus,
    MaintenanceCadence,
    PriceKind,
)
from ketaclinic.courses.models import Appointment, Chair, PriceItem, TreatmentCourse
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors as screening
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.templatetags.intake_labels import treatment_label

PAGE_SIZE = 25


def _read(request: AuthenticatedRequest, patient: Patient, detail: str) -> None:
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail=detail,
    )


def _page(
    request: AuthenticatedRequest,
    template: str,
    context: dict[str, Any],
    *,
    invalid: bool,
    clinic: Clinic | None = None,
) -> HttpResponse:
    status = 400 if invalid else 200
    if clinic is None:
        return render(request, template, context, status=status)
    with timezone.override(scheduling.clinic_zone(clinic)):
        return render(request, template, context, status=status)


def _errors(form: Any, exc: ValidationError) -> list[Any]:
    add_service_errors(form, exc)
    return exc.reasons if isinstance(exc, Blocked) else []


def _course_url(course: TreatmentCourse) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("courses:detail", args=[course.pk]))


# --- Course list and creation ---------------------------------------------------------------


@login_required
def course_list(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "course.view")
    status = request.GET.get("status", "open")
    if status not in {"open", "all", *CourseStatus.values}:
        status = "open"
    page = Paginator(selectors.courses_for(request.user, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    record_event(
        action=Action.LIST,
        user=request.user,
        object_type="courses.treatmentcourse",
        detail=f"course list page {page.number}; status={status}",
    )
    return render(
        request,
        "courses/course_list.html",
        {
            "page": page,
            "status": status,
            "statuses": [("open", "Open"), *CourseStatus.choices, ("all", "All")],
            "protocols": PROTOCOLS,
        },
    )


def _preview(clinic: Clinic, form: f.CourseForm) -> tuple[list[Any], str]:
    data = form.cleaned_data
    try:
        plan = services.preview_plan(
            clinic=clinic,
            protocol=data["protocol"],
            start_date=data["start_date"],
            weeks=data.get("weeks"),
        )
    except ValidationError as exc:
        return [], " ".join(exc.messages)
    return plan, ""


@login_required
@require_http_methods(["GET", "POST"])
def course_create(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    """A prescriber plans a course from a protocol; every blocking rule is shown with its
    reason before and after submitting."""
    patient = access.get_patient(request.user, patient_id, "course.manage")
    clinic = patient.clinic
    chairs = Chair.objects.filter(clinic_id=clinic.pk, is_active=True).order_by("name")
    intended = screening.intake_summary(patient)
    default_protocol = next(
        (
            code
            for code, p in PROTOCOLS.items()
            if intended.intake and p.treatment == intended.intake.intended_treatment
        ),
        "esketamine_trd",
    )
    tomorrow = clock.today_in(clinic.timezone).toordinal() + 1
    initial = {
        "protocol": default_protocol,
        "start_date": date.fromordinal(tomorrow),
        "session_time": scheduling.schedule_for(clinic).opens_at,
    }
    bound = (
        request.POST
        if request.method == "POST"
        else (request.GET if "protocol" in request.GET else None)
    )
    form = f.CourseForm(bound, initial=initial, chairs=chairs)
    plan: list[Any] = []
    plan_error = ""
    blocked: list[Any] = []
    if form.is_bound and form.is_valid():
        plan, plan_error = _preview(clinic, form)
    if request.method == "GET" and request.htmx:
        with timezone.override(scheduling.clinic_zone(clinic)):
            return render(
                request,
                "courses/course_form.html#plan",
                {"plan": plan, "plan_error": plan_error, "form": form},
            )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            course = services.course_create(
                actor=request.user,
                patient=patient,
                protocol=data["protocol"],
                start_date=data["start_date"],
                session_time=data["session_time"],
                weeks=data.get("weeks"),
                chair_id=data["chair"].pk if data.get("chair") else None,
                dose_mg=data.get("dose_mg"),
                dose_mg_per_kg=data.get("dose_mg_per_kg"),
                goals_note=data.get("goals_note") or "",
                goals=form.goals(),
            )
        except ValidationError as exc:
            blocked = _errors(form, exc)
        else:
            messages.success(request, "Course planned and its sessions booked.")
            return _course_url(course)
    if request.method == "GET":
        _read(request, patient, "plan course form")
    chosen = form.data.get("protocol") if form.is_bound else None
    protocol = PROTOCOLS.get(str(chosen)) or PROTOCOLS[default_protocol]
    context = {
        "patient": patient,
        "form": form,
        "plan": plan,
        "plan_error": plan_error,
        "blocked": blocked,
        "eligibility": [screening.eligibility_now(patient, protocol.treatment)],
        "gaps": [g for g in intended.gaps if g.required],
        "protocols": PROTOCOLS,
        "has_chairs": chairs.exists(),
    }
    return _page(
        request,
        "courses/course_form.html",
        context,
        invalid=request.method == "POST",
        clinic=clinic,
    )


# --- Course page and its actions ------------------------------------------------------------


def dose_fields_for(form: Any, treatment: str) -> Any:
    """Keep only the dose field that fits the treatment (mg for esketamine and oral, mg/kg for
    IV and IM)."""
    route = TREATMENTS[treatment].route
    drop = "dose_mg" if route in ("iv", "im") else "dose_mg_per_kg"
    form.fields.pop(drop, None)
    return form


def _detail_context(request: AuthenticatedRequest, course: TreatmentCourse) -> dict[str, Any]:
    user, clinic_id = request.user, course.clinic_id
    chairs = Chair.objects.filter(clinic_id=clinic_id, is_active=True).order_by("name")
    return {
        "d": selectors.course_detail(course),
        "course": course,
        "patient": course.patient,
        "can_manage": access.has_permission(user, "course.manage", clinic_id),
        "can_record": access.has_permission(user, "session.record", clinic_id),
        "can_schedule": access.has_permission(user, "schedule.manage", clinic_id),
        "status_form": f.StatusForm(),
        "goal_form": f.GoalForm(),
        "booster_form": dose_fields_for(f.BoosterForm(chairs=chairs), course.treatment),
        "transitions": _transitions(course),
    }


def _transitions(course: TreatmentCourse) -> list[tuple[str, str]]:
    allowed = COURSE_TRANSITIONS.get(course.status, frozenset())
    labels: dict[str, str] = {
        CourseStatus.ACTIVE: "Resume" if course.status == CourseStatus.PAUSED else "Start",
        CourseStatus.PAUSED: "Pause",
        CourseStatus.COMPLETED: "Complete",
        CourseStatus.STOPPED: "Stop",
    }
    if course.status == CourseStatus.COMPLETED:
        return []
    return [(s, labels[s]) for s in CourseStatus.values if s in allowed]


@login_required
def course_detail(request: AuthenticatedRequest, course_id: int) -> HttpResponse:
    course = selectors.get_course(request.user, course_id)
    _read(request, course.patient, f"course {course.pk}")
    return _page(
        request,
        "courses/course_detail.html",
        _detail_context(request, course),
        invalid=False,
        clinic=course.clinic,
    )


def _detail_with_errors(
    request: AuthenticatedRequest, course: TreatmentCourse, **extra: Any
) -> HttpResponse:
    context = _detail_context(request, course)
    context.update(extra)
    return _page(request, "courses/course_detail.html", context, invalid=True, clinic=course.clinic)


@login_required
@require_POST
def course_status(request: AuthenticatedRequest, course_id: int) -> HttpResponse:
    course = selectors.get_course(request.user, course_id)
    form = f.StatusForm(request.POST)
    blocked: list[Any] = []
    if form.is_valid():
        status = form.cleaned_data["status"]
        try:
            if status == CourseStatus.ACTIVE and course.status == CourseStatus.PLANNED:
                services.course_start(actor=request.user, course=course)
            else:
                services.course_change_status(
                    actor=request.user,
                    course=course,
                    status=status,
                    reason=form.cleaned_data["reason"],
                )
        except ValidationError as exc:
            blocked = _errors(form, exc)
        else:
            messages.success(request, "Course status changed.")
            return _course_url(course)
    return _detail_with_errors(request, course, status_form=form, blocked=blocked)


@login_required
@require_POST
def goal_add(request: AuthenticatedRequest, course_id: int) -> HttpResponse:
    course = selectors.get_course(request.user, course_id)
    form = f.GoalForm(request.POST)
    if form.is_valid():
        try:
            services.course_goal_add(actor=request.user, course=course, data=form.goal())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Goal added.")
            return _course_url(course)
    return _detail_with_errors(request, course, goal_form=form)


@login_required
@require_POST
def booster_add(request: AuthenticatedRequest, course_id: int) -> HttpResponse:
    course = selectors.get_course(request.user, course_id)
    chairs = Chair.objects.filter(clinic_id=course.clinic_id, is_active=True).order_by("name")
    form = dose_fields_for(f.BoosterForm(request.POST, chairs=chairs), course.treatment)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.booster_add(
                actor=request.user,
                course=course,
                day=data["day"],
                session_time=data["session_time"],
                reason=data["reason"],
                chair_id=data["chair"].pk if data.get("chair") else None,
                dose_mg=data.get("dose_mg"),
                dose_mg_per_kg=data.get("dose_mg_per_kg"),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Booster booked.")
            return _course_url(course)
    return _detail_with_errors(request, course, booster_form=form)


@login_required
@require_http_methods(["GET", "POST"])
def maintenance(request: AuthenticatedRequest, course_id: int) -> HttpResponse:
    course = selectors.get_course(request.user, course_id, "course.manage")
    clinic = course.clinic
    chairs = Chair.objects.filter(clinic_id=clinic.pk, is_active=True).order_by("name")
    protocol = PROTOCOLS[course.protocol]
    esketamine = TREATMENTS[course.treatment].is_esketamine
    initial = {
        "from_date": date.fromordinal(clock.today_in(clinic.timezone).toordinal() + 1),
        "cadence": "label" if esketamine else "every_n_weeks",
        "weeks": max(course.planned_weeks, 16) if esketamine else None,
        "interval_weeks": None if esketamine else 3,
        "sessions": None if esketamine else 4,
        "session_time": scheduling.schedule_for(clinic).opens_at,
    }
    form = dose_fields_for(
        f.MaintenanceForm(request.POST or None, initial=initial, chairs=chairs), course.treatment
    )
    for name in ("interval_weeks", "sessions") if esketamine else ("weeks",):
        form.fields.pop(name)
    form.fields["cadence"].choices = [
        (value, label)
        for value, label in MaintenanceCadence.choices
        if (value != MaintenanceCadence.EVERY_N_WEEKS) == esketamine
    ]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            booked = services.course_start_maintenance(
                actor=request.user,
                course=course,
                from_date=data["from_date"],
                cadence=data["cadence"],
                session_time=data["session_time"],
                weeks=data.get("weeks"),
                interval_weeks=data.get("interval_weeks"),
                sessions=data.get("sessions"),
                chair_id=data["chair"].pk if data.get("chair") else None,
                dose_mg=data.get("dose_mg"),
                dose_mg_per_kg=data.get("dose_mg_per_kg"),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Maintenance planned: {len(booked)} sessions booked.")
            return _course_url(course)
    if request.method == "GET":
        _read(request, course.patient, f"course {course.pk} maintenance form")
    context = {
        "course": course,
        "patient": course.patient,
        "form": form,
        "protocol": protocol,
        "esketamine": esketamine,
    }
    return _page(
        request,
        "courses/maintenance_form.html",
        context,
        invalid=request.method == "POST",
        clinic=clinic,
    )


@login_required
def estimate(request: AuthenticatedRequest, course_id: int) -> HttpResponse:
    """The printable cost estimate (its view is recorded as a print)."""
    course = selectors.get_course(request.user, course_id)
    appointments = list(Appointment.objects.filter(course_id=course.pk).order_by("starts_at"))
    result = estimates.course_estimate(course, appointments)
    record_event(
        action=Action.PRINT,
        user=request.user,
        clinic_id=course.clinic_id,
        patient_id=course.patient_id,
        obj=course.patient,
        detail=f"cost estimate for course {course.pk}",
    )
    return _page(
        request,
        "courses/estimate.html",
        {
            "course": course,
            "patient": course.patient,
            "clinic": course.clinic,
            "estimate": result,
            "protocol": PROTOCOLS.get(course.protocol),
            "today": clock.today_in(course.clinic.timezone),
        },
        invalid=False,
        clinic=course.clinic,
    )


# --- Appointments ---------------------------------------------------------------------------


def _appointment_context(request: AuthenticatedRequest, appointment: Appointment) -> dict[str, Any]:
    user, clinic_id = request.user, appointment.clinic_id
    chairs = Chair.objects.filter(clinic_id=clinic_id, is_active=True).order_by("name")
    course = appointment.course
    siblings = list(Appointment.objects.filter(course_id=course.pk).order_by("starts_at", "id"))
    can_manage = access.has_permission(user, "course.manage", clinic_id)
    local = appointment.starts_at.astimezone(scheduling.clinic_zone(appointment.clinic))
    return {
        "a": appointment,
        "course": course,
        "patient": appointment.patient,
        "advice": selectors.missed_advice_for(course, appointment, siblings)
        if can_manage
        else None,
        "override": screening.active_override_for(appointment.patient_id, course.treatment),
        "can_manage": can_manage,
        "can_record": access.has_permission(user, "session.record", clinic_id),
        "can_schedule": access.has_permission(user, "schedule.manage", clinic_id),
        "can_view_course": access.has_permission(user, "course.view", clinic_id),
        "reschedule_form": f.RescheduleForm(
            chairs=chairs, initial={"day": local.date(), "session_time": local.time()}
        ),
        "reason_form": f.ReasonForm(),
        "dose_form": f.DoseForm(
            initial={"dose_mg": appointment.dose_mg, "dose_mg_per_kg": appointment.dose_mg_per_kg}
        ),
        "treatment_title": TREATMENTS[course.treatment].title,
    }


@login_required
def appointment_detail(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    appointment = selectors.get_appointment(request.user, appointment_id)
    _read(request, appointment.patient, f"appointment {appointment.pk}")
    return _page(
        request,
        "courses/appointment.html",
        _appointment_context(request, appointment),
        invalid=False,
        clinic=appointment.clinic,
    )


def _appointment_errors(
    request: AuthenticatedRequest, appointment: Appointment, **extra: Any
) -> HttpResponse:
    context = _appointment_context(request, appointment)
    context.update(extra)
    return _page(
        request, "courses/appointment.html", context, invalid=True, clinic=appointment.clinic
    )


def _to_appointment(appointment: Appointment) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("courses:appointment", args=[appointment.pk]))


@login_required
@require_POST
def appointment_reschedule(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    appointment = selectors.get_appointment(request.user, appointment_id)
    chairs = Chair.objects.filter(clinic_id=appointment.clinic_id, is_active=True)
    form = f.RescheduleForm(request.POST, chairs=chairs)
    if form.is_valid():
        data = form.cleaned_data
        try:
            new = services.appointment_reschedule(
                actor=request.user,
                appointment=appointment,
                day=data["day"],
                session_time=data["session_time"],
                reason=data["reason"],
                chair_id=data["chair"].pk if data.get("chair") else None,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Session rescheduled.")
            return _to_appointment(new)
    return _appointment_errors(request, appointment, reschedule_form=form)


def _simple_action(request: AuthenticatedRequest, appointment_id: int, action: str) -> HttpResponse:
    appointment = selectors.get_appointment(request.user, appointment_id)
    form = f.ReasonForm(request.POST)
    blocked: list[Any] = []
    if form.is_valid():
        reason = form.cleaned_data["reason"]
        try:
            if action == "cancel":
                services.appointment_cancel(
                    actor=request.user, appointment=appointment, reason=reason
                )
                done = "Session cancelled."
            elif action == "missed":
                services.appointment_mark_missed(
                    actor=request.user, appointment=appointment, reason=reason
                )
                done = "Session recorded as missed."
            else:
                services.appointment_complete(actor=request.user, appointment=appointment)
                done = "Session recorded as given."
        except ValidationError as exc:
            blocked = _errors(form, exc)
        else:
            messages.success(request, done)
            return _to_appointment(appointment)
    return _appointment_errors(
        request, appointment, reason_form=form, blocked=blocked, failed_action=action
    )


@login_required
@require_POST
def appointment_cancel(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    return _simple_action(request, appointment_id, "cancel")


@login_required
@require_POST
def appointment_missed(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    return _simple_action(request, appointment_id, "missed")


@login_required
@require_POST
def appointment_complete(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    return _simple_action(request, appointment_id, "complete")


@login_required
@require_POST
def appointment_dose(request: AuthenticatedRequest, appointment_id: int) -> HttpResponse:
    appointment = selectors.get_appointment(request.user, appointment_id)
    form = f.DoseForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.appointment_set_dose(
                actor=request.user,
                appointment=appointment,
                reason=data["reason"],
                dose_mg=data.get("dose_mg"),
                dose_mg_per_kg=data.get("dose_mg_per_kg"),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Dose changed.")
            return _to_appointment(appointment)
    return _appointment_errors(request, appointment, dose_form=form)


# --- Day board ------------------------------------------------------------------------------


@login_required
def day_board(request: AuthenticatedRequest) -> HttpResponse:
    """Today's (or a chosen day's) appointments per chair, with alerts."""
    access.require(request.user, "schedule.view")
    clinics = list(access.clinics_for(request.user, "schedule.view"))
    form = f.BoardForm(request.GET or None, clinics=clinics)
    clinic = clinics[0]
    day = None
    if form.is_bound and form.is_valid():
        chosen = form.cleaned_data.get("clinic")
        clinic = next((c for c in clinics if c.pk == chosen), clinic)
        day = form.cleaned_data.get("day")
    day = day or clock.today_in(clinic.timezone)
    board = selectors.day_board(clinic, day)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=clinic.pk,
        object_type="courses.appointment",
        detail=f"day board {day:%Y-%m-%d}: {board.count} appointments",
    )
    can_view_patient = access.has_permission(request.user, "patient.view", clinic.pk)
    with timezone.override(scheduling.clinic_zone(clinic)):  # as _page() renders the rest
        columns = board_html(board, can_view_patient=can_view_patient)
    return _page(
        request,
        "courses/day_board.html",
        {
            "board": board,
            "board_html": columns,
            "form": form,
            "clinics": clinics,
            "is_today": day == clock.today_in(clinic.timezone),
            "can_view_patient": can_view_patient,
        },
        invalid=False,
        clinic=clinic,
    )


def board_html(board: selectors.DayBoard, *, can_view_patient: bool) -> SafeString:
    """The board's chair columns with their appointments and alerts (every text escaped), in the
    current time zone: the markup the template loop wrote, byte for byte, for a fraction of its
    cost (twenty chairs of nested loops, two routes per appointment, reversed once here)."""
    tz = timezone.get_current_timezone()
    out = ['<div class="board" data-testid="day-board">\n']
    for column in board.columns:
        chair = column.chair
        capacity = (
            f' <small class="muted">(holds {chair.capacity})</small>' if chair.capacity > 1 else ""
        )
        out.append(
            f'\n  <section class="board-chair" aria-labelledby="chair-{chair.pk}">\n'
            f'    <h2 id="chair-{chair.pk}">{escape(chair.name)}{capacity}</h2>\n    '
        )
        for row in column.rows:
            a, patient = row.appointment, row.appointment.patient
            status = escape(a.status)
            name = f"{escape(patient.last_name)}, {escape(patient.first_name)}"
            if can_view_patient:
                chart = escape(reverse_with_id("patients:chart", a.patient_id))
                name = f'<a href="{chart}">{name}</a>'
            alerts = ""
            if row.alerts:
                alerts = (
                    '<ul class="alerts">'
                    + "".join(
                        f'<li class="{escape(alert.level)}" data-code="{escape(alert.code)}">'
                        f"{escape(alert.text)}</li>"
                        for alert in row.alerts
                    )
                    + "</ul>"
                )
            treatment = escape(str(treatment_label(a.course.treatment)))
            opened = escape(reverse_with_id("courses:appointment", a.pk))
            out.append(
                f'\n    <div class="board-slot {status}" data-testid="board-slot">\n'
                f'      <div><span class="when">{a.starts_at.astimezone(tz):%H:%M}–'
                f"{a.ends_at.astimezone(tz):%H:%M}</span> "
                f'<span class="status status-{status}">{escape(a.get_status_display())}</span>'
                "</div>\n"
                f'      <div>{name} <small class="muted">{escape(patient.mrn)}</small></div>\n'
                f"      <div><small>{treatment} · session {a.number} · "
                f"{escape(a.get_phase_display().lower())} · {escape(a.dose_label)}</small> · "
                f'<a href="{opened}">Open</a></div>\n'
                f"      {alerts}\n"
                "    </div>\n    "
            )
        if not column.rows:
            out.append('<p class="muted">Free all day.</p>')
        out.append("\n  </section>\n")
    out.append("\n</div>")
    # Safe: every text from the database went through escape(); the rest is fixed or numbers.
    return mark_safe("".join(out))  # noqa: S308


# --- Clinic settings (administrators) -------------------------------------------------------


def _admin_clinic(request: AuthenticatedRequest) -> Clinic:
    access.require(request.user, "clinic.configure")
    clinics = list(access.clinics_for(request.user, "clinic.configure"))
    wanted = request.POST.get("clinic_id") or request.GET.get("clinic")
    if not wanted:
        return clinics[0]
    for clinic in clinics:
        if str(clinic.pk) == str(wanted):
            return clinic
    raise Http404  # another clinic's settings, or none: not found, like a missing one


def _settings_context(clinic: Clinic, **extra: Any) -> dict[str, Any]:
    schedule = scheduling.schedule_for(clinic)
    prices = {p.kind: p for p in PriceItem.objects.filter(clinic_id=clinic.pk)}
    price_forms = [
        f.PriceForm(
            prefix=kind,
            initial={
                "kind": kind,
                "description": prices[kind].description if kind in prices else label,
                "billing_codes": prices[kind].billing_codes
                if kind in prices
                else DEFAULT_BILLING_CODES[PriceKind(kind)],
                "unit_price": prices[kind].unit_price if kind in prices else None,
            },
        )
        for kind, label in PriceKind.choices
    ]
    context = {
        "clinic": clinic,
        "schedule_form": f.ScheduleForm(instance=schedule),
        "chairs": selectors.chairs_for(clinic, active_only=False),
        "chair_form": f.ChairForm(),
        "price_forms": price_forms,
        "floors": {t: scheduling.chair_minutes_floor(t) for t in TREATMENTS},
    }
    context.update(extra)
    return context


@login_required
@require_http_methods(["GET", "POST"])
def clinic_settings(request: AuthenticatedRequest) -> HttpResponse:
    clinic = _admin_clinic(request)
    if request.method == "POST":
        section = request.POST.get("section")
        try:
            if section == "schedule":
                schedule = scheduling.schedule_for(clinic)
                form = f.ScheduleForm(request.POST, instance=schedule)
                if not form.is_valid():
                    return _page(
                        request,
                        "courses/settings.html",
                        _settings_context(clinic, schedule_form=form),
                        invalid=True,
                    )
                try:
                    services.clinic_schedule_update(
                        actor=request.user, clinic=clinic, data=form.data_for_service()
                    )
                except ValidationError as exc:
                    add_service_errors(form, exc)
                    return _page(
                        request,
                        "courses/settings.html",
                        _settings_context(clinic, schedule_form=form),
                        invalid=True,
                    )
            elif section == "chair":
                chair_id = request.POST.get("chair_id")
                chair = (
                    Chair.objects.filter(pk=chair_id, clinic_id=clinic.pk).first()
                    if chair_id
                    else None
                )
                if chair_id and chair is None:
                    raise Http404
                chair_form = f.ChairForm(request.POST, instance=chair)
                if not chair_form.is_valid():
                    return _page(
                        request,
                        "courses/settings.html",
                        _settings_context(clinic, chair_form=chair_form),
                        invalid=True,
                    )
                try:
                    services.chair_save(
                        actor=request.user,
                        clinic_id=clinic.pk,
                        chair=chair,
                        data={k: chair_form.cleaned_data[k] for k in chair_form.Meta.fields},
                    )
                except ValidationError as exc:
                    add_service_errors(chair_form, exc)
                    return _page(
                        request,
                        "courses/settings.html",
                        _settings_context(clinic, chair_form=chair_form),
                        invalid=True,
                    )
            elif section == "price":
                kind = request.POST.get("kind_key", "")
                price_form = f.PriceForm(request.POST, prefix=kind)
                if not price_form.is_valid():
                    raise ValidationError({"unit_price": ["Enter a price."]})
                data = price_form.cleaned_data
                services.price_item_set(
                    actor=request.user,
                    clinic_id=clinic.pk,
                    kind=data["kind"],
                    unit_price=data["unit_price"],
                    billing_codes=data["billing_codes"],
                    description=data["description"],
                )
            else:
                raise ValidationError({"section": ["Unknown settings section."]})
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return _page(request, "courses/settings.html", _settings_context(clinic), invalid=True)
        messages.success(request, "Settings saved.")
        return HttpResponseRedirect(f"{reverse('courses:settings')}?clinic={clinic.pk}")
    return render(request, "courses/settings.html", _settings_context(clinic))
