"""The printable progress report (for the patient and for the referring clinician) and the
score export, built from the same selectors as the chart panel."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from ketaclinic.clinical import INSTRUMENTS
from ketaclinic.core import clock
from ketaclinic.measures import selectors
from ketaclinic.measures.chart_panel import trajectory_views
from ketaclinic.measures.trajectories import PLAIN_STATUS
from ketaclinic.patients.models import Patient

PATIENT = "patient"
CLINICIAN = "clinician"


def progress_report(patient: Patient, *, audience: str) -> dict[str, Any]:
    now = clock.now()
    outcomes = selectors.patient_outcomes(patient)
    today = now.astimezone(outcomes.tz).date()
    timeline = outcomes.timeline
    return {
        "patient": patient,
        "audience": audience,
        "generated_at": now,
        "today": today,
        "outcomes": outcomes,
        "primary": outcomes.primary,
        "trajectories": trajectory_views(outcomes, today, expanded=True),
        "timeline": timeline,
        "sessions_given": timeline.sessions_before(today + timedelta(days=1)) if timeline else 0,
        "enrolment": outcomes.enrolment,
        "plain_status": PLAIN_STATUS,
    }


CSV_HEADER = (
    "completed_at_utc",
    "instrument",
    "instrument_version",
    "loinc_total",
    "total",
    "severity",
    "flags",
    "source",
)


def scores_csv(patient: Patient) -> str:
    """Every scored questionnaire of one patient, oldest first (no free text)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in selectors.responses_for(patient.pk).order_by("completed_at", "pk"):
        writer.writerow(
            (
                row.completed_at.isoformat(),
                INSTRUMENTS[row.instrument].title
                if row.instrument in INSTRUMENTS
                else row.instrument,
                row.instrument_version,
                row.loinc_total,
                row.total,
                row.severity,
                " ".join(row.flags),
                row.source,
            )
        )
    return out.getvalue()
