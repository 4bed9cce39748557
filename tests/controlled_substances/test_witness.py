"""Second signers (security.md R21, R24): a different person, allowed to witness at the clinic,
re-authenticating at the moment of signing."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances import services
from ketaclinic.controlled_substances.models import LedgerEntry
from ketaclinic.core import clock
from tests.controlled_substances.conftest import Ledger, attest

D = Decimal


def waste(lg: Ledger, witness, actor: str = "nurse") -> LedgerEntry:
    lot = lg.receive(containers=1, lot_number="W1")
    return services.waste_record(
        actor=lg.user(actor),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        waste_mg=D("10"),
        reason="Drawn up, not given",
        witness=witness,
    )


def refused(lg: Ledger, witness, actor: str = "nurse") -> dict[str, list[str]]:
    wastes = LedgerEntry.objects.filter(kind="waste").count()
    with pytest.raises(ValidationError) as exc:
        waste(lg, witness, actor)
    assert LedgerEntry.objects.filter(kind="waste").count() == wastes, "nothing was written"
    return exc.value.message_dict


def totp_code(device: TOTPDevice, offset_steps: int = 0) -> str:
    otp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    otp.time = time.time() + offset_steps * device.step
    return f"{otp.token():0{device.digits}d}"


def test_a_valid_witness_signature_is_stored_with_name_time_and_meaning(lg: Ledger) -> None:
    entry = waste(lg, attest(lg.user("prescriber")))
    assert entry.witness_id == lg.user("prescriber").pk
    assert entry.witness_name == lg.user("prescriber").signature_name
    assert abs(entry.witness_signed_at - clock.now()) < timedelta(seconds=5)
    assert entry.witness_meaning == "witnessed_waste"
    assert entry.signatures[0][2] == "I witnessed this waste being destroyed"


def test_self_witnessing_is_refused(lg: Ledger) -> None:
    errors = refused(lg, attest(lg.user("nurse")))
    assert errors["witness"] == ["You cannot witness your own entry; ask a colleague."]


@pytest.mark.parametrize("persona", ["front_desk", "auditor", "patient", "other_clinic_nurse"])
def test_people_without_a_witnessing_role_at_the_clinic_cannot_sign(lg: Ledger, persona) -> None:
    errors = refused(lg, attest(lg.user(persona)))
    assert "cannot witness entries at this clinic" in errors["witness"][0]


def test_an_inactive_account_cannot_sign(lg: Ledger) -> None:
    user = lg.user("prescriber")
    user.is_active = False
    user.save()
    assert "cannot witness" in refused(lg, attest(user))["witness"][0]


def test_a_wrong_password_is_refused_and_audited(lg: Ledger) -> None:
    errors = refused(lg, attest(lg.user("prescriber"), password="not the password"))
    assert errors == {"witness_password": ["The witness password is incorrect."]}
    failure = AuditEvent.objects.get(action="login_failed")
    assert failure.username == lg.user("prescriber").username
    assert failure.object_type == "controlled_substances.witness"
    assert failure.clinic_id == lg.clinic.pk


def test_a_stale_attestation_is_refused(lg: Ledger) -> None:
    typed_earlier = clock.now() - timedelta(minutes=6)
    errors = refused(lg, attest(lg.user("prescriber"), presented_at=typed_earlier))
    assert "expired" in errors["witness"][0]
    from_the_future = clock.now() + timedelta(minutes=5)
    assert (
        "expired"
        in refused(lg, attest(lg.user("prescriber"), presented_at=from_the_future))["witness"][0]
    )
    fresh = clock.now() - timedelta(minutes=4)
    assert waste(lg, attest(lg.user("prescriber"), presented_at=fresh)).witness_id


def test_an_enrolled_witness_must_give_a_current_code(lg: Ledger, time_machine) -> None:
    witness = lg.user("prescriber")
    device = TOTPDevice.objects.create(user=witness, name="phone", confirmed=True)
    errors = refused(lg, attest(witness))
    assert "enter their current code" in errors["witness_otp"][0]
    errors = refused(lg, attest(witness, otp=totp_code(device, offset_steps=20)))
    assert errors["witness_otp"] == ["That code did not match the witness's authenticator."]
    assert AuditEvent.objects.filter(action="mfa_failed", username=witness.username).count() == 1
    errors = refused(lg, attest(witness, otp=totp_code(device)))  # django-otp throttles retries
    assert "wait a few seconds" in errors["witness_otp"][0]
    time_machine.move_to(clock.now() + timedelta(seconds=3))
    entry = waste(lg, attest(witness, otp=totp_code(device)))
    assert entry.witness_id == witness.pk


def test_repeated_failures_lock_witnessing_for_that_account(lg: Ledger, settings) -> None:
    witness = lg.user("prescriber")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        refused(lg, attest(witness, password="guess"))
    errors = refused(lg, attest(witness))  # even the right password now
    assert "locked" in errors["witness"][0]
    other = waste(lg, attest(lg.user("clinic_admin")))  # other witnesses are unaffected
    assert other.witness_id == lg.user("clinic_admin").pk


def test_a_count_needs_an_independent_second_counter(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    with pytest.raises(ValidationError) as exc:
        services.count_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.safe,
            purpose="shift",
            lines=[services.CountLineInput(lot, 1)],
            second_counter=attest(lg.user("nurse")),
        )
    assert "own entry" in exc.value.message_dict["second_counter"][0]
    with pytest.raises(ValidationError) as exc:
        services.count_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.safe,
            purpose="shift",
            lines=[services.CountLineInput(lot, 1)],
            second_counter=None,
        )
    assert "second_counter" in exc.value.message_dict
