"""Dosing: the IV infusion computed from today's weight, the independent second-person check with
re-authentication before it starts, and esketamine devices no closer than 5 minutes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances.signatures import WitnessAttestation
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import EsketamineDevice, InfusionOrder
from tests.treatment_sessions.builders import force_state
from tests.treatment_sessions.test_pre_dose_gate import GOOD

pytestmark = pytest.mark.usefixtures("frozen_now")
PASSWORD = "correct horse battery staple"


def gate_passed(world, treatment="iv_ketamine", dose=35):
    session = services.session_create(
        actor=world.users["nurse"], patient=world.patient_a2, treatment=treatment,
        planned_dose_mg=dose,
    )  # fmt: skip
    session = force_state(world, session, SessionStatus.CHECKED_IN)
    services.session_record_pre_dose(actor=world.users["nurse"], session=session, data=GOOD)
    return force_state(world, session, SessionStatus.GATE_PASSED)


def order(world, session, **changes):
    values = {"dose_mg_per_kg": "0.5", "minutes": 40, "concentration_mg_per_ml": "1"}
    return services.session_order_infusion(
        actor=world.users["nurse"], session=session, **{**values, **changes}
    )


def checker(world, password=PASSWORD):
    user = world.users["prescriber"]
    user.set_password(PASSWORD)
    user.save()
    return WitnessAttestation(user=user, password=password)


def test_infusion_is_computed_from_todays_weight(world):
    session = gate_passed(world)
    placed = order(world, session)
    # 72.5 kg x 0.5 mg/kg = 36.3 mg (rounded) in 36.3 mL at 1 mg/mL over 40 min = 54.4 mL/h
    assert placed.dose_mg == Decimal("36.3") and placed.volume_ml == Decimal("36.3")
    assert placed.rate_ml_per_h == Decimal("54.4") and placed.weight_kg == Decimal("72.5")
    assert placed.vtbi_ml == placed.volume_ml
    assert AuditEvent.objects.filter(object_type="treatment_sessions.infusionorder").exists()


@pytest.mark.parametrize(
    "changes",
    [{"dose_mg_per_kg": "5"}, {"concentration_mg_per_ml": "50"}, {"minutes": "abc"},
     {"minutes": 0}, {"dose_mg_per_kg": "NaN"}],
)  # fmt: skip
def test_unsafe_orders_are_refused_and_nothing_written(world, changes):
    session = gate_passed(world)
    with pytest.raises(ValidationError):
        order(world, session, **changes)
    assert not InfusionOrder.objects.exists()


def test_infusion_needs_an_independent_second_check_with_reauthentication(world):
    session = gate_passed(world)
    order(world, session)
    with pytest.raises(ValidationError) as blocked:
        services.session_start_dosing(actor=world.users["nurse"], session=session)
    assert "second clinician" in str(blocked.value)
    with pytest.raises(ValidationError) as own:  # the orderer cannot check her own order
        services.session_second_check(
            actor=world.users["prescriber"], session=session,
            attestation=WitnessAttestation(user=world.users["nurse"], password="x"),
        )  # fmt: skip
    assert "checker" in own.value.message_dict
    with pytest.raises(ValidationError) as wrong:
        services.session_second_check(
            actor=world.users["nurse"], session=session, attestation=checker(world, "nope")
        )
    assert "checker_password" in wrong.value.message_dict
    checked = services.session_second_check(
        actor=world.users["nurse"], session=session, attestation=checker(world)
    )
    assert checked.checked_by == world.users["prescriber"] and checked.checked_at
    started = services.session_start_dosing(actor=world.users["nurse"], session=session)
    assert started.status == SessionStatus.DOSING


def test_a_new_order_needs_a_new_check(world):
    session = gate_passed(world)
    order(world, session)
    services.session_second_check(
        actor=world.users["nurse"], session=session, attestation=checker(world)
    )
    order(world, session, dose_mg_per_kg="0.6")
    with pytest.raises(ValidationError):
        services.session_start_dosing(actor=world.users["nurse"], session=session)


def test_esketamine_devices_are_five_minutes_apart_and_all_given_before_observation(lg, frozen_now):
    world = lg.world
    session = gate_passed(world, "esketamine_trd", dose=56)
    lot = lg.receive(lg.device, containers=2)
    services.session_record_administration(
        actor=world.users["nurse"], session=session, location=lg.safe, lot=lot, dose_mg=56
    )
    services.session_start_dosing(actor=world.users["nurse"], session=session)
    services.session_record_device(actor=world.users["nurse"], session=session)
    with pytest.raises(ValidationError) as early:
        services.session_record_device(actor=world.users["nurse"], session=session)
    assert "5 minutes" in str(early.value) and "12:05" in str(early.value)
    with pytest.raises(ValidationError) as partial:
        services.session_transition(
            actor=world.users["nurse"], session=session, to=SessionStatus.OBSERVING
        )
    assert "1 of 2 devices" in str(partial.value)
    frozen_now.shift(timedelta(minutes=5))
    second = services.session_record_device(actor=world.users["nurse"], session=session)
    assert second.number == 2
    with pytest.raises(ValidationError):
        services.session_record_device(actor=world.users["nurse"], session=session)
    assert EsketamineDevice.objects.count() == 2
    moved = services.session_transition(
        actor=world.users["nurse"], session=session, to=SessionStatus.OBSERVING
    )
    assert moved.status == SessionStatus.OBSERVING


def test_esketamine_needs_a_label_dose(world):
    session = gate_passed(world, "esketamine_trd", dose=40)
    with pytest.raises(ValidationError) as refused:
        services.session_start_dosing(actor=world.users["nurse"], session=session)
    assert "28, 56, 84" in str(refused.value)
