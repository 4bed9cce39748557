"""Pages of the controlled-substance ledger, per clinic: /controlled-substances/<clinic id>/...

Every view first checks the permission (403 when the user holds it nowhere) and then the clinic
(404 when the user does not hold it at this clinic, exactly like a missing clinic). Writes go
through `services`; a service's ValidationError is shown on the form and nothing is saved.
Reads that show patients (ledger, reports) and every export or print are audited.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote as urlquote
from zoneinfo import ZoneInfo

from django import forms as django_forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.controlled_substances import forms, reports, selectors, services
from ketaclinic.controlled_substances.choices import InvestigationStatus
from ketaclinic.controlled_substances.ledger import missing_record_elements
from ketaclinic.controlled_substances.models import StorageLocation
from ketaclinic.controlled_substances.quantities import fmt_mg, remainder_mg
from ketaclinic.core import clock, python_widgets
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_ID,
    CompiledModelQuery,
    Read,
    read_together,
)
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.templates import text
from ketaclinic.patients.models import Patient

PAGE_SIZE = 50
REPORT_PAGE_SIZE = 50
PRINT_LIMIT = 5000
WITNESS_PREFIXES = ("witness", "second_witness", "second_counter")
GET_POST = require_http_methods(["GET", "POST"])


# Every page here reads its clinic: compiled once (core.compiled_query).
_CLINIC = CompiledModelQuery(lambda pk: Clinic.objects.filter(pk=pk), pk=PLACEHOLDER_ID)


def _clinic(request: AuthenticatedRequest, permission: str, clinic_id: int) -> Clinic:
    """access.require, then access.require_clinic (404 where the user lacks the permission)."""
    clinic, _ = _clinic_and(request, permission, clinic_id, [])
    return clinic


def _clinic_and(
    request: AuthenticatedRequest, permission: str, clinic_id: int, reads: list[Read]
) -> tuple[Clinic, list[Any]]:
    """_clinic(), and the page's other reads of the clinic (its filter choices, ...) in the
    same round trip (compiled_query.read_together), run only once access is granted."""
    access.require(request.user, permission)
    if clinic_id not in access.clinic_ids_for(request.user, permission):
        raise Http404
    found, *results = read_together([_CLINIC.read(pk=clinic_id), *reads])
    if not found:
        raise Http404
    clinic: Clinic = found[0]
    return clinic, results


def _can(request: AuthenticatedRequest, clinic: Clinic) -> dict[str, bool]:
    user = request.user
    return {
        name: access.has_permission(user, f"cs.{name}", clinic.pk)
        for name in ("view", "record", "stock", "manage", "report")
    }


# The section links of _nav.html, on every page here: a dozen reverse() calls, the same for a
# clinic until the URL configuration changes, so worked out once per clinic, URLconf and prefix.
_NAV_URL_NAMES = (
    "balances",
    "ledger",
    "administer",
    "waste",
    "receive",
    "transfer",
    "counts",
    "dispose",
    "adjust",
    "loss",
    "investigations",
    "reports",
    "catalogue",
)


@functools.lru_cache(maxsize=256)
def _nav_urls_for(prefix: str, urlconf: Any, clinic_id: int) -> dict[str, str]:
    return {
        name: reverse(f"controlled_substances:{name}", args=[clinic_id], urlconf=urlconf)
        for name in _NAV_URL_NAMES
    }


def _nav_urls(clinic_id: int) -> dict[str, str]:
    return _nav_urls_for(get_script_prefix(), get_urlconf(), clinic_id)


@functools.lru_cache(maxsize=1024)
def _nav_html_for(
    prefix: str, urlconf: Any, clinic_id: int, can: tuple[tuple[str, bool], ...], section: str
) -> SafeString:
    """_nav_links.html for a user who holds cs.view at this clinic only: it then depends on
    nothing else, so it is rendered once (about 500 template calls on every page here)."""
    return render_to_string(
        "controlled_substances/_nav_links.html",
        {
            "cs_nav_urls": _nav_urls_for(prefix, urlconf, clinic_id),
            "can": dict(can),
            "section": section,
            "other_clinics": [],
        },
    )


def _page(
    request: AuthenticatedRequest,
    clinic: Clinic,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    section: str = "",
) -> HttpResponse:
    other_clinics: list[Clinic] = []
    if len(access.clinic_ids_for(request.user, "cs.view")) > 1:
        other_clinics = [
            c for c in access.clinics_for(request.user, "cs.view") if c.pk != clinic.pk
        ]
    can = _can(request, clinic)
    nav = None
    if not other_clinics:  # _nav.html shows the cached links (one clinic: nothing else varies)
        nav = _nav_html_for(
            get_script_prefix(), get_urlconf(), clinic.pk, tuple(can.items()), section
        )
    return render(
        request,
        template,
        {
            "clinic": clinic,
            "cs_nav_urls": _nav_urls(clinic.pk),
            "cs_nav": nav,
            "can": can,
            "section": section,
            "other_clinics": other_clinics,
            **context,
        },
        status=status,
    )


def _field_groups(form: django_forms.BaseForm) -> dict[str, Any]:
    """Main fields, then one group per second signer, for the shared entry form template."""
    main = [f for f in form if not f.name.startswith(WITNESS_PREFIXES)]
    groups = []
    for prefix in WITNESS_PREFIXES:
        fields = [f for f in form if f.name == prefix or f.name.startswith(f"{prefix}_")]
        if fields:
            groups.append((fields[0].label, fields))
    return {"main_fields": main, "witness_groups": groups}


def _add_errors(
    form: django_forms.BaseForm, exc: ValidationError, renames: Mapping[str, str]
) -> None:
    """A service's field errors onto the form's own field names (dose_mg → dose, ...)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for key, messages_ in exc.message_dict.items():
        name = renames.get(key, key)
        form.add_error(name if name in form.fields else None, messages_)


STOCK_RENAMES = {
    "lot": "stock",
    "location": "stock",
    "quantity_mg": "amount",
    "from_location": "stock",
}


