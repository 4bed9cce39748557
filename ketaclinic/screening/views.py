"""Intake pages: the referral queue (front desk), the intake workspace (nurse and prescriber),
history forms, baseline questionnaires, eligibility with its reasons and the prescriber's
override, consent, REMS enrolment and the ride home.

Every GET of patient data records one audit read; every POST goes through one service call
(which records its own audit row); a refused or invalid POST changes nothing and re-renders the
form with its errors inline (status 400).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import INSTRUMENTS, TREATMENTS
from ketaclinic.core import clock
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.validation import add_service_errors
from ketaclinic.patients.models import Patient
from ketaclinic.screening import forms as f
from ketaclinic.screening import selectors, services
from ketaclinic.screening.choices import ConsentKind, IntakeStatus
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.models import (
    MedicalHistory,
    PsychiatricHistory,
    RemsEnrolment,
    SignedConsent,
    TransportPlan,
)

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


def _workspace(patient: Patient, anchor: str = "") -> HttpResponseRedirect:
    url = reverse("screening:workspace", args=[patient.pk])
    return HttpResponseRedirect(f"{url}#{anchor}" if anchor else url)


def _blocked_reasons(exc: ValidationError) -> list[Any]:
    return exc.reasons if isinstance(exc, Blocked) else []


def _form_page(
    request: AuthenticatedRequest,
    template: str,
    context: dict[str, Any],
    *,
    invalid: bool,
) -> HttpResponse:
    return render(request, template, context, status=400 if invalid else 200)


# --- Referral queue and referrals -----------------------------------------------------------


@login_required
def referral_queue(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "referral.manage")
    status = request.GET.get("status", "open")
    if status not in {"open", "all", *IntakeStatus.values}:
        status = "open"
    page = Paginator(selectors.referral_queue(request.user, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    record_event(
        action=Action.LIST,
        user=request.user,
        object_type="screening.intake",
        detail=f"referral queue page {page.number}; status={status}",
    )
    return render(
        request,
        "screening/referral_queue.html",
        {
            "page": page,
            "status": status,
            "statuses": [("open", "Open"), *IntakeStatus.choices, ("all", "All")],
            "can_view_intake": access.has_permission(request.user, "intake.view"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def referral_new(request: AuthenticatedRequest) -> HttpResponse:
    """Front desk: a new patient and their referral on one page."""
    access.require(request.user, "referral.manage")
    clinics = access.clinics_for(request.user, "referral.manage")
    patient_form = f.NewPatientReferralForm(request.POST or None, clinics=clinics, prefix="p")
    first = clinics.first()
    today = clock.today_in(first.timezone) if first else clock.now().date()
    intake_form = f.IntakeForm(
        request.POST or None,
        prefix="r",
        initial={"referred_on": today},
    )
    if request.method == "POST" and patient_form.is_valid() and intake_form.is_valid():
        try:
            intake = services.referral_create(
                actor=request.user,
                clinic_id=patient_form.cleaned_data["clinic"].pk,
                patient_data=patient_form.patient_data(),
                data=intake_form.data_for_service(),
            )
        except ValidationError as exc:
            patient_fields = set(patient_form.fields)
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    target = patient_form if field in patient_fields else intake_form
                    target.add_error(field if field in target.fields else None, errors)
            else:
                intake_form.add_error(None, exc.messages)
        else:
            messages.success(request, f"Referral registered for {intake.patient.full_name}.")
            return HttpResponseRedirect(reverse("screening:queue"))
    return _form_page(
        request,
        "screening/referral_form.html",
        {"patient_form": patient_form, "form": intake_form},
        invalid=request.method == "POST",
    )


@login_required
@require_http_methods(["GET", "POST"])
def referral_existing(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "referral.manage")
    today = services.clinic_today(patient)
    form = f.IntakeForm(request.POST or None, initial={"referred_on": today})
    if request.method == "POST":
        if form.is_valid():
            try:
                services.referral_create(
                    actor=request.user,
                    clinic_id=patient.clinic_id,
                    patient=patient,
                    data=form.data_for_service(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Referral registered.")
                return HttpResponseRedirect(reverse("patients:chart", args=[patient.pk]))
        return _form_page(
            request,
            "screening/referral_form.html",
            {"form": form, "patient": patient},
            invalid=True,
        )
    _read(request, patient, "new referral form")
    return render(request, "screening/referral_form.html", {"form": form, "patient": patient})


@login_required
@require_http_methods(["GET", "POST"])
def intake_edit(request: AuthenticatedRequest, intake_id: int) -> HttpResponse:
    intake = selectors.get_intake(request.user, intake_id)
    patient = intake.patient
    form = f.IntakeForm(request.POST or None, instance=intake)
    status_form = f.IntakeStatusForm()
    if request.method == "POST":
        if form.is_valid():
            try:
                services.intake_update(
                    actor=request.user, intake=intake, data=form.data_for_service()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Referral updated.")
                return HttpResponseRedirect(reverse("screening:intake_edit", args=[intake.pk]))
        return _form_page(
            request,
            "screening/intake_edit.html",
            {"form": form, "intake": intake, "patient": patient, "status_form": status_form},
            invalid=True,
        )
    _read(request, patient, f"referral {intake.pk}")
    return render(
        request,
        "screening/intake_edit.html",
        {"form": form, "intake": intake, "patient": patient, "status_form": status_form},
    )


@login_required
@require_POST
def intake_status(request: AuthenticatedRequest, intake_id: int) -> HttpResponse:
    intake = selectors.get_intake(request.user, intake_id)
    form = f.IntakeStatusForm(request.POST)
    if form.is_valid():
        try:
            services.intake_change_status(
                actor=request.user,
                intake=intake,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Referral status changed.")
            return HttpResponseRedirect(reverse("screening:intake_edit", args=[intake.pk]))
    return _form_page(
        request,
        "screening/intake_edit.html",
        {
            "form": f.IntakeForm(instance=intake),
            "intake": intake,
            "patient": intake.patient,
            "status_form": form,
        },
        invalid=True,
    )


# --- The intake workspace -------------------------------------------------------------------


def _workspace_context(request: AuthenticatedRequest, patient: Patient) -> dict[str, Any]:
    summary = selectors.intake_summary(patient)
    user = request.user
    waiting = [v for v in summary.eligibility if v.status == "needs_review" and not v.override]
    return {
        "patient": patient,
        "s": summary,
        "kinds": services.ITEM_KINDS,
        "instruments": [(code, INSTRUMENTS[code].title) for code in services.BASELINE_INSTRUMENTS],
        "treatments": TREATMENTS,
        "consent_kinds": ConsentKind.choices,
        "can_edit": access.has_permission(user, "intake.edit", patient.clinic_id),
        "can_override": access.has_permission(user, "eligibility.override", patient.clinic_id),
        "can_consent": access.has_permission(user, "consent.record", patient.clinic_id),
        "can_rems": access.has_permission(user, "rems.record", patient.clinic_id),
        "can_plan": access.has_permission(user, "course.manage", patient.clinic_id),
        "check_form": f.EligibilityCheckForm(
            initial={"treatment": summary.intake.intended_treatment if summary.intake else ""}
        ),
        "override_form": f.OverrideForm(
            initial={"treatment": waiting[0].treatment} if waiting else None
        ),
        "override_needed": bool(waiting),
    }


@login_required
def workspace(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    _read(request, patient, "intake workspace")
    return render(request, "screening/workspace.html", _workspace_context(request, patient))


def _singleton_form(
    request: AuthenticatedRequest,
    patient_id: int,
    *,
    form_class: type[f.ServiceModelForm],
    model: type[Any],
    service: Any,
    permission: str,
    title: str,
    anchor: str,
    read_permission: str = "intake.view",
) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, read_permission)
    access.require(request.user, permission, patient.clinic_id)
    instance = model.objects.filter(patient_id=patient.pk).first()
    form = form_class(request.POST or None, instance=instance)
    context = {"form": form, "patient": patient, "title": title, "anchor": anchor}
    if request.method == "POST":
        if form.is_valid():
            try:
                service(actor=request.user, patient=patient, data=form.data_for_service())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{title} saved.")
                if read_permission == "intake.view":
                    return _workspace(patient, anchor)
                return HttpResponseRedirect(reverse("patients:chart", args=[patient.pk]))
        return _form_page(request, "screening/record_form.html", context, invalid=True)
    _read(request, patient, f"{title.lower()} form")
    return render(request, "screening/record_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def psychiatric_history(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    return _singleton_form(
        request,
        patient_id,
        form_class=f.PsychiatricHistoryForm,
        model=PsychiatricHistory,
        service=services.psychiatric_history_update,
        permission="intake.edit",
        title="Psychiatric history",
        anchor="psychiatric",
    )


@login_required
@require_http_methods(["GET", "POST"])
def medical_history(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    return _singleton_form(
        request,
        patient_id,
        form_class=f.MedicalHistoryForm,
        model=MedicalHistory,
        service=services.medical_history_update,
        permission="intake.edit",
        title="Medical history",
        anchor="medical",
    )


@login_required
@require_http_methods(["GET", "POST"])
def transport(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    # The front desk records rides too; it sees the chart, not the clinical workspace.
    return _singleton_form(
        request,
        patient_id,
        form_class=f.TransportForm,
        model=TransportPlan,
        service=services.transport_plan_update,
        permission="transport.record",
        title="Transport plan",
        anchor="consent",
        read_permission="transport.record",
    )


@login_required
@require_http_methods(["GET", "POST"])
def rems(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    return _singleton_form(
        request,
        patient_id,
        form_class=f.RemsForm,
        model=RemsEnrolment,
        service=services.rems_enrolment_record,
        permission="rems.record",
        title="REMS patient enrolment",
        anchor="consent",
    )


def _record_form(
    request: AuthenticatedRequest,
    patient_id: int,
    *,
    form_class: type[f.ServiceModelForm],
    service: Any,
    title: str,
    anchor: str,
    date_field: str,
) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    access.require(request.user, "intake.edit", patient.clinic_id)
    form = form_class(request.POST or None, initial={date_field: services.clinic_today(patient)})
    context = {"form": form, "patient": patient, "title": title, "anchor": anchor}
    if request.method == "POST":
        if form.is_valid():
            try:
                service(actor=request.user, patient=patient, data=form.data_for_service())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{title} recorded.")
                return _workspace(patient, anchor)
        return _form_page(request, "screening/record_form.html", context, invalid=True)
    _read(request, patient, f"{title.lower()} form")
    return render(request, "screening/record_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def pdmp(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    return _record_form(
        request,
        patient_id,
        form_class=f.PdmpForm,
        service=services.pdmp_check_record,
        title="PDMP check",
        anchor="substance",
        date_field="checked_on",
    )


@login_required
@require_http_methods(["GET", "POST"])
def vitals(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    return _record_form(
        request,
        patient_id,
        form_class=f.VitalsForm,
        service=services.baseline_vitals_record,
        title="Baseline vitals",
        anchor="vitals",
        date_field="measured_on",
    )


# --- History lists --------------------------------------------------------------------------


def _kind(kind: str) -> services.ItemKind:
    if kind not in services.ITEM_KINDS:
        raise Http404
    return services.ITEM_KINDS[kind]


def _item_context(
    form: Any, patient: Patient, spec: services.ItemKind, **extra: Any
) -> dict[str, Any]:
    return {
        "form": form,
        "patient": patient,
        "title": spec.title,
        "anchor": spec.slug,
        "known_medications": f.KNOWN_MEDICATION_NAMES if spec.slug == "medication" else (),
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def item_new(request: AuthenticatedRequest, patient_id: int, kind: str) -> HttpResponse:
    spec = _kind(kind)
    patient = access.get_patient(request.user, patient_id, "intake.view")
    access.require(request.user, "intake.edit", patient.clinic_id)
    form = f.item_form_class(kind)(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.history_item_add(
                    actor=request.user, patient=patient, kind=kind, data=form.data_for_service()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{spec.title} added.")
                return _workspace(patient, spec.slug)
        return _form_page(
            request,
            "screening/record_form.html",
            _item_context(form, patient, spec),
            invalid=True,
        )
    _read(request, patient, f"new {spec.title.lower()} form")
    return render(request, "screening/record_form.html", _item_context(form, patient, spec))


@login_required
@require_http_methods(["GET", "POST"])
def item_edit(request: AuthenticatedRequest, kind: str, item_id: int) -> HttpResponse:
    spec = _kind(kind)
    item = selectors.get_scoped(request.user, spec.model, item_id, "intake.edit")
    patient = item.patient
    form = f.item_form_class(kind)(request.POST or None, instance=item)
    remove_form = f.RemoveForm()
    context = _item_context(form, patient, spec, item=item, remove_form=remove_form)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.history_item_update(
                    actor=request.user, item=item, kind=kind, data=form.data_for_service()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{spec.title} updated.")
                return _workspace(patient, spec.slug)
        return _form_page(request, "screening/record_form.html", context, invalid=True)
    _read(request, patient, f"{spec.title.lower()} {item.pk}")
    return render(request, "screening/record_form.html", context)


@login_required
@require_POST
def item_remove(request: AuthenticatedRequest, kind: str, item_id: int) -> HttpResponse:
    spec = _kind(kind)
    item = selectors.get_scoped(request.user, spec.model, item_id, "intake.edit")
    form = f.RemoveForm(request.POST)
    if form.is_valid():
        try:
            services.history_item_remove(
                actor=request.user, item=item, kind=kind, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{spec.title} marked as entered in error.")
            return _workspace(item.patient, spec.slug)
    context = _item_context(
        f.item_form_class(kind)(instance=item), item.patient, spec, item=item, remove_form=form
    )
    return _form_page(request, "screening/record_form.html", context, invalid=True)


# --- Baseline questionnaires ----------------------------------------------------------------

_ITEM_IN_MESSAGE = re.compile(r"\b(q\d+(?:_past_3_months)?)\b")


@login_required
@require_http_methods(["GET", "POST"])
def measure_new(request: AuthenticatedRequest, patient_id: int, instrument: str) -> HttpResponse:
    if instrument not in services.BASELINE_INSTRUMENTS:
        raise Http404
    patient = access.get_patient(request.user, patient_id, "intake.view")
    access.require(request.user, "intake.edit", patient.clinic_id)
    definition = INSTRUMENTS[instrument]
    form = f.measure_form_class(instrument)(
        request.POST or None, initial={"administered_on": services.clinic_today(patient)}
    )
    context = {"form": form, "patient": patient, "instrument": definition}
    if request.method == "POST":
        if form.is_valid():
            try:
                measure = services.baseline_measure_record(
                    actor=request.user,
                    patient=patient,
                    instrument=instrument,
                    answers=f.measure_answers(instrument, form.cleaned_data),
                    administered_on=form.cleaned_data["administered_on"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        match = _ITEM_IN_MESSAGE.search(error)
                        target = match.group(1) if match and match.group(1) in form.fields else None
                        form.add_error(target if field == "answers" else None, error)
            else:
                severity = f", {measure.severity}" if measure.severity else ""
                messages.success(
                    request, f"{definition.title} recorded: total {measure.total}{severity}."
                )
                return _workspace(patient, "measures")
        return _form_page(request, "screening/measure_form.html", context, invalid=True)
    _read(request, patient, f"new {definition.title} form")
    return render(request, "screening/measure_form.html", context)


# --- Eligibility ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def eligibility(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    """GET: decisions for each treatment with reasons, sources and facts. POST: (re)check."""
    patient = access.get_patient(request.user, patient_id, "intake.view")
    if request.method == "POST":
        form = f.EligibilityCheckForm(request.POST)
        if form.is_valid():
            try:
                decision = services.eligibility_check(
                    actor=request.user, patient=patient, treatment=form.cleaned_data["treatment"]
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Eligibility for {TREATMENTS[decision.treatment].title}: "
                    f"{decision.status.replace('_', ' ')}.",
                )
                return _workspace(patient, "eligibility")
        context = _workspace_context(request, patient)
        context["check_form"] = form
        return _form_page(request, "screening/workspace.html", context, invalid=True)
    _read(request, patient, "eligibility history")
    summary = selectors.intake_summary(patient)
    return render(
        request,
        "screening/eligibility.html",
        {
            "patient": patient,
            "s": summary,
            "can_override": access.has_permission(
                request.user, "eligibility.override", patient.clinic_id
            ),
            "override_form": f.OverrideForm(),
        },
    )


@login_required
@require_POST
def override(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    if not access.has_permission(request.user, "eligibility.override", patient.clinic_id):
        raise PermissionDenied
    form = f.OverrideForm(request.POST)
    reasons: list[Any] = []
    if form.is_valid():
        try:
            services.eligibility_override_sign(
                actor=request.user,
                patient=patient,
                treatment=form.cleaned_data["treatment"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            reasons = _blocked_reasons(exc)
        else:
            messages.success(request, "Override signed. It is shown at every session.")
            return _workspace(patient, "eligibility")
    context = _workspace_context(request, patient)
    context.update({"override_form": form, "override_blocked": reasons})
    return _form_page(request, "screening/workspace.html", context, invalid=True)


# --- Consent --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: AuthenticatedRequest, patient_id: int, consent_kind: str) -> HttpResponse:
    kind = consent_kind
    if kind not in ConsentKind.values:
        raise Http404
    patient = access.get_patient(request.user, patient_id, "intake.view")
    access.require(request.user, "consent.record", patient.clinic_id)
    text = services.consent_text_current(patient.organisation_id, kind)
    form = f.ConsentForm(
        request.POST or None,
        initial={
            "patient_signature": patient.full_name,
            "patient_signed_on": services.clinic_today(patient),
        },
    )
    context = {"form": form, "patient": patient, "text": text, "kind": ConsentKind(kind)}
    if request.method == "POST":
        if form.is_valid():
            try:
                services.consent_sign(
                    actor=request.user, patient=patient, kind=kind, data=form.data_for_service()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{ConsentKind(kind).label} consent signed.")
                return _workspace(patient, "consent")
        return _form_page(request, "screening/consent_form.html", context, invalid=True)
    _read(request, patient, f"{kind} consent form")
    return render(request, "screening/consent_form.html", context)


@login_required
@require_POST
def consent_withdraw(request: AuthenticatedRequest, consent_id: int) -> HttpResponse:
    signed = selectors.get_scoped(request.user, SignedConsent, consent_id, "consent.record")
    form = f.ConsentWithdrawForm(request.POST)
    if form.is_valid():
        try:
            services.consent_withdraw(
                actor=request.user, consent=signed, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Consent withdrawn.")
            return _workspace(signed.patient, "consent")
    context = _workspace_context(request, signed.patient)
    context.update({"withdraw_form": form, "withdraw_consent_id": signed.pk})
    return _form_page(request, "screening/workspace.html", context, invalid=True)


@login_required
@require_http_methods(["GET", "POST"])
def consent_texts(request: AuthenticatedRequest) -> HttpResponse:
    """Clinic administrators publish new versions of the consent wording."""
    access.require(request.user, "consent_text.manage")
    clinic = access.clinics_for(request.user, "consent_text.manage").first()
    assert clinic is not None
    form = f.ConsentTextForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.consent_text_publish(
                actor=request.user, clinic_id=clinic.pk, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "New consent version published.")
            return HttpResponseRedirect(reverse("screening:consent_texts"))
    current = [
        services.consent_text_current(clinic.organisation_id, kind) for kind in ConsentKind.values
    ]
    return render(
        request,
        "screening/consent_texts.html",
        {"form": form, "current": current},
        status=400 if request.method == "POST" else 200,
    )
