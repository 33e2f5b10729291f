"""The panel's beat-grid controls, as logic: which `BeatGrid` the view-model's tempo factor, tap tempo, phase
shift and "use timeline markers" ask for, tap tempo itself, and the grid actions (×2, ÷2, tap, shift, reset) as
changes of those properties. The controller calls these; widgets only set the view-model's properties or emit
named signals."""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import numpy as np
import opentimelineio as otio
from stillmotion.engine import audio
from stillmotion.engine.audio.grid import TEMPO_FACTORS, BeatGrid
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.timeline.markers import annotate_request, marker_grid
from stillmotion.engine.timeline.select import Still

#: Taps further apart than this start a new tap-tempo count.
TAP_RESET_SECONDS = 2.0
#: Taps remembered (the median interval of these gives the tempo).
TAP_MEMORY = 8
#: The tempo a hint may ask for (the tracker's limits).
HINT_LIMITS = (20.0, 400.0)


class TapTempo:
    """BPM from the editor's taps: the median interval of the last few taps, reset after a pause."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.taps: list[float] = []

    def tap(self) -> float | None:
        """Record a tap now; the tempo once there are at least three taps, else None."""
        now = float(self.clock())
        if self.taps and now - self.taps[-1] > TAP_RESET_SECONDS:
            self.taps.clear()
        self.taps = (self.taps + [now])[-TAP_MEMORY:]
        if len(self.taps) < 3:
            return None
        return float(60.0 / np.median(np.diff(self.taps)))


class BeatGridControl:
    """The panel's beat-grid actions: each changes the view-model's grid properties (the controller analyses the
    selected still's music again when they change)."""

    def __init__(self, vm: Any) -> None:
        self.vm = vm
        self.tapper = TapTempo()

    def double_tempo(self) -> None:
        self.step_tempo(up=True)

    def halve_tempo(self) -> None:
        self.step_tempo(up=False)

    def step_tempo(self, up: bool) -> None:
        if self.vm.tap_bpm is not None:  # a tapped tempo is doubled / halved itself
            self.vm.tap_bpm = min(max(self.vm.tap_bpm * (2 if up else 0.5), 20.0), 400.0)
        else:
            self.vm.tempo_factor = step_factor(self.vm.tempo_factor, up)

    def tap_tempo(self) -> None:
        bpm = self.tapper.tap()
        if bpm is not None:
            self.vm.tempo_factor = 1.0
            self.vm.tap_bpm = round(bpm, 1)

    def shift_grid(self, seconds: float) -> None:
        self.vm.beat_offset = round(min(max(self.vm.beat_offset + float(seconds), -60.0), 60.0), 4)

    def reset_grid(self) -> None:
        vm = self.vm
        vm.tempo_factor, vm.tap_bpm, vm.beat_offset = 1.0, None, 0.0

    def forget_tempo(self, *_: Any) -> None:
        """Markers are beats of their own: a ×2 or tapped tempo meant for the other grid does not carry over."""
        self.vm.tempo_factor, self.vm.tap_bpm = 1.0, None


def step_factor(current: float, up: bool) -> float:
    """The next tempo factor for ×2 (up) or ÷2, within TEMPO_FACTORS."""
    index = TEMPO_FACTORS.index(current) if current in TEMPO_FACTORS else TEMPO_FACTORS.index(1.0)
    index = min(len(TEMPO_FACTORS) - 1, index + 1) if up else max(0, index - 1)
    return TEMPO_FACTORS[index]


def tracked_tempo(still: Still) -> float | None:
    """The tracker's tempo of the song the still mostly hears (cached analysis)."""
    if not still.audio:
        return None
    segment = max(still.audio, key=lambda s: s.duration or Fraction(0))
    return audio.analyze(segment.path).tempo


def panel_grid(vm: Any, still: Still, rate: Fraction, timeline: otio.schema.Timeline | None) -> BeatGrid | None:
    """The grid the panel's controls ask for on `still` (None: the tracker's own).

    With "use timeline markers", the markers near the still are the beats (×2 / ÷2 then add or drop beats
    between them). Otherwise ×2 / ÷2 and tap tempo become a tempo hint, so the tracker re-finds the phase and
    follows drift at that level. The phase shift moves either grid.
    """
    offset = round(float(vm.beat_offset), 4)
    if vm.use_markers and timeline is not None:
        grid = marker_grid(timeline, still, rate, BeatGrid(factor=float(vm.tempo_factor), offset=offset))
        if grid is not None:
            return grid
    bpm = vm.tap_bpm
    if bpm is None and vm.tempo_factor != 1.0:
        base = tracked_tempo(still)
        bpm = None if base is None else base * float(vm.tempo_factor)
    if bpm is not None:
        bpm = round(min(max(float(bpm), HINT_LIMITS[0]), HINT_LIMITS[1]), 2)
    grid = BeatGrid(bpm=bpm, offset=offset)
    return None if grid.is_default else grid


def grid_summary(grid: BeatGrid | None, markers_missing: bool = False) -> str:
    """One short line for the panel: where the grid comes from."""
    if grid is None:
        return "tracked grid" + (" (no timeline markers near this still)" if markers_missing else "")
    parts = []
    if grid.beats is not None:
        parts.append(f"{len(grid.beats)} beats from {grid.source}")
        if grid.factor != 1.0:
            parts.append(f"×{grid.factor:g}")
    elif grid.bpm is not None:
        parts.append(f"tracked at {grid.bpm:g} BPM")
    if grid.offset:
        parts.append(f"shifted {grid.offset * 1000:+.0f} ms")
    return ", ".join(parts) or "tracked grid"


def apply_to_request(request: RenderRequest, grid: BeatGrid | None, timeline: otio.schema.Timeline | None,
                     still: Still, rate: Fraction) -> None:
    """Put the panel's grid and the still's cue markers into a job's request (its identity and provenance)."""
    if timeline is not None:
        annotate_request(request, timeline, still, rate, beats_from_markers=False)
    if grid is not None:
        request.options["beat_grid"] = grid.to_json()