def _entry_form_page(
    request: AuthenticatedRequest,
    clinic: Clinic,
    form: django_forms.BaseForm,
    *,
    title: str,
    intro: str,
    submit: str,
    section: str,
    status: int = 200,
    extra: Mapping[str, Any] = {},
) -> HttpResponse:
    return _page(
        request,
        clinic,
        "controlled_substances/entry_form.html",
        {
            "form": form,
            "title": title,
            "intro": intro,
            "submit": submit,
            **_field_groups(form),
            **extra,
        },
        status=status,
        section=section,
    )


def _done(request: AuthenticatedRequest, clinic: Clinic, seq: int, message: str) -> HttpResponse:
    messages.success(request, message)
    return HttpResponseRedirect(reverse("controlled_substances:entry", args=[clinic.pk, seq]))


# --- overview -------------------------------------------------------------------------------


@login_required
@require_GET
def index(request: AuthenticatedRequest) -> HttpResponse:
    """The user's clinics, each with what is on hand and what the DEA is owed."""
    access.require(request.user, "cs.view")
    clinics = list(access.clinics_for(request.user, "cs.view"))
    report_ids = set(access.clinic_ids_for(request.user, "cs.report"))
    deadlines = selectors.deadlines(sorted(report_ids))
    rows = [
        {
            "clinic": clinic,
            "can": _can(request, clinic),
            "totals": selectors.product_totals(selectors.balances(clinic)),
            "deadlines": [d for d in deadlines if d.clinic.pk == clinic.pk],
        }
        for clinic in clinics
    ]
    return render(request, "controlled_substances/index.html", {"rows": rows})


@login_required
@require_GET
def balances(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.view", clinic_id)
    rows = selectors.balances(clinic)
    can = _can(request, clinic)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic=clinic,
        object_type="controlled_substances.balance",
        detail="balances",
    )
    return _page(
        request,
        clinic,
        "controlled_substances/balances.html",
        {
            "rows": rows,
            "rows_html": balance_rows_html(rows, clinic.pk, can_count=can["stock"]),
            "totals": selectors.product_totals(rows),
            "locations": selectors.locations(clinic),
            "deadlines": selectors.deadlines([clinic.pk]) if can["manage"] or can["report"] else [],
            "inventory": selectors.inventory_due(clinic),
        },
        section="balances",
    )


_LOCATION_MARK = 918_273_646


def balance_rows_html(
    rows: Iterable[selectors.BalanceRow], clinic_id: int, *, can_count: bool
) -> SafeString:
    """The balances table's rows, as the template's loop wrote them (a dozen lookups and one or
    two `{% url %}` per row, more than the page's queries cost). Text is escaped; numbers go
    through `localize` as the template's variables do."""
    e = conditional_escape
    ledger_url = _nav_urls(clinic_id)["ledger"]
    count_url = str(
        reverse("controlled_substances:count_new", args=[clinic_id, _LOCATION_MARK])
    ).replace(str(_LOCATION_MARK), "{}")
    lines = []
    for row in rows:
        balance = row.balance
        lot, product = balance.lot, balance.lot.product
        containers = f"{localize(row.full_containers)} full"
        if row.partial_mg:
            containers += f" + {text(row.partial_mg.normalize())} mg open"
        count = (
            f'<td><a href="{e(count_url.format(balance.location_id))}">Count</a></td>'
            if can_count
            else ""
        )
        ml = row.on_hand_ml
        expired = ' class="expired"' if row.expired else ""
        lines.append(
            f"\n      <tr{expired}>"
            f"\n        <td>{e(balance.location.name)}</td>"
            f'\n        <td>{e(product.name)} <small class="muted">{e(product.finished_form)}'
            "</small></td>"
            f"\n        <td>{e(product.ndc)}</td>"
            f'\n        <td><a href="{e(ledger_url)}?lot_number={e(urlquote(lot.lot_number))}'
            f'&amp;location={balance.location_id}">{e(lot.lot_number)}</a></td>'
            f"\n        <td>{lot.expires_on.isoformat()}"
            f"{' <strong>expired</strong>' if row.expired else ''}</td>"
            f'\n        <td class="num">{text(balance.quantity_mg)}</td>'
            f'\n        <td class="num">{"" if ml is None else text(ml)}</td>'
            f"\n        <td>{containers}</td>"
            f"\n        {count}"
            "\n      </tr>\n      "
        )
    # Safe: every text went through conditional_escape(); the rest are numbers and dates.
    return mark_safe("".join(lines))  # noqa: S308


# --- ledger ---------------------------------------------------------------------------------


