"""Writes for accounts: memberships, MFA devices and API tokens, each audited."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts import access
from ketaclinic.accounts.choices import Role
from ketaclinic.accounts.models import ApiToken, Clinic, Membership, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.core import clock
from ketaclinic.core.compiled_query import PLACEHOLDER_DATETIME, CompiledModelQuery
from ketaclinic.core.expressions import JoinedText


@transaction.atomic
def membership_set(*, actor: Any, user: User, clinic: Clinic, role: str | None) -> None:
    """Give a user a role at a clinic, change it, or (role=None) remove it. Clinic admins only."""
    if actor is not None and access.role_at(actor, clinic.pk) != Role.CLINIC_ADMIN:
        raise PermissionDenied
    if role is not None and role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    existing = Membership.objects.filter(user=user, clinic=clinic).first()
    old_role = existing.role if existing and existing.is_active else None
    if role is None:
        if existing:
            existing.is_active = False
            existing.save(update_fields=["is_active"])
    elif existing:
        existing.role, existing.is_active = role, True
        existing.save(update_fields=["role", "is_active"])
    else:
        Membership.objects.create(user=user, clinic=clinic, role=role)
    access.forget_memberships(user)
    record_event(
        action=Action.MEMBERSHIP_CHANGE,
        user=actor,
        clinic=clinic,
        object_type="accounts.membership",
        object_id=user.pk,
        changes={"role": {"old": old_role, "new": role}, "user": user.get_username()},
    )


def totp_device_pending(*, user: User) -> TOTPDevice:
    """The unconfirmed TOTP device being enrolled (created on first call)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def totp_device_confirm(*, user: User, device: TOTPDevice, token: str) -> bool:
    """Confirm enrolment when the code is right; other devices of the user are replaced."""
    if device.user_id != user.pk or not device.verify_token(token):
        record_event(action=Action.MFA_FAILED, user=user, object_type="otp_totp.totpdevice")
        return False
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    record_event(
        action=Action.MFA_ENROL, user=user, object_type="otp_totp.totpdevice", object_id=device.pk
    )
    return True


@transaction.atomic
def totp_device_remove(*, actor: Any, user: User) -> None:
    """Remove a user's TOTP devices (self, or a clinic admin resetting a lost phone)."""
    TOTPDevice.objects.filter(user=user).delete()
    record_event(
        action=Action.MFA_REMOVE,
        user=actor,
        object_type="accounts.user",
        object_id=user.pk,
        detail=f"MFA removed for {user.get_username()}",
    )


@transaction.atomic
def api_token_create(*, actor: User, name: str, days: int) -> tuple[ApiToken, str]:
    """Create a personal access token; the raw value is returned once and never stored."""
    name = name.strip()
    errors = {}
    if not name:
        errors["name"] = "Give the token a name, e.g. the device or script that will use it."
    if not 1 <= days <= settings.KETACLINIC_TOKEN_MAX_DAYS:
        errors["days"] = f"Expiry must be 1 to {settings.KETACLINIC_TOKEN_MAX_DAYS} days."
    if errors:
        raise ValidationError(errors)
    raw = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=actor,
        name=name[:100],
        token_digest=ApiToken.digest(raw),
        hint=raw[:10],
        expires_at=clock.now() + timedelta(days=days),
    )
    record_event(action=Action.TOKEN_CREATE, user=actor, obj=token, detail=token.name)
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: User, token_id: int) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=actor).first()
    if token is None:
        raise ValidationError({"token": "No such token."})
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        record_event(action=Action.TOKEN_REVOKE, user=actor, obj=token, detail=token.name)
    return token


# Read on every API request: compiled to SQL once (core.compiled_query). A digest is 64 hex
# characters, so the placeholder can never be a real one.
# The user's active memberships ride along as "clinic_id:role:organisation_id,..." text, so an API
# request learns who is asking, and where they may act, in one round trip.
_MEMBERSHIPS_TEXT = Subquery(
    Membership.objects.filter(user_id=OuterRef("user_id"), is_active=True)
    .values("user_id")
    .annotate(
        joined=JoinedText(
            Concat(
                Cast("clinic_id", CharField()),
                Value(":"),
                "role",
                Value(":"),
                Cast("clinic__organisation_id", CharField()),
            )
        )
    )
    .values("joined")
)

_TOKEN_WITH_USER = CompiledModelQuery(
    lambda digest, now: (
        ApiToken.objects.select_related("user")
        .annotate(kc_memberships=_MEMBERSHIPS_TEXT)
        .filter(token_digest=digest, revoked_at__isnull=True, expires_at__gt=now)
        .order_by("pk")[:1]
    ),
    digest="placeholder: not a digest",
    now=PLACEHOLDER_DATETIME,
)


def _parse_memberships(text: str | None) -> list[tuple[int, str, int]]:
    """ "clinic_id:role:organisation_id,..." as the token query joins them."""
    found = []
    for item in (text or "").split(","):
        if item:
            clinic_id, role, organisation_id = item.split(":")
            found.append((int(clinic_id), role, int(organisation_id)))
    return found


def api_token_user(raw: str) -> User | None:
    """The user of a valid (known, unrevoked, unexpired) token, else None."""
    if not raw.startswith(ApiToken.PREFIX):
        return None
    now = clock.now()
    found = _TOKEN_WITH_USER.objects(digest=ApiToken.digest(raw), now=now)
    token = found[0] if found else None
    if token is None or not token.user.is_active:
        return None
    access.remember_memberships(token.user, _parse_memberships(token.kc_memberships))
    # Note use at most once a minute: a write on every API call would cost throughput.
    if token.last_used_at is None or (now - token.last_used_at) > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
