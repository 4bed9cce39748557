"""Sign-in, MFA enrolment and verification, the user's profile and API tokens."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts import access, services
from ketaclinic.accounts.forms import ApiTokenForm, LoginForm, TotpCodeForm
from ketaclinic.accounts.models import Membership
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.core.http import AuthenticatedRequest


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("core:home")


@login_required
def mfa_setup(request: AuthenticatedRequest) -> HttpResponse:
    """Enrol a TOTP authenticator by QR code, confirmed with one code.

    Whoever already has an authenticator must use it first: otherwise a stolen password alone
    would let the thief replace the owner's authenticator with their own.
    """
    verified = request.user.is_verified()  # type: ignore[attr-defined]  # set by OTPMiddleware
    if not verified and any(devices_for_user(request.user, confirmed=True)):
        verify = reverse("accounts:mfa_verify")
        return HttpResponseRedirect(f"{verify}?{urlencode({'next': _next_url(request)})}")
    device = services.totp_device_pending(user=request.user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.totp_device_confirm(
            user=request.user, device=device, token=form.cleaned_data["code"]
        ):
            otp_login(request, device)
            messages.success(request, "Two-step sign-in is on for your account.")
            return HttpResponseRedirect(_next_url(request))
        form.add_error("code", "That code did not match. Check the time on your phone and retry.")
    svg = segno.make(device.config_url, error="m").svg_inline(scale=5, dark="#1b1f24")
    qr_data_uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(
        request,
        "accounts/mfa_setup.html",
        {"form": form, "qr_data_uri": qr_data_uri, "secret": secret, "next": _next_url(request)},
    )


@login_required
def mfa_verify(request: AuthenticatedRequest) -> HttpResponse:
    """Second step of sign-in: a TOTP code from the enrolled device."""
    devices = [d for d in devices_for_user(request.user, confirmed=True)]
    if not devices:
        return HttpResponseRedirect(reverse("accounts:mfa_setup"))
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices:
            if device.verify_token(form.cleaned_data["code"]):
                otp_login(request, device)
                return HttpResponseRedirect(_next_url(request))
        record_event(action=Action.MFA_FAILED, user=request.user, object_type="accounts.user")
        form.add_error("code", "That code did not match. Codes change every 30 seconds.")
    return render(request, "accounts/mfa_verify.html", {"form": form, "next": _next_url(request)})


def _profile_context(request: AuthenticatedRequest, form: ApiTokenForm) -> dict[str, object]:
    return {
        "memberships": Membership.objects.filter(user=request.user, is_active=True)
        .select_related("clinic")
        .order_by("clinic__name"),
        "tokens": request.user.api_tokens.all(),
        "has_mfa": TOTPDevice.objects.filter(user=request.user, confirmed=True).exists(),
        "form": form,
        "staff": access.is_staff_member(request.user),
    }


@login_required
def profile(request: AuthenticatedRequest) -> HttpResponse:
    context = _profile_context(request, ApiTokenForm())
    context["new_token"] = request.session.pop("kc_new_token", None)
    return render(request, "accounts/profile.html", context)


@login_required
@require_POST
def token_create(request: AuthenticatedRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            _, raw = services.api_token_create(
                actor=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            # Shown once on the next page, then gone: only its digest is stored.
            request.session["kc_new_token"] = raw
            return HttpResponseRedirect(reverse("accounts:profile"))
    return render(request, "accounts/profile.html", _profile_context(request, form), status=400)


@login_required
@require_POST
def token_revoke(request: AuthenticatedRequest, token_id: int) -> HttpResponse:
    try:
        services.api_token_revoke(actor=request.user, token_id=token_id)
        messages.success(request, "Token revoked. Programs using it can no longer sign in.")
    except ValidationError:
        messages.error(request, "No such token.")
    return HttpResponseRedirect(reverse("accounts:profile"))
