"""Input checks shared by the clinical rules.

Each helper returns the checked value or raises the given error type (``InvalidInput`` by
default) with a message that names the field, so callers never see a bare ``TypeError``.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

from ketaclinic.clinical.errors import InvalidInput

__all__ = [
    "require_aware",
    "require_bool",
    "require_date",
    "require_decimal",
    "require_int",
    "require_minutes",
    "require_number",
]


def require_int(
    value: object,
    field: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: type[InvalidInput] = InvalidInput,
) -> int:
    """Return ``value`` if it is an int (not a bool) within the optional bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{field} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise error(f"{field} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise error(f"{field} must be at most {maximum}, got {value}")
    return value


def require_bool(value: object, field: str, *, error: type[InvalidInput] = InvalidInput) -> bool:
    """Return ``value`` if it is exactly ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise error(f"{field} must be yes or no (True/False), got {value!r}")
    return value


def require_number(value: object, field: str) -> float:
    """Return a finite int/float/Decimal (not a bool) as a float, for vital signs."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidInput(f"{field} must be a number, got {value!r}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise InvalidInput(f"{field} must be a finite number, got {value!r}")
    return as_float


def require_decimal(
    value: object, field: str, *, error: type[InvalidInput] = InvalidInput
) -> Decimal:
    """Return a finite int/float/Decimal (not a bool) as an exact Decimal, for dosing."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise error(f"{field} must be a number, got {value!r}")
    # str() keeps the digits a person typed (0.1 stays 0.1, not its binary neighbour).
    as_decimal = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not as_decimal.is_finite():
        raise error(f"{field} must be a finite number, got {value!r}")
    return as_decimal


def require_minutes(value: object, field: str) -> int:
    """Return a positive whole number of minutes."""
    return require_int(value, field, minimum=1)


def require_date(value: object, field: str) -> date:
    """Return ``value`` if it is a calendar date (a datetime is refused: pass ``.date()``)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput(f"{field} must be a date (not a datetime), got {value!r}")
    return value


def require_aware(value: object, field: str) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware (naive datetimes are ambiguous)")
    return value
