"""Features on a video frame grid.

Frame k covers [start + k/fps, start + (k+1)/fps) exactly (rates.FrameGrid). Frame bounds are computed from the
integer frame index each time (never accumulated), so frame 14 385 at 23.976 is as exact as frame 0. Level
features are averaged over the frame's interval, transient features take the maximum inside it, and beats are
assigned to the frame whose interval contains them, using exact rational comparison.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..rates import FrameGrid, fps_label
from ..request import AudioSegment
from .analysis import AudioAnalysis
from .grid import BeatGrid, analysis_for

#: Level features (mean over the frame) and transient features (max over the frame).
LEVEL_NAMES = ("energy", "low", "mid", "high")
TRANSIENT_NAMES = ("onset", "flux")
FRAME_ARRAYS = ("energy", "onset", "low", "mid", "high", "flux", "beat_phase", "beat", "downbeat")


@dataclass
class FrameFeatures:
    """Per-frame arrays (length grid.count, float32, 0..1) plus event times relative to the grid start."""

    energy: np.ndarray
    onset: np.ndarray
    low: np.ndarray
    mid: np.ndarray
    high: np.ndarray
    flux: np.ndarray
    beat_phase: np.ndarray
    beat: np.ndarray
    downbeat: np.ndarray
    beat_times: np.ndarray
    downbeat_times: np.ndarray
    onset_times: np.ndarray
    tempo: float | None
    fps: Fraction = Fraction(24)

    @property
    def count(self) -> int:
        return int(self.energy.shape[0])

    @classmethod
    def zeros(cls, grid: FrameGrid) -> FrameFeatures:
        """Features of silence: every array zero, no events, no tempo."""
        arrays = {name: np.zeros(grid.count, dtype=np.float32) for name in FRAME_ARRAYS}
        return cls(**arrays, beat_times=np.zeros(0), downbeat_times=np.zeros(0), onset_times=np.zeros(0),
                   tempo=None, fps=grid.fps)

    def to_json(self) -> dict[str, Any]:
        return {
            "fps": fps_label(self.fps),
            "fps_exact": str(self.fps),
            "count": self.count,
            "tempo": None if self.tempo is None else round(float(self.tempo), 3),
            "beat_times": [round(float(t), 5) for t in self.beat_times],
            "downbeat_times": [round(float(t), 5) for t in self.downbeat_times],
            "onset_times": [round(float(t), 5) for t in self.onset_times],
            "frames": {name: [round(float(v), 4) for v in getattr(self, name)] for name in FRAME_ARRAYS},
        }


def frame_bounds(grid: FrameGrid) -> np.ndarray:
    """Float seconds of the count + 1 frame boundaries, each computed directly from its index (no drift)."""
    k = np.arange(grid.count + 1, dtype=np.float64)
    # start + k/fps = (start*fps + k) / fps; numerator and denominator are exact for realistic sizes.
    offset = grid.start * grid.fps
    return (k * offset.denominator + offset.numerator) * grid.fps.denominator / (
        offset.denominator * grid.fps.numerator)


#: Times are float seconds, so a time meant to sit on a frame boundary may be one ulp early; this many frames of
#: tolerance (≈ 4 ns at 24 fps) puts it in the frame that starts there.
_BOUNDARY_TOLERANCE = Fraction(1, 10 ** 7)


def frames_of(times: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """Exact index of the frame containing each time (rational arithmetic; may fall outside the grid)."""
    return np.array([math.floor((Fraction(float(t)) - grid.start) * grid.fps + _BOUNDARY_TOLERANCE)
                     for t in times], dtype=np.int64)


def _interval_mean(values: np.ndarray, hop_rate: float, bounds: np.ndarray) -> np.ndarray:
    """Mean of a piecewise-constant envelope (sample i covers [(i-½)/r, (i+½)/r)) over each interval."""
    edges = (np.arange(values.size + 1) - 0.5) / hop_rate
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64) / hop_rate])
    integral = np.interp(bounds, edges, cumulative)
    width = np.diff(bounds)
    return (np.diff(integral) / np.maximum(width, 1e-12)).astype(np.float32)


def _interval_max(values: np.ndarray, hop_rate: float, bounds: np.ndarray) -> np.ndarray:
    """Max of the envelope samples whose centres fall in each interval (interpolated when none does)."""
    lo = np.ceil(bounds[:-1] * hop_rate - 1e-9).astype(np.int64)
    hi = np.ceil(bounds[1:] * hop_rate - 1e-9).astype(np.int64)
    centres = 0.5 * (bounds[:-1] + bounds[1:]) * hop_rate
    out = np.interp(centres, np.arange(values.size), values, left=0.0, right=0.0).astype(np.float32)
    padded = np.append(values, 0.0).astype(np.float32)
    lo_c, hi_c = np.clip(lo, 0, values.size), np.clip(hi, 0, values.size)
    has = hi_c > lo_c
    if has.any():
        # Frames are contiguous, so reduceat between consecutive non-empty starts is exactly [lo, hi).
        starts = lo_c[has]
        maxima = np.maximum.reduceat(padded, np.append(starts, hi_c[has][-1]))[:-1]
        out[has] = np.maximum(out[has], maxima)
    return out


def _beat_phase(beats: np.ndarray, grid: FrameGrid, bounds: np.ndarray) -> np.ndarray:
    """0 on the frame containing a beat, rising linearly with time towards 1 just before the next beat."""
    phase = np.zeros(grid.count, dtype=np.float32)
    if beats.size < 2:
        return phase
    starts = bounds[:-1]
    beat_frames = frames_of(beats, grid)
    intervals = np.diff(beats)
    # Extend one interval past each end so frames just outside the tracked beats still get a phase.
    ext_beats = np.concatenate([[beats[0] - intervals[0]], beats, [beats[-1] + intervals[-1]]])
    ext_frames = np.concatenate([[beat_frames[0] - (beat_frames[1] - beat_frames[0])], beat_frames,
                                 [beat_frames[-1] + (beat_frames[-1] - beat_frames[-2])]])
    k = np.arange(grid.count)
    idx = np.searchsorted(ext_frames, k, side="right") - 1  # latest beat whose frame ≤ k
    inside = (idx >= 0) & (idx < ext_beats.size - 1)
    j = idx[inside]
    span = ext_beats[j + 1] - ext_beats[j]
    value = (starts[inside] - ext_beats[j]) / np.maximum(span, 1e-9)
    value[k[inside] == ext_frames[j]] = 0.0
    phase[inside] = np.clip(value, 0.0, np.nextafter(np.float32(1.0), np.float32(0.0)))
    return phase


def _event_flags(times: np.ndarray, grid: FrameGrid) -> np.ndarray:
    flags = np.zeros(grid.count, dtype=np.float32)
    idx = frames_of(times, grid)
    idx = idx[(idx >= 0) & (idx < grid.count)]
    flags[idx] = 1.0
    return flags


def frame_features(analysis: AudioAnalysis, grid: FrameGrid) -> FrameFeatures:
    """Features of `analysis` on `grid` (grid.start is in file time); outside the file everything is 0."""
    if analysis.silent:
        return FrameFeatures.zeros(grid)
    bounds = frame_bounds(grid)
    env = analysis.envelopes
    values: dict[str, np.ndarray] = {}
    for name in LEVEL_NAMES:
        values[name] = _interval_mean(env[name], analysis.hop_rate, bounds)
    values["onset"] = _interval_max(env["onset_env"], analysis.hop_rate, bounds)
    values["flux"] = _interval_max(env["flux"], analysis.hop_rate, bounds)
    start, end = float(bounds[0]), float(bounds[-1])

    def within(times: np.ndarray) -> np.ndarray:
        idx = frames_of(times, grid)
        return times[(idx >= 0) & (idx < grid.count)]

    beat_times = within(analysis.beats)
    down_times = within(analysis.downbeats)
    onset_times = within(analysis.onsets)
    tempo = analysis.tempo
    local = env.get("local_tempo")
    if tempo is not None and local is not None and local.size:
        a = int(np.clip(np.floor(start * analysis.hop_rate), 0, local.size - 1))
        b = int(np.clip(np.ceil(end * analysis.hop_rate), a + 1, local.size))
        segment = local[a:b]
        segment = segment[segment > 0]
        if segment.size:
            tempo = float(np.median(segment))
    return FrameFeatures(
        **{k: np.clip(v, 0.0, 1.0).astype(np.float32) for k, v in values.items()},
        beat_phase=_beat_phase(analysis.beats, grid, bounds),
        beat=_event_flags(analysis.beats, grid),
        downbeat=_event_flags(analysis.downbeats, grid),
        beat_times=beat_times - float(grid.start),
        downbeat_times=down_times - float(grid.start),
        onset_times=onset_times - float(grid.start),
        tempo=tempo,
        fps=grid.fps,
    )


def _segment_mask(grid: FrameGrid, begin: Fraction, end: Fraction) -> np.ndarray:
    """Frames of a clip-time grid whose centre lies in [begin, end)."""
    k = np.arange(grid.count)
    half = Fraction(1, 2)
    lo = math.ceil((begin - grid.start) * grid.fps - half)
    hi = math.ceil((end - grid.start) * grid.fps - half)
    return (k >= lo) & (k < hi)


def clip_features(segments: list[AudioSegment], grid: FrameGrid, beat_grid: BeatGrid | None = None
                  ) -> FrameFeatures:
    """Features of a clip's music on its own grid (clip time): each segment's file analysed whole (cached),
    mapped through (source_start, record_start, duration), silence where no segment plays. `beat_grid` is the
    editor's correction of the tracked beats (grid.BeatGrid), applied to each file's analysis."""
    result = FrameFeatures.zeros(grid)
    best_energy = np.full(grid.count, -1.0, dtype=np.float32)
    beat_times: list[np.ndarray] = []
    down_times: list[np.ndarray] = []
    onset_times: list[np.ndarray] = []
    tempos: list[tuple[float, float]] = []
    for seg in segments:
        if seg.gain <= 0:
            continue
        analysis = analysis_for(os.fspath(seg.path), beat_grid)
        source = Fraction(seg.source_start)
        record = Fraction(seg.record_start)
        length = Fraction(seg.duration) if seg.duration is not None else \
            max(Fraction(0), Fraction(analysis.duration) - source)
        # The segment's music played over the whole clip, then masked to where it actually plays.
        shifted = FrameGrid(fps=grid.fps, count=grid.count, start=grid.start + source - record)
        feats = frame_features(analysis, shifted)
        mask = _segment_mask(grid, record, record + length)
        if not mask.any():
            continue
        for name in ("energy", "onset", "low", "mid", "high", "flux", "beat", "downbeat"):
            current = getattr(result, name)
            current[mask] = np.maximum(current[mask], getattr(feats, name)[mask])
        dominant = mask & (feats.energy > best_energy)
        result.beat_phase[dominant] = feats.beat_phase[dominant]
        best_energy[dominant] = feats.energy[dominant]
        for store, times in ((beat_times, feats.beat_times), (down_times, feats.downbeat_times),
                             (onset_times, feats.onset_times)):
            # feats times are relative to the shifted grid start, i.e. already clip time.
            clip_t = times + float(grid.start)
            frame_idx = frames_of(clip_t, grid)
            keep = (frame_idx >= 0) & (frame_idx < grid.count)
            keep[keep] = mask[frame_idx[keep]]
            store.append(times[keep])
        if feats.tempo is not None:
            tempos.append((feats.tempo, float(mask.sum())))
    result.beat_times = np.sort(np.concatenate(beat_times)) if beat_times else np.zeros(0)
    result.downbeat_times = np.sort(np.concatenate(down_times)) if down_times else np.zeros(0)
    result.onset_times = np.sort(np.concatenate(onset_times)) if onset_times else np.zeros(0)
    if tempos:
        result.tempo = max(tempos, key=lambda item: item[1])[0]
    return result
