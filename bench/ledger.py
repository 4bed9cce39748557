"""The controlled-substance ledger in `make bench` (issue 4).

Before measuring, the bench clinic gets two years of ledger activity (at least 50,000 entries)
with a valid hash chain, generated in bulk once and kept in the bench database. Then:

- the append throughput of the real write path (`services.administration_record`: permission,
  balance row lock, sequence, SHA-256 chain, audit, one commit per dose) and of the bulk
  generator (the chain arithmetic alone) are printed;
- `ketaclinic verify-ledger`'s walk of the whole ledger is timed;
- the clinic administrator's pages that the nurse measured by bench.run cannot open (the
  21 CFR 1304.22(c) administration log, cs.report) are measured against the same floor.

The nurse's balances and ledger pages are PageSpecs in bench/pages.py.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

HISTORY_ENTRIES = 50_000
HISTORY_DAYS = 730
APPEND_SAMPLE = 300
ADMIN_USERNAME = "admin.patel"
BATCH = 5000


@dataclass
class LedgerFigures:
    entries: int
    generated: int
    generate_seconds: float
    append_per_s: float
    verify_seconds: float


def _history(clinic: Any, target: int) -> tuple[int, float]:
    """Bulk-append two years of daily deliveries, doses and waste until the clinic's ledger holds
    `target` entries. Chained, balanced and audited like any other append, in one transaction."""
    from django.db import transaction

    from ketaclinic.accounts.models import User
    from ketaclinic.audit.chain import chain_hash
    from ketaclinic.audit.choices import Action
    from ketaclinic.audit.services import record_event
    from ketaclinic.controlled_substances import ledger
    from ketaclinic.controlled_substances.choices import EntryKind, SignatureMeaning
    from ketaclinic.controlled_substances.models import (
        Balance,
        LedgerEntry,
        Lot,
        Product,
        StorageLocation,
    )
    from ketaclinic.controlled_substances.quantities import ml_from_mg, remainder_mg
    from ketaclinic.controlled_substances.services import patient_address
    from ketaclinic.core import clock
    from ketaclinic.patients.models import Patient

    existing = LedgerEntry.objects.filter(clinic=clinic).count()
    if existing >= target:
        return 0, 0.0
    started = time.perf_counter()
    rng = random.Random(2026)
    tz = ZoneInfo(clinic.timezone)
    product = Product.objects.get(ndc="70001-110-10")  # ketamine 10 mg/mL, 20 mL vial
    cart = StorageLocation.objects.get(clinic=clinic, name="Treatment room cart")
    people = {
        u.username: u for u in User.objects.filter(username__in=["nurse.ortiz", "nurse.brooks"])
    }
    nurse, witness = people["nurse.ortiz"], people["nurse.brooks"]
    patients = list(Patient.objects.filter(clinic=clinic).exclude(address_line1="")[:500])
    supplier = {
        "counterparty_name": "Harborline Pharmaceutical Distribution, Inc.",
        "counterparty_address": "400 Commerce Way, Columbus, OH 43219",
        "counterparty_dea_number": "RH1234563",
    }
    # The two years before the demo's three months: per day one delivery, then doses + waste.
    last_day = clock.today_in(clinic.timezone) - timedelta(days=91)
    days = [last_day - timedelta(days=n) for n in range(HISTORY_DAYS, 0, -1)]
    per_day = max(1, math.ceil(((target - existing) / len(days) - 1) / 2))
    mg = product.mg_per_container
    rows: list[LedgerEntry] = []
    with transaction.atomic():
        head = ledger._locked_head()
        seq, prev = head.seq, head.entry_hash
        running: dict[int, Decimal] = {}
        lots: dict[str, Lot] = {}

        def append(entry: LedgerEntry) -> None:
            nonlocal seq, prev
            seq += 1
            running[entry.lot_id] = running.get(entry.lot_id, Decimal("0")) + entry.quantity_mg
            entry.seq, entry.prev_hash = seq, prev
            entry.balance_after_mg = running[entry.lot_id]
            entry.recorded_at = entry.occurred_at
            entry.hash_version = LedgerEntry.HASH_VERSION
            entry.entry_hash = chain_hash(prev, ledger.payload_of(entry))
            prev = entry.entry_hash
            rows.append(entry)

        def draft(kind: str, lot: Lot, quantity: Decimal, at: datetime, **fields: Any) -> Any:
            whole = quantity / mg
            return LedgerEntry(
                kind=kind,
                clinic=clinic,
                location=cart,
                lot=lot,
                quantity_mg=quantity,
                volume_ml=ml_from_mg(quantity, product.mg_per_ml),
                occurred_at=at,
                units=int(whole) if whole == whole.to_integral_value() else None,
                actor=fields.pop("actor", nurse),
                actor_name=fields.pop("actor_name", nurse.signature_name),
                **fields,
            )

        for day in days:
            number = f"BENCH-{day:%y%m}"
            if number not in lots:
                lots[number], _ = Lot.objects.get_or_create(
                    product=product,
                    lot_number=number,
                    defaults={"expires_on": day + timedelta(days=730)},
                )
            lot = lots[number]
            morning = datetime.combine(day, dtime(7, 30), tzinfo=tz)
            append(
                draft(
                    EntryKind.RECEIVE,
                    lot,
                    per_day * mg,
                    morning,
                    document_number=f"INV-B{day:%y%m%d}",
                    document_date=day,
                    **supplier,
                )
            )
            for chair in range(per_day):
                at = morning + timedelta(minutes=20 + chair * 12)
                patient = rng.choice(patients)
                dose = Decimal(rng.randrange(30, 60))
                who = {
                    "patient": patient,
                    "patient_name": patient.full_name,
                    "patient_address": patient_address(patient),
                }
                append(draft(EntryKind.ADMINISTER, lot, -dose, at, **who))
                append(
                    draft(
                        EntryKind.WASTE,
                        lot,
                        -remainder_mg(dose, mg),
                        at,
                        witness=witness,
                        witness_name=witness.signature_name,
                        witness_signed_at=at,
                        witness_meaning=SignatureMeaning.WITNESSED_WASTE,
                        reason="Remainder after administration",
                        **who,
                    )
                )
        LedgerEntry.objects.bulk_create(rows, batch_size=BATCH)
        ledger.add_to_day_totals(rows)  # as ledger.post does for each append
        for lot_id, quantity in running.items():
            Balance.objects.update_or_create(
                location=cart,
                lot_id=lot_id,
                defaults={"clinic": clinic, "quantity_mg": quantity, "last_seq": seq},
            )
        head.seq, head.entry_hash = seq, prev
        head.save(update_fields=["seq", "entry_hash"])
        record_event(
            action=Action.SYSTEM,
            object_type="controlled_substances.ledgerentry",
            detail=f"bench: {len(rows)} ledger entries generated for {clinic.name}",
        )
    elapsed = time.perf_counter() - started
    # bench.run analysed the database before this hook ran: refresh the statistics (and the
    # visibility map, for index-only scans) of the tables just filled, as autovacuum would.
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "controlled_substances_ledgerentry",
            "controlled_substances_balance",
            "controlled_substances_ledgerdaytotal",
        ):
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            else:
                cursor.execute(f"ANALYZE {table}")
    return len(rows), elapsed


def _append_throughput(clinic: Any) -> float:
    """Doses through the real service, one transaction (and commit) each, from one bench lot."""
    from ketaclinic.accounts.models import User
    from ketaclinic.controlled_substances import services
    from ketaclinic.controlled_substances.models import Lot, Product, StorageLocation
    from ketaclinic.patients.models import Patient

    nurse = User.objects.get(username="nurse.ortiz")
    safe = StorageLocation.objects.get(clinic=clinic, name="Main safe")
    product = Product.objects.get(ndc="70001-110-10")
    patient = Patient.objects.filter(clinic=clinic).exclude(address_line1="").order_by("pk")[0]
    lot, _ = Lot.objects.get_or_create(
        product=product, lot_number="BENCH-APPEND", defaults={"expires_on": date(2099, 1, 1)}
    )
    services.receipt_record(
        actor=nurse,
        clinic=clinic,
        location=safe,
        product=product,
        lot_number=lot.lot_number,
        expires_on=lot.expires_on,
        containers=APPEND_SAMPLE // 4,
        supplier_name="Bench",
        supplier_address="Bench",
        supplier_dea_number="RH1234563",
        invoice_number="BENCH",
    )
    started = time.perf_counter()
    for _ in range(APPEND_SAMPLE):
        services.administration_record(
            actor=nurse,
            clinic=clinic,
            location=safe,
            lot=lot,
            patient=patient,
            dose_mg=Decimal("50"),
            witness=None,
        )
    return APPEND_SAMPLE / (time.perf_counter() - started)


def prepare(ctx: Any) -> None:
    """CONTEXT_HOOK: the history, the throughput figures and the administrator's pages."""
    from ketaclinic.accounts.models import Clinic
    from ketaclinic.controlled_substances.demo import seed_controlled_substances
    from ketaclinic.controlled_substances.models import LedgerEntry
    from ketaclinic.controlled_substances.selectors import verify_ledger

    clinic = Clinic.objects.get(pk=ctx.clinic_id)
    seed_controlled_substances(
        clinics=list(Clinic.objects.filter(organisation=clinic.organisation)), seed=2026
    )
    generated, seconds = _history(clinic, HISTORY_ENTRIES)
    words = ctx.extra.get("page_words")
    if words:  # a partial run (bench.run --pages): the admin pages asked for, nothing else
        ctx.extra["ledger"] = None
        _measure_admin_pages(ctx, clinic, words)
        return
    append_rate = _append_throughput(clinic)
    started = time.perf_counter()
    verdict = verify_ledger()
    verify_seconds = time.perf_counter() - started
    if not verdict.ok:
        raise SystemExit(f"bench: the ledger does not verify: {verdict.reason}")
    entries = LedgerEntry.objects.filter(clinic=clinic).count()
    ctx.extra["ledger"] = LedgerFigures(entries, generated, seconds, append_rate, verify_seconds)
    print(
        f"\nControlled-substance ledger of {clinic.name}: {entries:,} entries "
        f"({verdict.checked:,} in the installation)."
    )
    if generated:
        print(
            f"  generated {generated:,} entries with the SHA-256 chain in {seconds:.1f}s "
            f"({generated / seconds:,.0f} entries/s, bulk)"
        )
    print(
        f"  append through services.administration_record (lock, chain, audit, commit each): "
        f"{append_rate:,.0f} entries/s (n={APPEND_SAMPLE})"
    )
    print(f"  verify-ledger over {verdict.checked:,} entries: {verify_seconds:.2f}s")
    _measure_admin_pages(ctx, clinic)


