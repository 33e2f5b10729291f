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
from . import tempo
from .beat_model import Activations

METERS = (2, 3, 4)
#: Weight of the tempo head's log probability in the tempo search, beside the tempogram's 12 × salience. 4 was
#: tuned on development seeds; on real recordings the head (trained on generated songs only) pulls toward the
#: generator's metrical levels. 1 keeps what it does for generated songs (fresh ranges 0.989 → 0.992 and
#: 0.996 → 0.996 mean F) and loses less on real ones (GTZAN held-out half 0.595 → 0.619; docs/audio.md).
TEMPO_HEAD_WEIGHT = 1.0
#: Off-beat phase: the beats move half a beat when the downbeat activation half-way between them is this many
#: times that on them (mean of each side's strongest quarter — the candidate bar lines). A one-drop's skanks
#: can pull the beat activation's tracking onto the off-beats; the downbeat output, which has heard the bars,
#: still marks the true beat 1 (tuned on development seeds only).
OFF_PHASE_RATIO = 1.5


def off_beat_phase(down_window: np.ndarray, frames: np.ndarray) -> bool:
    """Whether the bar lines (downbeat activation) sit between the tracked beats rather than on them."""
    if frames.size < 8:
        return False
    mids = (frames[:-1] + frames[1:]) // 2

    def bar_lines(values: np.ndarray) -> float:
        top = np.sort(values)[-max(1, values.size // 4):]
        return float(top.mean())

    return bar_lines(down_window[mids]) > OFF_PHASE_RATIO * bar_lines(down_window[frames[:-1]])


def head_prior(tempo_log_probs: np.ndarray, head_bpms: np.ndarray, hop_rate: float, weight: float
               ) -> tempo.WindowPrior:
    """The tempo head's per-frame log probabilities as a per-window prior for tempo.tempo_path: the mean
    distribution over each 8-s window, read at the search's tempo bins (linear in log tempo), × `weight`."""
    probs = np.exp(tempo_log_probs.astype(np.float64))
    cum = np.concatenate([np.zeros((probs.shape[0], 1)), np.cumsum(probs, axis=1)], axis=1)
    half = int(round(tempo.WINDOW_S * hop_rate / 2))
    frames = probs.shape[1]

    def prior(centres: np.ndarray, bpms: np.ndarray) -> np.ndarray:
        mid = np.clip(np.round(centres * hop_rate).astype(int), 0, frames - 1)
        lo, hi = np.clip(mid - half, 0, frames - 1), np.clip(mid + half, 1, frames)
        mean = (cum[:, hi] - cum[:, lo]) / np.maximum(1, hi - lo)  # (head bins, windows)
        log_mean = np.log(np.maximum(mean, 1e-6))
        octaves = np.log2(bpms)
        rows = [np.interp(octaves, np.log2(head_bpms), log_mean[:, w]) for w in range(mean.shape[1])]
        return weight * np.asarray(rows)

    return prior


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
    env = tempo.detrend(onset_raw.astype(np.float64), hop_rate)
    acf, frames, starts, _ = tempo.window_acf(env, hop_rate)
    centres = (starts + frames.shape[1] / 2) / hop_rate
    return dsp.splits_in_three(acf, centres, beat_times, beat_lags)


def decode_outputs(outputs: Activations, hop_rate: float, bpm_hint: float | None = None,
                   tempo_range: tuple[float, float] | None = None, onset_raw: np.ndarray | None = None,
                   tempo_weight: float = TEMPO_HEAD_WEIGHT) -> dsp.BeatResult:
    """decode() of all the network's outputs: with a tempo head, its tempo distribution is the tempo search's
    prior (the network, which has heard whole bars, tells a one-drop at half the skank rate)."""
    prior = None
    if outputs.tempo_log_probs is not None and tempo_weight > 0:
        prior = head_prior(outputs.tempo_log_probs, outputs.tempo_bpms, hop_rate, tempo_weight)
    return decode(outputs.beat, outputs.down, hop_rate, bpm_hint, tempo_range, onset_raw, prior)


def decode(beat_act: np.ndarray, down_act: np.ndarray, hop_rate: float, bpm_hint: float | None = None,
           tempo_range: tuple[float, float] | None = None, onset_raw: np.ndarray | None = None,
           prior: tempo.WindowPrior | None = None) -> dsp.BeatResult:
    """BeatResult from per-frame beat / downbeat probabilities (frames at hop_rate); `onset_raw` (the onset
    envelope) tells compound time, without it a bar of 2 is never chosen; `prior` a per-window tempo prior."""
    tempo.check_tempo_hint(bpm_hint, tempo_range)
    n = beat_act.size
    detection = beat_act.astype(np.float64)
    found = tempo.tempo_path(detection, hop_rate, bpm_hint, tempo_range, prior)
    if found is None:
        return dsp._empty(n)
    _env, acf, centres, energy, bpm_path, sal_path = found
    active = energy > 1e-6
    confidence = float(np.clip(np.median(sal_path[active]), 0.0, 1.0)) if active.any() else 0.0
    local_bpm, frames = dsp.follow_tempo(detection, acf, centres, bpm_path, hop_rate)
    if frames.size < 2:
        return dsp.BeatResult(None, confidence, np.zeros(0), local_bpm.astype(np.float32), None,
                              np.zeros(0, np.int64), np.zeros(0))
    window = np.lib.stride_tricks.sliding_window_view(np.pad(down_act, 2), 5).max(axis=1)
    if off_beat_phase(window, frames):
        frames = dsp._half_beat_shift(frames, n)
    beat_times = frames / hop_rate
    lags = 60.0 * hop_rate / local_bpm[frames]
    compound = onset_raw is not None and compound_time(onset_raw, hop_rate, beat_times, lags)
    meter, first = bar_phase(window[frames], METERS if compound else (3, 4))
    positions, downbeats = dsp.bar_positions(beat_times, meter, first)
    return dsp.BeatResult(dsp._tempo_from_beats(beat_times), confidence, beat_times,
                          local_bpm.astype(np.float32), meter, positions, downbeats)
