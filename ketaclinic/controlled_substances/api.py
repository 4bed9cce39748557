"""/api/v1/controlled-substances: the ledger's pages as JSON, with the same roles, rules and audit.

A permission held at no clinic answers 403; a clinic (or record) where the caller does not hold it
answers 404, like a missing one. Writes go through `services`; their ValidationErrors become 422
with field errors (config/api.py).
"""

from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from ketaclinic.accounts import access
from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.controlled_substances import reports, selectors, services
from ketaclinic.controlled_substances.models import (
    Count,
    Investigation,
    LedgerEntry,
    Lot,
    Product,
    StorageLocation,
)
from ketaclinic.controlled_substances.schemas import (
    AdjustmentIn,
    AdministrationIn,
    AdministrationOut,
    BalanceOut,
    ClassifyIn,
    CloseIn,
    CountIn,
    CountOut,
    DeadlineOut,
    DisposalIn,
    EntryFilters,
    EntryOut,
    Form106In,
    InvestigationIn,
    InvestigationOut,
    LocationIn,
    LocationOut,
    LossIn,
    LotOut,
    NoticeIn,
    ProductIn,
    ProductOut,
    ReceiptIn,
    ReportOut,
    ReversalIn,
    TransferIn,
    TransferOut,
    WasteIn,
    WitnessIn,
)
from ketaclinic.controlled_substances.signatures import WitnessAttestation

router = Router()


def _clinic(request: HttpRequest, permission: str, clinic_id: int) -> Clinic:
    access.require(request.user, permission)
    return access.require_clinic(request.user, permission, clinic_id)


def _witness(payload: WitnessIn | None, field: str = "witness") -> WitnessAttestation | None:
    if payload is None:
        return None
    user = User.objects.filter(pk=payload.user_id).first()
    if user is None:
        raise ValidationError({field: ["This person cannot witness entries at this clinic."]})
    return WitnessAttestation(user=user, password=payload.password, otp=payload.otp)


def _location(clinic: Clinic, location_id: int, field: str = "location_id") -> StorageLocation:
    location = StorageLocation.objects.filter(clinic=clinic, pk=location_id).first()
    if location is None:
        raise ValidationError({field: ["No storage location of this clinic has this id."]})
    return location


def _lot(lot_id: int) -> Lot:
    lot = Lot.objects.select_related("product").filter(pk=lot_id).first()
    if lot is None:
        raise ValidationError({"lot_id": ["No lot has this id."]})
    return lot


def _entry(clinic: Clinic, seq: int) -> LedgerEntry:
    entry = selectors.entry_for(clinic, seq)
    if entry is None:
        raise Http404
    return entry


def _investigation(clinic: Clinic, investigation_id: int | None) -> Investigation | None:
    if investigation_id is None:
        return None
    inv = Investigation.objects.filter(clinic=clinic, pk=investigation_id).first()
    if inv is None:
        raise ValidationError(
            {"investigation_id": ["No investigation of this clinic has this id."]}
        )
    return inv


def _entry_filter(filters: EntryFilters, *, with_kind: bool = True) -> selectors.EntryFilter:
    return selectors.EntryFilter(
        date_from=filters.date_from,
        date_to=filters.date_to,
        kind=(filters.kind or "") if with_kind else "",
        location_id=filters.location_id,
        product_id=filters.product_id,
        lot_id=filters.lot_id,
        patient_id=filters.patient_id,
    )


def _reload(entry: LedgerEntry) -> LedgerEntry:
    return LedgerEntry.objects.select_related(*selectors.ENTRY_RELATED, *selectors.ENTRY_LINKS).get(
        pk=entry.pk
    )


# --- catalogue ------------------------------------------------------------------------------


@router.get("/products", response=list[ProductOut], summary="List the product catalogue")
def list_products(request: HttpRequest) -> Any:
    access.require(request.user, "cs.view")
    return list(selectors.products(active_only=False))


@router.post("/products", response={201: ProductOut}, summary="Add a product (clinic admins)")
def create_product(request: HttpRequest, payload: ProductIn) -> Status[Any]:
    access.require(request.user, "cs.manage")
    return Status(201, services.product_create(actor=request.user, **payload.model_dump()))