@login_required
@require_GET
def ledger(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic, choices = _clinic_and(
        request, "cs.view", clinic_id, selectors.filter_choices_reads(clinic_id)
    )
    form = forms.LedgerFilterForm(request.GET or None, clinic=clinic, choices=choices)
    valid = not form.is_bound or form.is_valid()
    f = form.entry_filter() if valid else selectors.EntryFilter()
    fields = reports.LEDGER_PAGE_FIELDS
    # The count from the day totals where the filter allows; with the first page's rows, as
    # the page is usually opened, through SQL compiled once and in the same round trip.
    count, shown = selectors.newest_page(
        clinic, f, fields, PAGE_SIZE, first_page=_first_page(request)
    )
    paginator = (
        Paginator(selectors.entries(clinic, f).values(*fields), PAGE_SIZE)
        if count is None
        else _CountedPaginator(
            _LazyRows(lambda: selectors.entries(clinic, f).values(*fields)), PAGE_SIZE, count
        )
    )
    page = paginator.get_page(request.GET.get("page"))
    if shown is None and page.number == 1:
        shown = selectors.newest_entry_rows(clinic, f, fields, PAGE_SIZE)
    if shown is None:
        shown = list(page.object_list)
    page.object_list = shown
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.ledgerentry",
        detail=f"ledger page {page.number}; {f.describe()}",
    )
    params = request.GET.copy()
    params.pop("page", None)
    return _page(
        request,
        clinic,
        "controlled_substances/ledger.html",
        {
            "form": form,
            "page": page,
            "query": params.urlencode(),
            "rows": reports.ledger_rows(
                reports.complete(shown),
                ZoneInfo(clinic.timezone),
                reverse("controlled_substances:ledger", args=[clinic.pk]),
            ),
        },
        status=200 if valid else 400,
        section="ledger",
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(
    filename: str, headers: list[str], rows: Iterable[list[Any]]
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield writer.writerow(headers)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def ledger_csv(request: AuthenticatedRequest, clinic_id: int) -> HttpResponseBase:
    clinic = _clinic(request, "cs.report", clinic_id)
    form = forms.LedgerFilterForm(request.GET or None, clinic=clinic)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters.", status=400, content_type="text/plain")
    f = form.entry_filter()
    record_event(
        action=Action.EXPORT,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.ledgerentry",
        detail=f"ledger CSV; {f.describe()}",
    )
    tz = ZoneInfo(clinic.timezone)
    qs = selectors.entries(clinic, f).prefetch_related(None).order_by("seq")
    return _csv_response(
        f"ledger-{clinic.slug}.csv",
        [c.header for c in reports.LEDGER_COLUMNS],
        (
            reports.cells(reports.LEDGER_COLUMNS, r, tz)
            for r in reports.stream(qs.values(*reports.LEDGER_FIELDS))
        ),
    )


@login_required
@require_GET
def entry_detail(request: AuthenticatedRequest, clinic_id: int, seq: int) -> HttpResponse:
    clinic = _clinic(request, "cs.view", clinic_id)
    entry = selectors.entry_for(clinic, seq)
    if entry is None:
        raise Http404
    record_event(
        action=Action.READ,
        user=request.user,
        clinic=clinic,
        patient_id=entry.patient_id,
        object_type="controlled_substances.ledgerentry",
        object_id=entry.seq,
    )
    reversal = selectors.reversal_of(entry)
    can_reverse = reversal is None and entry.kind != "reversal" and _may_reverse(request, entry)
    return _page(
        request,
        clinic,
        "controlled_substances/entry_detail.html",
        {
            "entry": entry,
            "reversal": reversal,
            "can_reverse": can_reverse,
            "missing": missing_record_elements(entry),
        },
        section="ledger",
    )


def _may_reverse(request: AuthenticatedRequest, entry: Any) -> bool:
    """Administrators correct any entry of their clinic; others only their own (as the service)."""
    user, clinic_id = request.user, entry.clinic_id
    if access.has_permission(user, "cs.manage", clinic_id):
        return True
    return entry.actor_id == user.pk and (
        access.has_permission(user, "cs.record", clinic_id)
        or access.has_permission(user, "cs.stock", clinic_id)
    )


@login_required
@GET_POST
def entry_reverse(request: AuthenticatedRequest, clinic_id: int, seq: int) -> HttpResponse:
    clinic = _clinic(request, "cs.view", clinic_id)
    entry = selectors.entry_for(clinic, seq)
    if entry is None:
        raise Http404
    if not _may_reverse(request, entry):
        raise PermissionDenied
    form = forms.ReverseForm(request.POST or None, clinic=clinic, actor_id=request.user.pk)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                done = services.entry_reverse(
                    actor=request.user,
                    entry=entry,
                    reason=form.cleaned_data["reason"],
                    witness=forms.attestation(form),
                )
            except ValidationError as exc:
                _add_errors(form, exc, {})
            else:
                return _done(
                    request,
                    clinic,
                    done[-1].seq,
                    f"Entry #{entry.seq} reversed; the correction is on the ledger.",
                )
    return _entry_form_page(
        request,
        clinic,
        form,
        title=f"Reverse entry #{entry.seq}",
        intro=f"{entry.get_kind_display()} of {fmt_mg(abs(entry.quantity_mg))} mg, lot "
        f"{entry.lot.lot_number} at {entry.location.name}. The original stays on the ledger; a "
        "reversing entry cancels it. A witness signs the correction.",
        submit="Reverse entry",
        section="ledger",
        status=status,
    )


# --- recording ------------------------------------------------------------------------------


@login_required
@GET_POST
def receive(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.stock", clinic_id)
    form = forms.ReceiveForm(request.POST or None, clinic=clinic, actor_id=request.user.pk)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                entry = services.receipt_record(
                    actor=request.user,
                    clinic=clinic,
                    location=data["location"],
                    product=data["product"],
                    lot_number=data["lot_number"],
                    expires_on=data["expires_on"],
                    containers=data["containers"],
                    supplier_name=data["supplier_name"],
                    supplier_address=data["supplier_address"],
                    supplier_dea_number=data["supplier_dea_number"],
                    invoice_number=data["invoice_number"],
                    invoice_date=data["invoice_date"],
                    witness=forms.attestation(form),
                    note=data["note"],
                )
            except ValidationError as exc:
                _add_errors(form, exc, {"witness": "witness"})
            else:
                return _done(
                    request,
                    clinic,
                    entry.seq,
                    f"Received {entry.units} × {entry.lot.product.name} lot "
                    f"{entry.lot.lot_number} ({fmt_mg(entry.quantity_mg)} mg).",
                )
    return _entry_form_page(
        request,
        clinic,
        form,
        title="Receive stock",
        intro="Record a delivery from the supplier's invoice or packing slip: the date and the "
        "number of containers received are the DEA record (21 CFR 1304.22(c)).",
        submit="Record receipt",
        section="receive",
        status=status,
    )


@login_required
@GET_POST
def administer(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.record", clinic_id)
    initial = {}
    if request.method == "GET" and request.GET.get("patient"):
        patient = (
            access.patients_for(request.user)
            .filter(clinic=clinic, pk=_int(request.GET.get("patient")) or 0)
            .first()
        )
        if patient is not None:
            initial["patient_mrn"] = patient.mrn
    form = forms.AdministerForm(
        request.POST or None, clinic=clinic, actor_id=request.user.pk, initial=initial
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            stock = data["stock"]
            try:
                record = services.administration_record(
                    actor=request.user,
                    clinic=clinic,
                    location=stock.location,
                    lot=stock.lot,
                    patient=form.patient,
                    dose_mg=data["dose_mg"],
                    waste_mg=data["waste_mg"],
                    witness=forms.attestation(form),
                    session_id=data["session_id"],
                    note=data["note"],
                )
            except ValidationError as exc:
                _add_errors(
                    form,
                    exc,
                    {
                        **STOCK_RENAMES,
                        "dose_mg": "dose",
                        "waste_mg": "waste",
                        "patient": "patient_mrn",
                    },
                )
            else:
                wasted = record.waste.quantity_mg if record.waste else Decimal("0")
                return _done(
                    request,
                    clinic,
                    record.administration.seq,
                    f"Administered {fmt_mg(-record.administration.quantity_mg)} mg to "
                    f"{record.administration.patient_name}; wasted {fmt_mg(-wasted)} mg.",
                )
    return _page(
        request,
        clinic,
        "controlled_substances/administer.html",
        {"form": form, **_field_groups(form)},
        status=status,
        section="administer",
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@login_required
@require_GET
def administer_preview(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    """htmx: as the nurse types, name the patient and compute what will be left to waste."""
    clinic = _clinic(request, "cs.record", clinic_id)
    form = forms.AdministerForm(request.GET, clinic=clinic, actor_id=request.user.pk)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    patient = form.patient
    if patient is not None:
        record_event(
            action=Action.READ,
            user=request.user,
            clinic=clinic,
            patient_id=patient.pk,
            obj=patient,
            detail="administration: patient lookup by MRN",
        )
    stock = data.get("stock")
    dose = data.get("dose_mg")
    context: dict[str, Any] = {
        "patient": patient,
        "stock": stock,
        "dose_mg": dose,
        "mrn_given": bool(request.GET.get("patient_mrn")),
    }
    if stock is not None and dose:
        product = stock.lot.product
        context["remainder_mg"] = remainder_mg(dose, product.mg_per_container)
        context["waste_mg"] = data.get("waste_mg")
        context["total_mg"] = dose + (data.get("waste_mg") or 0)
        context["short"] = context["total_mg"] > stock.quantity_mg
    return render(request, "controlled_substances/administer_preview.html", context)


def _stock_form_view(
    request: AuthenticatedRequest,
    clinic_id: int,
    *,
    permission: str,
    form_class: Any,
    title: str,
    intro: str,
    submit: str,
    section: str,
    record: Any,
    renames: Mapping[str, str],
    form_kwargs: Mapping[str, Any] | None = None,
) -> HttpResponse:
    clinic = _clinic(request, permission, clinic_id)
    kwargs = dict(form_kwargs(clinic) if callable(form_kwargs) else form_kwargs or {})
    form = form_class(request.POST or None, clinic=clinic, actor_id=request.user.pk, **kwargs)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid() and form.cleaned_data.get("quantity_mg") is not None:
            try:
                entry, message = record(request, clinic, form)
            except ValidationError as exc:
                _add_errors(form, exc, {**STOCK_RENAMES, **renames})
            else:
                return _done(request, clinic, entry.seq, message)
    return _entry_form_page(
        request,
        clinic,
        form,
        title=title,
        intro=intro,
        submit=submit,
        section=section,
        status=status,
    )


@login_required
@GET_POST
def waste(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    def record(request: AuthenticatedRequest, clinic: Clinic, form: Any) -> tuple[Any, str]:
        data = form.cleaned_data
        entry = services.waste_record(
            actor=request.user,
            clinic=clinic,
            location=data["stock"].location,
            lot=data["stock"].lot,
            waste_mg=data["quantity_mg"],
            reason=data["reason"],
            witness=forms.attestation(form),
        )
        return entry, f"Wasted {fmt_mg(-entry.quantity_mg)} mg, witnessed by {entry.witness_name}."

    return _stock_form_view(
        request,
        clinic_id,
        permission="cs.record",
        form_class=forms.WasteForm,
        title="Record waste",
        intro="Waste not tied to a dose: a dose drawn up but not given, or "
        "a broken vial (witnessed, non-recoverable breakage is not a loss). Waste after a dose is "
        "recorded on the administration screen.",
        submit="Record waste",
        section="waste",
        record=record,
        renames={"waste_mg": "amount"},
    )


@login_required
@GET_POST
def transfer(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    def record(request: AuthenticatedRequest, clinic: Clinic, form: Any) -> tuple[Any, str]:
        data = form.cleaned_data
        out, incoming = services.transfer_record(
            actor=request.user,
            clinic=clinic,
            from_location=data["stock"].location,
            to_location=data["to_location"],
            lot=data["stock"].lot,
            quantity_mg=data["quantity_mg"],
            reason=data["reason"],
            witness=forms.attestation(form),
        )
        return out, (
            f"Moved {fmt_mg(incoming.quantity_mg)} mg from {out.location.name} to "
            f"{incoming.location.name}."
        )

    def destinations(clinic: Clinic) -> dict[str, Any]:
        ids = {clinic.pk}
        if access.has_permission(request.user, "cs.manage", clinic.pk):
            ids |= set(access.clinic_ids_for(request.user, "cs.manage"))
        return {"destination_clinic_ids": sorted(ids)}

    return _stock_form_view(
        request,
        clinic_id,
        permission="cs.stock",
        form_class=forms.TransferForm,
        title="Move stock",
        intro="Between the safe and a cart, or (clinic administrators of "
        "both) to another clinic of the organisation. Both sides are recorded together.",
        submit="Record transfer",
        section="transfer",
        record=record,
        renames={},
        form_kwargs=destinations,  # type: ignore[arg-type]
    )


@login_required
@GET_POST
def dispose(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    def record(request: AuthenticatedRequest, clinic: Clinic, form: Any) -> tuple[Any, str]:
        data = form.cleaned_data
        entry = services.disposal_record(
            actor=request.user,
            clinic=clinic,
            location=data["stock"].location,
            lot=data["stock"].lot,
            quantity_mg=data["quantity_mg"],
            method=data["method"],
            witness=forms.attestation(form),
            second_witness=forms.attestation(form, "second_witness"),
            reverse_distributor_name=data["reverse_distributor_name"],
            reverse_distributor_address=data["reverse_distributor_address"],
            reverse_distributor_dea_number=data["reverse_distributor_dea_number"],
            document_number=data["document_number"],
            destruction_method=data["destruction_method"],
            reason=data["reason"],
        )
        return (
            entry,
            f"Disposed of {fmt_mg(-entry.quantity_mg)} mg ({entry.get_disposal_method_display()}).",
        )

    return _stock_form_view(
        request,
        clinic_id,
        permission="cs.manage",
        form_class=forms.DisposeForm,
        title="Dispose of stock",
        intro="Expired or unwanted stock goes to a reverse distributor, "
        "or is destroyed on site and recorded on DEA Form 41 with two witnesses (21 CFR 1317). "
        "Waste after administration is never disposed of here.",
        submit="Record disposal",
        section="dispose",
        record=record,
        renames={},
    )


@login_required
@GET_POST
def adjust(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    def record(request: AuthenticatedRequest, clinic: Clinic, form: Any) -> tuple[Any, str]:
        data = form.cleaned_data
        entry = services.adjustment_record(
            actor=request.user,
            clinic=clinic,
            location=data["stock"].location,
            lot=data["stock"].lot,
            quantity_mg=data["quantity_mg"],
            reason=data["reason"],
            witness=forms.attestation(form),
            investigation=data["investigation"],
        )
        return entry, f"Balance adjusted by {fmt_mg(entry.quantity_mg)} mg."

    return _stock_form_view(
        request,
        clinic_id,
        permission="cs.manage",
        form_class=forms.AdjustForm,
        title="Adjust a balance",
        intro="Correct a balance to what is physically there, with the "
        "reason and a witness. A shortage that may be a theft or significant loss is recorded as "
        "a loss instead, which starts the DEA clocks.",
        submit="Record adjustment",
        section="adjust",
        record=record,
        renames={},
    )


@login_required
@GET_POST
def loss(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    def record(request: AuthenticatedRequest, clinic: Clinic, form: Any) -> tuple[Any, str]:
        data = form.cleaned_data
        entry = services.loss_record(
            actor=request.user,
            clinic=clinic,
            location=data["stock"].location,
            lot=data["stock"].lot,
            quantity_mg=data["quantity_mg"],
            kind=data["kind"],
            reason=data["reason"],
            witness=forms.attestation(form),
            investigation=data["investigation"],
        )
        return entry, (
            f"Loss of {fmt_mg(-entry.quantity_mg)} mg recorded; investigation "
            f"#{entry.investigation_id} tracks the DEA deadlines."
        )

    return _stock_form_view(
        request,
        clinic_id,
        permission="cs.manage",
        form_class=forms.LossForm,
        title="Record a loss or theft",
        intro="Theft and significant loss are reported to the DEA "
        "Field Division within one business day of discovery, and on Form 106 within 45 days "
        "(21 CFR 1301.76(b)).",
        submit="Record loss",
        section="loss",
        record=record,
        renames={},
    )


# --- counts ---------------------------------------------------------------------------------


@login_required
@require_GET
def counts(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.view", clinic_id)
    page = Paginator(selectors.counts(clinic), PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(
        request,
        clinic,
        "controlled_substances/counts.html",
        {
            "page": page,
            "locations": selectors.locations(clinic),
            "inventory": selectors.inventory_due(clinic),
        },
        section="counts",
    )


@login_required
@GET_POST
def count_new(request: AuthenticatedRequest, clinic_id: int, location_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.stock", clinic_id)
    location = StorageLocation.objects.filter(clinic=clinic, pk=location_id, is_active=True).first()
    if location is None:
        raise Http404
    expected = selectors.balances(clinic, location_id=location.pk, include_empty=True)
    lots = {row.balance.lot_id: row.balance.lot for row in expected}
    initial = [{"lot_id": lot_id} for lot_id in lots]
    header = forms.CountHeaderForm(request.POST or None, clinic=clinic, actor_id=request.user.pk)
    lines = forms.CountLineFormSet(request.POST or None, initial=initial, prefix="lines")
    status = 200
    if request.method == "POST":
        status = 400
        if header.is_valid() and lines.is_valid():
            inputs = []
            for line in lines.cleaned_data:
                lot = lots.get(int(line.get("lot_id") or 0))
                if lot is None:
                    continue  # a tampered lot id: only this location's lots are counted
                inputs.append(
                    services.CountLineInput(
                        lot=lot,
                        full_containers=line["full_containers"],
                        open_ml=line.get("open_ml") or Decimal("0"),
                        open_is_estimate=line.get("open_is_estimate", False),
                    )
                )
            try:
                count = services.count_record(
                    actor=request.user,
                    clinic=clinic,
                    location=location,
                    purpose=header.cleaned_data["purpose"],
                    business_time=header.cleaned_data["business_time"],
                    lines=inputs,
                    second_counter=forms.attestation(header, "second_counter"),
                    note=header.cleaned_data["note"],
                )
            except ValidationError as exc:
                _add_errors(header, exc, {})
            else:
                if count.has_discrepancy:
                    messages.warning(
                        request, "The count does not match the ledger: an investigation was opened."
                    )
                else:
                    messages.success(request, "Count recorded: it matches the ledger.")
                return HttpResponseRedirect(
                    reverse("controlled_substances:count", args=[clinic.pk, count.pk])
                )
    rows = list(
        zip(
            lines.forms,
            [lots.get(_int(f.initial.get("lot_id")) or 0) for f in lines.forms],
            strict=False,
        )
    )
    return _page(
        request,
        clinic,
        "controlled_substances/count_form.html",
        {
            "header": header,
            "lines": lines,
            "rows": rows,
            "location": location,
            **_field_groups(header),
        },
        status=status,
        section="counts",
    )


@login_required
@require_GET
def count_detail(request: AuthenticatedRequest, clinic_id: int, count_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.view", clinic_id)
    count = selectors.count_for(clinic, count_id)
    if count is None:
        raise Http404
    return _page(
        request,
        clinic,
        "controlled_substances/count_detail.html",
        {"count": count},
        section="counts",
    )


# --- investigations -------------------------------------------------------------------------


@login_required
@GET_POST
def investigations(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.report", clinic_id)
    can_manage = access.has_permission(request.user, "cs.manage", clinic.pk)
    form = forms.InvestigationOpenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        status = 400
        if form.is_valid():
            try:
                inv = services.investigation_open(
                    actor=request.user,
                    clinic=clinic,
                    kind=form.cleaned_data["kind"],
                    description=form.cleaned_data["description"],
                )
            except ValidationError as exc:
                _add_errors(form, exc, {})
            else:
                messages.success(request, f"Investigation #{inv.pk} opened.")
                return HttpResponseRedirect(
                    reverse("controlled_substances:investigation", args=[clinic.pk, inv.pk])
                )
    show = request.GET.get("status", "open")
    status_filter = show if show in InvestigationStatus.values else ""
    if request.method == "GET":
        record_event(
            action=Action.LIST,
            user=request.user,
            clinic=clinic,
            object_type="controlled_substances.investigation",
            detail="investigations",
        )
    return _page(
        request,
        clinic,
        "controlled_substances/investigations.html",
        {
            "investigations": selectors.investigations(clinic, status=status_filter),
            "deadlines": selectors.deadlines([clinic.pk]),
            "form": form,
            "can_manage": can_manage,
            "show": status_filter or "all",
        },
        status=status,
        section="investigations",
    )


_ACTIONS = {
    "classify": forms.ClassifyForm,
    "notice": forms.NoticeForm,
    "form_106": forms.Form106Form,
    "close": forms.CloseForm,
}


@login_required
@GET_POST
def investigation_detail(
    request: AuthenticatedRequest, clinic_id: int, investigation_id: int
) -> HttpResponse:
    clinic = _clinic(request, "cs.report", clinic_id)
    inv = selectors.investigation_for(clinic, investigation_id)
    if inv is None:
        raise Http404
    can_manage = access.has_permission(request.user, "cs.manage", clinic.pk)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    bound = {name: cls(request.POST if name == action else None) for name, cls in _ACTIONS.items()}
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        status = 400
        form = bound.get(action)
        if form is not None and form.is_valid():
            data = form.cleaned_data
            tz = ZoneInfo(clinic.timezone)
            try:
                if action == "classify":
                    services.investigation_classify(
                        actor=request.user, investigation=inv, kind=data["kind"], note=data["note"]
                    )
                elif action == "notice":
                    services.investigation_notice_sent(
                        actor=request.user, investigation=inv, sent_at=_aware(data["sent_at"], tz)
                    )
                elif action == "form_106":
                    services.investigation_form_106_filed(
                        actor=request.user,
                        investigation=inv,
                        reference=data["reference"],
                        filed_at=_aware(data["filed_at"], tz),
                    )
                else:
                    services.investigation_close(
                        actor=request.user, investigation=inv, resolution=data["resolution"]
                    )
            except ValidationError as exc:
                _add_errors(form, exc, {})
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, "Investigation updated.")
                return HttpResponseRedirect(
                    reverse("controlled_substances:investigation", args=[clinic.pk, inv.pk])
                )
    if request.method == "GET":
        record_event(action=Action.READ, user=request.user, clinic=clinic, obj=inv)
    entries = inv.entries.select_related("lot__product", "location").order_by("seq")
    return _page(
        request,
        clinic,
        "controlled_substances/investigation_detail.html",
        {
            "inv": inv,
            "forms": bound,
            "can_manage": can_manage,
            "entries": entries,
            "today": clock.today_in(clinic.timezone),
        },
        status=status,
        section="investigations",
    )


def _aware(value: Any, tz: ZoneInfo) -> Any:
    # datetime-local inputs are naive, in the clinic's own time.
    if value is None:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


# --- reports --------------------------------------------------------------------------------


@login_required
@require_GET
def report_index(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.report", clinic_id)
    return _page(
        request,
        clinic,
        "controlled_substances/report_index.html",
        {
            "reports": list(reports.ENTRY_REPORTS.values()),
            "inventory": selectors.inventory_due(clinic),
            "retention_years": settings.KETACLINIC_CS_RETENTION_YEARS,
        },
        section="reports",
    )


def _report_data(
    request: AuthenticatedRequest, clinic_id: int, slug: str, *, lazy: bool = False
) -> tuple[Clinic, forms.ReportFilterForm, Any, Any, bool]:
    report = reports.ENTRY_REPORTS.get(slug)
    # The filter's choices and the reversal ids, read with the clinic in one round trip.
    reads = selectors.filter_choices_reads(clinic_id)
    if report is not None:
        reads.append(selectors.reversals_of_kind_read(clinic_id, report.kind))
    clinic, (locations, products, *reversals) = _clinic_and(request, "cs.report", clinic_id, reads)
    if slug not in reports.REPORT_TITLES:
        raise Http404
    form = forms.ReportFilterForm(
        request.GET or None,
        clinic=clinic,
        with_patient=bool(report and report.with_patient),
        choices=(locations, products),
    )
    valid = not form.is_bound or form.is_valid()
    f = form.entry_filter() if valid else selectors.EntryFilter()
    reversal_ids: list[int] = []
    if report is None:
        rows: Any = selectors.inventories(clinic, f)
    else:
        reversal_ids = reversals[0]
        entries = functools.partial(report.rows, clinic, f, reversal_ids)
        rows = _LazyRows(lambda: report.values(entries())) if lazy else entries()
    return clinic, form, report, (rows, f, reversal_ids), valid


def _first_page(request: AuthenticatedRequest) -> bool:
    """Whether the paginator will show the first page whatever the row count."""
    return request.GET.get("page") in (None, "1")


class _LazyRows:
    """A page's rows for the paginator, built only when the page is read from them: the first
    page as usually opened comes through compiled SQL, and building the queryset and its
    `.values()` (a dozen joins to set up) cost more than that page's query."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build = build

    def __getitem__(self, key: Any) -> _LazySlice:
        return _LazySlice(self.build, key)


class _LazySlice:
    """`build()[key]`, read when iterated (the paginator slices as soon as it makes a page)."""

    def __init__(self, build: Callable[[], Any], key: Any) -> None:
        self.build, self.key = build, key

    def __iter__(self) -> Iterator[Any]:
        return iter(self.build()[self.key])


@login_required
@require_GET
def report_page(request: AuthenticatedRequest, clinic_id: int, report: str) -> HttpResponse:
    clinic, form, spec, (rows, f, reversal_ids), valid = _report_data(
        request, clinic_id, report, lazy=True
    )
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.report",
        detail=f"report {report}; {f.describe()}",
    )
    if spec is not None:
        # Count, total and first page through compiled SQL where the filter allows it, in one
        # round trip when the first page is asked for (as the page is usually opened).
        totals, shown = selectors.kind_page(
            clinic,
            spec.kind,
            f,
            reversal_ids,
            spec.fields,
            REPORT_PAGE_SIZE,
            first_page=_first_page(request),
        )
        context = _report_context(clinic, report, spec, None, f, total_mg=totals.quantity_mg)
        page = _CountedPaginator(rows, REPORT_PAGE_SIZE, totals.rows).get_page(
            request.GET.get("page")
        )
        if shown is None and page.number == 1:
            shown = selectors.kind_first_rows(
                clinic, spec.kind, f, reversal_ids, spec.fields, REPORT_PAGE_SIZE
            )
        if shown is None:
            shown = list(page.object_list)
        page.object_list = shown  # read once: the template's {% if page %} takes its length
        context["page"] = page
        context["table"] = _table(spec.columns, reports.complete(shown), clinic)
    else:
        context = _report_context(clinic, report, spec, rows, f)
        context["table"] = _table(reports.INVENTORY_COLUMNS, reports.inventory_rows(rows), clinic)
    params = request.GET.copy()
    params.pop("page", None)
    return _page(
        request,
        clinic,
        "controlled_substances/report.html",
        {
            **context,
            "form": form,
            # includes/field.html per field, written in Python (python_widgets.field_html).
            "fields": python_widgets.fields_html(form),
            "query": params.urlencode(),
        },
        status=200 if valid else 400,
        section="reports",
    )


def _report_context(
    clinic: Clinic, slug: str, spec: Any, rows: Any, f: Any, *, total_mg: Any = None
) -> dict[str, Any]:
    if spec is not None and total_mg is None:
        total_mg = selectors.totals(rows).quantity_mg
    return {
        "slug": slug,
        "title": reports.REPORT_TITLES[slug],
        "description": spec.description
        if spec
        else "DEA inventories (21 CFR 1304.11): each "
        "location counted separately, opening or close of business, open containers exact or "
        "estimated.",
        "total": reports.describe_total(spec.sign * total_mg) if spec else "",
        "filter": f,
        "registrant_address": services.clinic_address(clinic),
        "generated_at": clock.now(),
        "retention_years": settings.KETACLINIC_CS_RETENTION_YEARS,
    }


class _CountedPaginator(Paginator):
    """A paginator told the row count (from the report's one aggregate query)."""

    def __init__(self, object_list: Any, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:  # type: ignore[override]
        return self._known_count


def _table(columns: Any, rows: Iterable[Any], clinic: Clinic) -> dict[str, Any]:
    tz = ZoneInfo(clinic.timezone)
    return {
        "headers": [(c.header, c.numeric) for c in columns],
        "head": reports.header_html(columns),
        "body": reports.html_rows(columns, rows, tz),
    }


@login_required
@require_GET
def report_print(request: AuthenticatedRequest, clinic_id: int, report: str) -> HttpResponse:
    clinic, form, spec, (rows, f, _), valid = _report_data(request, clinic_id, report)
    if not valid:
        return HttpResponse("Invalid report filters.", status=400, content_type="text/plain")
    record_event(
        action=Action.PRINT,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.report",
        detail=f"report {report} printed; {f.describe()}",
    )
    context = _report_context(clinic, report, spec, rows, f)
    if spec is not None:
        limited = list(spec.values(rows)[: PRINT_LIMIT + 1])
        context["truncated"] = len(limited) > PRINT_LIMIT
        context["table"] = _table(spec.columns, reports.complete(limited[:PRINT_LIMIT]), clinic)
    else:
        context["table"] = _table(reports.INVENTORY_COLUMNS, reports.inventory_rows(rows), clinic)
    return render(
        request,
        "controlled_substances/report_print.html",
        {**context, "clinic": clinic, "printed_by": request.user},
    )


@login_required
@require_GET
def report_csv(request: AuthenticatedRequest, clinic_id: int, report: str) -> HttpResponseBase:
    clinic, form, spec, (rows, f, _), valid = _report_data(request, clinic_id, report)
    if not valid:
        return HttpResponse("Invalid report filters.", status=400, content_type="text/plain")
    record_event(
        action=Action.EXPORT,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.report",
        detail=f"report {report} CSV; {f.describe()}",
    )
    tz = ZoneInfo(clinic.timezone)
    filename = f"{report}-{clinic.slug}.csv"
    if spec is None:
        return _csv_response(
            filename,
            [c.header for c in reports.INVENTORY_COLUMNS],
            (reports.cells(reports.INVENTORY_COLUMNS, r, tz) for r in reports.inventory_rows(rows)),
        )
    return _csv_response(
        filename,
        [c.header for c in spec.columns],
        (reports.cells(spec.columns, r, tz) for r in reports.stream(spec.values(rows))),
    )


# --- catalogue ------------------------------------------------------------------------------


@login_required
@require_GET
def catalogue(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.view", clinic_id)
    return _page(
        request,
        clinic,
        "controlled_substances/catalogue.html",
        {
            "products": selectors.products(active_only=False),
            "locations": selectors.locations(clinic, active_only=False),
            "lots": selectors.lots_of_clinic(clinic),
        },
        section="catalogue",
    )


@login_required
@GET_POST
def product_new(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.manage", clinic_id)
    form = forms.ProductCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                product = services.product_create(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc, {})
            else:
                messages.success(request, f"{product} added to the catalogue.")
                return HttpResponseRedirect(
                    reverse("controlled_substances:catalogue", args=[clinic.pk])
                )
    return _entry_form_page(
        request,
        clinic,
        form,
        title="Add a product",
        intro="One NDC: a finished form as bought.",
        submit="Add product",
        section="catalogue",
        status=status,
    )


@login_required
@GET_POST
def location_new(request: AuthenticatedRequest, clinic_id: int) -> HttpResponse:
    clinic = _clinic(request, "cs.manage", clinic_id)
    form = forms.LocationCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                location = services.location_create(
                    actor=request.user, clinic=clinic, **form.cleaned_data
                )
            except ValidationError as exc:
                _add_errors(form, exc, {})
            else:
                messages.success(request, f"{location.name} added.")
                return HttpResponseRedirect(
                    reverse("controlled_substances:catalogue", args=[clinic.pk])
                )
    return _entry_form_page(
        request,
        clinic,
        form,
        title="Add a storage location",
        intro="A safe or cart where stock is kept and counted.",
        submit="Add location",
        section="catalogue",
        status=status,
    )


# --- the patient chart's panel --------------------------------------------------------------


# On every chart: compiled to SQL once (core.compiled_query); only the columns shown.
_CHART_ENTRIES = CompiledModelQuery(
    lambda patient_id, clinic_id: selectors.patient_recent_entries_shown(patient_id, clinic_id, 20),
    patient_id=PLACEHOLDER_ID,
    clinic_id=PLACEHOLDER_ID - 1,
)


_ENTRY_SEQ_MARK = 918_273_645


def chart_panel_rows(entries: Iterable[Any], clinic_id: int, tz: ZoneInfo) -> SafeString:
    """The panel's table rows as HTML, as the template wrote them (a `{% url %}`, a date filter
    and a dozen lookups per row cost more than the rest of the panel)."""
    entry_url = reverse("controlled_substances:entry", args=[clinic_id, _ENTRY_SEQ_MARK])
    mark = str(_ENTRY_SEQ_MARK)
    e = conditional_escape
    lines = []
    for entry in entries:
        product = entry.lot.product
        witness = f"; witness {e(entry.witness_name)}" if entry.witness_name else ""
        lines.append(
            f'<tr><td><a href="{entry_url.replace(mark, str(entry.seq))}">'
            f"{entry.occurred_at.astimezone(tz):%Y-%m-%d %H:%M}</a></td>"
            f"<td>{e(entry.get_kind_display())}</td>"
            f"<td>{e(product.name)} {e(product.finished_form)}, lot {e(entry.lot.lot_number)}</td>"
            f'<td class="num">{text(entry.quantity_mg)}</td>'
            f"<td>{e(entry.actor_name)}{witness}</td></tr>\n    "
        )
    # Safe: every text went through conditional_escape(); the rest are numbers and dates.
    return mark_safe("".join(lines))  # noqa: S308


def chart_panel_html(ctx: Mapping[str, Any]) -> SafeString:
    """What `controlled_substances/chart_panel.html` writes for the panel's context
    (Panel.html: the chart skips the include; its time zone tag has nothing left to convert,
    the rows being written in the clinic's zone by `chart_panel_rows`)."""
    e = conditional_escape
    record = ""
    if ctx["can_record"]:
        href = reverse_with_id("controlled_substances:administer", ctx["clinic_id"])
        record = (
            f'<p><a href="{e(href)}?patient={text(ctx["patient"].pk)}" role="button" '
            'class="secondary outline">Record an administration</a></p>'
        )
    rows = (
        e(ctx["rows_html"])
        if ctx["rows"]
        else '<tr><td colspan="5">No ketamine or esketamine recorded for this patient.</td></tr>'
    )
    # Safe: the link and the rows are escaped (the rows are a SafeString written escaped).
    return mark_safe(  # noqa: S308
        f"\n{record}\n\n"
        '<table class="cs-table" id="cs-chart-panel">\n'
        '  <thead><tr><th scope="col">When</th><th scope="col">What</th>'
        '<th scope="col">Product, lot</th><th scope="col" class="num">mg</th>'
        '<th scope="col">By</th></tr></thead>\n'
        f"  <tbody>\n    {rows}\n  </tbody>\n</table>\n\n"
    )


def chart_panel_facts(since: datetime) -> Mapping[str, Any]:
    """Read with the other panels' facts (patients.chart): most patients have no entry."""
    from django.db.models import Exists, OuterRef

    from ketaclinic.controlled_substances.models import LedgerEntry

    entries = LedgerEntry.objects.filter(patient_id=OuterRef("pk"), clinic_id=OuterRef("clinic_id"))
    return {"has_entries": Exists(entries)}


def chart_panel_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> dict[str, Any] | None:
    """The panel's read, asked for with the other panels' (patients.chart); None hides it."""
    if not access.has_permission(user, "cs.view", patient.clinic_id):
        return None
    return {
        "rows": reads.add(_CHART_ENTRIES, patient_id=patient.pk, clinic_id=patient.clinic_id)
        if facts.get("has_entries", True)
        else None
    }


def chart_panel(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Any] | None = None,
    prepared: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The patient's doses and waste on their chart, for those who may see the ledger."""
    if prepared is not None:
        rows = prepared["rows"].rows() if prepared["rows"] is not None else []
    else:
        if not access.has_permission(user, "cs.view", patient.clinic_id):
            return None
        rows = (
            _CHART_ENTRIES.objects(patient_id=patient.pk, clinic_id=patient.clinic_id)
            if (facts or {}).get("has_entries", True)
            else []
        )
    return {
        "rows": rows,
        "rows_html": chart_panel_rows(rows, patient.clinic_id, ZoneInfo(patient.clinic.timezone)),
        "clinic_id": patient.clinic_id,
        "patient": patient,
        "can_record": access.has_permission(user, "cs.record", patient.clinic_id),
    }
