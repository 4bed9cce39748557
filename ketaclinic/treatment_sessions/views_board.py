"""Pages for the whole floor (not one session): the nurses' room board, the REMS monitoring
form worklist with its submission form, and the printable REMS Patient Monitoring Form.

The board refreshes itself: the page polls its rows partial every 15 seconds with the
`X-KC-Background` header, so the idle timeout (accounts.middleware) does not count polling as the
user being active. Times are shown in the clinic's own time zone.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from ketaclinic.accounts import access
from ketaclinic.accounts.middleware import BACKGROUND_HEADER
from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.clinical import get_treatment
from ketaclinic.core import clock
from ketaclinic.core.http import AuthenticatedRequest
from ketaclinic.core.reversing import reverse_with_id
from ketaclinic.core.validation import add_service_errors
from ketaclinic.screening.templatetags.intake_labels import TREATMENT_LABELS
from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.forms_board import RemsSubmissionForm
from ketaclinic.treatment_sessions.rems import REQUIRED, rems_missing

POLL_SECONDS = 15
# The Django session remembers which patients the board last showed (per clinic), so polling
# records a read only when the set of patients on screen changes.
_BOARD_SEEN = "kc_board_seen_{}"


def _clinic_id_from(request: AuthenticatedRequest, permission: str) -> tuple[int, list[int]]:
    """The clinic asked for (?clinic=), or the user's first, and all the user's clinics for the
    picker; another clinic is 404 (the selectors check it again)."""
    access.require(request.user, permission)
    ids = access.clinic_ids_for(request.user, permission)
    wanted = request.GET.get("clinic")
    if not wanted:
        return ids[0], ids
    try:
        clinic_id = int(wanted)
    except ValueError:
        raise Http404 from None
    if clinic_id not in ids:
        raise Http404
    return clinic_id, ids


def _clinic_from(request: AuthenticatedRequest, permission: str = "course.view") -> Clinic:
    clinic_id, _ = _clinic_id_from(request, permission)
    return access.require_clinic(request.user, permission, clinic_id)


def _audit_board(request: AuthenticatedRequest, board: selectors.RoomBoard) -> None:
    shown = sorted(s.session.patient_id for c in board.chairs for s in c.sessions)
    key = _BOARD_SEEN.format(board.clinic.pk)
    if request.headers.get(BACKGROUND_HEADER) and request.session.get(key) == shown:
        return  # the same patients as the last audited view of this board
    request.session[key] = shown
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=board.clinic.pk,
        object_type="treatment_sessions.treatmentsession",
        detail=f"room board: {len(shown)} patients in chairs",
    )


def _board(request: AuthenticatedRequest) -> tuple[selectors.RoomBoard, dict[str, Any]]:
    clinic_id, ids = _clinic_id_from(request, "course.view")
    board = selectors.room_board(request.user, clinic_id, clock.now())
    _audit_board(request, board)
    return board, {
        "board": board,
        "board_rows": _board_rows_html(board),
        # The picker only for users of several clinics (one query saved on every poll).
        "clinics": selectors.board_clinics(request.user) if len(ids) > 1 else [board.clinic],
        "poll_seconds": POLL_SECONDS,
        "background_header": BACKGROUND_HEADER,
    }


def _board_rows_html(board: selectors.RoomBoard) -> SafeString:
    """The board's table rows (every text escaped), in the clinic's time zone. Twenty chairs of
    eight cells, polled every few seconds by every screen: written here, not by a template loop
    (the route to each session is reversed once, core.reversing)."""
    tz = ZoneInfo(board.clinic.timezone)
    lines = []
    for row in board.chairs:
        chair = f"{escape(row.chair.name)}" if row.chair else "<em>No chair</em>"
        if not row.sessions:
            name = escape(row.chair.name) if row.chair else ""
            lines.append(
                f'<tr data-testid="board-free"><th scope="row">{name}</th>'
                '<td colspan="7" class="muted">Free</td></tr>'
            )
        for entry in row.sessions:
            t, patient = entry.session, entry.session.patient
            status = escape(t.status)
            minutes = entry.minutes_since_first_dose
            due = "–"
            if entry.next_vitals_due:
                overdue = entry.vitals_overdue
                attrs = ' class="overdue" data-testid="vitals-overdue"' if overdue else ""
                due = (
                    f"<span{attrs}>{entry.next_vitals_due.astimezone(tz):%H:%M}"
                    f"{' (overdue)' if overdue else ''}</span>"
                )
            alerts = "0"
            if entry.open_alerts:
                alerts = (
                    '<strong class="alert-count" data-testid="open-alerts">'
                    f"{entry.open_alerts}</strong>"
                )
            url = reverse_with_id("treatment_sessions:workspace", t.pk)
            lines.append(
                f'<tr data-testid="board-row" data-session="{t.pk}" class="status-{status}'
                f'{" has-alerts" if entry.open_alerts else ""}">'
                f'<th scope="row">{chair}</th>'
                f"<td>{escape(patient.last_name)}, {escape(patient.first_name)} "
                f'<small class="muted">{escape(patient.mrn)}</small></td>'
                f"<td>{escape(TREATMENT_LABELS.get(t.treatment, t.treatment or '—'))}</td>"
                f'<td><span class="status status-{status}">{escape(t.get_status_display())}'
                "</span></td>"
                f'<td class="num">{"–" if minutes is None else minutes}</td>'
                f"<td>{due}</td>"
                f'<td class="num">{alerts}</td>'
                f'<td><a href="{escape(url)}">Open session</a></td></tr>'
            )
    # Safe: every text above was escaped; the rest is fixed markup and integers.
    return mark_safe("\n".join(lines))  # noqa: S308


@login_required
@require_GET
def room_board(request: AuthenticatedRequest) -> HttpResponse:
    """Every chair of the clinic: patient, treatment, phase, minutes since the first dose, next
    vital signs due and open alerts."""
    board, context = _board(request)
    with timezone.override(ZoneInfo(board.clinic.timezone)):
        return render(request, "treatment_sessions/room_board.html", context)


@login_required
@require_GET
def room_board_rows(request: AuthenticatedRequest) -> HttpResponse:
    """The board's rows alone, for htmx polling."""
    board, context = _board(request)
    with timezone.override(ZoneInfo(board.clinic.timezone)):
        return render(request, "treatment_sessions/_board_rows.html", context)


