"""Beats, tempo, meter and downbeats from the network's activations (beat_model.activations).

The beat activation is a detection function that already fires on beats only, so the DSP tracker's tempo
search (windowed tempogram + Viterbi path, beats.tempo_path) and its dynamic-programming tracker (beats.dp_track)
run on it directly; the editor's --bpm / --tempo-range hints restrict that search as before. The meter and bar
phase are read from the downbeat activation at the tracked beats: the bar length (2, 3 or 4 beats) and phase
under which the downbeat activations at the tracked beats are most likely. A bar of 2 is a 6/8 bar of two
dotted quarters, so it is a candidate only in compound time (the onsets split each beat in three, as the DSP
tracker tests it): in 4/4 the network often marks beat 3 nearly as strongly as beat 1.
"""

from __future__ import annotations

import numpy as np

from . import beats as dsp

METERS = (2, 3, 4)


def bar_phase(down_at_beats: np.ndarray, meters: tuple[int, ...] = METERS) -> tuple[int | None, int]:
    """(meter, index of the first downbeat): the bar length and phase under which the downbeat activations at the
    beats are most likely (each beat a downbeat with probability p when the bar says so, 1 - p when not);
    (None, 0) with fewer than 8 beats. A 4/4 song with a strong beat 3 still reads 4: 1 - p at beat 3 beats p."""
    if down_at_beats.size < 8:
        return None, 0
    p = np.clip(down_at_beats.astype(np.float64), 0.02, 0.98)
    yes, no = np.log(p), np.log1p(-p)
    best, best_score = (4, 0), -np.inf
    for meter in meters:
        for phase in range(meter):
            on = np.zeros(p.size, bool)
            on[phase::meter] = True
            score = float(yes[on].sum() + no[~on].sum())
            if score > best_score + 1e-9:
                best, best_score = (meter, phase), score
    return best


def compound_time(onset_raw: np.ndarray, hop_rate: float, beat_times: np.ndarray, beat_lags: np.ndarray) -> bool:
    """Whether the onsets split the beats in three (ACF at a third of the beat above the ACF at a half)."""
    env = dsp._detrend(onset_raw.astype(np.float64), hop_rate)
    acf, frames, starts, _ = dsp.window_acf(env, hop_rate)
    centres = (starts + frames.shape[1] / 2) / hop_rate
    return dsp.splits_in_three(acf, centres, beat_times, beat_lags)


def decode(beat_act: np.ndarray, down_act: np.ndarray, hop_rate: float, bpm_hint: float | None = None,
           tempo_range: tuple[float, float] | None = None, onset_raw: np.ndarray | None = None
           ) -> dsp.BeatResult:
    """BeatResult from per-frame beat / downbeat probabilities (frames at hop_rate); `onset_raw` (the onset
    envelope) tells compound time, without it a bar of 2 is never chosen."""
    dsp.check_tempo_hint(bpm_hint, tempo_range)
    n = beat_act.size
    found = dsp.tempo_path(beat_act.astype(np.float64), hop_rate, bpm_hint, tempo_range)
    if found is None:
        return dsp._empty(n)
    _env, acf, centres, energy, bpm_path, sal_path = found
    active = energy > 1e-6
    confidence = float(np.clip(np.median(sal_path[active]), 0.0, 1.0)) if active.any() else 0.0
    local_bpm, frames = dsp.follow_tempo(beat_act.astype(np.float64), acf, centres, bpm_path, hop_rate)
    if frames.size < 2:
        return dsp.BeatResult(None, confidence, np.zeros(0), local_bpm.astype(np.float32), None,
                              np.zeros(0, np.int64), np.zeros(0))
    beat_times = frames / hop_rate
    window = np.lib.stride_tricks.sliding_window_view(np.pad(down_act, 2), 5).max(axis=1)
    lags = 60.0 * hop_rate / local_bpm[frames]
    compound = onset_raw is not None and compound_time(onset_raw, hop_rate, beat_times, lags)
    meter, first = bar_phase(window[frames], METERS if compound else (3, 4))
    positions, downbeats = dsp.bar_positions(beat_times, meter, first)
    return dsp.BeatResult(dsp._tempo_from_beats(beat_times), confidence, beat_times,
                          local_bpm.astype(np.float32), meter, positions, downbeats)
