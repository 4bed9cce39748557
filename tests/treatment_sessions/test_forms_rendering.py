"""The session forms whose choices come from the database (prescribers on site, witnesses,
stock) write the same HTML through core.python_widgets as through Django's templates."""

from __future__ import annotations

import pytest

from ketaclinic.core import python_widgets as w
from ketaclinic.treatment_sessions import forms as session_forms
from tests.test_python_widgets import (
    NASTY,
    django_field_html,
    django_label,
    include_html,
)


@pytest.mark.parametrize("bound", [False, True])
def test_session_forms_with_database_choices_write_what_the_include_writes(lg, bound):
    """The pre-dose, second-check and draw forms (prescribers, witnesses and stock from the
    database; some widgets still Django's own) through fields_html and through the include."""
    world = lg.world
    clinic, actor = world.clinic_a, world.users["nurse"].pk
    data = {"weight_kg": NASTY, "fasting_confirmed": "on", "dose_mg": "1e9"} if bound else None
    built = [
        session_forms.PreDoseForm(data=data, clinic_id=clinic.pk, esketamine=True),
        session_forms.PreDoseForm(data=data, clinic_id=clinic.pk, esketamine=False),
        session_forms.SecondCheckForm(data=data, clinic=clinic, actor_id=actor),
        session_forms.DrawForm(data=data, clinic=clinic, actor_id=actor, initial={"dose_mg": 35}),
    ]
    for form in built:
        if bound:
            form.is_valid()
        assert str(w.fields_html(form)) == include_html(form), type(form).__name__
        for field in form:
            assert str(field.label_tag()) == django_label(field), field.name
            if isinstance(field.field.widget, w._PythonRendered):
                assert str(field) == django_field_html(field), field.name
