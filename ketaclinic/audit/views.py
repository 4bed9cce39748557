"""Audit report (ONC 170.315(d)(3)): date range, filters, sort by every column, CSV export."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Membership
from ketaclinic.audit.choices import Action
from ketaclinic.audit.forms import AuditReportForm
from ketaclinic.audit.selectors import REPORT_SORT_KEYS, audit_report
from ketaclinic.audit.services import record_event

CSV_COLUMNS = [
    "seq", "occurred_at", "username", "clinic_id", "patient_id", "action", "object_type",
    "object_id", "request_id", "source_ip", "detail", "changes", "entry_hash",
]  # fmt: skip


def _report(request: HttpRequest) -> tuple[AuditReportForm, Any]:
    access.require(request.user, "audit.view")
    clinic_ids = access.clinic_ids_for(request.user, "audit.view")
    members = Membership.objects.filter(clinic_id__in=clinic_ids).values("user_id")
    form = AuditReportForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {
            "date_from": data["date_from"],
            "date_to": data["date_to"],
            "username": data["user"] or "",
            "patient_id": data["patient"],
            "action": data["action"] or "",
            "sort": data["sort"] or "-time",
        }
    elif form.is_bound:
        return form, None
    return form, audit_report(clinic_ids=clinic_ids, member_user_ids=members, **filters)


@login_required
def audit_report_page(request: HttpRequest) -> HttpResponse:
    form, events = _report(request)
    page = Paginator(events, 50).get_page(request.GET.get("page")) if events is not None else None
    record_event(action=Action.LIST, user=request.user, object_type="audit.auditevent",
                 detail="audit report")  # fmt: skip
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("sort", None)
    current_sort = request.GET.get("sort") or "-time"
    return render(
        request,
        "audit/report.html",
        {
            "form": form,
            "page": page,
            "sort_keys": list(REPORT_SORT_KEYS),
            "current_sort": current_sort,
            "base_query": params.urlencode(),
        },
        status=200 if page is not None else 400,
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def audit_report_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form, events = _report(request)
    if events is None:
        return HttpResponse("Invalid report filters.", status=400, content_type="text/plain")
    record_event(
        action=Action.EXPORT,
        user=request.user,
        object_type="audit.auditevent",
        detail=f"audit report CSV; {request.GET.urlencode()}"[:500],
    )
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in events.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    event.seq, event.occurred_at.isoformat(), event.username, event.clinic_id,
                    event.patient_id, event.action, event.object_type, event.object_id,
                    event.request_id, event.source_ip, event.detail, event.changes,
                    event.entry_hash,
                ]
            )  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-report.csv"'
    return response
