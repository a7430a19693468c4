"""How far to trust an accuracy measured on n texts: the Wilson score interval, and how many decimals it supports.

A test split of 40 rows cannot tell 0.8750 from 0.8500: its 95% interval is about 20 points wide. The Wilson
interval (Wilson 1927; the one Brown, Cai & DasGupta 2001 recommend over the normal approximation) stays inside
0..1 and is sensible at 0 or n correct, where the normal one collapses to a point.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval


def wilson_interval(correct: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) for `correct` successes out of n (correct may be fractional, an
    accuracy times n). n must be at least 1."""
    if n < 1:
        raise ValueError("an interval needs at least one trial")
    p = min(1.0, max(0.0, correct / n))
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n correct the interval touches 0 or 1 exactly; rounding would leave it a hair inside.
    return (0.0 if p == 0 else max(0.0, centre - half)), (1.0 if p == 1 else min(1.0, centre + half))


def supported_decimals(low: float, high: float, *, most: int = 4) -> int:
    """Decimals worth showing for a fraction whose 95% interval is low..high: one digit past the first digit the
    interval's half-width touches (a half-width of 0.10 shows 0.88; of 0.004, 0.8753), from 1 to `most`."""
    half = (high - low) / 2
    if half <= 0:
        return most
    return max(1, min(most, math.ceil(-math.log10(half)) + 1))
