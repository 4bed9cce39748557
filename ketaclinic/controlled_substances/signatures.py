"""Second signers: a witness re-authenticates at the moment of signing (security.md R21, R24).

A witness is another person holding a witnessing role at the clinic, who types their own password,
and their authenticator code when they have one, into the same request that writes the entry.
Being signed in elsewhere does not count, and an attestation is only good for a few minutes after
it was typed: a page or caller cannot hold a colleague's approval and use it later.

Wrong passwords and codes are audited (LOGIN_FAILED / MFA_FAILED) and, after the same number of
failures as the sign-in lockout, witnessing is refused for that account for the lockout period:
a witness box must not become a way to guess a colleague's password. Verification happens before
the service opens its transaction so these failure events are kept even though nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django_otp import devices_for_user

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.models import AuditEvent
from ketaclinic.audit.services import record_event
from ketaclinic.core import clock

# An attestation older than this is stale (R21): the witness must type their password again.
MAX_AGE = timedelta(minutes=5)
# Tolerated clock difference when a caller stamps `presented_at` itself.
CLOCK_SKEW = timedelta(seconds=30)
FAILURE_OBJECT = "controlled_substances.witness"


@dataclass(frozen=True)
class WitnessAttestation:
    """What a witness typed: who they are, their password, their current code (if enrolled)."""

    user: Any
    password: str = field(repr=False)
    otp: str = field(default="", repr=False)
    presented_at: datetime = field(default_factory=clock.now)


@dataclass(frozen=True)
class Signature:
    """A verified second signature: who, when, and what they attest to (21 CFR 11.50)."""

    user: Any
    name: str
    signed_at: datetime
    meaning: str


def _failures_since(username: str, since: datetime) -> int:
    return AuditEvent.objects.filter(
        object_type=FAILURE_OBJECT,
        username=username,
        action__in=[Action.LOGIN_FAILED, Action.MFA_FAILED],
        occurred_at__gte=since,
    ).count()


def _fail(user: Any, action: Action, clinic_id: int, detail: str) -> None:
    record_event(
        action=action,
        username=user.get_username(),
        clinic_id=clinic_id,
        object_type=FAILURE_OBJECT,
        object_id=user.pk,
        detail=detail,
    )


def witness_sign(
    attestation: WitnessAttestation | None,
    *,
    actor: Any,
    clinic_id: int,
    meaning: str,
    prefix: str = "witness",
    not_same_as: tuple[Any, ...] = (),
) -> Signature:
    """Check the attestation and return the signature, or ValidationError keyed by `prefix`."""
    now = clock.now()
    user = attestation.user if attestation is not None else None
    if user is None:
        raise ValidationError({prefix: ["A witness must sign this entry."]})
    if user.pk == getattr(actor, "pk", None):
        raise ValidationError({prefix: ["You cannot witness your own entry; ask a colleague."]})
    if any(other is not None and other.pk == user.pk for other in not_same_as):
        raise ValidationError({prefix: ["The two witnesses must be different people."]})
    if not user.is_active or not access.has_permission(user, "cs.witness", clinic_id):
        raise ValidationError({prefix: [f"{user} cannot witness entries at this clinic."]})
    assert attestation is not None
    if attestation.presented_at < now - MAX_AGE or attestation.presented_at > now + CLOCK_SKEW:
        raise ValidationError(
            {prefix: ["This witness signature has expired. The witness must sign again."]}
        )
    cooloff = settings.AXES_COOLOFF_TIME
    if _failures_since(user.get_username(), now - cooloff) >= settings.AXES_FAILURE_LIMIT:
        minutes = int(cooloff.total_seconds() // 60)
        raise ValidationError(
            {
                prefix: [
                    f"Witnessing by {user} is locked for up to {minutes} minutes after "
                    "repeated wrong passwords or codes."
                ]
            }
        )
    if not attestation.password or not user.check_password(attestation.password):
        _fail(user, Action.LOGIN_FAILED, clinic_id, "witness password rejected")
        raise ValidationError({f"{prefix}_password": ["The witness password is incorrect."]})
    devices = list(devices_for_user(user, confirmed=True))
    if devices:
        code = (attestation.otp or "").strip()
        if not code:
            raise ValidationError(
                {f"{prefix}_otp": ["The witness uses two-step sign-in: enter their current code."]}
            )
        throttled = [d for d in devices if hasattr(d, "verify_is_allowed")]
        if throttled and not any(d.verify_is_allowed()[0] for d in throttled):
            raise ValidationError(
                {
                    f"{prefix}_otp": [
                        "Too many wrong codes for this witness: wait a few seconds, "
                        "then enter a new code."
                    ]
                }
            )
        if not any(device.verify_token(code) for device in devices):
            _fail(user, Action.MFA_FAILED, clinic_id, "witness code rejected")
            raise ValidationError(
                {f"{prefix}_otp": ["That code did not match the witness's authenticator."]}
            )
    return Signature(user=user, name=user.signature_name, signed_at=now, meaning=meaning)
