"""The JSON API at /api/v1: one NinjaAPI, one error format, no tracebacks.

Errors always look like {"detail": "...", "errors": {"field": "message"}} with a 4xx status.
"""

from __future__ import annotations

import logging

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    ValidationError,
)
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from ketaclinic.accounts.api_auth import TokenAuth, VerifiedSessionAuth
from ketaclinic.accounts.middleware import verified_login_required
from ketaclinic.controlled_substances.api import router as controlled_substances_router
from ketaclinic.core.validation import error_map
from ketaclinic.courses.api import router as courses_router
from ketaclinic.measures.api import router as measures_router
from ketaclinic.patients.api import router as patients_router
from ketaclinic.screening.api import router as screening_router
from ketaclinic.treatment_sessions.api import router as sessions_router

logger = logging.getLogger("ketaclinic.api")


class ClinicSwagger(Swagger):
    """Ninja's Swagger UI page with the demo-mode banner every page must show."""

    template = "core/api_docs.html"


api = NinjaAPI(
    title="KetaClinic API",
    version="1",
    description="Clinical API for ketamine and esketamine clinics. Authenticate with a personal "
    "access token from your profile page: `Authorization: Bearer kc_…`.",
    auth=[TokenAuth(), VerifiedSessionAuth()],
    urls_namespace="api",
    docs=ClinicSwagger(),
    # The docs live under /api/, which the MFA middleware leaves to the API's own checks.
    docs_decorator=verified_login_required,
)
api.add_router("/patients", patients_router, tags=["patients"])
api.add_router("/screening", screening_router, tags=["intake and screening"])
api.add_router("/courses", courses_router, tags=["courses and scheduling"])
api.add_router("/measures", measures_router, tags=["measurement-based care"])
api.add_router(
    "/controlled-substances", controlled_substances_router, tags=["controlled substances"]
)
api.add_router("/sessions", sessions_router, tags=["treatment sessions"])


def _error(request: HttpRequest, status: int, detail: str, errors: dict[str, str] | None = None):
    return api.create_response(request, {"detail": detail, "errors": errors or {}}, status=status)


def _field_of(loc: list[object]) -> str:
    names = [str(p) for p in loc if isinstance(p, str) and p not in {"body", "payload", "query"}]
    return names[-1] if names else "__all__"


@api.exception_handler(NinjaValidationError)
def _schema_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors: dict[str, str] = {}
    for err in exc.errors:
        field = _field_of(list(err.get("loc", [])))
        errors.setdefault(field, str(err.get("msg", "Invalid value.")))
    return _error(request, 422, "The request has invalid fields.", errors)


@api.exception_handler(ValidationError)
def _service_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, 422, "The request has invalid fields.", error_map(exc))


@api.exception_handler(SuspiciousOperation)
def _suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    # Django answers these 400 on pages; without this handler the API's catch-all made them 500.
    if isinstance(exc, RequestDataTooBig):
        return _error(request, 413, "The request body is too large.")
    return _error(request, 400, "Bad request.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "Not found.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, "You do not have permission to do this.")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "Authentication required: a valid token or signed-in session.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Never a traceback to the client (R29); the log has it, keyed by request id.
    logger.exception("API error, request %s", getattr(request, "request_id", "-"))
    return _error(
        request, 500, "Internal error. Quote request id " + getattr(request, "request_id", "-")
    )
