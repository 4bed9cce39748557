"""What to suggest to the prescriber when an esketamine session is missed (reference §1b).

The label's missed-dose guidance depends only on the phase of the course: during induction
(weeks 1-4) keep the current schedule; during maintenance, if symptoms have worsened, consider
returning to the previous frequency. It is shown as a suggestion, never applied automatically.

This belongs with the clinical rules; `ketaclinic.clinical` has no missed-dose function yet,
so the wording lives here, keyed by phase, until it moves there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketaclinic.clinical import TREATMENTS
from ketaclinic.courses.choices import CoursePhase

SOURCE = (
    "Spravato missed-dose guidance, jnjmedicalconnect 'Management of Missed Dose' "
    "(updated 10/2025), reference §1b [V]"
)


@dataclass(frozen=True)
class MissedDoseAdvice:
    phase: str
    message: str
    source: str = SOURCE
    suggests_more_frequent: bool = False


def missed_dose_advice(
    treatment: str, phase: str, *, maintenance_interval_weeks: int | None = None
) -> MissedDoseAdvice | None:
    """The suggestion for a missed session, or None when the treatment has no label rule."""
    if treatment not in TREATMENTS or not TREATMENTS[treatment].is_esketamine:
        return None
    if phase == CoursePhase.INDUCTION:
        return MissedDoseAdvice(
            phase,
            "Missed during induction (weeks 1-4): continue the current twice-weekly schedule "
            "with the next planned session; do not add an extra dose.",
        )
    previous = (
        "weekly"
        if maintenance_interval_weeks and maintenance_interval_weeks >= 2
        else "twice weekly"
    )
    return MissedDoseAdvice(
        phase,
        "Missed during maintenance: if depressive symptoms have worsened, consider returning "
        f"to the previous dosing frequency ({previous}); otherwise continue the current "
        "schedule.",
        suggests_more_frequent=True,
    )
