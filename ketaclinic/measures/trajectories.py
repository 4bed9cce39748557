"""Score trajectories and what they mean for the course: baseline, status, relapse, late
response, end-of-induction outcome.

Every judgement comes from `ketaclinic.clinical` (`classify_changes`, `detect_relapse`,
`outcome_cutoffs`); this module only picks which scores to compare:

* baseline: the last score on or before the first session day (reference §10 rule 16; planned
  sessions have no time yet, so a same-day pre-session questionnaire counts as before);
* status: the latest score against the baseline;
* relapse: `detect_relapse` over the scores after the baseline;
* late responder: response or remission first reached only after more than
  LATE_RESPONSE_AFTER_SESSIONS sessions (issue 7; Osmind ORKA reports late responders at 10-12
  infusions, products.md §b). A score on day D counts the sessions given before D;
* end of induction: the first score in the END_OF_INDUCTION_WINDOW_DAYS days after the last
  induction session (McInnes 2022 measured 14-31 days after the first infusion, reference §6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from operator import attrgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ketaclinic.clinical import (
    INSTRUMENTS,
    ClinicalSettings,
    InvalidInput,
    OutcomeCutoffs,
    classify_changes,
    detect_relapse,
    outcome_cutoffs,
)
from ketaclinic.measures.timeline import CareTimeline

LATE_RESPONSE_AFTER_SESSIONS = 6
END_OF_INDUCTION_WINDOW_DAYS = 14

# Plain words for the change categories of clinical.classify_change, for patients and reports.
STATUS_WORDS = {
    "remission": "Remission",
    "response": "Response",
    "partial": "Partial response",
    "none": "No meaningful change",
    "worsened": "Worsened",
}
RESPONDED = frozenset({"remission", "response"})

# The same categories in the words a patient reads (lower is better on every instrument that has
# categories).
PLAIN_STATUS = {
    "remission": "Your score is now in the range your care team calls remission: few or no "
    "symptoms.",
    "response": "Your score has dropped by at least half since you started. Your care team calls "
    "this a response to treatment.",
    "partial": "Your score has dropped by at least a quarter since you started: a partial "
    "response.",
    "none": "Your score has not changed much since you started.",
    "worsened": "Your score is higher than when you started. Please talk to your care team.",
}


# The response flag of a positive suicide item (PHQ-9 item 9, any C-SSRS yes).
SAFETY_FLAG = "suicidal_ideation"


class ScorePoint(NamedTuple):
    """One score (a named tuple, not a dataclass: a two-year chart builds hundreds of them per
    request, and a frozen dataclass costs three times as much to build)."""

    response_id: int
    completed_at: datetime
    day: date  # in the clinic's time zone
    total: int
    severity: str
    flags: tuple[str, ...]

    @property
    def suicidal_ideation(self) -> bool:
        return SAFETY_FLAG in self.flags


@dataclass(frozen=True)
class Trajectory:
    instrument: str
    title: str
    points: tuple[ScorePoint, ...]
    baseline: ScorePoint | None = None
    latest: ScorePoint | None = None
    status: str | None = None
    status_note: str = ""
    change_pct: int | None = None
    cutoffs: OutcomeCutoffs | None = None
    relapse_on: date | None = None
    first_response: ScorePoint | None = None
    first_response_after_sessions: int | None = None
    end_of_induction: ScorePoint | None = None
    end_of_induction_status: str | None = None

    @property
    def late_responder(self) -> bool:
        sessions = self.first_response_after_sessions
        return sessions is not None and sessions > LATE_RESPONSE_AFTER_SESSIONS

    @property
    def status_words(self) -> str:
        return STATUS_WORDS.get(self.status or "", "")

    @property
    def has_outcomes(self) -> bool:
        return self.cutoffs is not None

    @property
    def response_line(self) -> float | None:
        """The total at which the response criterion is met, for drawing."""
        if self.cutoffs is None or self.baseline is None:
            return None
        return self.baseline.total * (100 - self.cutoffs.response_reduction_pct) / 100


def point_from(row: object, tz: ZoneInfo) -> ScorePoint:
    """A ScorePoint from a Response row (or anything with the same attributes)."""
    completed_at: datetime = row.completed_at  # type: ignore[attr-defined]
    return ScorePoint(
        response_id=row.pk,  # type: ignore[attr-defined]
        completed_at=completed_at,
        day=completed_at.astimezone(tz).date(),
        total=row.total,  # type: ignore[attr-defined]
        severity=row.severity,  # type: ignore[attr-defined]
        flags=tuple(row.flags),  # type: ignore[attr-defined]
    )


_ORDER = attrgetter("completed_at", "response_id")


def _cutoffs(code: str, settings: ClinicalSettings | None) -> OutcomeCutoffs | None:
    try:
        return outcome_cutoffs(code, settings=settings)
    except InvalidInput:
        return None  # an instrument without response/remission cut-offs (PCL-5, C-SSRS, ...)


def trajectory(
    code: str,
    points: Sequence[ScorePoint],
    timeline: CareTimeline | None,
    *,
    settings: ClinicalSettings | None = None,
) -> Trajectory:
    """The trajectory of one instrument's scores (oldest first) against the care timeline."""
    definition = INSTRUMENTS[code]
    ordered = tuple(sorted(points, key=_ORDER))
    base = Trajectory(
        instrument=code,
        title=definition.title,
        points=ordered,
        latest=ordered[-1] if ordered else None,
        cutoffs=_cutoffs(code, settings),
    )
    if base.cutoffs is None or not ordered:
        return base
    if timeline is None or timeline.first_session_on is None:
        return _with(base, status_note="No treatment course: no baseline to compare with.")
    first_day = timeline.first_session_on
    before = [p for p in ordered if p.day <= first_day]
    if not before:
        return _with(base, status_note="No score on or before the first session (baseline).")
    baseline = before[-1]
    after = ordered[ordered.index(baseline) + 1 :]
    if baseline.total <= 0:
        return _with(
            base, baseline=baseline, status_note="Baseline score is 0: change cannot be measured."
        )

    # Every score after the baseline classified at once (the clinical rule, checked once).
    categories = classify_changes(code, baseline.total, [p.total for p in after], settings=settings)
    latest = ordered[-1]
    status = categories[-1] if after else None
    change_pct = round(100 * (latest.total - baseline.total) / baseline.total) if after else None
    first_response = next(
        (p for p, category in zip(after, categories, strict=True) if category in RESPONDED), None
    )
    relapse_on = None
    if definition.moderate_threshold is not None and after:
        relapse_on = detect_relapse(
            code, baseline.total, [(p.day, p.total) for p in after], settings=settings
        )
    end_point, end_status = None, None
    last_induction = timeline.last_induction_session
    if last_induction is not None:
        end_point, end_status = next(
            (
                (p, category)
                for p, category in zip(after, categories, strict=True)
                if 0 < (p.day - last_induction.on).days <= END_OF_INDUCTION_WINDOW_DAYS
            ),
            (None, None),
        )
    return _with(
        base,
        baseline=baseline,
        status=status,
        status_note="" if after else "Baseline only: no score since the first session.",
        change_pct=change_pct,
        relapse_on=relapse_on,
        first_response=first_response,
        first_response_after_sessions=(
            timeline.sessions_before(first_response.day) if first_response else None
        ),
        end_of_induction=end_point,
        end_of_induction_status=end_status,
    )


def _with(base: Trajectory, **changes: object) -> Trajectory:
    return replace(base, **changes)  # type: ignore[arg-type]
