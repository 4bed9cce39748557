"""/api/v1/screening: referrals, intake history, baseline scores, eligibility with its reasons,
the prescriber's override, consent, REMS enrolment and the ride home.

The same services as the pages (permission, validation, audit in one transaction). A rule that
stops an action answers 409 with every reason and its source.
"""

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import Field

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.core.validation import error_map
from ketaclinic.patients.models import Patient
from ketaclinic.screening import schemas as s
from ketaclinic.screening import selectors, services
from ketaclinic.screening.errors import Blocked
from ketaclinic.screening.models import HistoryItem, Intake, SignedConsent

router = Router()


def blocked_response(exc: Blocked) -> Status[Any]:
    return Status(
        409,
        {
            "detail": exc.summary,
            "errors": error_map(exc),
            "reasons": [r.as_dict() for r in exc.reasons],
        },
    )


def _read(request: HttpRequest, patient: Patient, detail: str) -> None:
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail=f"api {detail}",
    )


# --- Output builders ------------------------------------------------------------------------


def item_out(kind: str, item: HistoryItem) -> dict[str, Any]:
    spec = services.ITEM_KINDS[kind]
    return {
        "kind": kind,
        "id": item.pk,
        "patient_id": item.patient_id,
        "entered_in_error": item.entered_in_error,
        "removed_reason": item.removed_reason,
        "fields": {name: getattr(item, name) for name in spec.fields},
    }


def eligibility_out(view: selectors.EligibilityView, gaps: list[str]) -> dict[str, Any]:
    return {
        "treatment": view.treatment,
        "title": view.title,
        "status": view.status,
        "changed_from": view.changed_from,
        "proceed_allowed": view.proceed_allowed,
        "decision": view.decision,
        "override": view.override,
        "history": view.history,
        "screening_gaps": gaps,
    }


def consent_out(consent: SignedConsent) -> dict[str, Any]:
    return {
        "id": consent.pk,
        "kind": consent.kind,
        "version": consent.consent_text.version,
        "text_sha256": consent.text_sha256,
        "patient_signature": consent.patient_signature,
        "patient_signed_on": consent.patient_signed_on,
        "clinician_signature": consent.clinician_signature,
        "clinician_signed_at": consent.clinician_signed_at,
        "withdrawn_at": consent.withdrawn_at,
        "withdrawn_reason": consent.withdrawn_reason,
    }


def summary_out(summary: selectors.IntakeSummary) -> dict[str, Any]:
    gaps = [g.message for g in summary.required_gaps]
    history = []
    for kind, rows in (
        ("diagnosis", summary.diagnoses),
        ("antidepressant-trial", summary.trials),
        ("other-treatment", summary.other_treatments),
        ("medication", summary.medications),
        ("allergy", summary.allergies),
        ("substance-use", summary.substance_use),
    ):
        history += [item_out(kind, row) for row in rows]
    return {
        "patient_id": summary.patient.pk,
        "intake": summary.intake,
        "failed_antidepressant_trials": summary.failed_trials,
        "treatment_resistant": summary.treatment_resistant,
        "history": history,
        "psychiatric_history": {
            name: getattr(summary.psychiatric, name) for name in services.PSYCHIATRIC_FIELDS
        }
        if summary.psychiatric
        else None,
        "medical_history": {
            name: getattr(summary.medical, name) for name in services.MEDICAL_FIELDS
        }
        if summary.medical
        else None,
        "pdmp_checks": summary.pdmp_checks,
        "vitals": summary.vitals,
        "measures": summary.measures,
        "eligibility": [eligibility_out(v, gaps) for v in summary.eligibility],
        "consents": [consent_out(c) for c in summary.consents],
        "rems_enrolment": {
            "enrolment_id": summary.rems.enrolment_id,
            "enrolled_on": summary.rems.enrolled_on,
            "clinic_certified": summary.patient.clinic.rems_certified,
        }
        if summary.rems
        else None,
        "transport_plan": summary.transport,
        "screening_gaps": [g.message for g in summary.gaps],
        "suicide_risk_flags": summary.suicide_risk_flags,
    }


