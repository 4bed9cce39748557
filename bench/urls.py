"""The bench's URLconf: every production route plus the framework floor, which is never a
production route (config.urls does not include this module; the bench selects it with
override_settings(ROOT_URLCONF="bench.urls") in its own process only)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as production_urlpatterns
from ketaclinic.accounts import access

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


@login_required
def floor(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The cheapest useful page: the full middleware stack (session, auth, MFA, idle timeout,
    CSP, audit request context), a permission check and one primary-key query."""
    access.require(request.user, "patient.view")
    mrn = (
        access.patients_for(request.user)
        .filter(pk=patient_id)
        .values_list("mrn", flat=True)
        .first()
    )
    return HttpResponse(mrn or "-", content_type="text/plain")


urlpatterns = [
    path("bench/floor/<int:patient_id>", floor, name="bench-floor"),
    *production_urlpatterns,
]
