"""API authentication: personal access tokens (Bearer) or a signed-in, MFA-verified session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from ketaclinic.accounts import services
from ketaclinic.accounts.middleware import mfa_required_for


class TokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = services.api_token_user(token)
        if user is None:
            return None
        request.user = user
        return user


class VerifiedSessionAuth(APIKeyCookie):
    """Django's session cookie, with CSRF, and only once staff have passed MFA."""

    param_name = "sessionid"

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if mfa_required_for(user) and not user.is_verified():
            return None
        return user