# --- Referrals ------------------------------------------------------------------------------


class ReferralFilters(s.Schema):
    status: str = Field("open", description="open, all, or an intake status")
    clinic_id: int | None = None


@router.get("/referrals", response=list[s.IntakeOut], summary="The referral queue")
@paginate(LimitOffsetPagination)
def list_referrals(request: HttpRequest, filters: Query[ReferralFilters]):  # type: ignore[no-untyped-def]
    access.require(request.user, "referral.manage")
    record_event(
        action=Action.LIST,
        user=request.user,
        object_type="screening.intake",
        detail=f"api referral queue; status={filters.status}"[:500],
    )
    return selectors.referral_queue(
        request.user, status=filters.status, clinic_id=filters.clinic_id
    )


@router.post("/referrals", response={201: s.IntakeOut}, summary="Register a referral")
def create_referral(request: HttpRequest, payload: s.ReferralIn) -> Status[Intake]:
    data = payload.model_dump(exclude={"clinic_id", "patient_id", "patient"})
    patient = None
    if payload.patient_id is not None:
        patient = access.get_patient(request.user, payload.patient_id, "referral.manage")
    intake = services.referral_create(
        actor=request.user,
        clinic_id=payload.clinic_id,
        data=data,
        patient=patient,
        patient_data=payload.patient.model_dump() if payload.patient else None,
    )
    return Status(201, intake)


@router.get("/intakes/{intake_id}", response=s.IntakeOut, summary="One referral")
def get_intake(request: HttpRequest, intake_id: int) -> Intake:
    intake = selectors.get_intake(request.user, intake_id)
    _read(request, intake.patient, f"referral {intake.pk}")
    return intake


@router.patch("/intakes/{intake_id}", response=s.IntakeOut, summary="Update a referral")
def update_intake(request: HttpRequest, intake_id: int, payload: s.IntakePatch) -> Intake:
    intake = selectors.get_intake(request.user, intake_id)
    return services.intake_update(
        actor=request.user, intake=intake, data=payload.model_dump(exclude_unset=True)
    )


@router.post("/intakes/{intake_id}/status", response=s.IntakeOut, summary="Change referral status")
def change_intake_status(request: HttpRequest, intake_id: int, payload: s.IntakeStatusIn) -> Intake:
    intake = selectors.get_intake(request.user, intake_id)
    return services.intake_change_status(
        actor=request.user, intake=intake, status=payload.status, reason=payload.reason
    )


