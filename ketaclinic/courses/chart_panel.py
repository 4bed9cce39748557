"""The courses panel of the patient chart: each course's status, phase and next sessions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.safestring import SafeString, mark_safe

from ketaclinic.accounts import access
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.templates import text
from ketaclinic.courses import selectors
from ketaclinic.courses.models import TreatmentCourse
from ketaclinic.patients.models import Patient


def courses_facts(since: datetime) -> Mapping[str, Any]:
    """Read with the other panels' facts (patients.chart): most patients have no course."""
    return {"has_courses": Exists(TreatmentCourse.objects.filter(patient_id=OuterRef("pk")))}


def courses_prepare(
    user: Any, patient: Patient, facts: Mapping[str, Any], reads: Any
) -> Mapping[str, Any] | None:
    """The panel's reads, asked for with the other panels' (patients.chart); None hides it."""
    if not access.has_permission(user, "course.view", patient.clinic_id):
        return None
    has_courses = facts.get("has_courses", True)
    return {
        "has_courses": has_courses,
        "read": selectors.patient_courses_reads(patient.pk, reads) if has_courses else None,
    }


def courses_panel(
    user: Any,
    patient: Patient,
    facts: Mapping[str, Any],
    prepared: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    if prepared is None:
        if not access.has_permission(user, "course.view", patient.clinic_id):
            return None
        prepared = {"has_courses": facts.get("has_courses", True), "read": None}
    context: dict[str, Any] = {
        "patient": patient,
        "tz": patient.clinic.timezone,
        "courses": selectors.patient_courses(patient, read=prepared["read"])
        if prepared["has_courses"]
        else [],
        "can_plan": access.has_permission(user, "course.manage", patient.clinic_id),
        "can_record_sessions": access.has_permission(user, "session.record", patient.clinic_id),
    }
    context["html"] = panel_html(context)
    return context


def panel_html(ctx: Mapping[str, Any]) -> SafeString:
    """The panel below its stylesheet link as HTML: the bytes `courses/chart_panel.html` wrote
    with a `{% url %}`, a date filter and a dozen lookups per appointment (the chart renders
    it on every read; tests/courses/test_chart_panel_html.py renders the former template
    beside it)."""
    t = text
    tz = ZoneInfo(ctx["tz"])
    out = ["\n\n"]
    courses = ctx["courses"]
    for c in courses:
        course = c.course
        start = f"{course.start_date:%Y-%m-%d}" if course.start_date else ""
        out.append(
            '\n<div class="course-summary" data-testid="chart-course">\n'
            f'  <p><a href="{t(reverse_with_id("courses:detail", course.pk))}"><strong>'
            f"{t(c.protocol_title)}</strong></a> from {start}: "
            f'<span class="status status-{t(course.status)}">{t(course.get_status_display())}'
            f'</span> <span class="status">{t(course.get_phase_display())}</span> · '
            f"{t(c.given)} of {t(c.booked)} sessions given</p>\n  "
        )
        if c.next_appointments:
            out.append("<ul>")
            for a in c.next_appointments:
                starts = date_format(a.starts_at.astimezone(tz), "D Y-m-d H:i")
                out.append(
                    f'<li><a href="{t(reverse_with_id("courses:appointment", a.pk))}">'
                    f"{t(starts)}</a> · {t(a.chair.name)} · session {t(a.number)} "
                    f"({t(a.get_phase_display().lower())}, {t(a.dose_label)})"
                )
                if ctx["can_record_sessions"]:
                    href = reverse_with_id("treatment_sessions:for_appointment", a.pk)
                    out.append(
                        f' · <a href="{t(href)}" data-testid="chart-open-session">session</a>'
                    )
                out.append("</li>")
            out.append("</ul>")
        out.append("\n</div>\n")
    if not courses:
        out.append('\n<p class="muted">No treatment course.</p>\n')
    out.append("\n")
    if ctx["can_plan"]:
        href = reverse("courses:create", args=[ctx["patient"].pk])
        out.append(f'<p><a href="{t(href)}" role="button" class="secondary">Plan a course</a></p>')
    out.append("\n")
    # Safe: every text and number above went through conditional_escape().
    return mark_safe("".join(out))  # noqa: S308
