"""Staff pages of measurement-based care: alert inbox, score entry, enrolment, reports, plans
and the clinic outcome summary. Thin: parse, access check, service, render."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from html import escape  # the standard library's: Django's lazy-aware one costs more per cell
from types import SimpleNamespace
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import TIME_STRINGS, timesince
from django.views.decorators.http import require_POST

from ketaclinic.accounts import access
from ketaclinic.accounts.choices import Role
from ketaclinic.accounts.models import User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import pending_append, record_event
from ketaclinic.clinical import INSTRUMENTS
from ketaclinic.core import clock
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.reversing import reverse_fixed, reverse_with_id
from ketaclinic.core.validation import add_service_errors
from ketaclinic.measures import forms, questionnaire, reports, selectors, services
from ketaclinic.measures.choices import ResponseSource
from ketaclinic.measures.models import (
    Assignment,
    MeasurementPlan,
    SafetyAlert,
    instrument_title,
)
from ketaclinic.patients.models import Patient

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


def _chart(patient_id: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("patients:chart", args=[patient_id]) + "#panel-measures")


# --- Alerts ----------------------------------------------------------------------------------


@login_required
def alert_inbox(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "measures.view")
    now = clock.now()
    pending = None
    if not request.GET:
        # Asked for without filter or page: page 1 of the waiting alerts, read with the rest,
        # and its audit row (known before the reads) appended in the same round trip.
        pending = pending_append(**_listed(request, 1, selectors.AlertFilter()))
    reads = selectors.inbox_reads(
        request.user,
        now,
        first_page_size=PAGE_SIZE if pending else None,
        statement=pending.statement if pending else None,
    )
    clinics, shifts, counts = reads.clinics, reads.shifts, reads.counts
    query = selectors.AlertFilter()
    if request.GET:  # (an unbound form is never valid: without a query there is none to build)
        form = forms.AlertFilterForm(request.GET, clinics=clinics)
        if form.is_valid():
            query = selectors.AlertFilter(
                status=form.cleaned_data["status"] or "open",
                mine=form.cleaned_data["mine"],
                clinic_id=form.cleaned_data["clinic"],
            )
    if reads.first_page is not None:
        # Page 1 of the waiting alerts, already read: the paginator only numbers the pages of
        # the alerts the header counts.
        paginator = Paginator(range(counts["immediate"] + counts["same_day"]), PAGE_SIZE)
        page = paginator.get_page(None)
    else:
        paginator = Paginator(selectors.alert_inbox_values(request.user, query), PAGE_SIZE)
        if query.status == "open" and not query.mine and not query.clinic_id:
            # The waiting alerts are exactly those the header counts: no second COUNT query.
            paginator.count = counts["immediate"] + counts["same_day"]  # type: ignore[misc]
        page = paginator.get_page(request.GET.get("page"))
    if pending is not None:
        pending.finish(reads.statement_rows)
    else:
        record_event(**_listed(request, page.number, query))
    rows = reads.first_page
    if rows is None:
        rows = selectors.alert_inbox_rows(request.user, query, page, PAGE_SIZE)
    acting = set(access.clinic_ids_for(request.user, "alerts.acknowledge"))
    duty = [(clinic, shifts.get(clinic.pk)) for clinic in clinics if clinic.pk in acting]
    return render(
        request,
        "measures/alert_inbox.html",
        {
            "filter_form": _filter_html(query, clinics),
            "page": page,
            "query": query,
            "now": now,
            "counts": counts,
            "rows": _inbox_rows(rows, now),
            "duty": duty,
            "duty_url": reverse_fixed("measures:duty"),
            "boosters": _boosters_html(reads.boosters),
            "can_resolve_booster": access.has_permission(request.user, "booster.resolve"),
        },
    )


def _listed(
    request: AuthenticatedRequest, number: int, query: selectors.AlertFilter
) -> dict[str, Any]:
    """The audit event of a page of the inbox (record_event's arguments)."""
    return {
        "action": Action.LIST,
        "user": request.user,
        "object_type": "measures.safetyalert",
        "detail": f"alert inbox page {number}; status={query.status} mine={query.mine}",
    }


def _inbox_rows(rows: list[tuple[Any, ...]], now: datetime) -> SafeString:
    """The inbox table's rows as HTML (every text escaped), from tuples of
    selectors.INBOX_COLUMNS. A page is 25 alerts of seven cells, two links and two dates each:
    built here it costs a fraction of the template loop."""
    tz = timezone.get_current_timezone()
    since = partial(timesince, time_strings=_time_strings())  # type: ignore[arg-type]
    chart_url = reverse_with_id("patients:chart", _ID_MARK)  # reversed once (core.reversing)
    detail_url = reverse_with_id("measures:alert_detail", _ID_MARK)
    lines = []
    for row in rows:
        (
            pk, patient_id, priority, escalation_count, summary, created_at, acknowledged_at,
            action, last_name, first_name, mrn, clinic_name, assigned_to_id, *rest,
        ) = row  # fmt: skip
        assigned_to, acknowledged_by = rest[:4], rest[5:]
        escalated = ""
        if escalation_count:
            times = f" ×{escalation_count}" if escalation_count > 1 else ""
            escalated = f'<br><small class="kc-danger">escalated{times}</small>'
        if acknowledged_at:
            outcome = escape(
                f"{_ACTIONS.get(action, action)} by {_user_name(acknowledged_by)} after "
                f"{since(created_at, acknowledged_at)}"
            )
            button = f'role="button" class="secondary outline" data-testid="open-alert-{pk}">View'
        else:
            outcome = f"<strong>{escape(since(created_at, now))}</strong>"
            button = f'role="button" class="" data-testid="open-alert-{pk}">Acknowledge'
        lines.append(
            f'<tr class="kc-alert-row-{escape(priority)}">'
            f"<td>{escape(str(_PRIORITIES.get(priority, priority)))}{escalated}</td>"
            f'<td><a href="{chart_url.replace(_ID_MARK_TEXT, str(patient_id))}#panel-measures">'
            f"{escape(last_name)}, {escape(first_name)}</a><br>"
            f'<small class="muted">{escape(mrn)} · {escape(clinic_name)}</small></td>'
            f"<td>{escape(summary)}</td>"
            f"<td>{escape(_user_name(assigned_to) if assigned_to_id else 'everyone on duty')}</td>"
            f"<td>{created_at.astimezone(tz):%Y-%m-%d %H:%M}</td>"
            f"<td>{outcome}</td>"
            f'<td><a href="{detail_url.replace(_ID_MARK_TEXT, str(pk))}" {button}</a></td>'
            "</tr>"
        )
    # Safe: every text from the database went through escape(); the rest is fixed or numbers.
    return mark_safe("\n".join(lines))  # noqa: S308


def _filter_html(query: selectors.AlertFilter, clinics: list[Any]) -> SafeString:
    """The filter form as the template wrote it (every text escaped), set to `query`: no form
    instance to build for the choices (tests/measures/reference/alert_filter_template.html)."""
    statuses = "".join(
        f'<option value="{escape(value)}"{" selected" if value == query.status else ""}>'
        f"{escape(str(label))}</option>"
        for value, label in _STATUS_CHOICES
    )
    clinic_options = "".join(
        f'<option value="{clinic.pk}"{" selected" if clinic.pk == query.clinic_id else ""}>'
        f"{escape(clinic.name)}</option>"
        for clinic in clinics
    )
    mine = " checked" if query.mine else ""
    # Safe: every text from the database went through escape(); the rest is fixed or numbers.
    return mark_safe(  # noqa: S308
        '<form method="get" class="filter-form" aria-label="Filter alerts">\n'
        "  <label>Show\n"
        f'    <select name="status">{statuses}</select>\n'
        "  </label>\n"
        "  <label>Clinic\n"
        f'    <select name="clinic"><option value="">All my clinics</option>{clinic_options}'
        "</select>\n"
        "  </label>\n"
        f'  <label><input type="checkbox" name="mine"{mine}> Assigned to me</label>\n'
        '  <button type="submit">Show</button>\n'
        "</form>"
    )


_STATUS_CHOICES = forms.AlertFilterForm.base_fields["status"].choices  # type: ignore[attr-defined]


def _boosters_html(rows: list[tuple[Any, ...]]) -> SafeString:
    """The inbox's list items of open booster recommendations (every text escaped), from
    tuples of selectors.BOOSTER_COLUMNS: as the template loop wrote them, for a fraction of
    its cost (a route reversed and a user named per item)."""
    chart_url = reverse_with_id("patients:chart", _ID_MARK)  # reversed once (core.reversing)
    items = []
    for row in rows:
        patient_id, last_name, first_name, instrument, relapse_on, baseline, latest = row[:7]
        prescriber_id, prescriber = row[7], list(row[8:])
        prescribed = f" · for {escape(_user_name(prescriber))}" if prescriber_id else ""
        items.append(
            f'<li><a href="{chart_url.replace(_ID_MARK_TEXT, str(patient_id))}#panel-measures">'
            f"{escape(last_name)}, {escape(first_name)}</a> — "
            f"{escape(instrument_title(instrument))} relapse {relapse_on:%Y-%m-%d} "
            f"(baseline {baseline}, now {latest}){prescribed}</li>"
        )
    # Safe: every text from the database went through escape(); the rest is fixed or numbers.
    return mark_safe("".join(items))  # noqa: S308


def _user_name(columns: list[Any]) -> str:
    """str() of the user whose display_name, first_name, last_name and username these are:
    User.__str__ itself, on the four values (a model instance costs more than the name)."""
    user = SimpleNamespace(**dict(zip(_USER_FIELDS, columns, strict=True)))
    user.get_full_name = partial(User.get_full_name, user)  # type: ignore[arg-type]
    return User.__str__(user)  # type: ignore[arg-type]


_USER_FIELDS = ("display_name", "first_name", "last_name", "username")


class _KeptPlural:
    """One of timesince's TIME_STRINGS in one language, each number's text kept: `%` gives
    what the lazy ngettext gives, without looking the translation up again (which cost more
    than the rest of timesince: 25 waiting times a page)."""

    def __init__(self, lazy: Any) -> None:
        self._lazy = lazy
        self._texts: dict[int, str] = {}

    def __mod__(self, values: dict[str, int]) -> str:
        text = self._texts.get(values["num"])
        if text is None:
            text = self._texts[values["num"]] = str(self._lazy % values)
        return text


_KEPT_TIME_STRINGS: dict[str | None, dict[str, _KeptPlural]] = {}


def _time_strings() -> dict[str, _KeptPlural]:
    """timesince's TIME_STRINGS for the active language, texts kept (see _KeptPlural)."""
    language = translation.get_language()
    kept = _KEPT_TIME_STRINGS.get(language)
    if kept is None:
        kept = {name: _KeptPlural(lazy) for name, lazy in TIME_STRINGS.items()}
        kept = _KEPT_TIME_STRINGS.setdefault(language, kept)
    return kept


# What get_priority_display() and get_action_display() show (labels stay lazy: str() per use).
_PRIORITIES = dict(SafetyAlert._meta.get_field("priority").flatchoices)
_ACTIONS = dict(SafetyAlert._meta.get_field("action").flatchoices)
_ID_MARK = 918273645
_ID_MARK_TEXT = str(_ID_MARK)


@login_required
def alert_detail(request: AuthenticatedRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_for(request.user, alert_id)
    can_ack = access.has_permission(request.user, "alerts.acknowledge", alert.clinic_id)
    form = forms.AlertAcknowledgeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not can_ack:
            access.require(request.user, "alerts.acknowledge", alert.clinic_id)
        if form.is_valid():
            try:
                services.alert_acknowledge(
                    actor=request.user,
                    alert=alert,
                    action=form.cleaned_data["action"],
                    note=form.cleaned_data["note"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Alert acknowledged.")
                return HttpResponseRedirect(reverse("measures:alert_inbox"))
        status = 400
    else:
        record_event(
            action=Action.READ,
            user=request.user,
            clinic_id=alert.clinic_id,
            patient_id=alert.patient_id,
            obj=alert,
            detail="alert",
        )
    journal = alert.journal_entry if alert.journal_entry_id else None
    return render(
        request,
        "measures/alert_detail.html",
        {
            "alert": alert,
            "form": form,
            "can_ack": can_ack,
            "now": clock.now(),
            "journal": journal,
            "definition": INSTRUMENTS.get(alert.response.instrument) if alert.response else None,
        },
        status=status,
    )


@login_required
@require_POST
def duty(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "alerts.acknowledge")
    clinics = access.clinics_for(request.user, "alerts.acknowledge")
    form = forms.DutyForm(request.POST, clinics=clinics)
    if not form.is_valid():
        messages.error(request, "Choose a clinic and 1 to 24 hours.")
        return HttpResponseRedirect(reverse("measures:alert_inbox"))
    clinic = access.require_clinic(request.user, "alerts.acknowledge", form.cleaned_data["clinic"])
    try:
        if form.cleaned_data["end"]:
            services.duty_end(actor=request.user, clinic=clinic)
            messages.success(request, f"You are off duty for alerts at {clinic.name}.")
        else:
            shift = services.duty_start(
                actor=request.user, clinic=clinic, hours=form.cleaned_data["hours"] or 12
            )
            messages.success(
                request,
                f"You are on duty for alerts at {clinic.name} until {shift.ends_at:%H:%M} UTC.",
            )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return HttpResponseRedirect(reverse("measures:alert_inbox"))


@login_required
@require_POST
def booster_resolve(request: AuthenticatedRequest, recommendation_id: int) -> HttpResponse:
    recommendation = selectors.booster_for(request.user, recommendation_id)
    access.require(request.user, "booster.resolve", recommendation.clinic_id)
    form = forms.BoosterResolveForm(request.POST)
    if form.is_valid():
        try:
            services.booster_resolve(
                actor=request.user,
                recommendation=recommendation,
                resolution=form.cleaned_data["resolution"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Booster recommendation recorded.")
    else:
        messages.error(request, "Choose what was decided.")
    return _chart(recommendation.patient_id)


# --- Per patient -----------------------------------------------------------------------------


def _prescribers(clinic_id: int):  # type: ignore[no-untyped-def]
    return User.objects.filter(
        memberships__clinic_id=clinic_id,
        memberships__role=Role.PRESCRIBER,
        memberships__is_active=True,
        is_active=True,
    ).order_by("last_name", "first_name")


@login_required
def enrol(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.manage")
    plans = selectors.plans_for(request.user, "measures.manage").filter(
        clinic_id=patient.clinic_id, is_active=True
    )
    default_plan = plans.filter(is_default=True).first()
    courses = selectors.courses_to_measure(patient.pk)
    form = forms.EnrolForm(
        request.POST or None,
        plans=plans,
        prescribers=_prescribers(patient.clinic_id),
        courses=courses,
        initial={
            "plan": default_plan,
            "course": courses.first(),
            "first_session_on": clock.today_in(patient.clinic.timezone),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.enrolment_start(
                actor=request.user,
                patient=patient,
                plan=data["plan"],
                course=data["course"],
                protocol=data["protocol"],
                first_session_on=data["first_session_on"],
                prescriber=data["prescriber"],
                plan_weeks=data["plan_weeks"],
                notify_by_email=data["notify_by_email"],
                notify_by_sms=data["notify_by_sms"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Measurement plan started.")
            return _chart(patient.pk)
    if request.method != "POST":
        _read(request, patient, "measurement plan form")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "measures/enrol.html",
        {"patient": patient, "form": form, "has_plans": plans.exists()},
        status=status,
    )


@login_required
@require_POST
def enrolment_end(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.manage")
    enrolment = selectors.active_enrolment(patient.pk)
    if enrolment is None:
        raise Http404
    form = forms.EnrolmentEndForm(request.POST)
    if form.is_valid():
        try:
            services.enrolment_end(
                actor=request.user, enrolment=enrolment, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Measurement plan ended.")
    else:
        messages.error(request, "Say why measuring stops.")
    return _chart(patient.pk)


@login_required
def assign(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.manage")
    form = forms.AssignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.assignment_create(
                actor=request.user,
                patient=patient,
                instrument=form.cleaned_data["instrument"],
                open_hours=form.cleaned_data["open_hours"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Questionnaire sent.")
            return _chart(patient.pk)
    if request.method != "POST":
        _read(request, patient, "send a questionnaire form")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "measures/assign.html", {"patient": patient, "form": form}, status=status
    )


@login_required
def score_entry(request: AuthenticatedRequest, patient_id: int, instrument: str) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.manage")
    if instrument not in questionnaire.PLAN_INSTRUMENTS:
        raise Http404
    assignment: Assignment | None = None
    assignment_id = request.GET.get("assignment") or request.POST.get("assignment")
    if assignment_id:
        assignment = (
            selectors.open_assignments(patient.pk)
            .filter(pk=assignment_id if str(assignment_id).isdigit() else 0, instrument=instrument)
            .first()
        )
        if assignment is None:
            raise Http404
    definition = INSTRUMENTS[instrument]
    form = forms.ScoreEntryForm(request.POST or None, instrument=definition)
    if request.method == "POST" and form.is_valid():
        try:
            response = services.response_submit(
                actor=request.user,
                answers=form.answers(),
                source=ResponseSource.CLINIC,
                assignment=assignment,
                patient=None if assignment else patient,
                instrument=None if assignment else instrument,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"{definition.title} saved: total {response.total}"
                + (f" ({response.severity})" if response.severity else "")
                + ".",
            )
            return _chart(patient.pk)
    if request.method != "POST":
        _read(request, patient, f"{definition.title} entry form")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "measures/score_entry.html",
        {"patient": patient, "form": form, "definition": definition, "assignment": assignment},
        status=status,
    )


@login_required
def response_detail(
    request: AuthenticatedRequest, patient_id: int, response_id: int
) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.view")
    response = selectors.responses_for(patient.pk).filter(pk=response_id).first()
    if response is None:
        raise Http404
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=response,
        detail="questionnaire answers",
    )
    definition = INSTRUMENTS[response.instrument]
    rows = [
        {
            "number": number,
            "item": item,
            "value": response.answers.get(item.id),
            "label": next(
                (o.label for o in item.options if o.value == response.answers.get(item.id)), None
            ),
        }
        for number, item in enumerate(definition.items, start=1)
    ]
    return render(
        request,
        "measures/response_detail.html",
        {"patient": patient, "response": response, "definition": definition, "rows": rows},
    )


@login_required
def report(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.view")
    audience = request.GET.get("for", reports.CLINICIAN)
    if audience not in (reports.CLINICIAN, reports.PATIENT):
        audience = reports.CLINICIAN
    record_event(
        action=Action.PRINT,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="measures.report",
        object_id=patient.pk,
        detail=f"progress report for the {audience}",
    )
    context = reports.progress_report(patient, audience=audience)
    back_url = reverse("patients:chart", args=[patient.pk]) + "#panel-measures"
    return render(request, "measures/report.html", {**context, "back_url": back_url})


@login_required
def scores_csv(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.view")
    record_event(
        action=Action.EXPORT,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="measures.response",
        detail="scores CSV",
    )
    response = HttpResponse(reports.scores_csv(patient), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="scores-{patient.mrn}.csv"'
    return response


@login_required
def shared_journal(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "measures.view")
    page = Paginator(selectors.shared_journal(patient.pk), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="measures.journalentry",
        detail=f"shared journal page {page.number}",
    )
    return render(request, "measures/shared_journal.html", {"patient": patient, "page": page})


# --- Plans, policy, outcomes ------------------------------------------------------------------


@login_required
def plan_list(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "measures.configure")
    clinics = list(access.clinics_for(request.user, "measures.configure"))
    create_form = forms.PlanCreateForm(request.POST or None, clinics=clinics)
    if request.method == "POST" and create_form.is_valid():
        data = create_form.cleaned_data
        clinic = access.require_clinic(request.user, "measures.configure", data["clinic"])
        try:
            if data["starter"]:
                plan = services.plan_create_starter(
                    actor=request.user, clinic=clinic, name=data["name"], ptsd=data["ptsd"]
                )
            else:
                plan = services.plan_create(actor=request.user, clinic=clinic, name=data["name"])
        except ValidationError as exc:
            add_service_errors(create_form, exc)
        else:
            return HttpResponseRedirect(reverse("measures:plan_detail", args=[plan.pk]))
    policies = selectors.policies_for([c.pk for c in clinics])
    policy_forms = [
        (clinic, forms.PolicyForm(instance=policies[clinic.pk], prefix=f"c{clinic.pk}"))
        for clinic in clinics
    ]
    return render(
        request,
        "measures/plan_list.html",
        {
            "plans": selectors.plans_for(request.user),
            "create_form": create_form,
            "policy_forms": policy_forms,
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
def plan_detail(request: AuthenticatedRequest, plan_id: int) -> HttpResponse:
    plan = selectors.plan_for(request.user, plan_id)
    form = _plan_form(plan, request.POST or None)
    item_form = forms.PlanItemForm()
    if request.method == "POST" and form.is_valid():
        try:
            services.plan_update(actor=request.user, plan=plan, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Plan saved.")
            return HttpResponseRedirect(reverse("measures:plan_detail", args=[plan.pk]))
    return render(
        request,
        "measures/plan_detail.html",
        {"plan": plan, "form": form, "item_form": item_form},
        status=400 if request.method == "POST" else 200,
    )


def _plan_form(plan: MeasurementPlan, data: Any = None) -> forms.PlanForm:
    initial = {
        "name": plan.name,
        "description": plan.description,
        "is_default": plan.is_default,
        "is_active": plan.is_active,
    }
    return forms.PlanForm(data, initial=initial)


@login_required
@require_POST
def plan_item_add(request: AuthenticatedRequest, plan_id: int) -> HttpResponse:
    plan = selectors.plan_for(request.user, plan_id)
    item_form = forms.PlanItemForm(request.POST)
    if item_form.is_valid():
        try:
            services.plan_item_add(actor=request.user, plan=plan, **item_form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(item_form, exc)
        else:
            messages.success(request, "Questionnaire added to the plan.")
            return HttpResponseRedirect(reverse("measures:plan_detail", args=[plan.pk]))
    return render(
        request,
        "measures/plan_detail.html",
        {"plan": plan, "form": _plan_form(plan), "item_form": item_form},
        status=400,
    )


@login_required
@require_POST
def plan_item_retire(request: AuthenticatedRequest, plan_id: int, item_id: int) -> HttpResponse:
    plan = selectors.plan_for(request.user, plan_id)
    item = plan.items.filter(pk=item_id).first()
    if item is None:
        raise Http404
    services.plan_item_retire(actor=request.user, item=item)
    messages.success(request, "The questionnaire will no longer be scheduled.")
    return HttpResponseRedirect(reverse("measures:plan_detail", args=[plan.pk]))


@login_required
@require_POST
def policy_update(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    access.require(request.user, "measures.configure")
    clinic = access.require_clinic(request.user, "measures.configure", clinic_id)
    form = forms.PolicyForm(
        request.POST, instance=selectors.policy_for(clinic.pk), prefix=f"c{clinic.pk}"
    )
    if form.is_valid():
        try:
            services.policy_update(actor=request.user, clinic=clinic, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Settings of {clinic.name} saved.")
    else:
        problems = "; ".join(
            f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items()
        )
        messages.error(request, f"Check the values: {problems}")
    return HttpResponseRedirect(reverse("measures:plan_list"))


@login_required
def outcomes(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "outcomes.view")
    clinics = list(access.clinics_for(request.user, "outcomes.view"))
    chosen = clinics[0]
    wanted = request.GET.get("clinic")
    if wanted:
        chosen = access.require_clinic(
            request.user, "outcomes.view", int(wanted) if wanted.isdigit() else 0
        )
    summary = selectors.outcome_summary(chosen.pk, today=clock.today_in(chosen.timezone))
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=chosen.pk,
        object_type="measures.outcomes",
        detail="clinic outcome summary (aggregates)",
    )
    return render(
        request,
        "measures/outcomes.html",
        {
            "clinics": clinics,
            "clinic": chosen,
            "summary": summary,
            "status_rows": [
                (selectors.STATUS_LABELS[key], count)
                for key, count in summary.status_counts.items()
            ],
        },
    )
