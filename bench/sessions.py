"""Treatment sessions in `make bench` (issue 6).

Before measuring, the bench clinic gets, once and kept in the bench database, 20 chairs with a
patient in each (checked in, dosing, observing or ready for discharge, IV and esketamine, with
their vitals and alerts): the room board and its htmx rows partial are measured on them. The
session pages are measured on a signed esketamine session of the demo (flowsheet of vitals,
devices, ledger draw, note and REMS form).

Rows are written with the sessions demo's row builder (the same rows the services write).
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

ACTIVE_CHAIRS = 20
STATES = ("dosing", "observing", "checked_in", "ready_for_discharge")


def _fill_chairs(clinic: Any) -> None:
    from ketaclinic.accounts.models import User
    from ketaclinic.controlled_substances import ledger
    from ketaclinic.controlled_substances.models import StorageLocation
    from ketaclinic.core import clock
    from ketaclinic.courses.models import Chair
    from ketaclinic.patients.models import Patient
    from ketaclinic.treatment_sessions import demo
    from ketaclinic.treatment_sessions.choices import ACTIVE_STATUSES
    from ketaclinic.treatment_sessions.models import TreatmentSession

    active = TreatmentSession.objects.filter(
        clinic=clinic, status__in=ACTIVE_STATUSES, chair__isnull=False
    )
    missing = ACTIVE_CHAIRS - active.values("chair_id").distinct().count()
    if missing <= 0:
        return
    busy = set(active.values_list("chair_id", flat=True))
    chairs = [c for c in Chair.objects.filter(clinic=clinic, is_active=True) if c.pk not in busy]
    for n in range(len(chairs), missing):
        chairs.append(Chair.objects.create(clinic=clinic, name=f"Bench chair {n + 1:02d}"))
    nurse, prescriber, witness = (
        User.objects.get(username=name) for name in demo.STAFF[clinic.slug]
    )
    site = demo._Site(
        clinic=clinic, tz=ZoneInfo(clinic.timezone), nurse=nurse, prescriber=prescriber,
        witness=witness, location=StorageLocation.objects.get(clinic=clinic, name="Main safe"),
        chairs={},
    )  # fmt: skip
    in_session = TreatmentSession.objects.filter(status__in=ACTIVE_STATUSES).values("patient_id")
    patients = list(
        Patient.objects.filter(clinic=clinic, user__isnull=True)
        .exclude(address_line1="")
        .exclude(pk__in=in_session)
        .select_related("clinic")
        .order_by("mrn")[:missing]
    )
    now = clock.now()
    rng = random.Random(2026)  # noqa: S311 (bench data)
    plans = []
    for n, patient in enumerate(patients):
        treatment = "iv_ketamine" if n % 2 else "esketamine_trd"
        status = STATES[n % len(STATES)]
        minutes = {"dosing": 15, "observing": 55, "checked_in": -10, "ready_for_discharge": 125}
        at = now - timedelta(minutes=minutes[status])
        weight = Decimal(rng.randint(600, 1000)) / 10
        plans.append((patient, demo._plan(rng, treatment, at, weight), status))
    demo._stock_lots(site, now - timedelta(hours=4), devices=3 * len(plans), vials=len(plans))
    for (patient, plan, status), chair in zip(plans, chairs, strict=False):
        demo._session(site, patient, plan, status=status, chair=chair, now=now)
    ledger.post(site.drafts, at=now, audit=False)


def prepare(ctx: Any) -> None:
    from django.urls import reverse

    from ketaclinic.accounts.models import Clinic
    from ketaclinic.treatment_sessions.models import TreatmentSession

    clinic = Clinic.objects.get(pk=ctx.clinic_id)
    _fill_chairs(clinic)
    signed = (
        TreatmentSession.objects.filter(clinic=clinic, status="signed", treatment="esketamine_trd")
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if signed is None:
        raise SystemExit("bench: the demo seed made no signed esketamine session")
    ctx.extra["rems_print_path"] = f"/sessions/{signed}/rems/print/"
    # The workspace (flowsheet) of a patient in a chair now, mid-observation, else the signed one.
    observing = (
        TreatmentSession.objects.filter(clinic=clinic, status="observing", chair__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    ctx.extra["session_path"] = reverse("treatment_sessions:workspace", args=[observing or signed])