# --- REMS Patient Monitoring Forms: worklist, submission, printable form ----------------------


def _worklist_rows(rows: list[Any], today: Any) -> list[dict[str, Any]]:
    return [
        {"session": s, "due_on": s.due_on, "days_left": (s.due_on - today).days,
         "days_overdue": (today - s.due_on).days, "submission": s.submission}
        for s in rows
    ]  # fmt: skip


@login_required
@require_GET
def rems_worklist(request: AuthenticatedRequest) -> HttpResponse:
    """Esketamine sessions whose REMS monitoring form is overdue, due (within 7 days of the
    session) or submitted."""
    clinic = _clinic_from(request, "session.record")
    today = clock.today_in(clinic.timezone)
    worklist = selectors.rems_worklist(request.user, today=today, clinic_id=clinic.pk)
    buckets = {
        "overdue": _worklist_rows(worklist.overdue, today),
        "due": _worklist_rows(worklist.due, today),
        "submitted": _worklist_rows(worklist.submitted, today),
    }
    record_event(
        action=Action.LIST,
        user=request.user,
        clinic_id=clinic.pk,
        object_type="treatment_sessions.remssubmission",
        detail=(
            f"REMS worklist: {len(worklist.overdue)} overdue, {len(worklist.due)} due, "
            f"{len(worklist.submitted)} submitted"
        ),
    )
    with timezone.override(ZoneInfo(clinic.timezone)):
        return render(
            request,
            "treatment_sessions/rems_worklist.html",
            {
                "clinic": clinic,
                "clinics": list(access.clinics_for(request.user, "session.record")),
                "today": today,
                "buckets": buckets,
            },
        )


def _esketamine_session(request: AuthenticatedRequest, session_id: int, permission: str) -> Any:
    session = selectors.get_session(request.user, session_id, permission)
    if not get_treatment(session.treatment).is_esketamine:
        raise Http404  # only esketamine sessions have a REMS monitoring form
    return session


@login_required
@require_http_methods(["GET", "POST"])
def rems_submit(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    """Record that the session's REMS monitoring form was submitted (date, method,
    confirmation); the service refuses incomplete forms, future dates and a second submission."""
    session = _esketamine_session(request, session_id, "session.record")
    zone = ZoneInfo(session.clinic.timezone)
    if request.method == "POST":
        form = RemsSubmissionForm(request.POST)
        if form.is_valid():
            try:
                services.rems_submission_record(
                    actor=request.user, session=session, **form.cleaned_data
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request, f"REMS form of {session.patient.full_name} recorded as submitted."
                )
                url = reverse("treatment_sessions:rems_worklist")
                return HttpResponseRedirect(f"{url}?clinic={session.clinic_id}")
        status = 400
    else:
        form = RemsSubmissionForm(
            initial={"submitted_on": clock.today_in(session.clinic.timezone), "method": "online"}
        )
        status = 200
        record_event(
            action=Action.READ,
            user=request.user,
            clinic_id=session.clinic_id,
            patient_id=session.patient_id,
            obj=session,
            detail="REMS form submission page",
        )
    with timezone.override(zone):
        return render(
            request,
            "treatment_sessions/rems_submit.html",
            {
                "session": session,
                "form": form,
                "due_on": selectors.rems_due_on(session),
                "missing": rems_missing(session),
            },
            status=status,
        )


# The form's fields as the official Patient Monitoring Form groups them (label, key).
PRINT_SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Patient information", [
        ("Patient name", "patient_name"),
        ("Date of birth", "patient_date_of_birth"),
        ("Concomitant medications (changes reported at check-in)", "concomitant_medications"),
    ]),
    ("Healthcare setting and monitoring", [
        ("Healthcare setting", "setting"),
        ("Health care provider who monitored the patient", "monitoring_hcp"),
        ("Date of treatment session", "date"),
        ("SPRAVATO dose administered (mg)", "dose_mg"),
        ("Lot number", "lot_number"),
        ("Time of first device", "first_device_at"),
        ("End of monitoring", "monitoring_ended_at"),
        ("Total time the patient was monitored (minutes)", "total_minutes"),
        ("When would the patient have been ready to leave?", "ready_to_leave_at"),
    ]),
    ("Vital signs", [
        ("Vital signs acceptable before dosing?", "vitals_acceptable_before_dosing"),
        ("Vital signs acceptable before the end of monitoring?",
         "vitals_acceptable_before_completion"),
        ("Blood pressure before dosing (mmHg)", "bp_pre_dose"),
        ("Blood pressure about 40 minutes after dosing (mmHg)", "bp_40_min"),
        ("Blood pressure before the end of monitoring (mmHg)", "bp_before_completion"),
    ]),
    ("Adverse events during the session", [
        ("Sedation", "sedation"),
        ("Dissociation", "dissociation"),
        ("Respiratory depression", "respiratory_depression"),
        ("Adverse events recorded", "adverse_events"),
    ]),
]  # fmt: skip


