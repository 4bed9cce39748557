"""core.python_widgets writes the same HTML as Django's widget and label templates: compared with
Django's own template rendering of the same widget context, for awkward values (markup, quotes,
ampersands, already-safe text, numbers, booleans) and attributes (required, True/False attrs)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django import forms
from django.utils.safestring import mark_safe

from ketaclinic.core import python_widgets as w
from ketaclinic.treatment_sessions import forms as session_forms

NASTY = "<b>\"Tom\" & 'Jerry'</b>"
VALUES: list[Any] = [
    None,
    "",
    "plain",
    NASTY,
    mark_safe("<i>already safe</i>"),
    0,
    126,
    Decimal("36.30"),
    True,
    False,
    "on",
]
ATTRS: list[dict[str, Any]] = [
    {},
    {"required": True, "id": "id_x"},
    {"inputmode": "decimal", "step": "any", "min": 0, "max": Decimal("2.00")},
    {"disabled": False, "data-note": NASTY, "rows": 2, "maxlength": 500},
]


def django_html(widget: forms.Widget, name: str, value: Any, attrs: dict[str, Any]) -> str:
    """What Django's own template for the widget writes (the method our widgets replace)."""
    context = widget.get_context(name, value, attrs)
    return str(forms.Widget._render(widget, widget.template_name, context))


def django_field_html(bound: forms.BoundField) -> str:
    """`{{ field }}` with the widget rendered by Django's template instead of ours."""
    widget = bound.field.widget
    widget._render = partial(forms.Widget._render, widget)  # type: ignore[method-assign]
    try:
        return str(bound)
    finally:
        del widget._render


@pytest.mark.parametrize(
    "ours",
    [
        w.TextInput(),
        w.DateInput(),
        w.NumberInput(attrs={"inputmode": "numeric"}),
        w.CheckboxInput(),
        w.Textarea(attrs={"rows": 2}),
        w.Select(choices=[("", "— choose —"), ("a", NASTY), ("b&c", "B & C")]),
    ],
    ids=lambda widget: type(widget).__name__,
)
@pytest.mark.parametrize("attrs", ATTRS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_widgets_write_what_djangos_templates_write(ours, value, attrs):
    assert str(ours.render("f<x>", value, attrs)) == django_html(ours, "f<x>", value, attrs)


def test_checkbox_is_checked_as_django_checks_it():
    box = w.CheckboxInput()
    assert " checked" in box.render("c", True) and " checked" not in box.render("c", False)
    assert box.render("c", "yes") == django_html(box, "c", "yes", {})


class LabelForm(w.PythonLabels, forms.Form):
    required_css_class = "required"
    plain = forms.CharField(label="Plain")
    nasty = forms.CharField(label=NASTY, required=False)
    asks = forms.CharField(label="Ready?")
    safe = forms.CharField(label=mark_safe("SpO<sub>2</sub>"))


def django_label(bound: forms.BoundField, **kwargs: Any) -> str:
    """BoundField.label_tag() through Django's label template (what PythonLabels replaces)."""
    form = bound.form
    captured: dict[str, Any] = {}

    def capture(template_name: Any = None, context: Any = None, renderer: Any = None) -> str:
        captured.update(context)
        return ""

    form.render = capture  # type: ignore[method-assign]
    try:
        bound.label_tag(**kwargs)
    finally:
        del form.render
    return str(forms.Form.render(form, form.template_name_label, captured))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"attrs": {"class": "x", "data-n": NASTY, "hidden": True, "off": False}},
        {"label_suffix": " →"},
        {"tag": "legend"},
        {"contents": NASTY},
    ],
)
@pytest.mark.parametrize("auto_id", ["id_%s", False])
def test_labels_write_what_djangos_label_template_writes(kwargs, auto_id):
    form = LabelForm(auto_id=auto_id, label_suffix=":")
    for bound in form:
        assert str(bound.label_tag(**kwargs)) == django_label(bound, **kwargs), bound.name


SESSION_FORMS = [
    session_forms.ReasonForm,
    session_forms.InfusionOrderForm,
    session_forms.VitalsForm,
    session_forms.AlertAckForm,
    session_forms.CadssForm,
    session_forms.AdverseEventForm,
    session_forms.InterventionForm,
    session_forms.DischargeForm,
    session_forms.SignForm,
    session_forms.AmendForm,
]


