"""The intake panel of the patient chart: referral, eligibility with reasons and override."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from ketaclinic.accounts import access
from ketaclinic.core.templates import text
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors
from ketaclinic.screening.templatetags.intake_labels import (
    eligibility_label,
    instrument_title,
    treatment_label,
)


def intake_facts(since: datetime) -> Mapping[str, Any]:
    """The chart summary's row, read with the other panels' facts (patients.chart)."""
    return selectors.summary_facts()


def intake_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> Mapping[str, Any] | None:
    """The panel's reads, asked for with the other panels' (patients.chart); None hides it."""
    clinical = access.has_permission(user, "intake.view", patient.clinic_id)
    can_refer = access.has_permission(user, "referral.manage", patient.clinic_id)
    if not (clinical or can_refer):
        return None
    return {
        "clinical": clinical,
        "can_refer": can_refer,
        "read": selectors.chart_reads(patient.pk, facts, reads) if clinical else None,
    }


def intake_panel(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Any] | None = None,
    prepared: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    if prepared is None:
        prepared = {
            "clinical": access.has_permission(user, "intake.view", patient.clinic_id),
            "can_refer": access.has_permission(user, "referral.manage", patient.clinic_id),
            "read": None,
        }
    clinical, can_refer = prepared["clinical"], prepared["can_refer"]
    if not (clinical or can_refer):
        return None
    context: dict[str, Any] = {
        "patient": patient,
        "summary": selectors.chart_summary(
            patient, clinical=clinical, facts=facts, read=prepared["read"]
        ),
        "clinical": clinical,
        "can_refer": can_refer,
        "can_transport": access.has_permission(user, "transport.record", patient.clinic_id),
    }
    context["html"] = panel_html(context)
    return context


def eligibility_html(v: Any, tz: ZoneInfo) -> str:
    """What `screening/_eligibility.html` writes for one EligibilityView, in time zone `tz`."""
    t = text
    decision, override = v.decision, v.override
    out = [
        f'\n<div class="eligibility" data-testid="eligibility-{t(v.treatment)}">\n'
        f'  <p><strong>{t(v.title)}</strong>: <span class="status status-{t(v.status)}" '
        f'data-testid="eligibility-status">{t(eligibility_label(v.status))}</span>\n  '
    ]
    if decision:
        as_of = f"{decision.as_of:%Y-%m-%d}" if decision.as_of else ""
        out.append(f'<small class="muted">as of {as_of}')
        if v.changed_from:
            out.append(
                f" · <strong>changed from {t(eligibility_label(v.changed_from).lower())}"
                f"</strong> ({t(decision.trigger)})"
            )
        out.append("</small>")
    out.append("</p>\n  ")
    if decision and decision.reasons:
        out.append('\n  <ul class="reasons">\n    ')
        for r in decision.reasons:
            out.append(
                f'<li class="{t(r.get("severity", ""))}"><strong>{t(r.get("message", ""))}'
                f'</strong> <span class="status">{t(r.get("severity", ""))}</span>'
                f'<span class="source">Source: {t(r.get("source", ""))}</span></li>'
            )
        out.append("\n  </ul>\n  ")
    out.append("\n  ")
    if override:
        codes = conditional_escape(", ").join(
            conditional_escape(code) for code in override.covered_reason_codes
        )
        out.append(
            '\n  <div class="override" data-testid="override">\n'
            f"    <strong>Override signed by {t(override.signature)}</strong> on "
            f"{override.signed_at.astimezone(tz):%Y-%m-%d %H:%M}: “{t(override.reason)}”\n"
            f"    <small>Covers: {codes} · seal "
            f"{t(Truncator(override.content_hash).chars(13))}</small>\n  </div>\n  "
        )
    elif v.status == "needs_review":
        out.append(
            '\n  <p class="muted">A prescriber must sign an override with a written reason '
            "before a course can be planned.</p>\n  "
        )
    elif v.status == "ineligible":
        out.append(
            '\n  <p class="field-error">Ineligible: a contraindication cannot be overridden; '
            "no course can be planned.</p>\n  "
        )
    out.append("\n</div>\n")
    return "".join(out)


def panel_html(ctx: Mapping[str, Any]) -> SafeString:
    """The panel below its stylesheet link as HTML: the bytes `screening/chart_panel.html`
    and its `_eligibility.html` includes wrote (the chart renders it on every read;
    tests/screening/test_chart_panel_html.py renders the former templates beside it)."""
    t = text
    s, patient = ctx["summary"], ctx["patient"]
    out = ["\n\n"]
    intake = s.intake
    if not intake:
        out.append('\n<p class="muted">No referral yet.')
        if ctx["can_refer"]:
            href = reverse("screening:referral_existing", args=[patient.pk])
            out.append(f' <a href="{t(href)}">Register a referral</a>')
        out.append("</p>\n")
    else:
        referred = f"{intake.referred_on:%Y-%m-%d}" if intake.referred_on else ""
        out.append(
            f'\n<p>Referral: <span class="status status-{t(intake.status)}" '
            f'data-testid="chart-intake-status">{t(intake.get_status_display())}</span> · '
            f"{t(intake.get_referral_source_display())}"
        )
        if intake.referring_clinician_name:
            out.append(f" ({t(intake.referring_clinician_name)})")
        out.append(f", {referred}")
        if intake.intended_treatment:
            out.append(f" · screening for {t(treatment_label(intake.intended_treatment))}")
        out.append("\n")
        if ctx["can_refer"]:
            href = reverse("screening:intake_edit", args=[intake.pk])
            out.append(f' · <a href="{t(href)}">Referral details</a>')
        out.append("</p>\n")
    out.append("\n")
    if ctx["clinical"]:
        out.append("\n<p>")
        if s.primary_diagnosis:
            out.append(t(s.primary_diagnosis))
        else:
            out.append('<span class="muted">No diagnosis recorded.</span>')
        if s.latest_measures:
            out.append(
                " · "
                + " · ".join(
                    f"{t(instrument_title(m.instrument))} {t(m.total)}"
                    + (f" ({t(m.severity)})" if m.severity else "")
                    for m in s.latest_measures
                )
            )
        out.append("</p>\n")
        out.extend(
            f'<p class="form-errors" role="alert">{t(flag)}</p>' for flag in s.suicide_risk_flags
        )
        out.append("\n")
        if s.eligibility:
            tz = ZoneInfo(patient.clinic.timezone)
            out.extend(eligibility_html(v, tz) for v in s.eligibility)
        href = reverse("screening:workspace", args=[patient.pk])
        out.append(
            f'\n<p><a href="{t(href)}" role="button" class="secondary">Open intake</a></p>\n'
        )
    out.append('\n<p class="muted">Consent: ')
    kinds = s.consent_kinds
    if kinds:
        out.append(
            "; ".join(
                "esketamine treatment" if kind == "esketamine" else "off-label ketamine"
                for kind in kinds
            )
        )
    else:
        out.append("none signed")
    out.append(" · REMS enrolment: ")
    out.append(t(s.rems.enrolment_id) if s.rems else "none")
    out.append(" · Ride home: ")
    out.append(t(s.transport.escort_name) if s.transport else "not recorded")
    if ctx["can_transport"]:
        href = reverse("screening:transport", args=[patient.pk])
        out.append(f' (<a href="{t(href)}">edit</a>)')
    out.append("</p>\n")
    # Safe: every text and number above went through conditional_escape().
    return mark_safe("".join(out))  # noqa: S308
