"""Plain-words labels for codes shown on intake, course and board pages."""

from __future__ import annotations

from django import template

from ketaclinic.clinical import INSTRUMENTS

register = template.Library()

STATUS_LABELS = {
    "eligible": "Eligible",
    "needs_review": "Needs review",
    "ineligible": "Ineligible",
    "not_assessed": "Not assessed",
}
TREATMENT_LABELS = {
    "iv_ketamine": "IV ketamine",
    "im_ketamine": "IM ketamine",
    "oral_ketamine": "Oral ketamine",
    "esketamine_trd": "Esketamine (TRD)",
    "esketamine_mdsi": "Esketamine (MDSI)",
}


@register.filter
def eligibility_label(status: str) -> str:
    return STATUS_LABELS.get(status, str(status).replace("_", " "))


@register.filter
def treatment_label(code: str) -> str:
    return TREATMENT_LABELS.get(code, code or "—")


@register.filter
def instrument_title(code: str) -> str:
    instrument = INSTRUMENTS.get(code)
    return instrument.title if instrument else code


@register.filter
def protocol_title(code: str) -> str:
    from ketaclinic.clinical import PROTOCOLS

    protocol = PROTOCOLS.get(code)
    return protocol.title if protocol else code
