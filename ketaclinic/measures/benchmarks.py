"""Published outcome figures to compare a clinic's own rates with (reference §6).

Compare like with like: PHQ-9 cohorts with community-clinic studies, MADRS with trials. Each
figure names its study, regimen, time point and evidence tag as the reference gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PublishedOutcome:
    instrument: str
    study: str
    setting: str
    time_point: str
    response_pct: Decimal | None
    remission_pct: Decimal | None
    worsened_pct: Decimal | None
    tag: str  # [V] verified, [M] from memory (reference §6)


PUBLISHED: tuple[PublishedOutcome, ...] = (
    PublishedOutcome(
        "phq9",
        "McInnes 2022, J Affect Disord (178 US community clinics, n=537)",
        "4-8 IV infusions over 7-28 days",
        "14-31 days",
        Decimal("53.6"),
        Decimal("28.9"),
        Decimal("8.4"),
        "[V]",
    ),
    PublishedOutcome(
        "phq9",
        "Oliver 2022, J Clin Psychiatry (multisite private clinic, n=424)",
        "0.5 mg/kg IV ×6 within 21 days",
        "within 6 weeks",
        Decimal("50"),
        Decimal("20"),
        None,
        "[V]",
    ),
    PublishedOutcome(
        "madrs",
        "Esketamine monotherapy trial (J&J 2025)",
        "esketamine alone vs placebo",
        "week 4",
        None,
        Decimal("22.5"),
        None,
        "[V]",
    ),
    PublishedOutcome(
        "madrs",
        "ESCAPE-TRD 2023, NEJM (n=676; remission MADRS ≤ 10)",
        "esketamine vs quetiapine XR",
        "week 8",
        None,
        Decimal("27.1"),
        None,
        "[V]",
    ),
    PublishedOutcome(
        "madrs",
        "TRANSFORM-2 (Popova 2019)",
        "esketamine + new oral antidepressant",
        "week 4",
        Decimal("69"),
        Decimal("53"),
        None,
        "[M]",
    ),
    PublishedOutcome(
        "qids_sr16",
        "ELEKT-D 2023, NEJM (n=403)",
        "IV 0.5 mg/kg twice weekly × 3 weeks",
        "end of treatment",
        Decimal("55.4"),
        None,
        None,
        "[V]",
    ),
)


def published_for(instrument: str) -> list[PublishedOutcome]:
    return [figure for figure in PUBLISHED if figure.instrument == instrument]