@router.get(
    "/clinics/{clinic_id}/locations",
    response=list[LocationOut],
    summary="Storage locations of a clinic",
)
def list_locations(request: HttpRequest, clinic_id: int) -> Any:
    clinic = _clinic(request, "cs.view", clinic_id)
    return list(selectors.locations(clinic, active_only=False))


@router.post(
    "/clinics/{clinic_id}/locations", response={201: LocationOut}, summary="Add a storage location"
)
def create_location(request: HttpRequest, clinic_id: int, payload: LocationIn) -> Status[Any]:
    clinic = _clinic(request, "cs.manage", clinic_id)
    location = services.location_create(actor=request.user, clinic=clinic, **payload.model_dump())
    return Status(201, location)


@router.get("/clinics/{clinic_id}/lots", response=list[LotOut], summary="Lots a clinic has held")
def list_lots(request: HttpRequest, clinic_id: int) -> Any:
    clinic = _clinic(request, "cs.view", clinic_id)
    return list(selectors.lots_of_clinic(clinic))


# --- balances and entries -------------------------------------------------------------------


@router.get(
    "/clinics/{clinic_id}/balances",
    response=list[BalanceOut],
    summary="On hand per location and lot",
)
def list_balances(request: HttpRequest, clinic_id: int) -> Any:
    clinic = _clinic(request, "cs.view", clinic_id)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic=clinic,
        object_type="controlled_substances.balance",
        detail="api balances",
    )
    return [
        {
            "location_id": r.balance.location_id,
            "location": r.balance.location.name,
            "lot_id": r.balance.lot_id,
            "lot_number": r.balance.lot.lot_number,
            "expires_on": r.balance.lot.expires_on,
            "product_id": r.balance.lot.product_id,
            "ndc": r.balance.lot.product.ndc,
            "product": r.balance.lot.product.name,
            "quantity_mg": r.balance.quantity_mg,
            "full_containers": r.full_containers,
            "last_seq": r.balance.last_seq,
        }
        for r in selectors.balances(clinic)
    ]


@router.get(
    "/clinics/{clinic_id}/entries", response=list[EntryOut], summary="Ledger entries, newest first"
)
@paginate(LimitOffsetPagination)
def list_entries(request: HttpRequest, clinic_id: int, filters: Query[EntryFilters]) -> Any:
    clinic = _clinic(request, "cs.view", clinic_id)
    f = _entry_filter(filters)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.ledgerentry",
        detail=f"api ledger; {f.describe()}",
    )
    return selectors.entries(clinic, f)


@router.get("/clinics/{clinic_id}/entries/{seq}", response=EntryOut, summary="One ledger entry")
def get_entry(request: HttpRequest, clinic_id: int, seq: int) -> LedgerEntry:
    clinic = _clinic(request, "cs.view", clinic_id)
    entry = _entry(clinic, seq)
    record_event(
        action=Action.READ,
        user=request.user,
        clinic=clinic,
        patient_id=entry.patient_id,
        object_type="controlled_substances.ledgerentry",
        object_id=entry.seq,
        detail="api",
    )
    return entry


@router.post(
    "/clinics/{clinic_id}/entries/{seq}/reversal",
    response={201: list[EntryOut]},
    summary="Reverse an entry (a witnessed correction)",
)
def reverse_entry(
    request: HttpRequest, clinic_id: int, seq: int, payload: ReversalIn
) -> Status[Any]:
    clinic = _clinic(request, "cs.view", clinic_id)
    entry = _entry(clinic, seq)
    done = services.entry_reverse(
        actor=request.user, entry=entry, reason=payload.reason, witness=_witness(payload.witness)
    )
    return Status(201, [_reload(e) for e in done])


# --- recording ------------------------------------------------------------------------------


@router.post(
    "/clinics/{clinic_id}/receipts",
    response={201: EntryOut},
    summary="Receive containers on a supplier invoice",
)
def create_receipt(request: HttpRequest, clinic_id: int, payload: ReceiptIn) -> Status[Any]:
    clinic = _clinic(request, "cs.stock", clinic_id)
    product = Product.objects.filter(pk=payload.product_id).first()
    if product is None:
        raise ValidationError({"product_id": ["No product has this id."]})
    data = payload.model_dump(exclude={"location_id", "product_id", "witness"})
    entry = services.receipt_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        product=product,
        witness=_witness(payload.witness),
        **data,
    )
    return Status(201, _reload(entry))