@pytest.mark.parametrize("form_class", SESSION_FORMS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bound", [False, True])
def test_session_forms_render_as_with_djangos_templates(form_class, bound):
    """Every field of the workspace's forms, empty and bound to what a nurse may type (errors
    included): widget and label as Django's templates write them."""
    data = None
    if bound:
        data = {name: NASTY for name in form_class.base_fields}
        data.update({"systolic_mmhg": "126", "sedation_resolved": "on", "code": "nausea"})
    form = form_class(data=data)
    if bound:
        form.is_valid()
    for field in form:
        widget = field.field.widget
        assert isinstance(widget, w._PythonRendered), field.name
        assert str(field) == django_field_html(field), field.name
        assert str(field.label_tag()) == django_label(field), field.name


class HelpAndHidden(forms.Form):
    shown = forms.CharField(label=NASTY, help_text=f"Help {NASTY}", widget=w.TextInput)
    secret = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_shown(self) -> str:
        raise forms.ValidationError(f"Wrong: {NASTY}")


def include_html(form: forms.Form) -> str:
    """The fields through templates/includes/field.html, as the pages include it."""
    from django.template import engines

    template = engines["django"].from_string(
        '{% for field in form %}{% include "includes/field.html" %}{% endfor %}'
    )
    return template.render({"form": form})


@pytest.mark.parametrize("form_class", [*SESSION_FORMS, HelpAndHidden], ids=lambda c: c.__name__)
@pytest.mark.parametrize("bound", [False, True])
def test_fields_write_what_the_field_include_writes(form_class, bound):
    data = {name: NASTY for name in form_class.base_fields} if bound else None
    form = form_class(data=data)
    if bound:
        form.is_valid()
    assert str(w.fields_html(form)) == include_html(form)


def test_the_template_filters_match_the_include():
    from django.template import engines

    form = HelpAndHidden(data={"shown": NASTY})
    form.is_valid()
    template = engines["django"].from_string(
        "{% load python_forms %}{{ form|fields_html }}|{{ form.shown|field_html }}|"
        "{{ missing|field_html }}"
    )
    fields = include_html(form)
    shown = include_html(HelpAndHidden(data={"shown": NASTY})).split("</div>")[0] + "</div>\n"
    assert template.render({"form": form}) == f"{fields}|{shown}|"


def test_static_forms_are_written_once_and_only_when_empty():
    """A `static_html` form's empty HTML is kept and reused; bound forms (their values and
    errors) and forms with initial values are written afresh every time."""
    static = [c for c in SESSION_FORMS if getattr(c, "static_html", False)]
    assert session_forms.VitalsForm in static and session_forms.DischargeForm in static
    for form_class in static:
        first, second = w.fields_html(form_class()), w.fields_html(form_class())
        assert first is second  # kept
        assert str(first) == include_html(form_class())
    bound = session_forms.VitalsForm(data={"systolic_mmhg": NASTY})
    bound.is_valid()
    assert str(w.fields_html(bound)) == include_html(bound) and "field-error" in include_html(bound)
    with_initial = session_forms.InfusionOrderForm(initial={"minutes": 40})
    assert 'value="40"' in w.fields_html(with_initial)
    assert str(w.fields_html(with_initial)) == include_html(with_initial)
    assert 'value="40"' not in w.fields_html(session_forms.InfusionOrderForm())
    optional = session_forms.VitalsForm(use_required_attribute=False, auto_id="v_%s")
    assert w.fields_html(optional) is not w.fields_html(session_forms.VitalsForm())
    assert str(w.fields_html(optional)) == include_html(optional) and 'id="v_moaas"' in str(
        w.fields_html(optional)
    )


def errors_include_html(form: Any) -> str:
    from django.template import engines

    template = engines["django"].from_string('{% include "includes/form_errors.html" %}')
    return template.render({"form": form})


class NonFieldError(forms.Form):
    text = forms.CharField(required=False, widget=w.TextInput)

    def clean(self) -> dict[str, Any]:
        raise forms.ValidationError(f"Refused: {NASTY}")


@pytest.mark.parametrize(
    "make",
    [
        lambda: session_forms.VitalsForm(),
        lambda: session_forms.VitalsForm(data={"systolic_mmhg": "126"}),  # valid
        lambda: session_forms.VitalsForm(data={}),  # non-field: enter at least one measurement
        lambda: session_forms.VitalsForm(data={"systolic_mmhg": NASTY}),  # a field error
        lambda: NonFieldError(data={"text": "x"}),
        lambda: "",  # a form missing from the page's context
    ],
)
def test_form_errors_write_what_the_errors_include_writes(make):
    form = make()
    assert str(w.form_errors_html(form)) == errors_include_html(form)
