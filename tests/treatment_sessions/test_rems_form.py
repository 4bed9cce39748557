"""The REMS Patient Monitoring Form is filled from the session; an esketamine note cannot be
signed while a required field is missing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.rems import FORM_VERSION, rems_form, rems_missing
from tests.treatment_sessions.test_discharge_and_sign import ALL_CLEAR
from tests.treatment_sessions.test_dosing import gate_passed

pytestmark = pytest.mark.usefixtures("frozen_now")


def full_esketamine_session(lg, frozen_now, *, bp_at_40=True):
    world = lg.world
    nurse = world.users["nurse"]
    session = gate_passed(world, "esketamine_trd", dose=56)
    lot = lg.receive(lg.device, containers=2, lot_number="SPR-77")
    services.session_record_administration(
        actor=nurse, session=session, location=lg.safe, lot=lot, dose_mg=56
    )
    services.session_start_dosing(actor=nurse, session=session)
    services.session_record_device(actor=nurse, session=session)
    bp = {"systolic_mmhg": 128, "diastolic_mmhg": 80, "heart_rate_bpm": 76, "spo2_pct": 98}
    services.session_record_vitals(actor=nurse, session=session, data=bp)
    frozen_now.shift(timedelta(minutes=5))
    services.session_record_device(actor=nurse, session=session)
    services.session_transition(actor=nurse, session=session, to=SessionStatus.OBSERVING)
    frozen_now.shift(timedelta(minutes=35))
    if bp_at_40:
        services.session_record_vitals(
            actor=nurse, session=session, data={**bp, "systolic_mmhg": 150}
        )
    frozen_now.shift(timedelta(minutes=82))
    services.session_record_vitals(actor=nurse, session=session, data=bp)
    services.session_assess_discharge(actor=nurse, session=session, data=ALL_CLEAR)
    for step in (SessionStatus.READY_FOR_DISCHARGE, SessionStatus.DISCHARGED):
        session = services.session_transition(actor=nurse, session=session, to=step)
    return session


def test_complete_form_from_session_data_and_signing(lg, frozen_now):
    session = full_esketamine_session(lg, frozen_now)
    form = rems_form(session)
    assert form["form_version"] == FORM_VERSION
    assert form["dose_mg"] == 56 and form["lot_number"] == "SPR-77"
    assert form["bp_pre_dose"] == "128/78" and form["bp_40_min"] == "150/80"
    assert form["bp_before_completion"] == "128/80" and form["total_minutes"] == 122
    assert form["sedation"] is False and form["adverse_events"] == []
    assert rems_missing(session) == []
    # The workspace fills the form from the rows it read: the same form.
    assert rems_form(session, selectors.session_rows(session)) == form
    services.session_sign(actor=lg.world.users["prescriber"], session=session)
    session.refresh_from_db()
    assert session.status == SessionStatus.SIGNED


def test_missing_40_minute_bp_blocks_signing(lg, frozen_now):
    session = full_esketamine_session(lg, frozen_now, bp_at_40=False)
    assert rems_missing(session) == [
        "REMS form: the blood pressure at about 40 minutes is missing."
    ]
    # The workspace checks the form from the rows it read: the same answer.
    rows = selectors.session_rows(session)
    assert rems_missing(session, rows) == rems_missing(session)
    with pytest.raises(ValidationError) as blocked:
        services.session_sign(actor=lg.world.users["prescriber"], session=session)
    assert "40 minutes" in str(blocked.value)
    session.refresh_from_db()
    assert session.status == SessionStatus.DISCHARGED
