"""Frame-grid arithmetic and clip mapping: no drift over 10 minutes, exact beat frames, trims, gaps, silence."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import *  # noqa: F403
from stillmotion.engine.audio import AudioAnalysis, analyze, clip_features, frame_features
from stillmotion.engine.audio.frames import FRAME_ARRAYS, frame_bounds, frames_of
from stillmotion.engine.rates import FrameGrid, frame_count, parse_fps
from stillmotion.engine.request import AudioSegment

HOP_RATE = 22050 / 256


def _synthetic_analysis(duration: float, beats: np.ndarray, meter: int = 4) -> AudioAnalysis:
    """An analysis with known events and envelopes: energy ramps 0→1 over the song, onset spikes on beats."""
    n = int(duration * HOP_RATE) + 1
    t = np.arange(n) / HOP_RATE
    onset = np.zeros(n, dtype=np.float32)
    onset[np.round(beats * HOP_RATE).astype(int)] = 1.0
    ramp = (t / duration).astype(np.float32)
    positions = (np.arange(beats.size) % meter + 1).astype(np.int64)
    return AudioAnalysis(
        duration=duration, tempo=120.0, tempo_confidence=0.9, beats=beats, beat_positions=positions, meter=meter,
        downbeats=beats[positions == 1], onsets=beats.copy(), onset_strengths=np.ones(beats.size, np.float32),
        sections=[(0.0, duration, "high")], hop_rate=HOP_RATE,
        envelopes={"energy": ramp, "onset_env": onset, "low": ramp, "mid": ramp, "high": ramp,
                   "flux": onset, "local_tempo": np.full(n, 120.0, np.float32)},
    )


@pytest.mark.parametrize("fps_text", ["23.976", "29.97", "25"])
def test_ten_minute_grid_has_no_drift(fps_text: str) -> None:
    fps = parse_fps(fps_text)
    count = frame_count(Fraction(600), fps)
    assert count == {"23.976": 14386, "29.97": 17982, "25": 15000}[fps_text]
    for start in (Fraction(0), Fraction(3607, 1000)):
        grid = FrameGrid(fps=fps, count=count, start=start)
        bounds = frame_bounds(grid)
        exact = [float(grid.frame_start(k)) for k in range(count + 1)]
        assert np.max(np.abs(bounds - np.array(exact))) < 1e-9
        assert bounds[-1] == pytest.approx(float(start + Fraction(count) / fps), abs=1e-9)
        # A float loop accumulating 1/fps drifts; ours does not (sanity check that the test can fail).
        naive = float(start) + np.cumsum(np.full(count, float(1 / fps)))
        assert np.max(np.abs(naive - np.array(exact[1:]))) > 1e-11


@pytest.mark.parametrize("fps_text", ["23.976", "29.97", "25"])
def test_beats_land_on_their_exact_frames_for_ten_minutes(fps_text: str) -> None:
    """Beats placed exactly on frame starts, mid-frame and just before a frame's end, up to 10 minutes in."""
    fps = parse_fps(fps_text)
    grid = FrameGrid(fps=fps, count=frame_count(Fraction(600), fps))
    ks = np.arange(0, grid.count - 1, 37)
    starts = np.array([float(grid.frame_start(int(k))) for k in ks])
    frame_s = float(1 / fps)
    for offset, label in ((0.0, "on start"), (0.5 * frame_s, "middle"), (frame_s - 1e-6, "end")):
        times = starts + offset
        assert np.array_equal(frames_of(times, grid), ks), label
    beats = starts + 0.5 * frame_s
    feats = frame_features(_synthetic_analysis(601.0, beats), grid)
    assert np.array_equal(np.flatnonzero(feats.beat), ks)
    assert np.array_equal(np.flatnonzero(feats.downbeat), ks[::4])
    assert np.allclose(feats.beat_times, beats, atol=1e-9)
    # beat_phase: 0 on each beat's frame, rising strictly in between, never reaching 1.
    assert np.all(feats.beat_phase[ks] == 0.0)
    inner = feats.beat_phase[ks[-2] + 1:ks[-1]]
    assert np.all(np.diff(inner) > 0) and inner.max() < 1.0
    assert feats.beat_phase[ks[-1] - 1] == pytest.approx((36 - 0.0) / 37, abs=0.02)


