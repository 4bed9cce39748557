"""Percentiles by the nearest-rank method (the value a request actually took, no interpolation)."""

from __future__ import annotations

import math


def percentile(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
