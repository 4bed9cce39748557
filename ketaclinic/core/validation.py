"""Carrying a service's ValidationError onto a form, so pages show it inline by field."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def error_map(exc: ValidationError) -> dict[str, str]:
    """field → one plain message (the API's error format); non-field errors under `__all__`."""
    if hasattr(exc, "error_dict"):
        return {field: " ".join(msgs) for field, msgs in exc.message_dict.items()}
    return {"__all__": " ".join(exc.messages)}
