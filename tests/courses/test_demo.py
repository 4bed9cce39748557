"""The demo seed puts patients at every stage, deterministically and idempotently."""

from __future__ import annotations

import pytest

from ketaclinic.courses.demo import demo_day
from ketaclinic.courses.models import Appointment, TreatmentCourse
from ketaclinic.courses.selectors import day_board
from ketaclinic.demo.seed import seed_clinic
from ketaclinic.screening import selectors
from ketaclinic.screening.models import EligibilityOverride, Intake

pytestmark = pytest.mark.usefixtures("frozen_now")


def test_demo_has_every_stage_and_running_it_again_changes_nothing(db):
    seed_clinic(patients=40, seed=7)
    counts = (
        Intake.objects.count(),
        TreatmentCourse.objects.count(),
        Appointment.objects.count(),
        EligibilityOverride.objects.count(),
    )
    seed_clinic(patients=40, seed=7)
    assert (
        Intake.objects.count(),
        TreatmentCourse.objects.count(),
        Appointment.objects.count(),
        EligibilityOverride.objects.count(),
    ) == counts
    intakes = {i.status for i in Intake.objects.all()}
    assert intakes == {"referred", "screening", "declined", "accepted"}
    statuses = {(c.protocol, c.status, c.phase) for c in TreatmentCourse.objects.all()}
    assert statuses == {
        ("esketamine_trd", "planned", "induction"),  # needs review, override signed (Boston)
        ("iv_ketamine_induction", "active", "induction"),
        ("esketamine_trd", "active", "maintenance"),
        ("iv_ketamine_induction", "completed", "induction"),
        # Denver is not REMS certified: the day board flags it.
    }
    declined = Intake.objects.get(status="declined")
    assert selectors.eligibility_for(declined.patient, "esketamine_trd").status == "ineligible"
    override = EligibilityOverride.objects.get()
    assert selectors.active_override_for(override.patient_id, "esketamine_trd") == override

    boston = override.patient.clinic
    board = day_board(boston, demo_day(boston))
    codes = {a.code for column in board.columns for row in column.rows for a in row.alerts}
    assert {"eligibility_override", "suicide_risk"} <= codes
    assert board.count == 3
