"""Staff pages: find, register, open and edit patients. Every read and write is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import pending_append, record_event
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.validation import add_service_errors
from ketaclinic.patients import chart, selectors, services
from ketaclinic.patients.forms import PatientCreateForm, PatientForm, PatientSearchForm

PAGE_SIZE = 25


@login_required
def patient_list(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "patient.view")
    form = PatientSearchForm(request.GET or None)
    query = selectors.PatientQuery()
    if form.is_valid():
        query = selectors.PatientQuery(
            text=form.cleaned_data["q"] or "",
            dob=form.cleaned_data["dob"],
            mrn=form.cleaned_data["mrn"] or "",
        )
    found = selectors.patient_search(request.user, query).values_list(*_LIST_COLUMNS)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    record_event(
        action=Action.LIST,
        user=request.user,
        object_type="patients.patient",
        detail=f"patient list page {page.number}; {query.describe()}",
    )
    template = "patients/patient_list.html"
    if request.htmx and request.htmx.target == "patient-results":
        template += "#results"
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "rows": _patient_rows_html(page.object_list),
            "query": query,
            "can_create": access.has_permission(request.user, "patient.create"),
        },
    )


# What the list shows of each patient, read as plain rows (no model instances).
_LIST_COLUMNS = ("pk", "last_name", "first_name", "date_of_birth", "mrn", "clinic__name", "phone")
NO_MATCH_ROW = (
    '<tr><td colspan="5">No patients match. Check the spelling, or search by date of birth or '
    "MRN.</td></tr>"
)


def _patient_rows_html(rows: Any) -> SafeString:
    """The list's table rows, every text escaped: 25 rows of five cells on every search
    keystroke, written here rather than by a template loop (the chart route reversed once)."""
    if not rows:
        return SafeString(NO_MATCH_ROW)
    return SafeString(
        "\n".join(
            f'<tr><td><a href="{reverse_with_id("patients:chart", pk)}">{escape(last)}, '
            f"{escape(first)}</a></td><td>{born.isoformat()}</td><td>{escape(mrn)}</td>"
            f"<td>{escape(clinic)}</td><td>{escape(phone)}</td></tr>"
            for pk, last, first, born, mrn, clinic, phone in rows
        )
    )


@login_required
def patient_create(request: AuthenticatedRequest) -> HttpResponse:
    access.require(request.user, "patient.create")
    clinics = access.clinics_for(request.user, "patient.create")
    form = PatientCreateForm(request.POST or None, clinics=clinics)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "clinic"}
        try:
            patient = services.patient_create(
                actor=request.user, clinic_id=form.cleaned_data["clinic"].pk, data=data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return HttpResponseRedirect(reverse("patients:chart", args=[patient.pk]))
    status = 400 if request.method == "POST" else 200
    return render(request, "patients/patient_form.html", {"form": form}, status=status)


@login_required
def patient_chart(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient, facts = chart.patient_and_facts(request.user, patient_id)
    # The audit row is appended with the panels' reads (one round trip on PostgreSQL), before
    # anything of the chart is written.
    audit = pending_append(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail="chart",
    )
    return render(
        request,
        "patients/patient_chart.html",
        {
            "patient": patient,
            "can_edit": access.has_permission(request.user, "patient.edit", patient.clinic_id),
            "panels": chart.panels_for(request.user, patient, facts, audit),
        },
    )


@login_required
def patient_edit(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    patient = access.get_patient(request.user, patient_id, "patient.edit")
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST":
        if form.is_valid():
            data = {k: form.cleaned_data[k] for k in services.EDITABLE_FIELDS if k in form.fields}
            try:
                services.patient_update(actor=request.user, patient=patient, data=data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return HttpResponseRedirect(reverse("patients:chart", args=[patient.pk]))
        return render(
            request, "patients/patient_form.html", {"form": form, "patient": patient}, status=400
        )
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail="edit form",
    )
    return render(request, "patients/patient_form.html", {"form": form, "patient": patient})