@router.post(
    "/clinics/{clinic_id}/administrations",
    response={201: AdministrationOut},
    summary="Administer a dose and waste the remainder, in one transaction",
)
def create_administration(
    request: HttpRequest, clinic_id: int, payload: AdministrationIn
) -> Status[Any]:
    clinic = _clinic(request, "cs.record", clinic_id)
    patient = access.patients_for(request.user).filter(clinic=clinic, pk=payload.patient_id).first()
    if patient is None:
        raise ValidationError({"patient_id": ["No patient of this clinic has this id."]})
    record = services.administration_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        lot=_lot(payload.lot_id),
        patient=patient,
        dose_mg=payload.dose_mg,
        waste_mg=payload.waste_mg,
        witness=_witness(payload.witness),
        session_id=payload.session_id,
        occurred_at=payload.occurred_at,
        note=payload.note,
    )
    return Status(
        201,
        {
            "administration": _reload(record.administration),
            "waste": _reload(record.waste) if record.waste else None,
            "dispensed_mg": record.dispensed_mg,
        },
    )


@router.post(
    "/clinics/{clinic_id}/wastes",
    response={201: EntryOut},
    summary="Record witnessed waste not tied to a dose",
)
def create_waste(request: HttpRequest, clinic_id: int, payload: WasteIn) -> Status[Any]:
    clinic = _clinic(request, "cs.record", clinic_id)
    entry = services.waste_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        lot=_lot(payload.lot_id),
        waste_mg=payload.waste_mg,
        reason=payload.reason,
        witness=_witness(payload.witness),
    )
    return Status(201, _reload(entry))


@router.post(
    "/clinics/{clinic_id}/transfers",
    response={201: TransferOut},
    summary="Move stock between locations (both sides recorded)",
)
def create_transfer(request: HttpRequest, clinic_id: int, payload: TransferIn) -> Status[Any]:
    clinic = _clinic(request, "cs.stock", clinic_id)
    target = (
        StorageLocation.objects.select_related("clinic")
        .filter(
            pk=payload.to_location_id, clinic_id__in=access.clinic_ids_for(request.user, "cs.stock")
        )
        .first()
    )
    if target is None:
        raise ValidationError(
            {"to_location_id": ["No storage location you can stock has this id."]}
        )
    out, incoming = services.transfer_record(
        actor=request.user,
        clinic=clinic,
        from_location=_location(clinic, payload.from_location_id, "from_location_id"),
        to_location=target,
        lot=_lot(payload.lot_id),
        quantity_mg=payload.quantity_mg,
        reason=payload.reason,
        witness=_witness(payload.witness),
    )
    return Status(201, {"transfer_out": _reload(out), "transfer_in": _reload(incoming)})


@router.post(
    "/clinics/{clinic_id}/disposals",
    response={201: EntryOut},
    summary="Dispose of stock: reverse distributor or on-site destruction (Form 41)",
)
def create_disposal(request: HttpRequest, clinic_id: int, payload: DisposalIn) -> Status[Any]:
    clinic = _clinic(request, "cs.manage", clinic_id)
    data = payload.model_dump(exclude={"location_id", "lot_id", "witness", "second_witness"})
    entry = services.disposal_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        lot=_lot(payload.lot_id),
        witness=_witness(payload.witness),
        second_witness=_witness(payload.second_witness, "second_witness"),
        **data,
    )
    return Status(201, _reload(entry))


@router.post(
    "/clinics/{clinic_id}/adjustments",
    response={201: EntryOut},
    summary="Adjust a balance with the reason and a witness",
)
def create_adjustment(request: HttpRequest, clinic_id: int, payload: AdjustmentIn) -> Status[Any]:
    clinic = _clinic(request, "cs.manage", clinic_id)
    count = None
    if payload.count_id is not None:
        count = Count.objects.filter(clinic=clinic, pk=payload.count_id).first()
        if count is None:
            raise ValidationError({"count_id": ["No count of this clinic has this id."]})
    entry = services.adjustment_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        lot=_lot(payload.lot_id),
        quantity_mg=payload.quantity_mg,
        reason=payload.reason,
        witness=_witness(payload.witness),
        count=count,
        investigation=_investigation(clinic, payload.investigation_id),
    )
    return Status(201, _reload(entry))


