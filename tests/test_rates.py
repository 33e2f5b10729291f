"""Exact rates: decimal NTSC spellings snap to N*1000/1001, whole and other rates stay exact."""

from __future__ import annotations

from fractions import Fraction

import pytest
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.rates import frame_count, parse_fps, parse_seconds
from stillmotion.engine.timeline.timebase import exact_rate


@pytest.mark.parametrize("text, rate", [
    ("24", Fraction(24)), ("25", Fraction(25)), ("23.976", Fraction(24000, 1001)), ("23.98", Fraction(24000, 1001)),
    ("29.97", Fraction(30000, 1001)), ("59.94", Fraction(60000, 1001)), ("47.952", Fraction(48000, 1001)),
    ("119.88", Fraction(120000, 1001)), ("24000/1001", Fraction(24000, 1001)), ("12.5", Fraction(25, 2)),
    ("30000/1001", Fraction(30000, 1001)),
])
def test_parse_fps(text: str, rate: Fraction) -> None:
    assert parse_fps(text) == rate


@pytest.mark.parametrize("value, rate", [
    (23.976024627685547, Fraction(24000, 1001)), (29.97002997002997, Fraction(30000, 1001)), (25.0, Fraction(25)),
    (59.94005994005994, Fraction(60000, 1001)), (24.0, Fraction(24)),
])
def test_otio_float_rates_are_exact(value: float, rate: Fraction) -> None:
    assert exact_rate(value) == rate


def test_frame_count_rounds_half_up_and_never_below_one() -> None:
    assert frame_count(Fraction(1, 48), Fraction(24)) == 1  # half a frame rounds up
    assert frame_count(Fraction(1, 100), Fraction(24)) == 1
    assert frame_count(Fraction(4), Fraction(24000, 1001)) == 96  # 95.904 → 96
    assert frame_count(parse_seconds("600"), Fraction(30000, 1001)) == 17982


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1e9", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadInputError):
        parse_seconds(text)
