"""The Spravato REMS Patient Monitoring Form, filled from the session's own rows.

The form definition is versioned (FORM_VERSION); `rems_missing` lists what a complete form still
lacks, and an esketamine session cannot be signed while anything is missing (clinical.md §4).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ketaclinic.clinical import get_treatment
from ketaclinic.treatment_sessions.models import TreatmentSession

if TYPE_CHECKING:
    from ketaclinic.treatment_sessions.selectors import SessionRows

FORM_VERSION = "kc-rems-pmf-1"
# The 40-minute blood pressure is accepted from 35 to 50 minutes after the first device.
BP_40_WINDOW_MIN = (35, 50)


def _bp(reading: Any) -> str | None:
    if reading is None or reading.systolic_mmhg is None or reading.diastolic_mmhg is None:
        return None
    return f"{reading.systolic_mmhg}/{reading.diastolic_mmhg}"


def rems_form(session: TreatmentSession, rows: SessionRows | None = None) -> dict[str, Any]:
    """Every field of the form, None where the session has no data for it (read from `rows`
    when the caller has read the session's tables already)."""
    from ketaclinic.controlled_substances.choices import EntryKind
    from ketaclinic.controlled_substances.models import LedgerEntry

    if rows is not None:
        devices = rows.devices
        vitals = rows.vitals
        check = rows.latest_check
        discharge = rows.latest_discharge
        administered = rows.administrations
        entry = administered[0] if administered else None
        events = rows.events
    else:
        devices = list(session.esketamine_devices.order_by("number"))
        vitals = list(session.vitals.order_by("taken_at", "id"))
        check = session.pre_dose_checks.order_by("-recorded_at", "-id").first()
        discharge = session.discharge_assessments.order_by("-assessed_at", "-id").first()
        entry = (
            LedgerEntry.objects.filter(treatment_session_id=session.pk, kind=EntryKind.ADMINISTER)
            .select_related("lot")
            .first()
        )
        events = list(session.adverse_events.order_by("onset_at", "id"))
    return form_from(
        session,
        first=devices[0].administered_at if devices else None,
        dose_mg=sum(d.dose_mg for d in devices) or None,
        vitals=vitals,
        check=check,
        discharge=discharge,
        lot_number=entry.lot.lot_number if entry else None,
        events=events,
    )


def form_from(
    session: TreatmentSession,
    *,
    first: datetime | None,
    dose_mg: int | None,
    vitals: list[Any],
    check: Any,
    discharge: Any,
    lot_number: str | None,
    events: list[Any],
) -> dict[str, Any]:
    """The form from what was read of the session: the first device's time and the devices'
    total dose, the vital signs and adverse events in order, the newest pre-dose check and
    discharge assessment (or None) and the administration's lot number (or None)."""
    end = session.discharged_at or session.ended_at
    readings = [r for r in vitals if _bp(r)]
    bp_40 = None
    if first is not None:
        low, high = (first + timedelta(minutes=m) for m in BP_40_WINDOW_MIN)
        bp_40 = next((r for r in readings if low <= r.taken_at <= high), None)
    last = readings[-1] if readings else None
    codes = {e.code for e in events}
    return {
        "form_version": FORM_VERSION,
        "patient_name": session.patient.full_name,
        "patient_date_of_birth": session.patient.date_of_birth,
        "concomitant_medications": check.medication_changes if check else None,
        "monitoring_hcp": str(discharge.assessed_by) if discharge else None,
        "setting": session.clinic.name,
        "date": first.date() if first else None,
        "dose_mg": dose_mg,
        "lot_number": lot_number,
        "first_device_at": first,
        "monitoring_ended_at": end,
        "total_minutes": int((end - first).total_seconds() // 60) if first and end else None,
        "ready_to_leave_at": session.ready_at,
        "vitals_acceptable_before_dosing": bool(check and check.cleared) if check else None,
        "vitals_acceptable_before_completion": discharge.vitals_acceptable if discharge else None,
        "bp_pre_dose": f"{check.systolic_mmhg}/{check.diastolic_mmhg}" if check else None,
        "bp_40_min": _bp(bp_40),
        "bp_before_completion": _bp(last) if last is not None and last is not bp_40 else None,
        "sedation": "sedation" in codes,
        "dissociation": "dissociation" in codes,
        "respiratory_depression": "respiratory_depression" in codes,
        "adverse_events": [str(e) for e in events],
    }


REQUIRED = {
    "monitoring_hcp": "the monitoring health-care provider (discharge assessment)",
    "date": "the date of the first device",
    "dose_mg": "the dose (devices recorded)",
    "lot_number": "the lot (dose drawn from the ledger)",
    "first_device_at": "the time of the first device",
    "monitoring_ended_at": "the end of monitoring (discharge)",
    "ready_to_leave_at": "when the patient was ready to leave",
    "vitals_acceptable_before_dosing": "vital signs before dosing",
    "vitals_acceptable_before_completion": "vital signs before completion",
    "bp_pre_dose": "the pre-dose blood pressure",
    "bp_40_min": "the blood pressure at about 40 minutes",
    "bp_before_completion": "the blood pressure before completion",
}


def rems_missing(session: TreatmentSession, rows: SessionRows | None = None) -> list[str]:
    """What the REMS form still lacks, in plain words (empty for a complete form or a session
    that is not esketamine)."""
    if not get_treatment(session.treatment).is_esketamine:
        return []
    has_devices = bool(rows.devices) if rows is not None else session.esketamine_devices.exists()
    if not has_devices:
        return []  # stopped before any device: nothing was given, there is nothing to report
    form = rems_form(session, rows)
    return [
        f"REMS form: {label} is missing." for key, label in REQUIRED.items() if form[key] is None
    ]