@router.post(
    "/clinics/{clinic_id}/losses",
    response={201: EntryOut},
    summary="Record a theft or loss (starts the DEA clocks)",
)
def create_loss(request: HttpRequest, clinic_id: int, payload: LossIn) -> Status[Any]:
    clinic = _clinic(request, "cs.manage", clinic_id)
    entry = services.loss_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        lot=_lot(payload.lot_id),
        quantity_mg=payload.quantity_mg,
        kind=payload.kind,
        reason=payload.reason,
        witness=_witness(payload.witness),
        investigation=_investigation(clinic, payload.investigation_id),
    )
    return Status(201, _reload(entry))


# --- counts ---------------------------------------------------------------------------------


def _count_out(count: Count) -> Count:
    return Count.objects.prefetch_related("lines__lot", "investigations").get(pk=count.pk)


@router.get("/clinics/{clinic_id}/counts", response=list[CountOut], summary="Counts, newest first")
@paginate(LimitOffsetPagination)
def list_counts(request: HttpRequest, clinic_id: int) -> Any:
    clinic = _clinic(request, "cs.view", clinic_id)
    return selectors.counts(clinic).prefetch_related("lines__lot", "investigations")


@router.post(
    "/clinics/{clinic_id}/counts",
    response={201: CountOut},
    summary="Record a two-person count of a location",
)
def create_count(request: HttpRequest, clinic_id: int, payload: CountIn) -> Status[Any]:
    clinic = _clinic(request, "cs.stock", clinic_id)
    lines = []
    for index, line in enumerate(payload.lines):
        lot = Lot.objects.select_related("product").filter(pk=line.lot_id).first()
        if lot is None:
            raise ValidationError({f"lines.{index}": ["No lot has this id."]})
        lines.append(
            services.CountLineInput(
                lot=lot,
                full_containers=line.full_containers,
                open_ml=line.open_ml,
                open_is_estimate=line.open_is_estimate,
            )
        )
    count = services.count_record(
        actor=request.user,
        clinic=clinic,
        location=_location(clinic, payload.location_id),
        purpose=payload.purpose,
        business_time=payload.business_time,
        lines=lines,
        second_counter=_witness(payload.second_counter, "second_counter"),
        note=payload.note,
    )
    return Status(201, _count_out(count))


@router.get("/clinics/{clinic_id}/counts/{count_id}", response=CountOut, summary="One count")
def get_count(request: HttpRequest, clinic_id: int, count_id: int) -> Count:
    clinic = _clinic(request, "cs.view", clinic_id)
    count = selectors.count_for(clinic, count_id)
    if count is None:
        raise Http404
    return count


# --- investigations -------------------------------------------------------------------------


def _get_investigation(
    request: HttpRequest, clinic_id: int, investigation_id: int, permission: str
) -> Investigation:
    clinic = _clinic(request, permission, clinic_id)
    inv = selectors.investigation_for(clinic, investigation_id)
    if inv is None:
        raise Http404
    return inv


@router.get(
    "/clinics/{clinic_id}/investigations",
    response=list[InvestigationOut],
    summary="Discrepancy and loss investigations",
)
def list_investigations(request: HttpRequest, clinic_id: int, status: str = "") -> Any:
    clinic = _clinic(request, "cs.report", clinic_id)
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic=clinic,
        object_type="controlled_substances.investigation",
        detail="api investigations",
    )
    return list(
        selectors.investigations(clinic, status=status if status in {"open", "closed"} else "")
    )


@router.post(
    "/clinics/{clinic_id}/investigations",
    response={201: InvestigationOut},
    summary="Open an investigation",
)
def create_investigation(
    request: HttpRequest, clinic_id: int, payload: InvestigationIn
) -> Status[Any]:
    clinic = _clinic(request, "cs.manage", clinic_id)
    investigation = services.investigation_open(
        actor=request.user, clinic=clinic, **payload.model_dump()
    )
    return Status(201, investigation)


@router.get(
    "/clinics/{clinic_id}/investigations/{investigation_id}",
    response=InvestigationOut,
    summary="One investigation",
)
def get_investigation(request: HttpRequest, clinic_id: int, investigation_id: int) -> Any:
    inv = _get_investigation(request, clinic_id, investigation_id, "cs.report")
    record_event(
        action=Action.READ, user=request.user, clinic_id=inv.clinic_id, obj=inv, detail="api"
    )
    return inv


