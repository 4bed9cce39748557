"""The demo clinic has completed IV and esketamine sessions (signed notes, realistic vitals with
the blood pressure peaking near 40 minutes, alerts, adverse events), one overdue REMS form and
some submitted, and patients in chairs now; the ledger still verifies and re-running adds
nothing."""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.models import User
from ketaclinic.controlled_substances import selectors as cs_selectors
from ketaclinic.controlled_substances.models import LedgerEntry
from ketaclinic.core import clock
from ketaclinic.demo.seed import seed_clinic
from ketaclinic.treatment_sessions import selectors
from ketaclinic.treatment_sessions.models import (
    AdverseEvent,
    RemsSubmission,
    TreatmentSession,
    VitalAlert,
)
from ketaclinic.treatment_sessions.rems import rems_missing
from ketaclinic.treatment_sessions.services import verify_signature


def test_demo_sessions(db: Any) -> None:
    seed_clinic(patients=40, seed=7)
    signed = list(TreatmentSession.objects.filter(status="signed").prefetch_related("vitals"))
    assert {s.treatment for s in signed} == {"iv_ketamine", "esketamine_trd"}
    assert len(signed) >= 20
    for session in signed:
        assert verify_signature(session), session
        readings = list(session.vitals.all())
        peak = max(readings, key=lambda r: r.systolic_mmhg)
        minutes = (peak.taken_at - session.dosing_started_at).total_seconds() / 60
        assert 30 <= minutes <= 55, (session, minutes)
        assert readings[-1].systolic_mmhg < peak.systolic_mmhg
    assert VitalAlert.objects.filter(acknowledged_by__isnull=False).exists()
    assert AdverseEvent.objects.exists()
    # Every dose came from the ledger, which still verifies.
    assert LedgerEntry.objects.filter(
        treatment_session_id__in=[s.pk for s in signed]
    ).count() >= len(signed)
    assert cs_selectors.verify_ledger().ok

    nurse = User.objects.get(username="nurse.ortiz")
    worklist = selectors.rems_worklist(nurse)
    assert len(worklist.overdue) == 1 and worklist.overdue[0].days_left < 0
    assert worklist.overdue[0].submission is None
    assert len(worklist.submitted) >= 3 and worklist.due
    for session in [*worklist.submitted, *worklist.overdue, *worklist.due]:
        if session.status == "signed":  # today's patients in chairs are still being monitored
            assert rems_missing(session) == []

    board = selectors.room_board(nurse, nurse.memberships.get().clinic_id, clock.now())
    phases = {s.session.status for c in board.chairs for s in c.sessions}
    assert {"checked_in", "dosing", "observing", "ready_for_discharge"} <= phases
    assert board.open_alerts >= 1
    assert all(c.chair is not None for c in board.chairs)

    before = (
        TreatmentSession.objects.count(), LedgerEntry.objects.count(),
        RemsSubmission.objects.count(),
    )  # fmt: skip
    seed_clinic(patients=40, seed=7)
    assert (
        TreatmentSession.objects.count(), LedgerEntry.objects.count(),
        RemsSubmission.objects.count(),
    ) == before  # fmt: skip
