"""Numbers on session pages as a nurse reads them: 36.30 mg shows as 36.3 mg."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def plain(value: Any) -> str:
    """A Decimal without trailing zeros (36.30 → 36.3, 40.00 → 40); anything else as is."""
    if isinstance(value, Decimal) and value.is_finite():
        return f"{value.normalize():f}"
    return "" if value is None else str(value)
