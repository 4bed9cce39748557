"""The session note as plain clinical text: what the prescriber signs and what the hash binds.

Built only from rows of the session, in a fixed order, so the same data always gives the same
text (and the same SHA-256).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ketaclinic.treatment_sessions.models import TreatmentSession


def _t(value: Any) -> str:
    return value.isoformat(timespec="minutes") if value else "-"


def note_text(session: TreatmentSession) -> str:
    """The note: header, pre-dose gate, dose, monitoring, adverse events, discharge, history."""
    patient = session.patient
    lines = [
        f"TREATMENT SESSION {session.pk} - {session.treatment}",
        f"Patient: {patient.full_name} (MRN {patient.mrn})",
        f"Scheduled: {_t(session.scheduled_at)}   Checked in: {_t(session.checked_in_at)}",
    ]
    if session.status_reason:
        lines.append(f"Reason: {session.status_reason}")
    lines.append("")
    lines.append("PRE-DOSE")
    for check in session.pre_dose_checks.order_by("recorded_at", "id"):
        lines.append(
            f"{_t(check.recorded_at)} weight {check.weight_kg} kg, BP {check.systolic_mmhg}/"
            f"{check.diastolic_mmhg} mmHg, HR {check.heart_rate_bpm or '-'}, SpO2 "
            f"{check.spo2_pct or '-'}%; fasting {'yes' if check.fasting_confirmed else 'NO'}, "
            f"ride home {'yes' if check.ride_home_confirmed else 'NO'}, pregnancy "
            f"{check.get_pregnancy_status_display().lower()}; gate {check.gate_status.upper()}"
        )
        for reason in check.gate_reasons:
            lines.append(f"  - {reason['message']}")
        if check.medications_changed:
            lines.append(f"  Medication changes: {check.medication_changes}")
        if check.acknowledged_by_id:
            lines.append(
                f"  Prescriber {check.acknowledged_by} answered at {_t(check.acknowledged_at)}: "
                f"{check.acknowledgement_reason}"
            )
    lines.append("")
    lines.append("DOSE")
    for order in session.infusion_orders.order_by("ordered_at", "id"):
        lines.append(
            f"{_t(order.ordered_at)} IV {order.dose_mg} mg ({order.dose_mg_per_kg} mg/kg x "
            f"{order.weight_kg} kg) over {order.minutes} min: {order.volume_ml} mL at "
            f"{order.rate_ml_per_h} mL/h, VTBI {order.vtbi_ml} mL; second check "
            f"{order.checked_by or 'NOT DONE'} {_t(order.checked_at)}"
        )
    for device in session.esketamine_devices.order_by("number"):
        lines.append(f"{_t(device.administered_at)} esketamine device {device.number} (28 mg)")
    lines.append("")
    lines.append("MONITORING")
    for reading in session.vitals.order_by("taken_at", "id"):
        lines.append(
            f"{_t(reading.taken_at)} BP {reading.systolic_mmhg or '-'}/"
            f"{reading.diastolic_mmhg or '-'} HR {reading.heart_rate_bpm or '-'} SpO2 "
            f"{reading.spo2_pct or '-'} RR {reading.respiratory_rate_per_min or '-'} MOAA/S "
            f"{reading.moaas if reading.moaas is not None else '-'}"
        )
    for alert in session.alerts.order_by("id"):
        lines.append(
            f"  ALERT {alert.message}; action: {alert.action or 'NOT ACKNOWLEDGED'} "
            f"({alert.acknowledged_by or '-'})"
        )
    for intervention in session.interventions.order_by("given_at", "id"):
        lines.append(
            f"{_t(intervention.given_at)} INTERVENTION {intervention} ({intervention.recorded_by})"
        )
    for cadss in session.cadss_scores.order_by("scored_at", "id"):
        lines.append(f"{_t(cadss.scored_at)} CADSS total {cadss.total}")
    lines.append("")
    lines.append("ADVERSE EVENTS")
    events = list(session.adverse_events.order_by("onset_at", "id"))
    lines.extend(
        f"{_t(e.onset_at)} {e}: {e.get_severity_display()}, {e.get_outcome_display()}"
        for e in events
    )
    if not events:
        lines.append("None recorded.")
    lines.append("")
    lines.append("DISCHARGE")
    for d in session.discharge_assessments.order_by("assessed_at", "id"):
        lines.append(
            f"{_t(d.assessed_at)} sedation resolved {d.sedation_resolved}, dissociation resolved "
            f"{d.dissociation_resolved}, respiratory depression resolved "
            f"{d.respiratory_depression_resolved}, vitals acceptable {d.vitals_acceptable}, "
            f"escort {d.escort_name or d.escort_present}; {d.gate_status.upper()}"
        )
    lines.append(f"Discharged: {_t(session.discharged_at)}")
    lines.append("")
    lines.append("HISTORY")
    for move in session.transitions.order_by("at", "id"):
        if move.to_status == "signed":
            continue  # the signature is not part of what is signed
        lines.append(f"{_t(move.at)} {move.from_status} -> {move.to_status} by {move.actor}")
    return "\n".join(lines) + "\n"


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
