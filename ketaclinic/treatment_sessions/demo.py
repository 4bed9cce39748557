"""Demo treatment sessions: weeks of completed IV and esketamine sessions with signed notes, and a
few patients in chairs right now, so the room board, the REMS worklist and the exposure panel
have something to show.

Past sessions cannot go through `treatment_sessions.services`, which stamp every row with the
current time and check it against the clock; like the ledger and course demos, the rows are
written here directly, with the clinical rules (`vitals_alerts`, `iv_infusion`) computing what the
services would have, and one system audit event records the seeding. Doses are drawn from
dedicated demo lots through `controlled_substances.ledger.post` (sequence, hash chain, running
balances), recorded now with the time they were given, so the ledger still verifies.

Deterministic for a seed and a day; idempotent (a clinic that has sessions is left alone).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import VitalsReading, vitals_alerts
from ketaclinic.controlled_substances import ledger
from ketaclinic.controlled_substances.choices import EntryKind, SignatureMeaning
from ketaclinic.controlled_substances.models import LedgerEntry, Lot, Product, StorageLocation
from ketaclinic.controlled_substances.quantities import ml_from_mg, q3, remainder_mg
from ketaclinic.controlled_substances.services import patient_address
from ketaclinic.core import clock
from ketaclinic.courses.models import Chair
from ketaclinic.patients.models import Patient
from ketaclinic.treatment_sessions.choices import SessionStatus as S
from ketaclinic.treatment_sessions.models import (
    AdverseEvent,
    DischargeAssessment,
    DissociationScore,
    EsketamineDevice,
    InfusionOrder,
    NoteSignature,
    PreDoseCheck,
    RemsSubmission,
    SessionTransition,
    TreatmentSession,
    VitalAlert,
    VitalSign,
)

# Demo staff per clinic: nurse, prescriber, witness (demo/seed.py STAFF).
STAFF = {
    "boston": ("nurse.ortiz", "dr.chen", "nurse.brooks"),
    "denver": ("nurse.lee", "dr.okafor", "dr.okafor"),
}
IV_LOT_PRODUCT = "70001-110-10"  # ketamine 10 mg/mL, 20 mL (200 mg) vials
SPRAVATO_PRODUCT = "70002-028-02"  # 28 mg devices
IV_MINUTES = 40
IV_READINGS = (0, 10, 20, 30, 40, 55, 70, 85, 100)
ESKETAMINE_READINGS = (0, 20, 40, 60, 90, 120)
# Which stories each clinic tells: (treatment, days ago of each past session). The most recent
# esketamine session older than 7 days without a submission is the one overdue REMS form.
PAST = {
    "boston": (
        ("iv_ketamine", (26, 23, 19, 16, 12, 9)),
        ("iv_ketamine", (21, 17, 14, 10)),
        ("esketamine_trd", (27, 24, 20, 17, 13)),
        ("esketamine_trd", (23, 20, 16, 13, 9)),  # the last (9 days ago) is overdue
        ("esketamine_trd", (6, 3)),  # due this week
    ),
    "denver": (("iv_ketamine", (15, 11, 8)),),
}
OVERDUE_STORY = ("boston", 3)
# Patients in chairs now: (treatment, status, minutes since the first dose, chair).
NOW_IN_CHAIRS = {
    "boston": (
        ("iv_ketamine", S.DOSING, 22, "Recliner 1"),
        ("esketamine_trd", S.OBSERVING, 47, "Recliner 2"),
        ("iv_ketamine", S.CHECKED_IN, None, "Recliner 3"),
        ("esketamine_trd", S.READY_FOR_DISCHARGE, 124, "Group room"),
    ),
    "denver": (("iv_ketamine", S.OBSERVING, 58, "Chair A"),),
}
CLOCK_HOURS = (9, 11, 13, 15)
PATH = (S.CHECKED_IN, S.GATE_PASSED, S.DOSING, S.OBSERVING, S.READY_FOR_DISCHARGE,
        S.DISCHARGED, S.SIGNED)  # fmt: skip


@dataclass
class _Site:
    clinic: Clinic
    tz: ZoneInfo
    nurse: User
    prescriber: User
    witness: User
    location: StorageLocation
    chairs: dict[str, Chair]
    lots: dict[str, Lot] = field(default_factory=dict)
    drafts: list[LedgerEntry] = field(default_factory=list)
    sessions: int = 0


@dataclass(frozen=True)
class _Plan:
    """One session's story: when, how much, and how the blood pressure behaves."""

    treatment: str
    first_dose_at: datetime
    weight_kg: Decimal
    systolic: int
    diastolic: int
    heart_rate: int
    peak_systolic: int  # rise at about 40 minutes
    peak_diastolic: int
    devices: int  # esketamine: 2 (56 mg) or 3 (84 mg)
    cadss: int
    events: tuple[tuple[str, str], ...]  # (code, severity)


