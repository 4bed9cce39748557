"""The demo clinic has months of score trajectories (responders, late responders,
non-responders, relapses after response), check-ins, alerts of each kind and a portal patient
with questionnaires due; re-running the seed adds nothing."""

from __future__ import annotations

from typing import Any

from ketaclinic.demo.seed import PORTAL_PATIENT, seed_clinic
from ketaclinic.measures import selectors
from ketaclinic.measures.models import (
    Assignment,
    BoosterRecommendation,
    CheckIn,
    MeasurementEnrolment,
    Response,
    SafetyAlert,
)
from ketaclinic.patients.models import Patient


def test_the_demo_has_realistic_trajectories_alerts_and_a_portal_patient(db: Any) -> None:
    seed_clinic(patients=60, seed=7)
    assert MeasurementEnrolment.objects.count() >= 30
    assert Response.objects.count() > 600
    assert CheckIn.objects.count() > 100
    kinds = set(SafetyAlert.objects.values_list("kind", flat=True))
    assert kinds == {"phq9_item9", "cssrs", "urgent_checkin", "urgent_journal"}
    assert SafetyAlert.objects.filter(acknowledged_at__isnull=True).exists()
    assert SafetyAlert.objects.filter(acknowledged_at__isnull=False).exists()
    assert SafetyAlert.objects.filter(priority="immediate").exists()

    statuses, late = set(), 0
    for enrolment in MeasurementEnrolment.objects.select_related("patient__clinic"):
        outcomes = selectors.patient_outcomes(enrolment.patient)
        if outcomes.primary is not None and outcomes.primary.status:
            statuses.add(outcomes.primary.status)
        late += outcomes.late_responder
    assert {"remission", "response", "none"} <= statuses
    assert late >= 1

    # The portal patient's story: baseline, induction, response, relapse, booster recommended.
    me = Patient.objects.select_related("clinic").get(user__username=PORTAL_PATIENT)
    (phq,) = [t for t in selectors.patient_outcomes(me).trajectories if t.instrument == "phq9"]
    assert phq.baseline is not None and phq.first_response is not None
    assert phq.relapse_on is not None
    assert BoosterRecommendation.objects.filter(patient=me, resolved_at__isnull=True).exists()
    due = set(
        Assignment.objects.filter(patient=me, status="pending", respondent="patient").values_list(
            "instrument", flat=True
        )
    )
    assert {"phq9", "gad7"} <= due

    before = (Response.objects.count(), SafetyAlert.objects.count(), CheckIn.objects.count())
    seed_clinic(patients=60, seed=7)
    after = (Response.objects.count(), SafetyAlert.objects.count(), CheckIn.objects.count())
    assert after == before
