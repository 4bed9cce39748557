"""Decimal arithmetic for amounts of drug: mg is the unit of record, mL and containers derive.

Every amount is a Decimal with three places (a microgram), never a float, so sums in reports
match the ledger to the last digit and the hash of an entry reads back the same from any database.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

PLACES = Decimal("0.001")
ZERO = Decimal("0.000")
# One entry never moves more than this; a larger number is a typing error, not a delivery.
MAX_ENTRY_MG = Decimal("1000000")


def q3(value: Decimal | int | str) -> Decimal:
    """Round to three places (banker's rounding, as a balance of many entries should)."""
    try:
        return Decimal(value).quantize(PLACES, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"{value!r} is not a number") from None


def text(value: Decimal | None) -> str | None:
    """The canonical text of an amount, as hashed: fixed point, three places, no exponent."""
    return None if value is None else format(q3(value), "f")


def mg_from_ml(volume_ml: Decimal, mg_per_ml: Decimal) -> Decimal:
    return q3(volume_ml * mg_per_ml)


def ml_from_mg(quantity_mg: Decimal, mg_per_ml: Decimal) -> Decimal:
    return q3(quantity_mg / mg_per_ml)


def containers_opened(dose_mg: Decimal, mg_per_container: Decimal) -> int:
    """How many containers a dose draws from, when each opened one is finished before the next."""
    return max(1, math.ceil(dose_mg / mg_per_container))


def remainder_mg(dose_mg: Decimal, mg_per_container: Decimal) -> Decimal:
    """What is left in the opened containers after drawing the dose: the amount to waste."""
    return q3(containers_opened(dose_mg, mg_per_container) * mg_per_container - dose_mg)


def whole_containers(quantity_mg: Decimal, mg_per_container: Decimal) -> tuple[int, Decimal]:
    """(full containers, mg in the partly used one) for showing an on-hand amount."""
    full = int(quantity_mg // mg_per_container)
    return full, q3(quantity_mg - full * mg_per_container)


def fmt_mg(value: Decimal) -> str:
    """40.000 → "40", 12.500 → "12.5": for people, never for hashing."""
    normal = q3(value).normalize()
    return format(normal, "f") if normal != 0 else "0"
