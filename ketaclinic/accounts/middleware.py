"""Idle timeout and the staff MFA requirement, applied before any view runs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from ketaclinic.accounts import access
from ketaclinic.core import clock

SESSION_LAST_SEEN = "kc_last_seen"
# Requests a page makes by itself (polling boards) do not count as the user being active.
BACKGROUND_HEADER = "X-KC-Background"


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class IdleTimeoutMiddleware:
    """Sign the user out after KETACLINIC_IDLE_TIMEOUT_MINUTES without activity (R5)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = clock.now().timestamp()
            last_seen = request.session.get(SESSION_LAST_SEEN)
            limit = settings.KETACLINIC_IDLE_TIMEOUT_MINUTES * 60
            if last_seen is not None and now - float(last_seen) > limit:
                request._kc_logout_reason = "idle timeout"  # type: ignore[attr-defined]
                logout(request)
                if _wants_json(request):
                    return JsonResponse(
                        {"detail": "Session expired; sign in again.", "errors": {}}, status=401
                    )
                messages.info(
                    request,
                    f"You were signed out after {settings.KETACLINIC_IDLE_TIMEOUT_MINUTES} "
                    "minutes without activity. Sign in again to continue.",
                )
                login_url = reverse(settings.LOGIN_URL)
                target = f"{login_url}?{urlencode({'next': request.get_full_path()})}"
                if request.headers.get("HX-Request"):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return HttpResponseRedirect(target)
            if not request.headers.get(BACKGROUND_HEADER):
                request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)


MFA_EXEMPT_PREFIXES = ("/accounts/mfa/", "/accounts/logout/", "/static/", "/api/")


class MfaRequiredMiddleware:
    """Staff reach nothing but MFA enrolment/verification until a TOTP code is confirmed (R3).

    The API checks verification in its own session authentication (config/api.py), and its
    documentation pages with `verified_login_required`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(MFA_EXEMPT_PREFIXES):
            redirect = mfa_redirect(request)
            if redirect is not None:
                return redirect
        return self.get_response(request)


def mfa_redirect(request: HttpRequest) -> HttpResponse | None:
    """Where a signed-in staff member who has not passed the TOTP step must go; None if done."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if not mfa_required_for(user) or user.is_verified():
        return None
    from django_otp import devices_for_user

    has_device = any(True for _ in devices_for_user(user, confirmed=True))
    target = reverse("accounts:mfa_verify" if has_device else "accounts:mfa_setup")
    return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")


def mfa_required_for(user: object) -> bool:
    # Only demo mode, which shows its banner on every page, may switch the requirement off.
    if not settings.KETACLINIC_REQUIRE_STAFF_MFA and settings.DEMO_MODE:
        return False
    return access.is_staff_member(user) or bool(getattr(user, "is_superuser", False))


def verified_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`login_required` plus the TOTP step, for pages under a prefix the middleware exempts."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return mfa_redirect(request) or view(request, *args, **kwargs)

    return login_required(wrapper)
