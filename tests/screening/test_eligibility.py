"""Eligibility from the intake records: every fact source, TRD computed from trials, decisions
re-run when facts change (a status change is kept and visible), and the prescriber override."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.audit.models import AuditEvent
from ketaclinic.screening import selectors, services
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.facts import gather_facts
from ketaclinic.screening.models import EligibilityDecision, EligibilityOverride
from tests.screening.builders import TODAY, screen

pytestmark = pytest.mark.usefixtures("frozen_now")


def refer(world, patient=None, treatment="esketamine_trd"):
    patient = patient or world.patient_a2
    return services.referral_create(
        actor=world.users["front_desk"],
        clinic_id=patient.clinic_id,
        patient=patient,
        data={
            "referral_source": "psychiatrist",
            "referred_on": TODAY,
            "intended_treatment": treatment,
        },
    )


def trial(world, patient, **overrides):
    data = {
        "drug_name": "sertraline",
        "dose_mg": Decimal("150"),
        "weeks": 8,
        "adequate": True,
        "outcome": "no_response",
        "current_episode": True,
    }
    data.update(overrides)
    return services.history_item_add(
        actor=world.users["nurse"], patient=patient, kind="antidepressant-trial", data=data
    )


def current(patient, treatment="esketamine_trd"):
    return selectors.eligibility_for(patient, treatment)


def test_treatment_resistance_is_computed_from_adequate_failed_trials_in_this_episode(world):
    patient = world.patient_a2
    refer(world)
    trial(world, patient)
    trial(world, patient, adequate=False)  # not an adequate trial
    trial(world, patient, current_episode=False)  # an earlier episode
    trial(world, patient, outcome="response")
    trial(world, patient, outcome="not_tolerated")
    view = current(patient)
    assert view.status == "needs_review"
    assert [r["code"] for r in view.decision.reasons] == ["fewer_than_two_failed_trials"]
    assert view.decision.facts["failed_antidepressant_trials"] == 1
    assert selectors.intake_summary(patient).treatment_resistant is False

    trial(world, patient, outcome="partial_response")
    view = current(patient)
    assert view.status == "eligible"
    assert view.changed_from == "needs_review"
    summary = selectors.intake_summary(patient)
    assert summary.failed_trials == 2 and summary.treatment_resistant is True
    assert len(view.decision.provenance["failed_antidepressant_trials"]) == 2


def test_removing_a_trial_entered_in_error_re_runs_and_keeps_the_status_change(world):
    patient = world.patient_a2
    refer(world)
    first = trial(world, patient)
    trial(world, patient)
    assert current(patient).status == "eligible"
    services.history_item_remove(
        actor=world.users["nurse"], item=first, kind="antidepressant-trial", reason="duplicate"
    )
    view = current(patient)
    assert view.status == "needs_review" and view.changed_from == "eligible"
    statuses = [d.status for d in reversed(view.history)]
    assert statuses == ["needs_review", "needs_review", "eligible", "needs_review"]
    assert view.decision.trigger == "antidepressant trial removed"


MEDICAL_FACTS = [
    ("aneurysmal_vascular_disease", "ineligible"),
    ("arteriovenous_malformation", "ineligible"),
    ("intracerebral_hemorrhage_history", "ineligible"),
    ("hypersensitivity_ketamine", "ineligible"),
    ("uncontrolled_hypertension", "needs_review"),
    ("cardiovascular_disease", "needs_review"),
    ("severe_hepatic_impairment", "needs_review"),
    ("raised_intracranial_pressure", "needs_review"),
    ("pregnant", "needs_review"),
    ("breastfeeding", "needs_review"),
]


@pytest.mark.parametrize(("field", "status"), MEDICAL_FACTS)
def test_each_medical_history_fact_reaches_the_decision(world, field, status):
    patient = world.patient_a2
    refer(world, treatment="iv_ketamine")
    services.medical_history_update(actor=world.users["nurse"], patient=patient, data={field: True})
    view = current(patient, "iv_ketamine")
    assert view.status == status
    assert [r["code"] for r in view.decision.reasons] == [field]
    reason = view.decision.reasons[0]
    assert reason["source"] and reason["message"]
    assert view.decision.provenance[field][0].startswith("Medical history:")


@pytest.mark.parametrize(
    ("name", "flags", "code"),
    [
        ("lorazepam", {}, "cns_depressant"),  # known benzodiazepine
        ("oxycodone", {}, "cns_depressant"),  # known opioid
        ("zolpidem", {}, "cns_depressant"),
        ("phenelzine", {}, "maoi"),
        ("methylphenidate", {}, "psychostimulant"),
        ("armodafinil", {}, "psychostimulant"),
        ("Compounded capsule", {"is_maoi": True}, "maoi"),  # flagged by the clinician
    ],
)
def test_interacting_medications_are_flagged_and_feed_the_facts(world, name, flags, code):
    patient = world.patient_a2
    refer(world, treatment="iv_ketamine")
    medication = services.history_item_add(
        actor=world.users["nurse"],
        patient=patient,
        kind="medication",
        data={"name": name, **flags},
    )
    assert medication.class_labels
    assert [r["code"] for r in current(patient, "iv_ketamine").decision.reasons] == [code]


def test_a_stopped_medication_no_longer_counts(world):
    patient = world.patient_a2
    refer(world, treatment="iv_ketamine")
    medication = services.history_item_add(
        actor=world.users["nurse"], patient=patient, kind="medication", data={"name": "alprazolam"}
    )
    assert medication.is_benzodiazepine
    assert current(patient, "iv_ketamine").status == "needs_review"
    services.history_item_update(
        actor=world.users["nurse"],
        item=medication,
        kind="medication",
        data={"name": "alprazolam", "is_benzodiazepine": True, "stopped_on": TODAY},
    )
    assert current(patient, "iv_ketamine").status == "eligible"


def test_diagnoses_allergies_and_substance_use_feed_their_facts(world):
    patient = world.patient_a2
    refer(world, treatment="iv_ketamine")
    nurse = world.users["nurse"]
    services.history_item_add(
        actor=nurse, patient=patient, kind="diagnosis", data={"icd10_code": "F33.3"}
    )
    services.history_item_add(
        actor=nurse, patient=patient, kind="diagnosis", data={"icd10_code": "F10.21"}
    )
    codes = [r["code"] for r in current(patient, "iv_ketamine").decision.reasons]
    assert codes == ["psychosis_history", "substance_use_disorder"]
    services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="allergy",
        data={"substance": "Esketamine", "reaction": "rash"},
    )
    view = current(patient, "iv_ketamine")
    assert view.status == "ineligible"
    assert "Allergy: Esketamine" in view.decision.provenance["hypersensitivity_ketamine"]


def test_substance_use_disorder_and_psychosis_from_their_own_records(world):
    patient = world.patient_a2
    nurse = world.users["nurse"]
    refer(world, treatment="iv_ketamine")
    services.history_item_add(
        actor=nurse,
        patient=patient,
        kind="substance-use",
        data={"substance": "cannabis", "pattern": "past", "use_disorder": True},
    )
    services.psychiatric_history_update(
        actor=nurse, patient=patient, data={"psychosis_history": True}
    )
    assert gather_facts(patient).facts["substance_use_disorder"] is True
    codes = [r["code"] for r in current(patient, "iv_ketamine").decision.reasons]
    assert codes == ["psychosis_history", "substance_use_disorder"]


def test_esketamine_mdsi_needs_an_oral_antidepressant(world):
    patient = world.patient_a2
    refer(world, treatment="esketamine_mdsi")
    assert [r["code"] for r in current(patient, "esketamine_mdsi").decision.reasons] == [
        "no_oral_antidepressant"
    ]
    services.history_item_add(
        actor=world.users["nurse"], patient=patient, kind="medication", data={"name": "sertraline"}
    )
    assert current(patient, "esketamine_mdsi").status == "eligible"


def test_a_decision_row_is_written_only_when_facts_or_outcome_change(world):
    patient = world.patient_a2
    refer(world, treatment="iv_ketamine")
    before = EligibilityDecision.objects.count()
    services.pdmp_check_record(
        actor=world.users["nurse"], patient=patient, data={"checked_on": TODAY}
    )
    services.history_item_add(
        actor=world.users["nurse"], patient=patient, kind="diagnosis", data={"icd10_code": "F32.2"}
    )
    assert EligibilityDecision.objects.count() == before  # neither changes a fact
    checked = services.eligibility_check(
        actor=world.users["prescriber"], patient=patient, treatment="iv_ketamine"
    )
    assert EligibilityDecision.objects.count() == before
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.detail) == (
        "read",
        "eligibility checked for iv_ketamine: eligible (unchanged)",
    )
    assert checked.status == "eligible"


def test_one_audit_row_per_write_reports_the_eligibility_change(world):
    patient = world.patient_a2
    refer(world)
    since = AuditEvent.objects.order_by("-seq").first().seq
    trial(world, patient)
    events = list(AuditEvent.objects.filter(seq__gt=since))
    assert len(events) == 1
    changes = events[0].changes
    assert changes["drug_name"] == {"old": None, "new": "sertraline"}
    assert changes["intake_status"]["new"] == "screening"
    assert changes["eligibility"]["esketamine_trd"]["new"] == "needs_review"
    assert events[0].patient_id == patient.pk and events[0].clinic_id == patient.clinic_id


# --- The override ---------------------------------------------------------------------------

REASON = "Lorazepam only at night, never on session days; sedation risk discussed with patient."


def needs_review(world):
    patient = world.patient_a2
    refer(world)
    screen(world.users["nurse"], patient, medications=[{"name": "lorazepam"}])
    assert current(patient).status == "needs_review"
    return patient


def test_only_a_prescriber_may_override(world):
    patient = needs_review(world)
    for persona in ("nurse", "front_desk", "clinic_admin", "auditor", "other_clinic_nurse"):
        with pytest.raises(PermissionDenied):
            services.eligibility_override_sign(
                actor=world.users[persona],
                patient=patient,
                treatment="esketamine_trd",
                reason=REASON,
            )
    assert not EligibilityOverride.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", "ok", "benefit > risk"])
def test_an_override_needs_a_written_reason(world, reason):
    patient = needs_review(world)
    with pytest.raises(ValidationError) as raised:
        services.eligibility_override_sign(
            actor=world.users["prescriber"],
            patient=patient,
            treatment="esketamine_trd",
            reason=reason,
        )
    assert "reason" in raised.value.message_dict
    assert not EligibilityOverride.objects.exists()


def test_a_signed_override_is_sealed_audited_and_covers_the_current_reasons(world):
    patient = needs_review(world)
    prescriber = world.users["prescriber"]
    since = AuditEvent.objects.order_by("-seq").first().seq
    override = services.eligibility_override_sign(
        actor=prescriber, patient=patient, treatment="esketamine_trd", reason=REASON
    )
    assert override.covered_reason_codes == ["cns_depressant"]
    assert override.signature == prescriber.signature_name
    payload = {
        "patient_id": patient.pk,
        "treatment": "esketamine_trd",
        "decision_id": override.decision_id,
        "reason_codes": ["cns_depressant"],
        "reason": REASON,
        "prescriber_id": prescriber.pk,
        "signed_at": override.signed_at.isoformat(),
    }
    assert override.content_hash == services.override_hash(payload)
    (event,) = AuditEvent.objects.filter(seq__gt=since)
    assert event.action == "create" and event.changes["reason"] == REASON
    view = current(patient)
    assert view.override == override and view.proceed_allowed
    assert selectors.active_override_for(patient.pk, "esketamine_trd") == override

    # A new warning is not covered by the old signature: the prescriber must sign again.
    services.medical_history_update(
        actor=world.users["nurse"],
        patient=patient,
        data={"no_known_allergies": True, "cardiovascular_disease": True},
    )
    view = current(patient)
    assert view.status == "needs_review" and view.override is None
    assert selectors.active_override_for(patient.pk, "esketamine_trd") is None


def test_ineligible_cannot_be_overridden_and_eligible_needs_no_override(world):
    patient = world.patient_a2
    refer(world)
    screen(world.users["nurse"], patient)
    with pytest.raises(ValidationError, match="no override is needed"):
        services.eligibility_override_sign(
            actor=world.users["prescriber"],
            patient=patient,
            treatment="esketamine_trd",
            reason=REASON,
        )
    services.medical_history_update(
        actor=world.users["nurse"],
        patient=patient,
        data={"no_known_allergies": True, "arteriovenous_malformation": True},
    )
    with pytest.raises(Blocked) as raised:
        services.eligibility_override_sign(
            actor=world.users["prescriber"],
            patient=patient,
            treatment="esketamine_trd",
            reason=REASON,
        )
    assert [r.code for r in raised.value.reasons] == ["arteriovenous_malformation"]
    assert not EligibilityOverride.objects.exists()


def test_age_comes_from_the_patient_record(world):
    patient = world.patient_a2
    patient.date_of_birth = TODAY - timedelta(days=365 * 17)
    patient.save()
    refer(world, treatment="iv_ketamine")
    assert [r["code"] for r in current(patient, "iv_ketamine").decision.reasons] == [
        "age_under_minimum"
    ]
