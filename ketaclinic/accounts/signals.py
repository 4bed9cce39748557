"""Logins, logouts, failed logins and lockouts go to the audit trail (R7)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record_event(action=Action.LOGIN, user=user, object_type="accounts.user", object_id=user.pk)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    reason = getattr(request, "_kc_logout_reason", "")
    record_event(
        action=Action.IDLE_TIMEOUT if reason == "idle timeout" else Action.LOGOUT,
        user=user,
        object_type="accounts.user",
        object_id=user.pk,
        detail=reason,
    )


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    record_event(action=Action.LOGIN_FAILED, username=username, object_type="accounts.user")


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any, username: str, ip_address: str, **kw: Any) -> None:
    record_event(
        action=Action.LOCKOUT,
        username=(username or "")[:150],
        object_type="accounts.user",
        detail=f"locked out after repeated failed logins from {ip_address}",
    )
