"""The REMS Patient Monitoring Form worklist (overdue / due / submitted by date), the submission
page (recorded and audited; bad input changes nothing) and the printable form."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ketaclinic.audit.models import AuditEvent
from ketaclinic.treatment_sessions import services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import RemsSubmission
from ketaclinic.treatment_sessions.rems import FORM_VERSION, rems_missing
from tests.screening.builders import NOW
from tests.treatment_sessions.builders import force_state
from tests.treatment_sessions.test_discharge_and_sign import ALL_CLEAR
from tests.treatment_sessions.test_pre_dose_gate import GOOD

pytestmark = pytest.mark.usefixtures("frozen_now")
WORKLIST = "/sessions/rems/"
BP = {"systolic_mmhg": 128, "diastolic_mmhg": 80, "heart_rate_bpm": 76, "spo2_pct": 98}


def esketamine_session(lg, clock, patient, *, lot, bp_at_40=True):
    """A discharged esketamine session of 56 mg from `lot`, 122 minutes long."""
    world = lg.world
    nurse = world.users["nurse"]
    session = services.session_create(
        actor=nurse, patient=patient, treatment="esketamine_trd", planned_dose_mg=56
    )
    session = force_state(world, session, SessionStatus.CHECKED_IN)
    services.session_record_pre_dose(actor=nurse, session=session, data=GOOD)
    session = force_state(world, session, SessionStatus.GATE_PASSED)
    services.session_record_administration(
        actor=nurse, session=session, location=lg.safe, lot=lot, dose_mg=56
    )
    services.session_start_dosing(actor=nurse, session=session)
    services.session_record_device(actor=nurse, session=session)
    services.session_record_vitals(actor=nurse, session=session, data=BP)
    clock.shift(timedelta(minutes=5))
    services.session_record_device(actor=nurse, session=session)
    services.session_transition(actor=nurse, session=session, to=SessionStatus.OBSERVING)
    clock.shift(timedelta(minutes=35))
    if bp_at_40:
        services.session_record_vitals(
            actor=nurse, session=session, data={**BP, "systolic_mmhg": 150}
        )
    clock.shift(timedelta(minutes=82))
    services.session_record_vitals(actor=nurse, session=session, data=BP)
    services.session_assess_discharge(actor=nurse, session=session, data=ALL_CLEAR)
    for step in (SessionStatus.READY_FOR_DISCHARGE, SessionStatus.DISCHARGED):
        session = services.session_transition(actor=nurse, session=session, to=step)
    return session


@pytest.fixture
def spravato_lot(lg):
    return lg.receive(lg.device, containers=12, lot_number="SPR-77")


def _section(html: str, name: str) -> str:
    start = html.index(f'data-testid="rems-{name}"')
    return html[start : html.index("</section>", start)]


def test_buckets_by_date(lg, frozen_now, client_for, spravato_lot):
    # Monday 2 March: session 1 (due 9 March). Thursday 5 March: sessions 2 and 3 (due 12 March).
    first = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    frozen_now.move_to(NOW + timedelta(days=3))
    second = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    third = esketamine_session(lg, frozen_now, lg.patient2, lot=spravato_lot)
    services.rems_submission_record(
        actor=lg.world.users["nurse"], session=third, submitted_on=date(2026, 3, 5),
        method="fax", confirmation="FAX-3141",
    )  # fmt: skip

    frozen_now.move_to(NOW + timedelta(days=6))  # Sunday 8 March: nothing overdue yet
    html = client_for("nurse").get(WORKLIST).content.decode()
    due = _section(html, "due")
    assert f'data-session="{first.pk}"' in due and f'data-session="{second.pk}"' in due
    assert "1 day<" in due and "2026-03-09" in due
    assert 'data-session="' not in _section(html, "overdue")

    frozen_now.move_to(NOW + timedelta(days=9))  # Wednesday 11 March
    html = client_for("nurse").get(WORKLIST).content.decode()
    overdue, due, submitted = (_section(html, k) for k in ("overdue", "due", "submitted"))
    assert f'data-session="{first.pk}"' in overdue and "2 days" in overdue
    assert f'data-session="{second.pk}"' in due and "1 day<" in due
    assert f'data-session="{third.pk}"' in submitted and "FAX-3141" in submitted
    assert f'data-session="{first.pk}"' not in due + submitted
    assert f"/sessions/{first.pk}/rems/print/" in overdue
    assert f"/sessions/{first.pk}/rems/submit/" in overdue
    assert f"/sessions/{third.pk}/rems/submit/" not in submitted
    listed = AuditEvent.objects.filter(action="list", detail__startswith="REMS worklist").last()
    assert listed.detail == "REMS worklist: 1 overdue, 1 due, 1 submitted"


def test_worklist_is_for_clinicians_of_the_clinic(lg, frozen_now, client_for, spravato_lot):
    session = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    assert client_for("front_desk").get(WORKLIST).status_code == 403
    other = client_for("other_clinic_nurse").get(WORKLIST).content.decode()
    assert f'data-session="{session.pk}"' not in other
    assert client_for("nurse").get(f"{WORKLIST}?clinic={lg.world.clinic_b.pk}").status_code == 404


def test_submission_is_recorded_and_audited(lg, frozen_now, client_for, spravato_lot):
    session = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    client = client_for("nurse")
    url = f"/sessions/{session.pk}/rems/submit/"
    page = client.get(url)
    assert page.status_code == 200 and lg.patient.full_name in page.content.decode()
    response = client.post(
        url, {"submitted_on": "2026-03-02", "method": "online", "confirmation": "RMS-2026-0001"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/rems/?clinic={lg.world.clinic_a.pk}"
    submission = RemsSubmission.objects.get(session=session)
    assert (submission.submitted_on, submission.method, submission.confirmation) == (
        date(2026, 3, 2), "online", "RMS-2026-0001",
    )  # fmt: skip
    assert submission.form_version == FORM_VERSION and submission.form["lot_number"] == "SPR-77"
    event = AuditEvent.objects.filter(object_type="treatment_sessions.remssubmission").get()
    assert event.action == "create" and event.patient_id == lg.patient.pk
    assert event.user_id == lg.world.users["nurse"].pk


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"submitted_on": "2026-03-09", "method": "online", "confirmation": "X1"},
         "submitted_on", "The date is in the future."),
        ({"submitted_on": "2026-02-27", "method": "online", "confirmation": "X1"},
         "submitted_on", "The date is before the session."),
        ({"submitted_on": "not a date", "method": "online", "confirmation": "X1"},
         "submitted_on", "Enter a valid date."),
        ({"submitted_on": "2026-03-02", "method": "pigeon", "confirmation": "X1"},
         "method", "Select a valid choice."),
        ({"submitted_on": "2026-03-02", "method": "fax", "confirmation": ""},
         "confirmation", "This field is required."),
        ({"submitted_on": "2026-03-02", "method": "fax", "confirmation": "x" * 101},
         "confirmation", "at most 100 characters"),
    ],
)  # fmt: skip
def test_bad_input_shows_errors_and_writes_nothing(
    lg, frozen_now, client_for, spravato_lot, data, field, message
):
    session = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    client = client_for("nurse")
    before = AuditEvent.objects.count()
    response = client.post(f"/sessions/{session.pk}/rems/submit/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html and message in html
    assert "Nothing was saved" in html
    assert not RemsSubmission.objects.exists()
    assert AuditEvent.objects.count() == before


def test_incomplete_form_cannot_be_submitted(lg, frozen_now, client_for, spravato_lot):
    session = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot, bp_at_40=False)
    client = client_for("nurse")
    url = f"/sessions/{session.pk}/rems/submit/"
    assert "the blood pressure at about 40 minutes is missing" in client.get(url).content.decode()
    response = client.post(
        url, {"submitted_on": "2026-03-02", "method": "online", "confirmation": "X1"}
    )
    assert response.status_code == 400
    assert "REMS form: the blood pressure at about 40 minutes is missing." in (
        response.content.decode()
    )
    assert not RemsSubmission.objects.exists()
    # A second submission of a complete form is refused too.
    done = esketamine_session(lg, frozen_now, lg.patient2, lot=spravato_lot)
    ok = {"submitted_on": "2026-03-02", "method": "phone", "confirmation": "PH-1"}
    client = client_for("nurse")
    first = client.post(f"/sessions/{done.pk}/rems/submit/", ok)
    assert first.status_code == 302 and first["Location"].startswith("/sessions/rems/")
    again = client.post(f"/sessions/{done.pk}/rems/submit/", ok)
    assert again.status_code == 400 and "already been submitted" in again.content.decode()
    assert RemsSubmission.objects.count() == 1


def test_print_page_has_every_section_and_is_audited(lg, frozen_now, client_for, spravato_lot):
    session = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    response = client_for("nurse").get(f"/sessions/{session.pk}/rems/print/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "REMS Patient Monitoring Form" in html and FORM_VERSION in html
    assert html.count('data-testid="rems-section"') == 4
    for text in (
        lg.patient.full_name, "SPR-77", ">56<", "128/78", "150/80", "128/80", ">122<",
        "Concomitant medications", "Health care provider who monitored", "Healthcare setting",
        "Sedation", "Dissociation", "Respiratory depression", "When would the patient have been",
        'data-testid="rems-complete"', "2026-03-02",
    ):  # fmt: skip
        assert text in html, text
    assert "MISSING" not in html
    event = AuditEvent.objects.filter(action="print").get()
    assert (event.patient_id, event.object_id) == (lg.patient.pk, str(session.pk))
    assert FORM_VERSION in event.detail


def test_print_page_flags_missing_fields(lg, frozen_now, client_for, spravato_lot):
    session = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot, bp_at_40=False)
    html = client_for("nurse").get(f"/sessions/{session.pk}/rems/print/").content.decode()
    assert 'data-testid="rems-missing"' in html and "1 required field missing" in html
    assert rems_missing(session) == [
        "REMS form: the blood pressure at about 40 minutes is missing."
    ]
    assert rems_missing(session)[0] in html
    row_start = html.index('data-field="bp_40_min"')
    assert "MISSING" in html[row_start : html.index("</tr>", row_start)]


def test_print_page_is_for_esketamine_sessions_of_the_users_clinic(lg, client_for):
    iv = services.session_create(
        actor=lg.world.users["nurse"], patient=lg.patient, treatment="iv_ketamine"
    )
    assert client_for("nurse").get(f"/sessions/{iv.pk}/rems/print/").status_code == 404
    spravato = services.session_create(
        actor=lg.world.users["nurse"], patient=lg.patient2, treatment="esketamine_trd"
    )
    assert (
        client_for("other_clinic_nurse").get(f"/sessions/{spravato.pk}/rems/print/").status_code
        == 404
    )
    assert client_for("patient").get(f"/sessions/{spravato.pk}/rems/print/").status_code == 403


_OLD_SECTIONS = """{% for section in sections %}
<section data-testid="rems-section">
  <h2>Section {{ section.number }}: {{ section.title }}</h2>
  <table><tbody>
  {% for row in section.rows %}
    <tr class="{% if row.missing %}missing{% endif %}" data-field="{{ row.key }}">
      <th scope="row">{{ row.label }}</th>
      <td>{% if row.missing %}<strong class="flag">MISSING</strong>{% elif row.is_bool %}<span class="box">{% if row.value %}☒{% else %}☐{% endif %} Yes</span> <span class="box">{% if not row.value %}☒{% else %}☐{% endif %} No</span>{% elif row.is_list %}{% for e in row.value %}{{ e }}{% if not forloop.last %}; {% endif %}{% empty %}None{% endfor %}{% elif row.value is None %}<span class="muted">not recorded</span>{% elif row.key == "first_device_at" or row.key == "monitoring_ended_at" or row.key == "ready_to_leave_at" %}{{ row.value|date:"Y-m-d H:i" }}{% elif row.key == "date" or row.key == "patient_date_of_birth" %}{{ row.value|date:"Y-m-d" }}{% elif row.key == "concomitant_medications" %}{{ row.value|default:"No changes reported" }}{% else %}{{ row.value }}{% endif %}</td>
    </tr>
  {% endfor %}
  </tbody></table>
