"""A small house-track generator for the beat-grid tests: exact beats, numpy only, fast.

Four-on-the-floor kicks, claps on 2 and 4, open hats and a bass on the off-beats: the kind of track the tracker
before issue 14 read at half tempo (0.3 bass gain: the old tracker read it at 63-64 BPM; the tests force the
half-tempo reading with a 62-BPM hint or tap, so they do not depend on which tracker is in place).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050


def _kick(rate: int) -> np.ndarray:
    t = np.arange(int(0.25 * rate)) / rate
    freq = 50 + 90 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(freq) / rate) * np.exp(-t * 14)


def _noise_hit(rate: int, seconds: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return rng.standard_normal(t.size) * np.exp(-t * decay)


def house_song(path: Path, bpm: float = 124.0, bars: int = 6, seed: int = 0, lead_in: float = 0.5
               ) -> tuple[np.ndarray, np.ndarray]:
    """Write a mono WAV; return (beat times, downbeat times) in seconds."""
    rng = np.random.default_rng(seed)
    period = 60.0 / bpm
    count = bars * 4
    beats = lead_in + period * np.arange(count)
    total = int((beats[-1] + 2 * period) * RATE)
    y = np.zeros(total)
    kick, clap = _kick(RATE), _noise_hit(RATE, 0.15, 25, rng)
    hat = np.diff(_noise_hit(RATE, 0.08, 45, rng), prepend=0.0)

    def add(sound: np.ndarray, at: float, gain: float) -> None:
        i = int(round(at * RATE))
        n = min(sound.size, total - i)
        y[i:i + n] += gain * sound[:n]

    for k, b in enumerate(beats):
        add(kick, b, 0.9)
        if k % 2 == 1:
            add(clap, b, 0.35)
        add(hat, b + period / 2, 0.25)
        t = np.arange(int(period / 2 * RATE)) / RATE
        add(np.sin(2 * np.pi * 55 * t) * np.exp(-t * 6), b + period / 2, 0.3)
    y = 0.8 * y / np.max(np.abs(y))
    sf.write(str(path), y.astype(np.float32), RATE)
    return beats, beats[::4]