def _measure_admin_pages(ctx: Any, clinic: Any, words: list[str] | None = None) -> None:
    from bench.inprocess import measure
    from bench.pages import FLOOR, BenchContext, PageSpec
    from ketaclinic.accounts.models import User

    # Not build_context(): that would run the context hooks, this one included, again.
    admin = BenchContext(
        user=User.objects.get(username=ADMIN_USERNAME),
        clinic_id=clinic.pk,
        patient_ids=ctx.patient_ids,
        search_words=ctx.search_words,
    )
    c = clinic.pk
    pages = [
        FLOOR,
        PageSpec(
            "1304.22(c) log", lambda x, i: f"/controlled-substances/{c}/reports/administrations/"
        ),
        PageSpec(
            "1304.22(c) log, a month",
            lambda x, i: (
                f"/controlled-substances/{c}/reports/administrations/"
                f"?date_from={_month(i)[0]}&date_to={_month(i)[1]}"
            ),
        ),
        PageSpec("CS balances (admin)", lambda x, i: f"/controlled-substances/{c}/"),
    ]
    if words:
        pages = [p for p in pages if p.is_floor or any(w in p.name.lower() for w in words)]
        if len(pages) == 1:
            return
    results = measure(admin, pages, requests=200, warmup=20, rounds=5)
    floor = results[0]
    print(f"  pages as {ADMIN_USERNAME} (cs.report; bench.run signs in as a nurse):")
    for r in results:
        ratio = r.p95 / floor.p95
        verdict = "(floor)" if r.spec.is_floor else ("PASS" if ratio <= 3 else "FAIL")
        print(
            f"    {r.spec.name:<26}p50 {r.p50:7.2f} ms  p95 {r.p95:7.2f} ms  "
            f"{ratio:5.2f}× floor  {r.queries:>3} queries  {verdict}"
        )
    ctx.extra["ledger_admin_pages"] = [
        {
            "page": r.spec.name,
            "p50_ms": round(r.p50, 3),
            "p95_ms": round(r.p95, 3),
            "ratio_p95_to_floor": round(r.p95 / floor.p95, 3),
            "queries": r.queries,
        }
        for r in results
    ]


def _month(i: int) -> tuple[str, str]:
    """The i-th of the last 20 whole months (the DEA log as an inspector asks for it)."""
    from ketaclinic.core import clock

    start = clock.now().date().replace(day=1) - timedelta(days=30 * (1 + i % 20))
    start = start.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return start.isoformat(), end.isoformat()
