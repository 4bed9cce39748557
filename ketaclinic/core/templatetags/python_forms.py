"""Form fields written in Python (core.python_widgets) where a page shows many of them.

{% load python_forms %}
{{ form|fields_html }}
    the HTML of {% for field in form %}{% include "includes/field.html" %}{% endfor %}
{{ form.reason|field_html }}
    the HTML of {% include "includes/field.html" with field=form.reason %}
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from ketaclinic.core import python_widgets

register = template.Library()


@register.filter
def fields_html(form: Any) -> SafeString:
    return python_widgets.fields_html(form)


@register.filter
def field_html(field: Any) -> SafeString | str:
    if not hasattr(field, "is_hidden"):  # a missing variable, as the include would show it
        return ""
    return python_widgets.field_html(field)


@register.filter
def form_errors_html(form: Any) -> SafeString:
    """The HTML of {% include "includes/form_errors.html" with form=form %}."""
    return python_widgets.form_errors_html(form)
