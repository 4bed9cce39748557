"""What the authorization matrix (tests/test_authz_matrix.py) needs for the room board and the
REMS form worklist (issue 6): the esketamine session each scope picks (discharged, its REMS form
complete, not yet submitted), the submission body, a snapshot of the submissions and the effect
of recording one.

The session is written directly with the demo's row builder (fast, no audit rows), its dose
drawn from a lot through the ledger; the matrix then checks the one audit row the request
writes. Nothing here imports the matrix.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.controlled_substances import ledger
from ketaclinic.controlled_substances.choices import LocationKind, ProductForm, Substance
from ketaclinic.controlled_substances.models import Product, StorageLocation
from ketaclinic.core import clock
from ketaclinic.treatment_sessions import demo
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import RemsSubmission, TreatmentSession

TARGETS = {"rems_session": ("session_id",)}
KEY = "board"  # this module's key in the matrix's state()


def _patients(world: Any, persona: str) -> tuple[Any, Any]:
    if persona == "other_clinic_nurse":
        return world.patient_b, world.patient_a2
    return world.patient_a2, world.patient_b


def _rems_session(world: Any, patient: Any) -> TreatmentSession:
    """An esketamine session of 56 mg that ended an hour ago, every REMS field filled."""
    clinic = patient.clinic
    Product.objects.get_or_create(
        ndc=demo.SPRAVATO_PRODUCT,
        defaults={
            "name": "Spravato", "substance": Substance.ESKETAMINE,
            "form": ProductForm.NASAL_DEVICE, "mg_per_container": 28,
            "containers_per_package": 2,
        },
    )  # fmt: skip
    location, _ = StorageLocation.objects.get_or_create(
        clinic=clinic, name="Matrix safe", defaults={"kind": LocationKind.SAFE}
    )
    nurse = world.users["other_clinic_nurse" if clinic == world.clinic_b else "nurse"]
    site = demo._Site(
        clinic=clinic, tz=ZoneInfo(clinic.timezone), nurse=nurse,
        prescriber=world.users["prescriber"], witness=world.users["prescriber"],
        location=location, chairs={},
    )  # fmt: skip
    now = clock.now()
    first = now - timedelta(hours=3)
    demo._stock_lots(site, first, devices=2, vials=0)
    plan = demo._Plan(
        treatment="esketamine_trd", first_dose_at=first, weight_kg=Decimal("70.0"),
        systolic=124, diastolic=78, heart_rate=72, peak_systolic=146, peak_diastolic=88,
        devices=2, cadss=12, events=(),
    )  # fmt: skip
    session = demo._session(
        site, patient, plan, status=SessionStatus.DISCHARGED, chair=None, now=now
    )
    ledger.post(site.drafts, at=now, audit=False)
    return session


def fill(target: str, scope: str, persona: str, world: Any, ctx: Any) -> None:
    own, other = _patients(world, persona)
    if scope == "missing":
        last = TreatmentSession.objects.order_by("-pk").values_list("pk", flat=True).first()
        ctx.values["session_id"] = (last or 0) + 1000
        ctx.patient = None
        return
    session = _rems_session(world, own if scope == "own" else other)
    ctx.values["session_id"] = session.pk
    ctx.patient = session.patient
    ctx.patient_id = session.patient_id
    ctx.clinic_id = session.clinic_id  # the worklist the submission returns to


def bodies() -> dict[str, Any]:
    def submission(ctx: Any) -> dict[str, Any]:
        tz = ZoneInfo(ctx.patient.clinic.timezone if ctx.patient else "UTC")
        return {
            "submitted_on": clock.now().astimezone(tz).date().isoformat(),
            "method": "online",
            "confirmation": "MATRIX-0001",
        }

    return {"rems_submission_form": submission}


def state() -> dict[str, Any]:
    return {
        "rems_submissions": sorted(
            RemsSubmission.objects.values_list("session_id", "method", "confirmation")
        ),
        "sessions": sorted(TreatmentSession.objects.values_list("pk", "status")),
    }


def _rems_submitted(before: dict, after: dict, ctx: Any, response: Any) -> None:
    new = sorted(set(after[KEY]["rems_submissions"]) - set(before[KEY]["rems_submissions"]))
    assert new == [(ctx.values["session_id"], "online", "MATRIX-0001")], new
    assert after[KEY]["sessions"] == before[KEY]["sessions"]
    assert after["patients"] == before["patients"]


def effects() -> dict[str, Any]:
    return {"rems_submitted": _rems_submitted}
