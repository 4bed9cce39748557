"""The treatments the clinic gives, by code.

A treatment is what a patient receives at a session (drug + route + indication); a protocol
(see ``protocols``) is how sessions of a treatment are scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ketaclinic.clinical.errors import InvalidInput

__all__ = ["ESKETAMINE_TREATMENTS", "TREATMENTS", "Route", "Treatment", "get_treatment"]

Route = Literal["iv", "im", "oral", "intranasal"]


@dataclass(frozen=True)
class Treatment:
    """A drug given by one route for one indication."""

    code: str
    title: str
    drug: Literal["ketamine", "esketamine"]
    route: Route
    source: str

    @property
    def is_esketamine(self) -> bool:
        """Esketamine (Spravato) follows its label and REMS rules."""
        return self.drug == "esketamine"


TREATMENTS: MappingProxyType[str, Treatment] = MappingProxyType(
    {
        "iv_ketamine": Treatment(
            "iv_ketamine",
            "IV racemic ketamine infusion (off-label)",
            "ketamine",
            "iv",
            "Reference §1a: 0.5 mg/kg over 40 min (Singh 2016, ELEKT-D 2023) [V]",
        ),
        "im_ketamine": Treatment(
            "im_ketamine",
            "IM racemic ketamine (off-label)",
            "ketamine",
            "im",
            "Reference §1c: commonly 0.5-1 mg/kg IM [U]",
        ),
        "oral_ketamine": Treatment(
            "oral_ketamine",
            "Oral racemic ketamine (off-label)",
            "ketamine",
            "oral",
            "Reference §1c: oral bioavailability ~20-25% (Andrade 2019) [V]",
        ),
        "esketamine_trd": Treatment(
            "esketamine_trd",
            "Esketamine nasal spray (Spravato) for treatment-resistant depression",
            "esketamine",
            "intranasal",
            "Spravato PI §1, §2 (reference §1b) [V]",
        ),
        "esketamine_mdsi": Treatment(
            "esketamine_mdsi",
            "Esketamine nasal spray (Spravato) for depression with acute suicidal ideation",
            "esketamine",
            "intranasal",
            "Spravato PI §1, §2 (reference §1b) [V]",
        ),
    }
)

ESKETAMINE_TREATMENTS = frozenset(code for code, t in TREATMENTS.items() if t.is_esketamine)


def get_treatment(code: object) -> Treatment:
    """Return the treatment for ``code`` or raise ``InvalidInput`` naming the known codes."""
    if not isinstance(code, str) or code not in TREATMENTS:
        known = ", ".join(TREATMENTS)
        raise InvalidInput(f"unknown treatment {code!r}; expected one of: {known}")
    return TREATMENTS[code]
