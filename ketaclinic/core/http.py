"""Request types for views behind login, so type checking knows `request.user` is a User."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from ketaclinic.accounts.models import User


class AuthenticatedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
    request_id: str