def _entry(site: _Site, kind: str, actor: User, lot: Lot, mg: Decimal, at: datetime,
           **fields: Any) -> LedgerEntry:  # fmt: skip
    product = lot.product
    containers = mg / product.mg_per_container
    entry = LedgerEntry(
        kind=kind, actor=actor, actor_name=actor.signature_name, clinic=site.clinic,
        location=site.location, lot=lot, quantity_mg=q3(mg), occurred_at=at,
        volume_ml=ml_from_mg(mg, product.mg_per_ml) if product.mg_per_ml else None,
        units=int(containers) if containers == containers.to_integral_value() else None,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(entry, name, value)
    return entry


def _witnessed(entry: LedgerEntry, user: User, at: datetime, meaning: str) -> LedgerEntry:
    entry.witness = user
    entry.witness_name = user.signature_name
    entry.witness_signed_at = at
    entry.witness_meaning = meaning
    return entry


def _stock_lots(site: _Site, first_day: datetime, devices: int, vials: int) -> None:
    """Dedicated lots for the demo sessions, received before the first of them."""
    code = site.clinic.slug[:3].upper()
    wanted = {"iv": (IV_LOT_PRODUCT, vials), "spravato": (SPRAVATO_PRODUCT, devices)}
    for key, (ndc, containers) in wanted.items():
        if containers <= 0:
            continue
        product = Product.objects.get(ndc=ndc)
        lot, _ = Lot.objects.get_or_create(
            product=product,
            lot_number=f"{'K10' if key == 'iv' else 'SPR'}-{code}-SESS",
            defaults={"expires_on": first_day.date() + timedelta(days=500)},
        )
        site.lots[key] = lot
        at = first_day - timedelta(hours=2)
        receipt = _entry(
            site, EntryKind.RECEIVE, site.prescriber, lot,
            containers * product.mg_per_container, at,
            document_number=f"INV-{code}-SESS", document_date=at.date(),
            counterparty_name="Harborline Pharmaceutical Distribution, Inc.",
            counterparty_address="400 Commerce Way, Columbus, OH 43219",
            counterparty_dea_number="RH1234563",
        )  # fmt: skip
        site.drafts.append(_witnessed(receipt, site.nurse, at, SignatureMeaning.WITNESSED_RECEIPT))


def _draw(site: _Site, session: TreatmentSession, patient: Patient, dose: Decimal,
          at: datetime) -> None:  # fmt: skip
    """The session's dose from the demo lot; an IV vial's remainder wasted with a witness."""
    is_iv = session.treatment == "iv_ketamine"
    lot = site.lots["iv" if is_iv else "spravato"]
    who = {
        "patient": patient,
        "patient_name": patient.full_name,
        "patient_address": patient_address(patient),
        "treatment_session_id": session.pk,
    }
    given = _entry(site, EntryKind.ADMINISTER, site.nurse, lot, -dose, at, **who)
    site.drafts.append(given)
    if is_iv:
        waste = remainder_mg(dose, lot.product.mg_per_container)
        if waste:
            wasted = _entry(
                site, EntryKind.WASTE, site.nurse, lot, -waste, at, related_entry=given,
                reason="Remainder after administration", **who,
            )  # fmt: skip
            site.drafts.append(
                _witnessed(wasted, site.witness, at, SignatureMeaning.WITNESSED_WASTE)
            )


def _bp_at(plan: _Plan, minute: int) -> tuple[int, int]:
    """Blood pressure rising after the dose to a peak near 40 minutes and settling by 120."""
    rise = math.exp(-(((minute - 40) / 32) ** 2))
    jitter = (minute * 7 + plan.heart_rate) % 3 - 1  # a cuff never reads the same twice
    return (
        round(plan.systolic + (plan.peak_systolic - plan.systolic) * rise) + jitter,
        round(plan.diastolic + (plan.peak_diastolic - plan.diastolic) * rise) + jitter // 2,
    )


def _plan(rng: random.Random, treatment: str, at: datetime, weight: Decimal) -> _Plan:
    systolic, diastolic = rng.randint(112, 136), rng.randint(68, 84)
    hypertensive = rng.random() < 0.18
    rise = rng.randint(40, 52) if hypertensive else rng.randint(10, 26)
    events: list[tuple[str, str]] = []
    if rng.random() < 0.35:
        events.append(("nausea", "mild"))
    if rng.random() < 0.3:
        events.append(("dissociation", rng.choice(["mild", "moderate"])))
    if rng.random() < 0.15:
        events.append(("headache", "mild"))
    if systolic + rise >= 180:
        events.append(("hypertension", "moderate"))
    return _Plan(
        treatment=treatment, first_dose_at=at, weight_kg=weight, systolic=systolic,
        diastolic=diastolic, heart_rate=rng.randint(64, 84),
        peak_systolic=systolic + rise, peak_diastolic=diastolic + rise // 2,
        devices=rng.choice([2, 2, 3]), cadss=rng.randint(4, 28), events=tuple(events),
    )  # fmt: skip


def _transition(session: TreatmentSession, before: str, to: str, actor: User, at: datetime) -> None:
    SessionTransition.objects.create(
        session=session, from_status=before, to_status=to, actor=actor, at=at
    )


def _session(site: _Site, patient: Patient, plan: _Plan, *, status: str, chair: Chair | None,
             now: datetime) -> TreatmentSession:  # fmt: skip
    """Write one session's rows up to `status`, as the services would have."""
    first = plan.first_dose_at
    is_iv = plan.treatment == "iv_ketamine"
    checked_in = first - timedelta(minutes=25)
    end = first + timedelta(minutes=IV_MINUTES + 60 if is_iv else 120)
    moments = {
        S.CHECKED_IN: checked_in,
        S.GATE_PASSED: first - timedelta(minutes=10),
        S.DOSING: first,
        S.OBSERVING: first + timedelta(minutes=IV_MINUTES if is_iv else 5 * (plan.devices - 1)),
        S.READY_FOR_DISCHARGE: end,
        S.DISCHARGED: end + timedelta(minutes=6),
        S.SIGNED: end + timedelta(hours=3),
    }
    reached = PATH[: PATH.index(status) + 1]
    dose = (
        q3(plan.weight_kg * Decimal("0.5")).quantize(Decimal("0.1"))
        if is_iv
        else Decimal(28 * plan.devices)
    )
    session = TreatmentSession.objects.create(
        patient=patient, clinic=site.clinic, chair=chair, treatment=plan.treatment,
        planned_dose_mg=dose, status=status, scheduled_at=checked_in - timedelta(minutes=5),
        checked_in_at=moments[S.CHECKED_IN],
        gate_passed_at=moments[S.GATE_PASSED] if S.GATE_PASSED in reached else None,
        dosing_started_at=first if S.DOSING in reached else None,
        observing_started_at=moments[S.OBSERVING] if S.OBSERVING in reached else None,
        ready_at=moments[S.READY_FOR_DISCHARGE] if S.READY_FOR_DISCHARGE in reached else None,
        discharged_at=moments[S.DISCHARGED] if S.DISCHARGED in reached else None,
        signed_at=moments[S.SIGNED] if S.SIGNED in reached else None,
        signed_by=site.prescriber if S.SIGNED in reached else None,
        created_by=site.nurse,
    )  # fmt: skip
    before = S.SCHEDULED
    for step in reached:
        actor = site.prescriber if step == S.SIGNED else site.nurse
        _transition(session, before, step, actor, moments[step])
        before = step
    esketamine = not is_iv
    PreDoseCheck.objects.create(
        session=session, weight_kg=plan.weight_kg, systolic_mmhg=plan.systolic,
        diastolic_mmhg=plan.diastolic, heart_rate_bpm=plan.heart_rate, spo2_pct=98,
        respiratory_rate_per_min=14, fasting_confirmed=True, ride_home_confirmed=True,
        pregnancy_status="not_pregnant" if patient.sex_at_birth == "female" else "not_applicable",
        rems_enrolment_verified=esketamine,
        prescriber_on_site=site.prescriber if esketamine else None,
        gate_status="proceed", gate_reasons=[], recorded_by=site.nurse,
        recorded_at=checked_in + timedelta(minutes=5),
    )  # fmt: skip
    if S.GATE_PASSED not in reached:
        return session
    if is_iv:
        volume = dose  # 1 mg/mL in the bag
        InfusionOrder.objects.create(
            session=session, weight_kg=plan.weight_kg, dose_mg_per_kg=Decimal("0.50"),
            minutes=IV_MINUTES, concentration_mg_per_ml=Decimal("1.00"), dose_mg=dose,
            volume_ml=volume, rate_ml_per_h=(volume * 60 / IV_MINUTES).quantize(Decimal("0.1")),
            vtbi_ml=volume, ordered_by=site.prescriber,
            ordered_at=moments[S.GATE_PASSED] - timedelta(minutes=3), checked_by=site.witness,
            checked_at=moments[S.GATE_PASSED] - timedelta(minutes=1),
        )  # fmt: skip
    _draw(site, session, patient, dose, first - timedelta(minutes=2))
    if S.DOSING not in reached:
        return session
    if esketamine:
        for number in range(1, plan.devices + 1):
            at = first + timedelta(minutes=5 * (number - 1))
            if at <= now:
                EsketamineDevice.objects.create(
                    session=session, number=number, administered_at=at, recorded_by=site.nurse
                )
    baseline = VitalsReading(
        systolic_mmhg=plan.systolic, diastolic_mmhg=plan.diastolic,
        heart_rate_bpm=plan.heart_rate, spo2_pct=98, respiratory_rate=14,
    )  # fmt: skip
    for minute in IV_READINGS if is_iv else ESKETAMINE_READINGS:
        taken = first + timedelta(minutes=minute)
        if taken > now:
            break
        systolic, diastolic = _bp_at(plan, minute)
        heart = plan.heart_rate + round(8 * math.exp(-(((minute - 35) / 30) ** 2)))
        sedated = minute in (20, 30, 40) and any(c == "dissociation" for c, _ in plan.events)
        reading = VitalSign.objects.create(
            session=session, taken_at=taken, systolic_mmhg=systolic, diastolic_mmhg=diastolic,
            heart_rate_bpm=heart, spo2_pct=97 if minute else 98, respiratory_rate_per_min=14,
            moaas=4 if sedated else 5, source="manual", recorded_by=site.nurse,
            recorded_at=taken + timedelta(minutes=1),
        )  # fmt: skip
        found = vitals_alerts(
            treatment=plan.treatment,
            reading=VitalsReading(
                systolic_mmhg=systolic, diastolic_mmhg=diastolic, heart_rate_bpm=heart,
                spo2_pct=reading.spo2_pct, respiratory_rate=14,
            ),
            baseline=baseline,
        )  # fmt: skip
        # Alerts of finished sessions were acknowledged; one of today's is still open.
        acknowledged = status not in (S.DOSING, S.OBSERVING)
        for alert in found:
            VitalAlert.objects.create(
                session=session, reading=reading, code=alert.code, message=alert.message[:300],
                severity=alert.severity, source=alert.source[:300],
                acknowledged_by=site.nurse if acknowledged else None,
                acknowledged_at=taken + timedelta(minutes=3) if acknowledged else None,
                action="Rechecked after 5 minutes lying quietly; prescriber informed; "
                "no antihypertensive needed." if acknowledged else "",
            )  # fmt: skip
    if first + timedelta(minutes=40) <= now:
        DissociationScore.objects.create(
            session=session,
            total=plan.cadss,
            scored_at=first + timedelta(minutes=40),
            recorded_by=site.nurse,
        )
        for code, severity in plan.events:
            AdverseEvent.objects.create(
                session=session, code=code, severity=severity,
                outcome="resolved" if S.READY_FOR_DISCHARGE in reached else "resolving",
                onset_at=first + timedelta(minutes=25 if code != "hypertension" else 40),
                recorded_by=site.nurse, recorded_at=first + timedelta(minutes=45),
            )  # fmt: skip
    if S.READY_FOR_DISCHARGE in reached:
        DischargeAssessment.objects.create(
            session=session, sedation_resolved=True, dissociation_resolved=True,
            respiratory_depression_resolved=True, vitals_acceptable=True, escort_present=True,
            escort_name="Partner (driving home)", gate_status="proceed", gate_reasons=[],
            assessed_by=site.nurse, assessed_at=end - timedelta(minutes=2),
        )  # fmt: skip
    return session


def _sign(site: _Site, session: TreatmentSession) -> None:
    from ketaclinic.treatment_sessions.note import note_text, sha256_of

    row = TreatmentSession.objects.select_related("patient", "clinic").get(pk=session.pk)
    content = note_text(row)
    assert row.signed_at is not None
    NoteSignature.objects.create(
        session=row, content=content, content_sha256=sha256_of(content),
        signed_by=site.prescriber, signer_name=site.prescriber.signature_name,
        signed_at=row.signed_at, meaning="Reviewed and approved",
    )  # fmt: skip


def _submit_rems(site: _Site, session: TreatmentSession, rng: random.Random) -> None:
    from ketaclinic.treatment_sessions.rems import FORM_VERSION, rems_form

    row = TreatmentSession.objects.select_related("patient", "clinic").get(pk=session.pk)
    assert row.dosing_started_at is not None
    day = row.dosing_started_at.astimezone(site.tz).date() + timedelta(days=rng.randint(1, 3))
    method = rng.choice(["online", "online", "fax"])
    RemsSubmission.objects.create(
        session=row, submitted_on=day, method=method,
        confirmation=f"{'RMS' if method == 'online' else 'FAX'}-{day:%y%m%d}-{row.pk:04d}",
        form=json.loads(json.dumps(rems_form(row), cls=DjangoJSONEncoder)),
        form_version=FORM_VERSION, recorded_by=site.nurse,
        recorded_at=datetime.combine(day, time(16, 30), tzinfo=site.tz),
    )  # fmt: skip


def _weekday(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _seed_site(site: _Site, patients: list[Patient], rng: random.Random, now: datetime) -> None:
    today = now.astimezone(site.tz).date()
    stories = PAST[site.clinic.slug]
    current = NOW_IN_CHAIRS[site.clinic.slug]
    patients = patients[: len(stories) + len(current)]
    weights = {p.pk: Decimal(rng.randint(560, 1050)) / 10 for p in patients}
    past: list[tuple[Patient, _Plan, bool]] = []
    for index, ((treatment, days), patient) in enumerate(zip(stories, patients, strict=False)):
        hour = CLOCK_HOURS[index % len(CLOCK_HOURS)]
        for n, ago in enumerate(days):
            day = _weekday(today - timedelta(days=ago))
            at = datetime.combine(day, time(hour, 10 * (n % 3)), tzinfo=site.tz)
            overdue = (site.clinic.slug, index) == OVERDUE_STORY and n == len(days) - 1
            past.append((patient, _plan(rng, treatment, at, weights[patient.pk]), overdue))
    in_chairs = []
    for (treatment, status, minutes, chair), patient in zip(
        current, patients[len(stories) :], strict=False
    ):
        at = now - timedelta(minutes=minutes if minutes is not None else -15)
        plan = _plan(rng, treatment, at, weights[patient.pk])
        if status == S.OBSERVING and treatment == "esketamine_trd":
            # The 40-minute blood pressure is high: an alert waits for the nurse on the board.
            plan = replace(plan, systolic=138, diastolic=86, peak_systolic=186, peak_diastolic=106)
        in_chairs.append((patient, plan, status, chair))
    if not past and not in_chairs:
        return
    devices = sum(p.devices for _, p, _ in past if p.treatment != "iv_ketamine")
    devices += sum(p.devices for _, p, _, _ in in_chairs if p.treatment != "iv_ketamine")
    vials = sum(1 for _, p, _ in past if p.treatment == "iv_ketamine") + len(in_chairs)
    first = min([p.first_dose_at for _, p, _ in past] + [now - timedelta(hours=3)])
    _stock_lots(site, first, devices, vials)
    chairs = list(site.chairs.values())
    done: list[tuple[TreatmentSession, bool]] = []
    for index, (patient, plan, overdue) in enumerate(past):
        seat = chairs[index % len(chairs)] if chairs else None
        session = _session(site, patient, plan, status=S.SIGNED, chair=seat, now=now)
        done.append((session, overdue))
    for patient, plan, status, chair_name in in_chairs:
        _session(site, patient, plan, status=status, chair=site.chairs.get(chair_name), now=now)
    site.sessions = len(past) + len(in_chairs)
    # The dose entries go in before the notes are signed: the note lists what was drawn.
    ledger.post(site.drafts, at=now, audit=False)
    for session, overdue in done:
        _sign(site, session)
        if session.treatment == "esketamine_trd" and not overdue:
            assert session.dosing_started_at is not None
            if session.dosing_started_at.astimezone(site.tz).date() <= today - timedelta(days=8):
                _submit_rems(site, session, rng)


def seed_sessions(*, clinics: list[Clinic], seed: int) -> int:
    """Sessions for every demo clinic that has none yet; returns how many were written."""
    now = clock.now()
    written = 0
    for clinic in clinics:
        usernames = STAFF.get(clinic.slug)
        if usernames is None or TreatmentSession.objects.filter(clinic=clinic).exists():
            continue
        people = {u.username: u for u in User.objects.filter(username__in=usernames)}
        location = StorageLocation.objects.filter(clinic=clinic, name="Main safe").first()
        if len(people) < len(set(usernames)) or location is None:
            continue
        if Product.objects.filter(ndc__in=[IV_LOT_PRODUCT, SPRAVATO_PRODUCT]).count() != 2:
            continue
        nurse, prescriber, witness = (people[name] for name in usernames)
        site = _Site(
            clinic=clinic, tz=ZoneInfo(clinic.timezone), nurse=nurse, prescriber=prescriber,
            witness=witness, location=location,
            chairs={c.name: c for c in Chair.objects.filter(clinic=clinic, is_active=True)},
        )  # fmt: skip
        # Patients with an address (ledger records), without a portal login or a booked course
        # (the course demo's stories), from the end of the list.
        patients = list(
            Patient.objects.filter(clinic=clinic, user__isnull=True, courses__isnull=True)
            .exclude(address_line1="")
            .select_related("clinic")
            .order_by("-mrn")[:12]
        )
        rng = random.Random(f"{seed}-sessions-{clinic.slug}")  # noqa: S311 (demo data)
        _seed_site(site, patients, rng, now)
        written += site.sessions
    if written:
        record_event(
            action=Action.SYSTEM,
            object_type="treatment_sessions.treatmentsession",
            detail=f"demo seed: {written} treatment sessions with vitals, notes and REMS forms "
            f"(seed {seed})",
        )
    return written
