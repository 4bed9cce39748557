"""The workspace's flowsheet rows and status history are written in Python
(`views._flowsheet_rows_html`, `views._history_html`): the same markup as the template loops
they replaced, every text escaped, times in the current (clinic) time zone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from ketaclinic.treatment_sessions import selectors, services
from ketaclinic.treatment_sessions.choices import SessionStatus
from ketaclinic.treatment_sessions.models import VitalSign
from ketaclinic.treatment_sessions.views import _flowsheet_rows_html, _history_html
from tests.screening.builders import NOW
from tests.treatment_sessions.builders import force_state
from tests.treatment_sessions.test_dosing import gate_passed

pytestmark = pytest.mark.usefixtures("frozen_now")

# The template text these functions replaced, verbatim.
_OLD_ROWS = (
    "{% load session_numbers %}"
    '{% if check %}<tr class="muted"><td>{{ check.recorded_at|clock_time:"H:i" }} pre-dose</td>'
    "<td>{{ check.systolic_mmhg }}/{{ check.diastolic_mmhg }}</td>"
    '<td>{{ check.heart_rate_bpm|default:"–" }}</td><td>{{ check.spo2_pct|default:"–" }}</td>'
    '<td>{{ check.respiratory_rate_per_min|default:"–" }}</td><td>–</td>'
    "<td>{{ check.recorded_by }}</td></tr>{% endif %}\n      "
    '{% for v in vitals %}<tr data-testid="vitals-row"><td>{{ v.taken_at|clock_time:"H:i" }}</td>'
    '<td>{{ v.systolic_mmhg|default:"–" }}/{{ v.diastolic_mmhg|default:"–" }}</td>'
    '<td>{{ v.heart_rate_bpm|default:"–" }}</td><td>{{ v.spo2_pct|default:"–" }}</td>'
    '<td>{{ v.respiratory_rate_per_min|default:"–" }}</td>'
    "<td>{% if v.moaas is not None %}{{ v.moaas }}{% else %}–{% endif %}</td>"
    '<td>{{ v.recorded_by }}{% if v.source == "device" %} (device){% endif %}</td></tr>'
    "{% endfor %}"
)
_OLD_HISTORY = (
    "{% load session_numbers %}"
    '{% for t in history %}<li>{{ t.at|clock_time:"Y-m-d H:i" }} {{ t.get_from_status_display }}'
    " → {{ t.get_to_status_display }} by {{ t.actor }}{% if t.reason %}: {{ t.reason }}"
    "{% endif %}</li>{% endfor %}"
)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_flowsheet_rows_and_history_are_the_template_markup(world, zone):
    nurse = world.users["nurse"]
    nurse.first_name, nurse.last_name = "Ana <b>", 'O\'Neil & "Co"'
    nurse.save()
    session = force_state(world, gate_passed(world), SessionStatus.DOSING)
    services.session_record_vitals(actor=nurse, session=session, data={"spo2_pct": 97})
    services.session_record_vitals(
        actor=nurse,
        session=session,
        data={"systolic_mmhg": 186, "diastolic_mmhg": 112, "heart_rate_bpm": 130, "moaas": 0},
    )
    services.session_record_vitals(
        actor=nurse,
        session=session,
        data={"respiratory_rate_per_min": 14, "moaas": 4, "taken_at": NOW - timedelta(minutes=3)},
    )
    VitalSign.objects.filter(session=session, spo2_pct=97).update(source="device")
    session.refresh_from_db()
    first = selectors.session_rows(session).history[0]
    type(first).objects.filter(pk=first.pk).update(reason='held: BP <180/110> & "rising"')
    rows = selectors.session_rows(session)
    assert len(rows.vitals) == 3 and rows.latest_check is not None and rows.history
    with timezone.override(zone):
        old_rows = Template(_OLD_ROWS).render(
            Context({"check": rows.latest_check, "vitals": rows.vitals})
        )
        old_history = Template(_OLD_HISTORY).render(Context({"history": rows.history}))
        new_rows = str(_flowsheet_rows_html(rows.latest_check, rows.vitals))
        new_history = str(_history_html(rows.history))
    assert new_rows == old_rows
    assert new_history == old_history
    assert "held: BP &lt;180/110&gt; &amp; &quot;rising&quot;" in new_history
    assert "(device)" in new_rows and "&lt;b&gt;" in new_rows and "<b>" not in new_rows
    assert str(_flowsheet_rows_html(None, [])) == Template(_OLD_ROWS).render(
        Context({"check": None, "vitals": []})
    )


_OLD_STEPS = (
    "{% load session_numbers %}"
    '{% for step in steps %}<li class="{{ step.state }}" data-testid="step-{{ step.key }}" '
    'data-state="{{ step.state }}">{{ forloop.counter }}. {{ step.label }}{% if step.at %} ✓ '
    '{{ step.at|clock_time:"H:i" }}{% endif %}</li>{% endfor %}'
)


@pytest.mark.parametrize(
    "status", [SessionStatus.DOSING, SessionStatus.OBSERVING, SessionStatus.STOPPED_EARLY]
)
def test_the_step_list_is_the_template_markup(world, status):
    from ketaclinic.treatment_sessions.views import _steps, _steps_html

    reached = SessionStatus.DOSING if status == SessionStatus.STOPPED_EARLY else status
    session = force_state(world, gate_passed(world), reached)
    session.status = status  # the step list reads only the status and the timestamps
    steps = _steps(session)
    assert any(step["at"] for step in steps)
    with timezone.override("America/New_York"):
        old = Template(_OLD_STEPS).render(Context({"steps": steps}))
        assert str(_steps_html(steps)) == old
    assert old.count("<li ") == 6
    assert ('class="skipped"' in old) == (status == SessionStatus.STOPPED_EARLY)
