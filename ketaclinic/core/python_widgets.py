"""Form widgets that write their HTML in Python: the markup of Django's widget templates
(input.html, select.html, select_option.html, attrs.html), without the template engine.

Why: the filter forms above the ledger and the DEA reports render a template per widget and
another per <option>; on those pages that cost more than the rest of the form. Values and labels
are escaped exactly as the templates do (html.escape, like Django's escape).
"""

from __future__ import annotations

from html import escape
from typing import Any

from django import forms
from django.utils.safestring import SafeString, mark_safe


def _attrs(attrs: dict[str, Any]) -> str:
    """django/forms/widgets/attrs.html: False drops the attribute, True writes its name."""
    out = []
    for name, value in attrs.items():
        if value is False:
            continue
        out.append(
            f" {escape(str(name))}"
            if value is True
            else f' {escape(str(name))}="{escape(str(value))}"'
        )
    return "".join(out)


def _input(widget: dict[str, Any]) -> str:
    value = widget["value"]
    value_attr = "" if value is None else f' value="{escape(str(value))}"'
    return (
        f'<input type="{escape(str(widget["type"]))}" name="{escape(widget["name"])}"'
        f"{value_attr}{_attrs(widget['attrs'])}>"
    )


def _select(widget: dict[str, Any]) -> str:
    out = [f'<select name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            out.append(f'<optgroup label="{escape(str(group_name))}">')
        for option in group_choices:
            out.append(
                f'<option value="{escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
                f"{escape(str(option['label']))}</option>"
            )
        if group_name:
            out.append("</optgroup>")
    out.append("</select>")
    return "\n".join(out)


class _PythonRendered:
    def _render(
        self, template_name: str, context: dict[str, Any], renderer: Any = None
    ) -> SafeString:
        widget = context["widget"]
        # Safe: every value and label above went through escape().
        return mark_safe(_select(widget) if "optgroups" in widget else _input(widget))  # noqa: S308


class TextInput(_PythonRendered, forms.TextInput):
    pass


class DateInput(_PythonRendered, forms.DateInput):
    pass


class Select(_PythonRendered, forms.Select):
    pass