def _print_sections(form: dict[str, Any]) -> list[dict[str, Any]]:
    sections = []
    for number, (title, fields) in enumerate(PRINT_SECTIONS, start=1):
        rows = []
        for label, key in fields:
            value = form.get(key)
            rows.append(
                {"label": label, "key": key, "value": value,
                 "is_bool": isinstance(value, bool), "is_list": isinstance(value, list),
                 "missing": key in REQUIRED and value is None}
            )  # fmt: skip
        sections.append({"number": number, "title": title, "rows": rows})
    return sections


_DATETIME_KEYS = frozenset({"first_device_at", "monitoring_ended_at", "ready_to_leave_at"})
_DATE_KEYS = frozenset({"date", "patient_date_of_birth"})


def _print_value(row: dict[str, Any], tz: Any) -> str:
    """One field's cell, as the template's if/elif chain wrote it (escaped)."""
    value, key = row["value"], row["key"]
    if row["missing"]:
        return '<strong class="flag">MISSING</strong>'
    if row["is_bool"]:
        yes, no = ("☒", "☐") if value else ("☐", "☒")
        return f'<span class="box">{yes} Yes</span> <span class="box">{no} No</span>'
    if row["is_list"]:
        return "; ".join(escape(str(e)) for e in value) if value else "None"
    if value is None:
        return '<span class="muted">not recorded</span>'
    if key in _DATETIME_KEYS:
        return f"{value.astimezone(tz):%Y-%m-%d %H:%M}"
    if key in _DATE_KEYS:
        return f"{value:%Y-%m-%d}"
    if key == "concomitant_medications":
        return escape(value) if value else "No changes reported"
    return escape(str(value))


def _sections_html(sections: list[dict[str, Any]]) -> SafeString:
    """The form's numbered sections (every text escaped), in the current time zone: the markup
    the template's nested loops and per-field if/elif chain wrote, byte for byte."""
    tz = timezone.get_current_timezone()
    out = []
    for section in sections:
        out.append(
            '\n<section data-testid="rems-section">\n'
            f"  <h2>Section {section['number']}: {escape(section['title'])}</h2>\n"
            "  <table><tbody>\n  "
        )
        for row in section["rows"]:
            out.append(
                f'\n    <tr class="{"missing" if row["missing"] else ""}"'
                f' data-field="{escape(row["key"])}">\n'
                f'      <th scope="row">{escape(row["label"])}</th>\n'
                f"      <td>{_print_value(row, tz)}</td>\n"
                "    </tr>\n  "
            )
        out.append("\n  </tbody></table>\n</section>\n")
    # Safe: every text from the database went through escape(); the rest is fixed markup.
    return mark_safe("".join(out))  # noqa: S308


@login_required
@require_GET
def rems_print(request: AuthenticatedRequest, session_id: int) -> HttpResponse:
    """The REMS Patient Monitoring Form of one esketamine session, laid out like the official
    form, with its version and every missing field flagged. Printing is audited."""
    session, form = selectors.rems_print_form(request.user, session_id)
    # What rems.rems_missing says, read off the form already built (it would build it again):
    # nothing is missing before the first device, since nothing was given.
    missing = (
        [f"REMS form: {label} is missing." for key, label in REQUIRED.items() if form[key] is None]
        if form["first_device_at"] is not None
        else []
    )
    record_event(
        action=Action.PRINT,
        user=request.user,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        obj=session,
        detail=f"REMS monitoring form printed ({form['form_version']}); "
        f"{len(missing)} field(s) missing",
    )
    with timezone.override(ZoneInfo(session.clinic.timezone)):
        return render(
            request,
            "treatment_sessions/rems_print.html",
            {
                "session": session,
                "clinic": session.clinic,
                "form": form,
                "sections_html": _sections_html(_print_sections(form)),
                "missing": missing,
                # The reverse one-to-one raises a subclass of AttributeError when absent.
                "submission": getattr(session, "rems_submission", None),
                "printed_by": request.user,
                "printed_at": clock.now(),
            },
        )
