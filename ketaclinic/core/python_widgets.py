"""Form widgets that write their HTML in Python: the markup of Django's widget templates
(input.html, select.html, select_option.html, textarea.html, attrs.html) and of the field label
(forms/label.html), without the template engine.

Why: the filter forms above the ledger and the DEA reports render a template per widget and
another per <option>; on those pages that cost more than the rest of the form. The treatment
session workspace shows up to a dozen fields per step, each with a widget and a label template.
Values and labels are escaped exactly as the templates do (html.escape, like Django's escape;
conditional_escape where the template prints a value that may already be safe).
"""

from __future__ import annotations

from html import escape
from typing import Any

from django import forms
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language


def _format(value: Any) -> str:
    """`{{ value|stringformat:'s' }}`: escaped, unless already safe (the filter keeps safety)."""
    return conditional_escape(str(value))


def _attrs(attrs: dict[str, Any]) -> str:
    """django/forms/widgets/attrs.html: False drops the attribute, True writes its name."""
    out = []
    for name, value in attrs.items():
        if value is False:
            continue
        out.append(
            f" {escape(str(name))}" if value is True else f' {escape(str(name))}="{_format(value)}"'
        )
    return "".join(out)


def _input(widget: dict[str, Any]) -> str:
    value = widget["value"]
    value_attr = "" if value is None else f' value="{_format(value)}"'
    return (
        f'<input type="{escape(str(widget["type"]))}" name="{escape(widget["name"])}"'
        f"{value_attr}{_attrs(widget['attrs'])}>"
    )


def _select(widget: dict[str, Any]) -> str:
    """select.html and select_option.html, newlines and indentation included."""
    out = [f'<select name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
        for option in group_choices:
            out.append(
                f'\n  <option value="{_format(option["value"])}"{_attrs(option["attrs"])}>'
                f"{conditional_escape(option['label'])}</option>\n"
            )
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>")
    return "".join(out)


def _textarea(widget: dict[str, Any]) -> str:
    """django/forms/widgets/textarea.html (the newline after the tag is Django's too)."""
    value = widget["value"]
    text = conditional_escape(value) if value else ""
    return f'<textarea name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>\n{text}</textarea>'


class _PythonRendered:
    @staticmethod
    def _html(widget: dict[str, Any]) -> str:
        return _select(widget) if "optgroups" in widget else _input(widget)

    def _render(
        self, template_name: str, context: dict[str, Any], renderer: Any = None
    ) -> SafeString:
        # Safe: every value and label above went through escape().
        return mark_safe(self._html(context["widget"]))  # noqa: S308


class TextInput(_PythonRendered, forms.TextInput):
    pass


class DateInput(_PythonRendered, forms.DateInput):
    pass


class NumberInput(_PythonRendered, forms.NumberInput):
    pass


class CheckboxInput(_PythonRendered, forms.CheckboxInput):
    pass


class Select(_PythonRendered, forms.Select):
    pass


class Textarea(_PythonRendered, forms.Textarea):
    _html = staticmethod(_textarea)


def label_html(context: dict[str, Any]) -> SafeString:
    """django/forms/label.html from the context BoundField.label_tag() gives it."""
    label = conditional_escape(context["label"])
    if not context["use_tag"]:
        return label
    tag = conditional_escape(context["tag"])
    attrs = "".join(
        f" {conditional_escape(name)}"
        if value is True
        else f' {conditional_escape(name)}="{_format(value)}"'
        for name, value in (context["attrs"] or {}).items()
        if value is not False
    )
    # Safe: the tag, attributes and label were escaped above.
    return mark_safe(f"<{tag}{attrs}>{label}</{tag}>")  # noqa: S308


class PythonLabels:
    """A form mixin: field labels (`{{ field.label_tag }}`) written by `label_html` instead of
    the label template; every other form template renders as before."""

    def render(self, template_name: Any = None, context: Any = None, renderer: Any = None) -> Any:
        if template_name is not None and template_name == self.template_name_label:  # type: ignore[attr-defined]
            return label_html(context)
        return super().render(template_name, context, renderer)  # type: ignore[misc]


def field_html(field: Any) -> SafeString:
    """What templates/includes/field.html writes for one bound field (label, widget, help text
    and errors), whitespace included, without rendering a template per field."""
    if field.is_hidden:
        return mark_safe(f'<div class="field">\n  {field}\n</div>\n')  # noqa: S308
    auto_id = conditional_escape(field.auto_id)
    help_text = (
        f'<small id="{auto_id}_helptext">{conditional_escape(field.help_text)}</small>'
        if field.help_text
        else ""
    )
    errors = "".join(
        f'<small class="field-error" id="{auto_id}_error" role="alert">'
        f"{conditional_escape(error)}</small>"
        for error in field.errors
    )
    # Safe: the label and widget are safe HTML, the rest was escaped above.
    return mark_safe(  # noqa: S308
        f'<div class="field">\n  \n  {field.label_tag()}\n  {field}\n  {help_text}\n  {errors}'
        "\n  \n</div>\n"
    )


def fields_html(form: Any) -> SafeString:
    """`{% for field in form %}{% include "includes/field.html" %}{% endfor %}`.

    A form class that sets `static_html = True` promises that, unbound and without initial
    values or prefix, its fields are the class's own (nothing in __init__ or the view changes
    them, no choices from the database, no callable initial): its empty HTML is then the same
    on every page and is written once per process and language.
    """
    key = _static_key(form)
    if key is None:
        return _fields_html(form)
    html = _STATIC_HTML.get(key)
    if html is None:
        html = _STATIC_HTML[key] = _fields_html(form)
    return html


_STATIC_HTML: dict[tuple[Any, ...], SafeString] = {}


def _static_key(form: Any) -> tuple[Any, ...] | None:
    if not getattr(form, "static_html", False) or form.is_bound or form.initial or form.prefix:
        return None
    return (
        type(form),
        get_language(),
        form.auto_id,
        form.label_suffix,
        form.use_required_attribute,
    )


def _fields_html(form: Any) -> SafeString:
    return mark_safe("".join(field_html(field) for field in form))  # noqa: S308


def form_errors_html(form: Any) -> SafeString:
    """What templates/includes/form_errors.html writes (newlines included)."""
    if not hasattr(form, "errors"):  # a missing variable, as the include would show it
        return mark_safe("\n\n")
    if not form.is_bound:  # an empty form has no errors
        return mark_safe("\n\n")
    non_field = form.non_field_errors()
    head = (
        '<div class="form-errors" role="alert">'
        + "".join(f"<p>{conditional_escape(error)}</p>" for error in non_field)
        + "</div>"
        if non_field
        else ""
    )
    tail = (
        '<p class="form-errors" role="alert">Please correct the fields marked below. '
        "Nothing was saved.</p>"
        if form.errors and not non_field
        else ""
    )
    # Safe: the errors were escaped above.
    return mark_safe(f"{head}\n{tail}\n")  # noqa: S308
