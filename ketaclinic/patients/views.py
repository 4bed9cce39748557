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
from django.utils.timesince import timesince

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import pending_append, record_event
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.templates import ascii_html
from ketaclinic.core.validation import add_service_errors
from ketaclinic.patients import chart, selectors, services
from ketaclinic.patients.forms import PatientCreateForm, PatientForm, PatientSearchForm
from ketaclinic.patients.models import Patient

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


def _or_dash(value: str) -> str:
    """`{{ value|default:"—" }}` for a text field."""
    return escape(value) if value else "—"


def _chart_header_html(patient: Patient, can_edit: bool) -> SafeString:
    """The chart's header and contact cards, every text escaped: the bytes the chart template
    wrote with its own tags (tests/test_patients.py renders that former part beside it),
    written here because every chart pays for them before its panels."""
    born = patient.date_of_birth
    name = f"{escape(patient.last_name)}, {escape(patient.first_name)}"
    if patient.preferred_name:
        name += f" <small>(“{escape(patient.preferred_name)}”)</small>"
    pronouns = f" · {escape(patient.pronouns)}" if patient.pronouns else ""
    edit = (
        f'<a href="{reverse_with_id("patients:edit", patient.pk)}" role="button" '
        'class="secondary outline">Edit details</a>'
        if can_edit
        else ""
    )
    if patient.address_line1:
        second = f", {escape(patient.address_line2)}" if patient.address_line2 else ""
        address = (
            f"{escape(patient.address_line1)}{second}<br>{escape(patient.city)} "
            f"{escape(patient.state)} {escape(patient.postal_code)}"
        )
    else:
        address = "—"
    relationship = patient.emergency_contact_relationship
    # In ASCII (core.templates.ascii_html): a clinic's name with a dash, or a dash for an
    # empty field, would make the whole chart page two bytes a character.
    return SafeString(
        ascii_html(
            '\n<header class="chart-header">\n  <div>\n'
            f'    <h1 data-testid="chart-name">{name}</h1>\n'
            f'    <p class="muted">MRN <strong>{escape(patient.mrn)}</strong> · born '
            f"{born:%Y-%m-%d} ({escape(timesince(born).replace(',', ''))}) · "
            f"{escape(patient.get_sex_at_birth_display())}{pronouns} · "
            f"{escape(patient.clinic.name)}</p>\n"
            f"  </div>\n  {edit}\n</header>\n"
            '<div class="grid">\n  <article>\n    <h2>Contact</h2>\n    <dl>\n'
            f"      <dt>Phone</dt><dd>{_or_dash(patient.phone)}</dd>\n"
            f"      <dt>Email</dt><dd>{_or_dash(patient.email)}</dd>\n"
            f"      <dt>Address</dt><dd>{address}</dd>\n"
            "    </dl>\n  </article>\n  <article>\n    <h2>Emergency contact</h2>\n    <dl>\n"
            f"      <dt>Name</dt><dd>{_or_dash(patient.emergency_contact_name)}"
            + (f" ({escape(relationship)})" if relationship else "")
            + "</dd>\n"
            f"      <dt>Phone</dt><dd>{_or_dash(patient.emergency_contact_phone)}</dd>\n"
            "    </dl>\n  </article>\n</div>\n"
        )
    )


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
    can_edit = access.has_permission(request.user, "patient.edit", patient.clinic_id)
    return render(
        request,
        "patients/patient_chart.html",
        {
            "patient": patient,
            "header_html": _chart_header_html(patient, can_edit),
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
