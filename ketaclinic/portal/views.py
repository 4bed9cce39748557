"""The patient portal: phone-first pages for the signed-in patient, and the one-time questionnaire
link for patients who are not signed in.

Every record is reached through `measures.selectors` scoped by `portal.own`: a patient only ever
sees their own (security R2). A one-time link grants its one questionnaire, nothing else, for the
rest of the browser session. Every page shows the crisis line and says the portal is not
monitored around the clock (portal/base.html).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import INSTRUMENTS, TREATMENTS
from ketaclinic.core import clock
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.validation import add_service_errors
from ketaclinic.measures import questionnaire, reports, selectors, services
from ketaclinic.measures.chart_panel import trajectory_views
from ketaclinic.measures.choices import AssignmentStatus, Respondent, ResponseSource
from ketaclinic.measures.models import Assignment
from ketaclinic.measures.timeline import timeline_for
from ketaclinic.measures.trajectories import PLAIN_STATUS
from ketaclinic.patients.models import Patient
from ketaclinic.portal import instructions
from ketaclinic.portal.forms import AnswerForm, CheckInForm, JournalForm

# Assignment ids this browser session may answer through a one-time link.
LINK_GRANTS = "kc_questionnaire_links"
PAGE_SIZE = 20


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, with the patient role; the view receives the patient's own record."""

    @login_required
    @wraps(view)
    def wrapper(request: AuthenticatedRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        access.require(request.user, "portal.own")
        patient = selectors.portal_patient(request.user)
        return view(request, patient, *args, **kwargs)

    return wrapper


def _audit_read(request: AuthenticatedRequest, patient: Patient, detail: str) -> None:
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="portal",
        detail=detail,
    )


def _due(patient: Patient) -> list[Assignment]:
    now = clock.now()
    return list(
        selectors.open_assignments(patient.pk, respondent=Respondent.PATIENT).filter(
            available_at__lte=now, expires_at__gt=now
        )
    )


