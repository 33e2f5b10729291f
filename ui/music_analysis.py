"""What the panel draws for the music under a still: its waveform, beats, downbeats and sections in the still's
own clip time. No Qt here: the selection runs `analyse_still_music` on the task pool."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from stillmotion.engine import audio
from stillmotion.engine.rates import FrameGrid
from stillmotion.engine.timeline.select import Still

from . import grid_control
from .viewmodel import MusicView

#: Buckets of the waveform drawn under the selection.
WAVEFORM_BUCKETS = 1200


@dataclass
class StillMusic:
    """What the background analysis of a still's music returns."""

    view: MusicView | None
    features: Any | None
    message: str
    grid_summary: str = ""


def peaks_of(samples: np.ndarray, sample_rate: int, offset: float, duration: float, buckets: int,
             out: np.ndarray) -> None:
    """Fold mono `samples` starting `offset` s into the clip into per-bucket min / max (in place)."""
    if samples.size == 0 or duration <= 0:
        return
    t = offset + np.arange(samples.size) / sample_rate
    index = np.clip((t / duration * buckets).astype(np.int64), 0, buckets - 1)
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    where = index[starts]
    out[where, 0] = np.minimum(out[where, 0], np.minimum.reduceat(samples, starts))
    out[where, 1] = np.maximum(out[where, 1], np.maximum.reduceat(samples, starts))


def analyse_still_music(still: Still, rate: Fraction, offline: list[str], beat_grid: Any = None) -> StillMusic:
    """Waveform, beats, downbeats and sections of the music under `still`, in its own clip time (beats from
    `beat_grid`, the editor's correction, when given)."""
    duration = float(Fraction(still.frames) / rate)
    if not still.audio:
        message = offline[0] if offline else "No music under this still: it will move with ambient motion only."
        return StillMusic(None, None, message)
    peaks = np.zeros((WAVEFORM_BUCKETS, 2), dtype=np.float32)
    sections: list[tuple[float, float, str]] = []
    for seg in still.audio:
        clip = audio.load_audio(seg.path, start=seg.source_start, duration=seg.duration, mono=True)
        peaks_of(clip.samples[0] * seg.gain, clip.sample_rate, float(seg.record_start), duration,
                 WAVEFORM_BUCKETS, peaks)
        analysis = audio.analyze(seg.path)
        shift = float(seg.record_start - seg.source_start)
        for a, b, label in analysis.sections:
            lo, hi = max(0.0, a + shift), min(duration, b + shift)
            if hi > lo:
                sections.append((lo, hi, label))
    features = audio.clip_features(still.audio, FrameGrid(rate, still.frames), beat_grid)
    view = MusicView(duration=duration, peaks=peaks, beats=np.asarray(features.beat_times),
                     downbeats=np.asarray(features.downbeat_times), sections=sorted(sections),
                     tempo=features.tempo)
    return StillMusic(view, features, offline[0] if offline else "", grid_control.grid_summary(beat_grid))
