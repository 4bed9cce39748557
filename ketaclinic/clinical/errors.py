"""Errors raised by the clinical rules.

Every error is a ``ValueError`` so callers that only know "bad input" can catch one type;
the message names the offending item or field in plain words.
"""

from __future__ import annotations

__all__ = ["InvalidAnswers", "InvalidInput", "UnsafeOrder"]


class InvalidInput(ValueError):
    """An argument is missing, of the wrong type, out of range or an unknown code."""


class InvalidAnswers(InvalidInput):
    """Questionnaire answers cannot be scored (count, unknown item, range, type, missing)."""


class UnsafeOrder(InvalidInput):
    """A dosing order breaks a safety limit and must not be prepared or given."""
