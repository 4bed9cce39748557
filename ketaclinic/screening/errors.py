"""A rule that stops an action, with every reason and its source (pages and API show them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class BlockReason:
    """Why an action is stopped: a stable code, plain words, the rule's source, its severity."""

    code: str
    message: str
    source: str
    severity: str = "block"

    @classmethod
    def of(cls, reason: Any) -> BlockReason:
        """From a `ketaclinic.clinical.Reason`, another BlockReason, or a stored mapping."""
        if isinstance(reason, Mapping):
            return cls(reason["code"], reason["message"], reason["source"], reason["severity"])
        return cls(reason.code, reason.message, reason.source, reason.severity)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class Blocked(ValidationError):
    """A ValidationError (so forms show it and nothing is written) that carries its reasons.

    Pages list the reasons under the message; the API answers 409 with them.
    """

    def __init__(self, message: str, reasons: Iterable[Any] = (), field: str = "__all__"):
        self.reasons = [BlockReason.of(r) for r in reasons]
        self.summary = message
        lines = [message, *(f"{r.message} ({r.source})" for r in self.reasons)]
        super().__init__({field: lines})
