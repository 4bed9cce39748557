"""/api/v1/patients: the same scoping, validation and audit as the pages."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from ketaclinic.accounts import access
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.patients import selectors, services
from ketaclinic.patients.models import Patient
from ketaclinic.patients.schemas import PatientCreate, PatientFilters, PatientOut, PatientUpdate

router = Router()


@router.get("", response=list[PatientOut], summary="List and search patients")
@paginate(LimitOffsetPagination)
def list_patients(request: HttpRequest, filters: Query[PatientFilters]):  # type: ignore[no-untyped-def]
    access.require(request.user, "patient.view")
    query = selectors.PatientQuery(
        text=filters.q, dob=filters.date_of_birth, mrn=filters.mrn, clinic_id=filters.clinic_id
    )
    record_event(
        action=Action.LIST,
        user=request.user,
        object_type="patients.patient",
        detail=f"api patient list; {query.describe()}",
    )
    # PatientOut carries clinic_id only: skip the pages' join to the clinic and its 25 objects.
    return selectors.patient_search(request.user, query).select_related(None)


@router.post("", response={201: PatientOut}, summary="Register a patient")
def create_patient(request: HttpRequest, payload: PatientCreate) -> Status[Patient]:
    data = payload.model_dump(exclude={"clinic_id"}, exclude_unset=True)
    try:
        patient = services.patient_create(
            actor=request.user, clinic_id=payload.clinic_id, data=data
        )
    except ValidationError as exc:
        # The service names the page form's field; API clients sent `clinic_id`.
        if hasattr(exc, "error_dict") and "clinic" in exc.error_dict:
            exc.error_dict["clinic_id"] = exc.error_dict.pop("clinic")
        raise
    return Status(201, patient)


@router.get("/{patient_id}", response=PatientOut, summary="Get one patient")
def get_patient(request: HttpRequest, patient_id: int) -> Patient:
    patient = access.get_patient(request.user, patient_id)
    record_event(
        action=Action.READ,
        user=request.user,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail="api",
    )
    return patient


@router.patch("/{patient_id}", response=PatientOut, summary="Update a patient")
def update_patient(request: HttpRequest, patient_id: int, payload: PatientUpdate) -> Patient:
    patient = access.get_patient(request.user, patient_id, "patient.edit")
    return services.patient_update(
        actor=request.user, patient=patient, data=payload.model_dump(exclude_unset=True)
    )