@portal_view
def home(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    now = clock.now()
    enrolment = selectors.active_enrolment(patient.pk)
    today = clock.today_in(patient.clinic.timezone)
    upcoming = []
    if enrolment is not None:
        upcoming = [s for s in timeline_for(enrolment).sessions if s.on >= today][:3]
    checked_in_today = selectors.checkins(patient.pk, since=now - timedelta(hours=24)).exists()
    _audit_read(request, patient, "portal home")
    return render(
        request,
        "portal/home.html",
        {
            "patient": patient,
            "due": _due(patient),
            "upcoming": upcoming,
            "checked_in_today": checked_in_today,
            "today": today,
            "tz_name": patient.clinic.timezone,
        },
    )


# --- Questionnaires --------------------------------------------------------------------------


def _answerable(request: HttpRequest, assignment_id: int) -> tuple[Assignment, bool]:
    """The assignment and whether it is reached through a one-time link (not signed in)."""
    user = request.user
    if access.has_permission(user, "portal.own"):
        try:
            return selectors.portal_assignment(user, assignment_id, now=clock.now()), False
        except Http404:
            pass
    if assignment_id in request.session.get(LINK_GRANTS, []):
        assignment = (
            Assignment.objects.select_related("patient", "clinic")
            .filter(pk=assignment_id, respondent=Respondent.PATIENT)
            .first()
        )
        if assignment is not None:
            return assignment, True
    raise Http404


def questionnaire_page(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment, via_link = _answerable(request, assignment_id)
    if assignment.status == AssignmentStatus.COMPLETED:
        return HttpResponseRedirect(reverse("portal:questionnaire_done", args=[assignment.pk]))
    now = clock.now()
    if assignment.status != AssignmentStatus.PENDING or assignment.expires_at <= now:
        return render(
            request, "portal/questionnaire_closed.html", {"via_link": via_link}, status=410
        )
    definition = INSTRUMENTS[assignment.instrument]
    answers: dict[str, int] = dict(assignment.draft_answers)
    items = questionnaire.applicable_items(definition, answers)
    by_id = {item.id: item for item in items}
    actor = None if via_link else request.user
    status = 200
    if request.method == "POST":
        item = by_id.get(request.POST.get("item", ""))
        if item is None:
            return HttpResponseRedirect(request.path)
        form = AnswerForm(request.POST, item=item)
        if form.is_valid():
            try:
                assignment = services.assignment_save_answer(
                    actor=actor,
                    assignment=assignment,
                    item_id=item.id,
                    value=form.cleaned_data["answer"],
                    via_link=via_link,
                )
                answers = dict(assignment.draft_answers)
                items = questionnaire.applicable_items(definition, answers)
                position = [i.id for i in items].index(item.id)
                later = items[position + 1 :]
                if not later and questionnaire.progress(definition, answers).item is None:
                    services.response_submit(
                        actor=actor,
                        assignment=assignment,
                        answers=answers,
                        source=ResponseSource.EMAIL_LINK if via_link else ResponseSource.PORTAL,
                        via_link=via_link,
                    )
                    return HttpResponseRedirect(
                        reverse("portal:questionnaire_done", args=[assignment.pk])
                    )
                target = later[0] if later else questionnaire.progress(definition, answers).item
                return HttpResponseRedirect(f"{request.path}?item={target.id if target else ''}")
            except ValidationError as exc:
                add_service_errors(form, exc)
        status = 400
    else:
        wanted = by_id.get(request.GET.get("item", ""))
        item = wanted or questionnaire.progress(definition, answers).item or items[-1]
        initial = {"answer": answers[item.id]} if item.id in answers else {}
        form = AnswerForm(initial=initial, item=item)
    position = questionnaire.item_position(definition, answers, item.id)
    previous = items[position - 2] if position > 1 else None
    return render(
        request,
        "portal/questionnaire.html",
        {
            "assignment": assignment,
            "definition": definition,
            "item": item,
            "form": form,
            "position": position,
            "total": len(items),
            "percent": round(100 * (position - 1) / len(items)),
            "previous": previous,
            "prompt": questionnaire.patient_prompt(definition, item),
            "via_link": via_link,
        },
        status=status,
    )


def questionnaire_done(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment, via_link = _answerable(request, assignment_id)
    response = getattr(assignment, "response", None)
    if assignment.status != AssignmentStatus.COMPLETED or response is None:
        return HttpResponseRedirect(reverse("portal:questionnaire", args=[assignment.pk]))
    return render(
        request,
        "portal/questionnaire_done.html",
        {
            "assignment": assignment,
            "definition": INSTRUMENTS[assignment.instrument],
            "response": response,
            "crisis": response.has_suicidal_ideation,
            "high_risk": response.is_high_risk,
            "via_link": via_link,
            "more": [] if via_link else _due(assignment.patient),
        },
    )


def link_start(request: HttpRequest, token: str) -> HttpResponse:
    """A one-time link from an email or text. GET only shows a start button (mail scanners that
    open links must not use them up); POST exchanges the link for access to its questionnaire."""
    if request.method == "POST":
        try:
            assignment = services.assignment_open_link(raw_token=token)
        except ValidationError:
            return render(request, "portal/link_invalid.html", status=410)
        grants = [*request.session.get(LINK_GRANTS, []), assignment.pk][-20:]
        request.session[LINK_GRANTS] = grants
        return HttpResponseRedirect(reverse("portal:questionnaire", args=[assignment.pk]))
    valid = Assignment.objects.filter(
        link_token_digest=services.digest(token) if len(token) <= 100 else "-",
        status=AssignmentStatus.PENDING,
        expires_at__gt=clock.now(),
    ).exists()
    if not valid:
        return render(request, "portal/link_invalid.html", status=410)
    return render(request, "portal/link_start.html", {"token": token})


# --- Check-in and journal --------------------------------------------------------------------


@portal_view
def checkin(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    form = CheckInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.checkin_record(
                actor=request.user,
                patient=patient,
                mood_0_to_10=form.cleaned_data["mood_0_to_10"],
                note=form.cleaned_data["note"],
                urgent=form.cleaned_data["urgent"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if entry.urgent:
                return render(request, "portal/urgent_sent.html", {"what": "check-in"})
            messages.success(request, "Thank you. Your check-in is saved.")
            return HttpResponseRedirect(reverse("portal:home"))
    recent = list(selectors.checkins(patient.pk)[:7])
    if request.method != "POST":
        _audit_read(request, patient, "check-ins")
    return render(
        request,
        "portal/checkin.html",
        {"form": form, "recent": recent},
        status=400 if request.method == "POST" else 200,
    )


@portal_view
def journal(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    form = JournalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.journal_entry_create(
                actor=request.user,
                patient=patient,
                body=form.cleaned_data["body"],
                share=form.cleaned_data["share"],
                urgent=form.cleaned_data["urgent"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if entry.urgent:
                return render(request, "portal/urgent_sent.html", {"what": "journal entry"})
            messages.success(request, "Saved.")
            return HttpResponseRedirect(reverse("portal:journal"))
    page = Paginator(selectors.own_journal(patient), PAGE_SIZE).get_page(request.GET.get("page"))
    if request.method != "POST":
        _audit_read(request, patient, f"journal page {page.number}")
    return render(
        request,
        "portal/journal.html",
        {"form": form, "page": page},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@portal_view
def journal_share(request: AuthenticatedRequest, patient: Patient, entry_id: int) -> HttpResponse:
    entry = selectors.own_journal(patient).filter(pk=entry_id).first()
    if entry is None:
        raise Http404
    share = request.POST.get("share") == "1"
    try:
        services.journal_entry_set_sharing(actor=request.user, entry=entry, share=share)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            "Shared with your care team." if share else "This entry is private again.",
        )
    return HttpResponseRedirect(reverse("portal:journal"))


# --- Progress, report, sessions, after-care, crisis ------------------------------------------


@portal_view
def progress(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    outcomes = selectors.patient_outcomes(patient)
    today = clock.today_in(patient.clinic.timezone)
    _audit_read(request, patient, "my progress")
    views = [
        {**view, "plain": PLAIN_STATUS.get(view["trajectory"].status or "", "")}
        for view in trajectory_views(outcomes, today, compact=True)
        if view["chart"] is not None
    ]
    return render(
        request,
        "portal/progress.html",
        {"outcomes": outcomes, "trajectories": views, "today": today},
    )


@portal_view
def progress_report(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    record_event(
        action=Action.PRINT,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="measures.report",
        object_id=patient.pk,
        detail="progress report (patient portal)",
    )
    context = reports.progress_report(patient, audience=reports.PATIENT)
    return render(
        request, "measures/report.html", {**context, "back_url": reverse("portal:progress")}
    )


@portal_view
def scores_csv(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    record_event(
        action=Action.EXPORT,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        object_type="measures.response",
        detail="scores CSV (patient portal)",
    )
    response = HttpResponse(reports.scores_csv(patient), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-scores.csv"'
    return response


@portal_view
def sessions(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    enrolment = selectors.active_enrolment(patient.pk)
    today = clock.today_in(patient.clinic.timezone)
    timeline = timeline_for(enrolment) if enrolment else None
    upcoming = [s for s in timeline.sessions if s.on >= today][:6] if timeline else []
    treatment = timeline.treatment if timeline else ""
    _audit_read(request, patient, "upcoming sessions")
    return render(
        request,
        "portal/sessions.html",
        {
            "upcoming": upcoming,
            "tz_name": patient.clinic.timezone,
            "treatment": TREATMENTS.get(treatment),
            "instructions": instructions.for_treatment(treatment),
        },
    )


@portal_view
def aftercare(request: AuthenticatedRequest, patient: Patient) -> HttpResponse:
    enrolment = selectors.latest_enrolment(patient.pk)
    treatment = timeline_for(enrolment).treatment if enrolment else ""
    own = instructions.for_treatment(treatment)
    others = (
        []
        if own
        else [instructions.BY_TREATMENT[code] for code in ("iv_ketamine", "esketamine_trd")]
    )
    return render(request, "portal/aftercare.html", {"own": own, "others": others})


def crisis(request: HttpRequest) -> HttpResponse:
    """Crisis resources: public, so anyone with the link reaches them without signing in."""
    return render(request, "portal/crisis.html")
