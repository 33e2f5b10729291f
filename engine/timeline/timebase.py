"""Exact time from OTIO's floating-point `RationalTime`s.

OTIO stores rates as doubles (29.97002997…, or 23.976024627685547 from a float32 exporter); frame arithmetic
here is done on exact `Fraction`s so a still is rendered for exactly its record duration.
"""

from __future__ import annotations

import math
from fractions import Fraction

import opentimelineio as otio

from ..rates import nearest_ntsc


def exact_rate(rate: float) -> Fraction:
    """The exact rate an OTIO float rate stands for: 29.97… -> 30000/1001, 25.0 -> 25."""
    if rate <= 0:
        raise ValueError(f"rate {rate} is not positive")
    nearest = round(rate)
    if abs(rate - nearest) < 1e-6:
        return Fraction(nearest)
    return nearest_ntsc(rate, Fraction(5, 1000)) or Fraction(rate).limit_denominator(1001)


def to_seconds(time: otio.opentime.RationalTime) -> Fraction:
    """A RationalTime in exact seconds (value is taken as stored, the rate as the exact rate it stands for)."""
    return Fraction(time.value) / exact_rate(time.rate)


def to_frames(time: otio.opentime.RationalTime, rate: Fraction) -> int:
    """A RationalTime as a whole number of frames at `rate` (nearest; halves up)."""
    return math.floor(to_seconds(time) * rate + Fraction(1, 2))


def frames_time(frames: int, rate: Fraction) -> otio.opentime.RationalTime:
    """`frames` at `rate` as a RationalTime (an integer value, so it lands exactly on the frame grid)."""
    return otio.opentime.RationalTime(frames, float(rate))


def frames_range(start: int, count: int, rate: Fraction) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(frames_time(start, rate), frames_time(count, rate))
