"""Demo ledger: a catalogue, safes and carts, and three months of stock movements per clinic.

Called by `ketaclinic seed` (demo/seed.py). The content is deterministic for a seed (who, what,
how much, in which order); the dates end yesterday, so balances and DEA deadlines look current.
Re-running adds nothing: the history is written only for a clinic whose ledger is empty.

History is written through `ledger.post` (sequence, hash chain, running balances) rather than the
services: the services stamp entries with the current time and re-check each witness's password,
which costs most of a second per signature. Witness names, times and meanings are still stored,
and the chain verifies like any other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.controlled_substances import ledger
from ketaclinic.controlled_substances.choices import (
    BusinessTime,
    CountPurpose,
    DisposalMethod,
    EntryKind,
    InvestigationKind,
    LocationKind,
    ProductForm,
    SignatureMeaning,
    Substance,
)
from ketaclinic.controlled_substances.models import (
    Count,
    CountLine,
    Investigation,
    LedgerEntry,
    LedgerHead,
    Lot,
    Product,
    StorageLocation,
)
from ketaclinic.controlled_substances.quantities import ZERO, ml_from_mg, q3, remainder_mg
from ketaclinic.controlled_substances.services import dea_deadlines, patient_address
from ketaclinic.core import clock
from ketaclinic.patients.models import Patient

HISTORY_DAYS = 90

# Demo NDCs use labeler codes that are not assigned to real products.
CATALOGUE = (
    {"ndc": "70001-110-10", "name": "Ketamine HCl injection", "substance": Substance.KETAMINE,
     "form": ProductForm.VIAL, "mg_per_ml": Decimal("10"), "ml_per_container": Decimal("20"),
     "mg_per_container": Decimal("200"), "containers_per_package": 10},
    {"ndc": "70001-150-10", "name": "Ketamine HCl injection", "substance": Substance.KETAMINE,
     "form": ProductForm.VIAL, "mg_per_ml": Decimal("50"), "ml_per_container": Decimal("10"),
     "mg_per_container": Decimal("500"), "containers_per_package": 10},
    {"ndc": "70001-200-05", "name": "Ketamine HCl injection", "substance": Substance.KETAMINE,
     "form": ProductForm.VIAL, "mg_per_ml": Decimal("100"), "ml_per_container": Decimal("5"),
     "mg_per_container": Decimal("500"), "containers_per_package": 10},
    {"ndc": "70002-028-02", "name": "Esketamine nasal spray (Spravato) 56 mg kit",
     "substance": Substance.ESKETAMINE, "form": ProductForm.NASAL_DEVICE,
     "mg_per_container": Decimal("28"), "containers_per_package": 2},
    {"ndc": "70002-028-03", "name": "Esketamine nasal spray (Spravato) 84 mg kit",
     "substance": Substance.ESKETAMINE, "form": ProductForm.NASAL_DEVICE,
     "mg_per_container": Decimal("28"), "containers_per_package": 3},
)  # fmt: skip

SUPPLIER = {
    "counterparty_name": "Harborline Pharmaceutical Distribution, Inc.",
    "counterparty_address": "400 Commerce Way, Columbus, OH 43219",
    "counterparty_dea_number": "RH1234563",
}
REVERSE_DISTRIBUTOR = {
    "counterparty_name": "Returns Solutions Reverse Distribution LLC",
    "counterparty_address": "88 Industrial Pkwy, Indianapolis, IN 46241",
    "counterparty_dea_number": "RR7654329",
}

# Per clinic: (nurse, nurse or prescriber witness, administrator) and the chair load per weekday.
STAFF = {
    "boston": ("nurse.ortiz", "nurse.brooks", "dr.chen", "admin.patel"),
    "denver": ("nurse.lee", "dr.okafor", "dr.okafor", "admin.nguyen"),
}
CHAIRS = {"boston": (2, 4), "denver": (1, 2)}


@dataclass
class _Clinic:
    clinic: Clinic
    tz: ZoneInfo
    safe: StorageLocation
    cart: StorageLocation
    people: dict[str, User]
    patients: list[Patient]
    on_hand: dict[tuple[int, int], Decimal] = field(default_factory=dict)
    lots: dict[str, Lot] = field(default_factory=dict)
    entries: int = 0


def _products() -> dict[str, Product]:
    products = {}
    for spec in CATALOGUE:
        values = {k: v for k, v in spec.items() if k != "ndc"}
        product, _ = Product.objects.get_or_create(ndc=spec["ndc"], defaults=values)
        products[str(spec["ndc"])] = product
    return products


def _sign(
    entry: LedgerEntry, user: User, at: datetime, meaning: str, *, second: bool = False
) -> None:
    prefix = "second_witness" if second else "witness"
    setattr(entry, prefix, user)
    setattr(entry, f"{prefix}_name", user.signature_name)
    setattr(entry, f"{prefix}_signed_at", at)
    setattr(entry, f"{prefix}_meaning", meaning)


def _entry(
    c: _Clinic, kind: str, actor: User, location: StorageLocation, lot: Lot, mg: Decimal,
    at: datetime, **fields: Any,
) -> LedgerEntry:  # fmt: skip
    product = lot.product
    containers = mg / product.mg_per_container
    entry = LedgerEntry(
        kind=kind,
        actor=actor,
        actor_name=actor.signature_name,
        clinic=c.clinic,
        location=location,
        lot=lot,
        quantity_mg=q3(mg),
        occurred_at=at,
        volume_ml=ml_from_mg(mg, product.mg_per_ml) if product.mg_per_ml else None,
        units=int(containers) if containers == containers.to_integral_value() else None,
    )
    for name, value in fields.items():
        setattr(entry, name, value)
    return entry


def _post(c: _Clinic, drafts: list[LedgerEntry], at: datetime) -> None:
    ledger.post(drafts, at=at, audit=False)
    for d in drafts:
        key = (d.location_id, d.lot_id)
        c.on_hand[key] = c.on_hand.get(key, ZERO) + d.quantity_mg
    c.entries += len(drafts)


def _at(c: _Clinic, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=c.tz)


def _lot(c: _Clinic, product: Product, number: str, expires_on: date) -> Lot:
    lot, _ = Lot.objects.get_or_create(
        product=product, lot_number=number, defaults={"expires_on": expires_on}
    )
    c.lots[number] = lot
    return lot


def _receive(c: _Clinic, lot: Lot, containers: int, at: datetime, invoice: str) -> None:
    mg = containers * lot.product.mg_per_container
    entry = _entry(
        c,
        EntryKind.RECEIVE,
        c.people["admin"],
        c.safe,
        lot,
        mg,
        at,
        document_number=invoice,
        document_date=at.date(),
        **SUPPLIER,
    )
    _sign(entry, c.people["nurse"], at, SignatureMeaning.WITNESSED_RECEIPT)
    _post(c, [entry], at)


def _move(c: _Clinic, lot: Lot, containers: int, at: datetime) -> None:
    mg = containers * lot.product.mg_per_container
    out = _entry(
        c,
        EntryKind.TRANSFER_OUT,
        c.people["nurse"],
        c.safe,
        lot,
        -mg,
        at,
        reason="Stock for the day's chairs",
    )
    incoming = _entry(
        c,
        EntryKind.TRANSFER_IN,
        c.people["nurse"],
        c.cart,
        lot,
        mg,
        at,
        related_entry=out,
        reason="Stock for the day's chairs",
    )
    _post(c, [out, incoming], at)


def _count(
    c: _Clinic, location: StorageLocation, at: datetime, purpose: str, *,
    business_time: str = "", short_mg: dict[int, Decimal] | None = None,
) -> Count:  # fmt: skip
    head = LedgerHead.objects.get(pk=1) if LedgerHead.objects.filter(pk=1).exists() else None
    lines = []
    for (location_id, lot_id), mg in sorted(c.on_hand.items()):
        if location_id != location.pk or mg <= 0:
            continue
        lot = next(lot for lot in c.lots.values() if lot.pk == lot_id)
        counted = mg - (short_mg or {}).get(lot_id, ZERO)
        product = lot.product
        full = int(counted // product.mg_per_container)
        open_mg = counted - full * product.mg_per_container
        lines.append(
            CountLine(
                lot=lot,
                expected_mg=mg,
                counted_mg=q3(counted),
                full_containers=full,
                open_ml=ml_from_mg(open_mg, product.mg_per_ml) if product.mg_per_ml else ZERO,
                open_is_estimate=False,
            )
        )
    counters = (c.people["nurse"], c.people["witness"])
    count = Count(
        clinic=c.clinic,
        location=location,
        purpose=purpose,
        business_time=business_time,
        counted_at=at,
        ledger_seq=head.seq if head else 0,
        counted_by=counters[0],
        counted_by_name=counters[0].signature_name,
        second_counter=counters[1],
        second_counter_name=counters[1].signature_name,
        second_signed_at=at,
        has_discrepancy=any(line.counted_mg != line.expected_mg for line in lines),
    )
    count.content_hash = ledger.count_hash(count, lines)
    count.save(force_insert=True)
    for line in lines:
        line.count = count
    CountLine.objects.bulk_create(lines)
    return count


def _setup(clinic: Clinic, usernames: tuple[str, ...]) -> _Clinic | None:
    people = {u.username: u for u in User.objects.filter(username__in=usernames)}
    if len(people) < len(set(usernames)):
        return None
    safe, _ = StorageLocation.objects.get_or_create(
        clinic=clinic, name="Main safe", defaults={"kind": LocationKind.SAFE}
    )
    cart, _ = StorageLocation.objects.get_or_create(
        clinic=clinic, name="Treatment room cart", defaults={"kind": LocationKind.CART}
    )
    nurse, witness, prescriber, admin = usernames
    patients = list(
        Patient.objects.filter(clinic=clinic).exclude(address_line1="").order_by("mrn")[:60]
    )
    return _Clinic(
        clinic=clinic,
        tz=ZoneInfo(clinic.timezone),
        safe=safe,
        cart=cart,
        people={
            "nurse": people[nurse],
            "witness": people[witness],
            "prescriber": people[prescriber],
            "admin": people[admin],
        },
        patients=patients,
    )


def _stock(c: _Clinic, location: StorageLocation, product: Product) -> list[tuple[Lot, Decimal]]:
    """Lots of a product at a location with stock, soonest expiry first (FEFO)."""
    lots = [
        (lot, c.on_hand.get((location.pk, lot.pk), ZERO))
        for lot in c.lots.values()
        if lot.product_id == product.pk
    ]
    return sorted(((lot, mg) for lot, mg in lots if mg > 0), key=lambda p: p[0].expires_on)


def _containers(c: _Clinic, location: StorageLocation, product: Product) -> int:
    return int(
        sum((mg for _, mg in _stock(c, location, product)), ZERO) // product.mg_per_container
    )


def _top_up(c: _Clinic, lot: Lot, target: int, package: int, at: datetime, invoice: str) -> None:
    missing = target - _containers(c, c.safe, lot.product)
    if missing > 0:
        packages = -(-missing // package)
        _receive(c, lot, packages * package, at, invoice)


def _history(c: _Clinic, products: dict[str, Product], rng: random.Random) -> None:
    today = clock.today_in(c.clinic.timezone)
    start = today - timedelta(days=HISTORY_DAYS)
    code = c.clinic.slug[:3].upper()
    iv = products["70001-110-10"]
    im = products["70001-200-05"]
    spravato = products["70002-028-02"]
    # The initial inventory: taken before the first delivery, so it records zero (1304.11(b)).
    for location in (c.safe, c.cart):
        _count(
            c, location, _at(c, start, 8), CountPurpose.INITIAL, business_time=BusinessTime.OPENING
        )
    # A short-dated lot that expires during the demo period and is returned for destruction.
    old_lot = _lot(c, im, f"K100-{code}-OLD{rng.randint(100, 999)}", start + timedelta(days=30))
    _receive(c, old_lot, 2, _at(c, start, 9), f"INV-{code}-0001")
    disposed = False
    low, high = CHAIRS[c.clinic.slug]
    shortage_day = today - timedelta(days=1)
    while shortage_day.weekday() >= 5:
        shortage_day -= timedelta(days=1)
    deliveries = 0
    lots: dict[str, Lot] = {}
    for offset in range(HISTORY_DAYS):
        day = start + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        if day.weekday() == 0 or offset == 0:
            # Weekly delivery; a new manufacturer lot every four weeks.
            if deliveries % 4 == 0:
                stamp = f"{code}{day:%y%m%d}"
                lots = {
                    "iv": _lot(c, iv, f"K10-{stamp}", day + timedelta(days=540)),
                    "im": _lot(c, im, f"K100-{stamp}", day + timedelta(days=540)),
                    "spravato": _lot(c, spravato, f"SPR-{stamp}", day + timedelta(days=400)),
                }
            invoice = f"INV-{code}-{deliveries + 2:04d}"
            _top_up(c, lots["iv"], 30, iv.containers_per_package, _at(c, day, 8, 5), invoice)
            if deliveries % 2 == 0:
                _top_up(c, lots["im"], 5, 5, _at(c, day, 8, 6), invoice)
                if c.clinic.rems_certified:
                    _top_up(c, lots["spravato"], 12, 2, _at(c, day, 8, 7), invoice)
            deliveries += 1
        chairs = rng.randint(low, high)
        # Morning: move what the chairs need from the safe to the cart, oldest lot first.
        need = chairs + 1 - _containers(c, c.cart, iv)
        for lot, mg in _stock(c, c.safe, iv):
            if need <= 0:
                break
            moving = min(need, int(mg // iv.mg_per_container))
            if moving:
                _move(c, lot, moving, _at(c, day, 8, 30))
                need -= moving
        for chair in range(chairs):
            at = _at(c, day, 9 + chair * 2, rng.randrange(0, 50, 5))
            patient = rng.choice(c.patients)
            use_spravato = c.clinic.rems_certified and rng.random() < 0.3
            product, location = (spravato, c.safe) if use_spravato else (iv, c.cart)
            if use_spravato:
                dose = Decimal(rng.choice([56, 84]))
                waste = ZERO
            else:
                dose = Decimal(rng.randrange(30, 60))  # 0.5 mg/kg for 60-120 kg
                waste = remainder_mg(dose, iv.mg_per_container)
            stock = [(lot, mg) for lot, mg in _stock(c, location, product) if mg >= dose + waste]
            if not stock:
                continue
            lot = stock[0][0]
            nurse = c.people["nurse"] if chair % 2 == 0 else c.people["prescriber"]
            witness = c.people["witness"] if nurse != c.people["witness"] else c.people["nurse"]
            patient_fields = {
                "patient": patient,
                "patient_name": patient.full_name,
                "patient_address": patient_address(patient),
            }
            drafts = [
                _entry(c, EntryKind.ADMINISTER, nurse, location, lot, -dose, at, **patient_fields)
            ]
            if waste:
                waste_entry = _entry(
                    c, EntryKind.WASTE, nurse, location, lot, -waste, at,
                    related_entry=drafts[0], reason="Remainder after administration",
                    **patient_fields,
                )  # fmt: skip
                _sign(waste_entry, witness, at, SignatureMeaning.WITNESSED_WASTE)
                drafts.append(waste_entry)
            _post(c, drafts, at)
        cart_stock = _stock(c, c.cart, iv)
        if offset == 20 and cart_stock:
            # Once, a vial dropped and broken: witnessed, non-recoverable breakage is waste.
            lot, mg = cart_stock[0]
            at = _at(c, day, 16, 10)
            broken = _entry(
                c, EntryKind.WASTE, c.people["nurse"], c.cart, lot,
                -min(mg, iv.mg_per_container), at,
                reason="Vial dropped and broken (witnessed breakage)",
            )  # fmt: skip
            _sign(broken, c.people["witness"], at, SignatureMeaning.WITNESSED_WASTE)
            _post(c, [broken], at)
        remaining = c.on_hand.get((c.safe.pk, old_lot.pk), ZERO)
        if day > old_lot.expires_on and remaining > 0 and not disposed:
            # Expired stock goes back through a reverse distributor on the next working day.
            at = _at(c, day, 15)
            disposal = _entry(
                c, EntryKind.DISPOSE, c.people["admin"], c.safe, old_lot, -remaining, at,
                disposal_method=DisposalMethod.REVERSE_DISTRIBUTOR,
                document_number=f"RD-{code}-{day:%Y%m%d}", reason="Expired",
                **REVERSE_DISTRIBUTOR,
            )  # fmt: skip
            _sign(disposal, c.people["nurse"], at, SignatureMeaning.WITNESSED_HANDOVER)
            _post(c, [disposal], at)
            disposed = True
        # Close of business: the cart is counted by two people every day, the safe on Fridays.
        short = None
        if day == shortage_day and c.clinic.slug == "boston" and _stock(c, c.cart, iv):
            short = {_stock(c, c.cart, iv)[0][0].pk: iv.mg_per_container}  # a vial is missing
        count = _count(c, c.cart, _at(c, day, 18), CountPurpose.DAILY, short_mg=short)
        if count.has_discrepancy:
            _discrepancy(c, count)
        if day.weekday() == 4:
            _count(c, c.safe, _at(c, day, 18, 15), CountPurpose.SHIFT)


def _discrepancy(c: _Clinic, count: Count) -> None:
    admin = c.people["admin"]
    discovered = count.counted_at
    notice_due, form_due = dea_deadlines(InvestigationKind.SIGNIFICANT_LOSS, discovered, c.clinic)
    Investigation.objects.create(
        clinic=c.clinic,
        count=count,
        kind=InvestigationKind.SIGNIFICANT_LOSS,
        discovered_at=discovered,
        discrepancy_mg=Decimal("-200"),
        description=(
            f"Daily reconciliation of {count.location.name}: one 200 mg vial of ketamine "
            "10 mg/mL is missing. CCTV review and staff interviews under way; the DEA Field "
            "Division was notified by fax the same evening."
        ),
        opened_by=admin,
        opened_at=discovered,
        dea_notice_due_on=notice_due,
        dea_notice_sent_at=discovered + timedelta(hours=2),
        dea_notice_sent_by=admin,
        form_106_due_on=form_due,
    )


def seed_controlled_substances(*, clinics: list[Clinic], seed: int) -> int:
    """Catalogue, locations and (for clinics with an empty ledger) the history; entries written."""
    products = _products()
    written = 0
    for clinic in clinics:
        usernames = STAFF.get(clinic.slug)
        if usernames is None:
            continue
        c = _setup(clinic, usernames)
        if c is None or not c.patients:
            continue
        if LedgerEntry.objects.filter(clinic=clinic).exists():
            continue
        rng = random.Random(f"{seed}-{clinic.slug}")  # noqa: S311 (demo data, not secrets)
        _history(c, products, rng)
        written += c.entries
    if written:
        record_event(
            action=Action.SYSTEM,
            object_type="controlled_substances.ledgerentry",
            detail=f"demo seed: {written} ledger entries written (seed {seed})",
        )
    return written