@router.post(
    "/clinics/{clinic_id}/investigations/{investigation_id}/classify",
    response=InvestigationOut,
    summary="Classify: theft, significant loss or minor",
)
def classify_investigation(
    request: HttpRequest, clinic_id: int, investigation_id: int, payload: ClassifyIn
) -> Any:
    inv = _get_investigation(request, clinic_id, investigation_id, "cs.manage")
    return services.investigation_classify(
        actor=request.user, investigation=inv, kind=payload.kind, note=payload.note
    )


@router.post(
    "/clinics/{clinic_id}/investigations/{investigation_id}/notice",
    response=InvestigationOut,
    summary="Record the DEA written notice as sent",
)
def investigation_notice(
    request: HttpRequest, clinic_id: int, investigation_id: int, payload: NoticeIn
) -> Any:
    inv = _get_investigation(request, clinic_id, investigation_id, "cs.manage")
    return services.investigation_notice_sent(
        actor=request.user, investigation=inv, sent_at=payload.sent_at
    )


@router.post(
    "/clinics/{clinic_id}/investigations/{investigation_id}/form-106",
    response=InvestigationOut,
    summary="Record DEA Form 106 as filed",
)
def investigation_form_106(
    request: HttpRequest, clinic_id: int, investigation_id: int, payload: Form106In
) -> Any:
    inv = _get_investigation(request, clinic_id, investigation_id, "cs.manage")
    return services.investigation_form_106_filed(
        actor=request.user,
        investigation=inv,
        reference=payload.reference,
        filed_at=payload.filed_at,
    )


@router.post(
    "/clinics/{clinic_id}/investigations/{investigation_id}/close",
    response=InvestigationOut,
    summary="Close with the resolution",
)
def close_investigation(
    request: HttpRequest, clinic_id: int, investigation_id: int, payload: CloseIn
) -> Any:
    inv = _get_investigation(request, clinic_id, investigation_id, "cs.manage")
    return services.investigation_close(
        actor=request.user, investigation=inv, resolution=payload.resolution
    )


@router.get(
    "/clinics/{clinic_id}/deadlines",
    response=list[DeadlineOut],
    summary="DEA deadlines overdue or due within 7 days",
)
def list_deadlines(request: HttpRequest, clinic_id: int) -> Any:
    clinic = _clinic(request, "cs.report", clinic_id)
    return [
        {
            "investigation_id": d.investigation.pk,
            "what": d.what,
            "due_on": d.due_on,
            "overdue": d.overdue,
            "days_left": d.days_left,
        }
        for d in selectors.deadlines([clinic.pk])
    ]


# --- reports --------------------------------------------------------------------------------


@router.get(
    "/clinics/{clinic_id}/reports/{report}",
    response=ReportOut,
    summary="A DEA record report as rows (audited as an export)",
)
def get_report(
    request: HttpRequest,
    clinic_id: int,
    report: str,
    filters: Query[EntryFilters],
    limit: int = 500,
    offset: int = 0,
) -> dict[str, Any]:
    clinic = _clinic(request, "cs.report", clinic_id)
    if report not in reports.REPORT_TITLES:
        raise Http404
    limit = max(1, min(limit, 5000))
    offset = max(0, offset)
    f = _entry_filter(filters, with_kind=False)
    record_event(
        action=Action.EXPORT,
        user=request.user,
        clinic=clinic,
        patient_id=f.patient_id,
        object_type="controlled_substances.report",
        detail=f"api report {report}; {f.describe()}",
    )
    tz = ZoneInfo(clinic.timezone)
    spec = reports.ENTRY_REPORTS.get(report)
    columns: tuple[reports.Column, ...]
    page: list[Any]
    if spec is None:
        rows = list(reports.inventory_rows(selectors.inventories(clinic, f)))
        columns = reports.INVENTORY_COLUMNS
        page, count, total = rows[offset : offset + limit], len(rows), None
    else:
        qs: Any = spec.rows(clinic, f)
        columns, count, total = spec.columns, qs.count(), spec.total_mg(qs)
        page = reports.complete(list(spec.values(qs)[offset : offset + limit]))
    return {
        "report": report,
        "title": reports.REPORT_TITLES[report],
        "columns": [c.header for c in columns],
        "rows": [[_json_cell(v) for v in reports.cells(columns, r, tz)] for r in page],
        "count": count,
        "total_mg": total,
    }


def _json_cell(value: Any) -> str | int | None:
    if value is None or isinstance(value, int | str):
        return value
    return str(value)
