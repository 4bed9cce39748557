"""Home (each role lands where its work is) and friendly error pages without stack traces."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from ketaclinic.accounts import access


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if access.has_permission(request.user, "patient.view"):
        return HttpResponseRedirect(reverse("patients:list"))
    if access.has_permission(request.user, "audit.view"):
        return HttpResponseRedirect(reverse("audit:report"))
    if access.has_permission(request.user, "portal.own"):
        return HttpResponseRedirect(reverse("portal:home"))
    return render(request, "core/home.html", {})


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for a load balancer: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def _error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": title, "errors": {}}, status=status)
    return render(
        request, "core/error.html", {"status": status, "title": title, "message": message},
        status=status,
    )  # fmt: skip


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(
        request, 403, "Not allowed", "Your role does not allow this. Ask a clinic administrator."
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(
        request, 404, "Not found", "There is nothing here, or it is not in one of your clinics."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return _error_page(
        request, 500, "Something went wrong",
        "The error was logged. Nothing you entered was half-saved. Please try again.",
    )  # fmt: skip