def test_frame_features_levels_and_ranges() -> None:
    duration = 20.0
    beats = np.round(np.arange(0.5, 19.6, 0.5) * HOP_RATE) / HOP_RATE  # on envelope frames, like real beats
    analysis = _synthetic_analysis(duration, beats)
    fps = Fraction(24000, 1001)
    grid = FrameGrid(fps=fps, count=frame_count(Fraction(10), fps), start=Fraction(5))
    feats = frame_features(analysis, grid)
    for name in FRAME_ARRAYS:
        arr = getattr(feats, name)
        assert arr.shape == (grid.count,) and arr.dtype == np.float32
        assert arr.min() >= 0.0 and arr.max() <= 1.0
    centres = (frame_bounds(grid)[:-1] + frame_bounds(grid)[1:]) / 2
    assert np.allclose(feats.energy, centres / duration, atol=0.01)  # the ramp, averaged per frame
    assert feats.onset[np.flatnonzero(feats.beat)].min() == 1.0  # a spike inside a frame is kept (max)
    end = float(grid.start + grid.duration)
    assert np.allclose(feats.beat_times, beats[(beats >= 5) & (beats < end)] - 5, atol=1e-9)
    # A grid running past the end of the song: zeros there.
    tail = frame_features(analysis, FrameGrid(fps=Fraction(25), count=100, start=Fraction(18)))
    assert tail.energy[60:].max() == 0.0 and tail.onset[60:].max() == 0.0


def test_clip_features_map_trims_and_gaps(synthetic_music) -> None:
    """Two excerpts of a real track under a 6-s clip: beats appear shifted by (record - source), nothing in the
    gap, nothing after the file ends."""
    track = synthetic_music["mid_straight"]
    path = track["wav"]
    analysis = analyze(path)
    fps = Fraction(30000, 1001)
    segs = [
        AudioSegment(path, source_start=Fraction(10), duration=Fraction(2), record_start=Fraction(1, 2)),
        # runs past the end of the audio (file ≈ 27.4 s): silence after it ends
        AudioSegment(path, source_start=Fraction(26), duration=Fraction(3), record_start=Fraction(3)),
    ]
    grid = FrameGrid(fps=fps, count=frame_count(Fraction(6), fps))
    feats = clip_features(segs, grid)
    file_beats = analysis.beats
    want = np.concatenate([file_beats[(file_beats >= 10) & (file_beats < 12)] - 10 + 0.5,
                           file_beats[(file_beats >= 26) & (file_beats < 29)] - 26 + 3])
    assert len(want) >= 4
    assert np.allclose(np.sort(feats.beat_times), np.sort(want), atol=1e-6)
    beat_frames = np.flatnonzero(feats.beat)
    assert set(beat_frames) == {math.floor(Fraction(float(t)) * fps) for t in want}

    def frames_between(a: float, b: float) -> slice:
        return slice(math.ceil(a * float(fps)) + 1, math.floor(b * float(fps)) - 1)

    assert feats.energy[frames_between(0.0, 0.5)].max() == 0.0  # before the first segment
    assert feats.energy[frames_between(2.5, 3.0)].max() == 0.0  # the gap
    assert feats.energy[frames_between(0.5, 2.5)].min() > 0.2
    end_of_file = 3 + analysis.duration - 26
    assert feats.energy[frames_between(end_of_file + 0.1, 6.0)].max() == 0.0  # past the end of the audio
    assert feats.tempo == pytest.approx(118, rel=0.03)
    empty = clip_features([], grid)
    assert all(not getattr(empty, name).any() for name in FRAME_ARRAYS) and empty.tempo is None


def test_silence_gives_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((44100 * 5, 2)), 44100)
    analysis = analyze(path)
    assert analysis.tempo is None and analysis.beats.size == 0 and analysis.onsets.size == 0
    feats = clip_features([AudioSegment(str(path))], FrameGrid(fps=Fraction(24), count=120))
    assert all(not getattr(feats, name).any() for name in FRAME_ARRAYS)
    assert feats.tempo is None