</section>
{% endfor %}"""  # noqa: E501


def _old_print_html(response, session_id):
    """The printable form as the page wrote it before its reads were merged and its sections
    written in Python: the session from get_session(), the form from rems_form(), the sections
    from the template loop, the same page template."""
    from zoneinfo import ZoneInfo

    from django.template import engines
    from django.template.loader import render_to_string
    from django.utils import timezone
    from django.utils.safestring import mark_safe

    from ketaclinic.core import clock
    from ketaclinic.treatment_sessions import selectors
    from ketaclinic.treatment_sessions.rems import REQUIRED, rems_form
    from ketaclinic.treatment_sessions.views_board import _print_sections

    request = response.wsgi_request
    session = selectors.get_session(request.user, session_id)
    form = rems_form(session)
    missing = (
        [f"REMS form: {label} is missing." for key, label in REQUIRED.items() if form[key] is None]
        if form["first_device_at"] is not None
        else []
    )
    with timezone.override(ZoneInfo(session.clinic.timezone)):
        # The sections as the template loop wrote them before they were written in Python.
        sections = (
            engines["django"].from_string(_OLD_SECTIONS).render({"sections": _print_sections(form)})
        )
        return render_to_string(
            "treatment_sessions/rems_print.html",
            {
                "session": session,
                "clinic": session.clinic,
                "form": form,
                "sections_html": mark_safe(sections),  # noqa: S308
                "missing": missing,
                "submission": getattr(session, "rems_submission", None),
                "printed_by": request.user,
                "printed_at": clock.now(),
            },  # fmt: skip
            request=request,
        )


def test_print_page_reads_the_same_form_in_fewer_queries(lg, frozen_now, client_for, spravato_lot):
    """The print page reads the form's single values with the session (subqueries) and the
    vital signs and adverse events together: the same form, the same page byte for byte, as
    rems_form() over the session's tables one by one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketaclinic.treatment_sessions import selectors
    from ketaclinic.treatment_sessions.rems import rems_form

    nurse_user = lg.world.users["nurse"]
    complete = esketamine_session(lg, frozen_now, lg.patient, lot=spravato_lot)
    services.session_record_adverse_event(
        actor=nurse_user, session=complete,
        data={"code": "nausea", "severity": "mild", "outcome": "resolved"},
    )  # fmt: skip
    services.session_record_adverse_event(
        actor=nurse_user, session=complete,
        data={"code": "other", "other_text": "Dizzy <b>&</b>", "severity": "mild",
              "outcome": "resolved"},
    )  # fmt: skip
    services.rems_submission_record(
        actor=nurse_user, session=complete, submitted_on=date(2026, 3, 2), method="fax",
        confirmation="FAX-<1>",
    )  # fmt: skip
    no_bp_40 = esketamine_session(lg, frozen_now, lg.patient2, lot=spravato_lot, bp_at_40=False)
    not_started = services.session_create(
        actor=nurse_user, patient=lg.patient2, treatment="esketamine_trd"
    )
    client = client_for("nurse")
    for session in (complete, no_bp_40, not_started):
        _, form = selectors.rems_print_form(nurse_user, session.pk)
        assert form == rems_form(session)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/sessions/{session.pk}/rems/print/")
        assert response.status_code == 200
        assert response.content.decode() == _old_print_html(response, session.pk)
        # The session with the form's values, then vitals and events (one round trip on
        # PostgreSQL): at most three reads of the session's tables (there were nine).
        reads = [
            q["sql"][:80]
            for q in queries.captured_queries
            if q["sql"].startswith("SELECT") and "treatment_sessions_" in q["sql"]
        ]
        assert len(reads) <= 3, reads
    html = client.get(f"/sessions/{complete.pk}/rems/print/").content.decode()
    assert "Nausea; Dizzy &lt;b&gt;&amp;&lt;/b&gt;" in html and "FAX-&lt;1&gt;" in html
