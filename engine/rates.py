"""Exact frame rates and frame grids.

Rates are `Fraction`s: 23.976 means 24000/1001 exactly. Frame k of a grid covers
[start + k/rate, start + (k+1)/rate), computed in rational arithmetic so nothing drifts over long songs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from .errors import BadInputError

#: Highest rate accepted; anything above is almost certainly a typo.
MAX_FPS = Fraction(240)
#: Longest clip accepted, in seconds (a full feature is ~3 h; a still is never that long).
MAX_DURATION = Fraction(3 * 3600)

_NTSC_BASES = (24, 30, 48, 60, 120)


def nearest_ntsc(rate: Fraction | float, tolerance: Fraction | float) -> Fraction | None:
    """The NTSC rate N*1000/1001 within `tolerance` of `rate` (23.976 → 24000/1001), or None.

    Whole rates are never snapped: 24 stays 24.
    """
    value = Fraction(rate)
    if value.denominator == 1:
        return None
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(value - ntsc) < Fraction(tolerance):
            return ntsc
    return None


def parse_fps(text: str | float | int | Fraction) -> Fraction:
    """Parse '24', '23.976', '29.97', '24000/1001' into an exact rate.

    Decimal spellings of NTSC rates (23.976, 23.98, 29.97, 47.952, 59.94, 119.88) map to N*1000/1001.
    """
    if isinstance(text, Fraction):
        rate = text
    else:
        raw = str(text).strip()
        try:
            if "/" in raw:
                num, den = raw.split("/", 1)
                rate = Fraction(int(num), int(den))
            else:
                rate = Fraction(Decimal(raw))
        except (ValueError, ZeroDivisionError, InvalidOperation):
            raise BadInputError(f"frame rate {raw!r} is not a number (use e.g. 24, 23.976 or 24000/1001)") from None
        if "/" not in raw:
            rate = nearest_ntsc(rate, Fraction(1, 100)) or rate
    if rate <= 0 or rate > MAX_FPS:
        raise BadInputError(f"frame rate {float(rate):g} is out of range (0, {int(MAX_FPS)}]")
    return rate


def parse_seconds(text: str | float | int | Fraction, what: str = "duration", allow_zero: bool = False) -> Fraction:
    """Parse a time in seconds exactly ('2.5' is 5/2, not a binary float)."""
    if isinstance(text, Fraction):
        value = text
    else:
        try:
            value = Fraction(Decimal(str(text).strip()))
        except (ValueError, InvalidOperation):
            raise BadInputError(f"{what} {text!r} is not a number of seconds") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise BadInputError(f"{what} must be {'≥' if allow_zero else '>'} 0 seconds, got {float(value):g}")
    if value > MAX_DURATION:
        raise BadInputError(f"{what} of {float(value):g} s is absurd (limit {int(MAX_DURATION)} s)")
    return value


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves up (Python's round() goes to even)."""
    return math.floor(value + Fraction(1, 2))


def frame_count(duration: Fraction, fps: Fraction) -> int:
    """Number of frames in `duration` seconds at `fps`: round(duration × fps), at least 1."""
    return max(1, round_half_up(duration * fps))


def fps_label(fps: Fraction) -> str:
    """Human label: '24', '23.976', '29.97'."""
    if fps.denominator == 1:
        return str(fps.numerator)
    return f"{float(fps):.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class FrameGrid:
    """`count` frames at `fps` starting at `start` seconds: frame k covers [start + k/fps, start + (k+1)/fps)."""

    fps: Fraction
    count: int
    start: Fraction = Fraction(0)

    @property
    def frame_duration(self) -> Fraction:
        return 1 / self.fps

    @property
    def duration(self) -> Fraction:
        return self.count / self.fps

    def frame_start(self, k: int) -> Fraction:
        return self.start + Fraction(k) / self.fps

    def frame_of(self, seconds: float | Fraction) -> int:
        """Index of the frame whose interval contains `seconds` (may lie outside [0, count))."""
        return math.floor((Fraction(seconds) - self.start) * self.fps)

    def nearest_frame(self, seconds: float | Fraction) -> int:
        """Index of the frame whose start is nearest to `seconds`."""
        return round_half_up((Fraction(seconds) - self.start) * self.fps)

    def sample_bounds(self, sample_rate: int) -> list[int]:
        """Sample index where each frame starts (count + 1 bounds), relative to `start`, exact per frame."""
        return [math.floor(Fraction(k * sample_rate) / self.fps) for k in range(self.count + 1)]
