"""The session's dose is drawn from a lot through the controlled-substance ledger, the remainder
wasted with a witness in the same transaction; observation does not start before it is drawn."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.controlled_substances.models import LedgerEntry
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from tests.controlled_substances.conftest import attest
from tests.treatment_sessions.test_dosing import gate_passed, order

pytestmark = pytest.mark.usefixtures("frozen_now")


def checked_iv(lg):
    world = lg.world
    session = gate_passed(world)
    order(world, session)  # 36.3 mg
    services.session_second_check(
        actor=world.users["nurse"], session=session, attestation=attest(world.users["prescriber"])
    )
    return session


def test_iv_dose_and_witnessed_waste_in_one_flow(lg):
    world = lg.world
    session = checked_iv(lg)
    lot = lg.receive(lg.vial10, containers=1)  # 200 mg
    with pytest.raises(ValidationError) as wrong:
        services.session_record_administration(
            actor=world.users["nurse"], session=session, location=lg.safe, lot=lot, dose_mg=40
        )
    assert "36.3" in str(wrong.value)
    with pytest.raises(ValidationError):  # waste without a witness writes nothing
        services.session_record_administration(
            actor=world.users["nurse"], session=session, location=lg.safe, lot=lot,
            dose_mg="36.3", waste_mg="163.7",
        )  # fmt: skip
    assert not LedgerEntry.objects.filter(treatment_session_id=session.pk).exists()
    services.session_start_dosing(actor=world.users["nurse"], session=session)
    with pytest.raises(ValidationError) as not_drawn:
        services.session_transition(
            actor=world.users["nurse"], session=session, to=SessionStatus.OBSERVING
        )
    assert "dose drawn" in str(not_drawn.value)
    record = services.session_record_administration(
        actor=world.users["nurse"], session=session, location=lg.safe, lot=lot,
        dose_mg="36.3", waste_mg="163.7", witness=attest(world.users["prescriber"]),
    )  # fmt: skip
    assert record.waste is not None and record.dispensed_mg == 200
    assert record.administration.treatment_session_id == session.pk
    with pytest.raises(ValidationError):  # drawn once
        services.session_record_administration(
            actor=world.users["nurse"], session=session, location=lg.safe, lot=lot, dose_mg="36.3"
        )
    moved = services.session_transition(
        actor=world.users["nurse"], session=session, to=SessionStatus.OBSERVING
    )
    assert moved.status == SessionStatus.OBSERVING


def test_iv_dose_is_not_drawn_before_the_second_check(lg):
    world = lg.world
    session = gate_passed(world)
    order(world, session)
    lot = lg.receive(lg.vial10, containers=1)
    with pytest.raises(ValidationError) as refused:
        services.session_record_administration(
            actor=world.users["nurse"], session=session, location=lg.safe, lot=lot, dose_mg="36.3"
        )
    assert "checked" in str(refused.value)