# --- Intake summary and history -------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/intake",
    response=s.IntakeSummaryOut,
    summary="Everything recorded at intake",
)
def get_intake_summary(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    _read(request, patient, "intake summary")
    return summary_out(selectors.intake_summary(patient))


@router.put(
    "/patients/{patient_id}/psychiatric-history",
    response=dict[str, Any],
    summary="Record the psychiatric history",
)
def put_psychiatric(
    request: HttpRequest, patient_id: int, payload: s.PsychiatricIn
) -> dict[str, Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    record = services.psychiatric_history_update(
        actor=request.user, patient=patient, data=payload.model_dump()
    )
    return {name: getattr(record, name) for name in services.PSYCHIATRIC_FIELDS}


@router.put(
    "/patients/{patient_id}/medical-history",
    response=dict[str, Any],
    summary="Record the medical history (feeds every eligibility fact)",
)
def put_medical(request: HttpRequest, patient_id: int, payload: s.MedicalIn) -> dict[str, Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    record = services.medical_history_update(
        actor=request.user, patient=patient, data=payload.model_dump()
    )
    return {name: getattr(record, name) for name in services.MEDICAL_FIELDS}


# URL segment of each history list.
ITEM_PATHS = {
    "diagnosis": "diagnoses",
    "antidepressant-trial": "antidepressant-trials",
    "other-treatment": "other-treatments",
    "medication": "medications",
    "allergy": "allergies",
    "substance-use": "substance-use",
}


def _add_item_operation(kind: str, schema: type[s.In]) -> None:
    name = kind.replace("-", "_")
    segment = ITEM_PATHS[kind]
    title = services.ITEM_KINDS[kind].title.lower()

    def add(request: HttpRequest, patient_id: int, payload: Any) -> Status[Any]:
        patient = access.get_patient(request.user, patient_id, "intake.view")
        item = services.history_item_add(
            actor=request.user, patient=patient, kind=kind, data=payload.model_dump()
        )
        return Status(201, item_out(kind, item))

    def update(request: HttpRequest, item_id: int, payload: Any) -> dict[str, Any]:
        item = selectors.get_scoped(
            request.user, services.ITEM_KINDS[kind].model, item_id, "intake.edit"
        )
        updated = services.history_item_update(
            actor=request.user, item=item, kind=kind, data=payload.model_dump()
        )
        return item_out(kind, updated)

    def remove(request: HttpRequest, item_id: int, payload: s.RemoveIn) -> dict[str, Any]:
        item = selectors.get_scoped(
            request.user, services.ITEM_KINDS[kind].model, item_id, "intake.edit"
        )
        removed = services.history_item_remove(
            actor=request.user, item=item, kind=kind, reason=payload.reason
        )
        return item_out(kind, removed)

    add.__annotations__["payload"] = schema
    update.__annotations__["payload"] = schema
    router.add_api_operation(
        f"/patients/{{patient_id}}/{segment}",
        ["POST"],
        add,
        response={201: s.ItemOut},
        summary=f"Add a {title}",
        operation_id=f"screening_add_{name}",
    )
    router.add_api_operation(
        f"/{segment}/{{item_id}}",
        ["PUT"],
        update,
        response=s.ItemOut,
        summary=f"Replace a {title}",
        operation_id=f"screening_update_{name}",
    )
    router.add_api_operation(
        f"/{segment}/{{item_id}}/remove",
        ["POST"],
        remove,
        response=s.ItemOut,
        summary=f"Mark a {title} entered in error",
        operation_id=f"screening_remove_{name}",
    )


for _kind, _schema in s.ITEM_SCHEMAS.items():
    _add_item_operation(_kind, _schema)


@router.post(
    "/patients/{patient_id}/pdmp-checks", response={201: s.PdmpOut}, summary="Record a PDMP check"
)
def add_pdmp(request: HttpRequest, patient_id: int, payload: s.PdmpIn) -> Status[Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    return Status(
        201,
        services.pdmp_check_record(actor=request.user, patient=patient, data=payload.model_dump()),
    )


@router.post(
    "/patients/{patient_id}/vitals", response={201: s.VitalsOut}, summary="Record baseline vitals"
)
def add_vitals(request: HttpRequest, patient_id: int, payload: s.VitalsIn) -> Status[Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    vitals = services.baseline_vitals_record(
        actor=request.user, patient=patient, data=payload.model_dump()
    )
    return Status(201, vitals)


@router.post(
    "/patients/{patient_id}/baseline-measures",
    response={201: s.MeasureOut},
    summary="Score and keep a baseline questionnaire",
)
def add_measure(request: HttpRequest, patient_id: int, payload: s.MeasureIn) -> Status[Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    measure = services.baseline_measure_record(
        actor=request.user,
        patient=patient,
        instrument=payload.instrument,
        answers=payload.answers,
        administered_on=payload.administered_on,
    )
    return Status(201, measure)


# --- Eligibility ----------------------------------------------------------------------------


class TreatmentQuery(s.Schema):
    treatment: s.Treatment | None = Field(
        None, description="Default: the treatment of the open referral, else esketamine_trd"
    )


@router.get(
    "/patients/{patient_id}/eligibility",
    response=s.EligibilityOut,
    summary="Current eligibility for a treatment, with reasons, sources and override",
)
def get_eligibility(
    request: HttpRequest, patient_id: int, query: Query[TreatmentQuery]
) -> dict[str, Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    intake = services.open_intake(patient)
    treatment = query.treatment or (intake and intake.intended_treatment) or "esketamine_trd"
    _read(request, patient, f"eligibility {treatment}")
    gaps = [g.message for g in services.screening_gaps(patient) if g.required]
    return eligibility_out(selectors.eligibility_for(patient, treatment), gaps)


@router.post(
    "/patients/{patient_id}/eligibility/check",
    response=s.EligibilityOut,
    summary="Assess eligibility now (kept when it changed)",
)
def check_eligibility(request: HttpRequest, patient_id: int, payload: s.CheckIn) -> dict[str, Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    services.eligibility_check(actor=request.user, patient=patient, treatment=payload.treatment)
    gaps = [g.message for g in services.screening_gaps(patient) if g.required]
    return eligibility_out(selectors.eligibility_for(patient, payload.treatment), gaps)


@router.post(
    "/patients/{patient_id}/eligibility/override",
    response={201: s.OverrideOut, 409: s.BlockedOut},
    summary="Prescriber: proceed despite needs-review, with a written reason",
)
def sign_override(request: HttpRequest, patient_id: int, payload: s.OverrideIn) -> Status[Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    try:
        override = services.eligibility_override_sign(
            actor=request.user, patient=patient, treatment=payload.treatment, reason=payload.reason
        )
    except Blocked as exc:
        return blocked_response(exc)
    return Status(201, override)


# --- Consent, REMS, transport ---------------------------------------------------------------


@router.post(
    "/patients/{patient_id}/consents",
    response={201: s.ConsentOut},
    summary="Record a signed consent",
)
def sign_consent(request: HttpRequest, patient_id: int, payload: s.ConsentIn) -> Status[Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    consent = services.consent_sign(
        actor=request.user,
        patient=patient,
        kind=payload.kind,
        data={
            "patient_signature": payload.patient_signature,
            "patient_signed_on": payload.patient_signed_on,
        },
    )
    return Status(201, consent_out(consent))


@router.post("/consents/{consent_id}/withdraw", response=s.ConsentOut, summary="Withdraw a consent")
def withdraw_consent(
    request: HttpRequest, consent_id: int, payload: s.WithdrawIn
) -> dict[str, Any]:
    consent = selectors.get_scoped(request.user, SignedConsent, consent_id, "consent.record")
    withdrawn = services.consent_withdraw(
        actor=request.user, consent=consent, reason=payload.reason
    )
    return consent_out(SignedConsent.objects.select_related("consent_text").get(pk=withdrawn.pk))


@router.put(
    "/patients/{patient_id}/rems-enrolment",
    response=s.RemsOut,
    summary="Record REMS patient enrolment",
)
def put_rems(request: HttpRequest, patient_id: int, payload: s.RemsIn) -> dict[str, Any]:
    patient = access.get_patient(request.user, patient_id, "intake.view")
    record = services.rems_enrolment_record(
        actor=request.user, patient=patient, data=payload.model_dump()
    )
    return {
        "enrolment_id": record.enrolment_id,
        "enrolled_on": record.enrolled_on,
        "clinic_certified": patient.clinic.rems_certified,
    }


@router.put(
    "/patients/{patient_id}/transport-plan", response=s.TransportOut, summary="Record the ride home"
)
def put_transport(request: HttpRequest, patient_id: int, payload: s.TransportIn) -> Any:
    patient = access.get_patient(request.user, patient_id, "transport.record")
    return services.transport_plan_update(
        actor=request.user, patient=patient, data=payload.model_dump()
    )
