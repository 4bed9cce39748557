"""Result types that explain themselves: a status plus the reasons behind it.

``Reason`` and ``Gate`` are shared by eligibility, the pre-dose gate and the discharge check;
``Alert`` is what monitoring raises for one vital-sign reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ALERT_SEVERITIES",
    "GATE_STATUSES",
    "REASON_SEVERITIES",
    "Alert",
    "AlertSeverity",
    "Gate",
    "GateStatus",
    "Reason",
    "ReasonSeverity",
]

# "contraindication"/"warning" explain eligibility; "hold"/"review" explain a gate.
ReasonSeverity = Literal["contraindication", "warning", "hold", "review"]
REASON_SEVERITIES: tuple[ReasonSeverity, ...] = ("contraindication", "warning", "hold", "review")

GateStatus = Literal["proceed", "review", "hold"]
GATE_STATUSES: tuple[GateStatus, ...] = ("proceed", "review", "hold")

# "urgent": act now (crisis-level BP, desaturation, respiratory depression); "warning": assess.
AlertSeverity = Literal["urgent", "warning"]
ALERT_SEVERITIES: tuple[AlertSeverity, ...] = ("urgent", "warning")


@dataclass(frozen=True)
class Reason:
    """Why a decision came out as it did: a stable code, plain words and where the rule is from."""

    code: str
    message: str
    source: str
    severity: ReasonSeverity


@dataclass(frozen=True)
class Alert:
    """One out-of-range vital sign, with the rule's source."""

    code: str
    message: str
    severity: AlertSeverity
    source: str


@dataclass(frozen=True)
class Gate:
    """A go/no-go decision: ``proceed``, ``review`` (a prescriber must acknowledge) or ``hold``."""

    status: GateStatus
    reasons: tuple[Reason, ...] = ()

    @property
    def proceed(self) -> bool:
        """True when nothing stands in the way."""
        return self.status == "proceed"

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes in order, handy for display and tests."""
        return tuple(reason.code for reason in self.reasons)
