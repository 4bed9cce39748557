"""Cumulative exposure: mg and mg/kg per session from the ledger, rolling 28-day total,
sessions per 30 days and lifetime total per route."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ketaclinic.core import clock
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.selectors import cumulative_exposure
from tests.controlled_substances.conftest import attest
from tests.treatment_sessions.builders import force_state
from tests.treatment_sessions.test_dosing import gate_passed, order

pytestmark = pytest.mark.usefixtures("frozen_now")


def iv_session(lg):
    world = lg.world
    session = gate_passed(world)
    order(world, session)  # 36.3 mg for 72.5 kg
    services.session_second_check(
        actor=world.users["nurse"], session=session, attestation=attest(world.users["prescriber"])
    )
    lot = lg.receive(lg.vial10, containers=1, lot_number=f"L-{session.pk}")
    services.session_record_administration(
        actor=world.users["nurse"], session=session, location=lg.safe, lot=lot,
        dose_mg="36.3", waste_mg="163.7", witness=attest(world.users["prescriber"]),
    )  # fmt: skip
    session = force_state(world, session, SessionStatus.DOSING)
    return services.session_stop_early(
        actor=world.users["nurse"], session=session, reason="Patient asked to stop."
    )


def test_exposure_per_session_rolling_and_lifetime(lg, frozen_now):
    world = lg.world
    first = iv_session(lg)
    frozen_now.shift(timedelta(days=29))
    second = iv_session(lg)
    exposure = cumulative_exposure(world.patient_a2.pk, clock.now())
    assert [r.session_id for r in exposure.sessions] == [first.pk, second.pk]
    assert exposure.sessions[0].dose_mg == Decimal("36.3")
    assert exposure.sessions[0].dose_mg_per_kg == Decimal("0.50")
    assert exposure.rolling_28_day_mg == Decimal("36.3")  # the first is 29 days old
    assert exposure.sessions_last_30_days == 2
    assert exposure.lifetime_mg_by_route == {"iv": Decimal("72.6")}


def test_no_doses_no_exposure(world):
    exposure = cumulative_exposure(world.patient_a2.pk, clock.now())
    assert exposure.sessions == [] and exposure.rolling_28_day_mg == 0
    assert exposure.lifetime_mg_by_route == {}
