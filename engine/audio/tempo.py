"""Local tempo of an onset envelope (or the beat network's activation): windowed tempogram + Viterbi path.

Split from beats.py (one concern: how fast, not where the beats are). A windowed autocorrelation and Fourier
tempogram (8 s windows every 0.5 s) give an octave-robust salience per tempo; a Viterbi path through (window,
tempo) with a log-normal prior — or a per-window prior the caller gives (the beat network's tempo head) — and a
penalty on tempo changes gives a smooth local tempo that follows ramps but does not flip octaves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import BadInputError
from ..reproducible import matmul

MIN_BPM, MAX_BPM = 50.0, 220.0
#: Centre and width (octaves) of the log-normal tempo prior.
PRIOR_BPM, PRIOR_OCTAVES = 115.0, 1.0
WINDOW_S, WINDOW_HOP_S = 8.0, 0.5
#: Std-dev of the local tempo change per window hop, in octaves.
TEMPO_DRIFT_OCTAVES = 0.02
#: Tempi an editor may give as a hint or a search range (BPM).
HINT_LIMITS = (20.0, 400.0)
#: A tempo hint fixes the metrical level: the search spans this many octaves either side of it (±23 %), enough
#: for drift and ramps around the hint, too little to reach the octave above or below.
HINT_SPAN_OCTAVES = 0.3
#: Tempo bins per octave of the search grid.
BINS_PER_OCTAVE = 75


def check_tempo_hint(bpm: float | None, tempo_range: tuple[float, float] | None) -> None:
    """Raise BadInputError for a hint or range the tracker cannot use (≤ 0, lo ≥ hi, outside 20-400 BPM)."""
    lo_limit, hi_limit = HINT_LIMITS
    if bpm is not None:
        if not np.isfinite(bpm) or not lo_limit <= float(bpm) <= hi_limit:
            raise BadInputError(f"tempo hint {bpm} BPM is outside {lo_limit:g}-{hi_limit:g} BPM")
    if tempo_range is not None:
        try:
            lo, hi = (float(v) for v in tempo_range)
        except (TypeError, ValueError):
            raise BadInputError(f"tempo range {tempo_range!r} is not two numbers (low, high)") from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise BadInputError(f"tempo range {lo:g}-{hi:g} BPM: the low end must be below the high end")
        if lo < lo_limit or hi > hi_limit:
            raise BadInputError(f"tempo range {lo:g}-{hi:g} BPM is outside {lo_limit:g}-{hi_limit:g} BPM")
        if bpm is not None and not lo <= float(bpm) <= hi:
            raise BadInputError(f"tempo hint {bpm:g} BPM is outside the tempo range {lo:g}-{hi:g} BPM")


def tempo_grid(bpm_hint: float | None = None, tempo_range: tuple[float, float] | None = None
               ) -> tuple[np.ndarray, float, float]:
    """(tempo bins in BPM, prior centre, prior width in octaves) for a search with an optional hint / range."""
    lo, hi = (MIN_BPM, MAX_BPM) if tempo_range is None else (float(tempo_range[0]), float(tempo_range[1]))
    centre, width = PRIOR_BPM, PRIOR_OCTAVES
    if bpm_hint is not None:
        lo = max(lo, bpm_hint * 2.0 ** -HINT_SPAN_OCTAVES)
        hi = min(hi, bpm_hint * 2.0 ** HINT_SPAN_OCTAVES)
        centre, width = float(bpm_hint), HINT_SPAN_OCTAVES
    elif tempo_range is not None:
        centre = float(np.sqrt(lo * hi))
        width = max(PRIOR_OCTAVES, np.log2(hi / lo))
    n = max(16, int(round(BINS_PER_OCTAVE * np.log2(hi / lo))))
    return np.geomspace(lo, hi, n), centre, width


def detrend(onset: np.ndarray, hop_rate: float) -> np.ndarray:
    """Subtract a 0.4-s moving average and rectify: removes slow loudness swells, keeps attacks."""
    width = max(3, int(round(0.4 * hop_rate)) | 1)
    kernel = np.ones(width) / width
    smooth = np.convolve(np.pad(onset, width // 2, mode="edge"), kernel, mode="valid")
    return np.maximum(0.0, onset - smooth)


def _windows(env: np.ndarray, hop_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping analysis windows of the envelope: (frames (windows, win), start indices)."""
    n = env.size
    win = int(round(WINDOW_S * hop_rate))
    step = int(round(WINDOW_HOP_S * hop_rate))
    if n <= win:  # a short file is one window of its own length (zero padding would fake periodicity)
        return env[None, :].astype(np.float64), np.array([0])
    starts = np.arange(0, n - win + 1, step)
    if starts[-1] != n - win:
        starts = np.append(starts, n - win)
    return np.lib.stride_tricks.sliding_window_view(env, win)[starts].astype(np.float64), starts


def window_acf(env: np.ndarray, hop_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-window autocorrelation (windows, lags), 1 at lag 0, plus the windowed frames, starts and energy."""
    frames, starts = _windows(env, hop_rate)
    win = frames.shape[1]
    energy = frames.mean(axis=1)
    frames = (frames - energy[:, None]) * np.hanning(win)[None, :]
    nfft = 1 << int(np.ceil(np.log2(2 * win)))
    spec = np.fft.rfft(frames, nfft, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, :win]
    overlap = np.correlate(np.hanning(win) ** 2, np.hanning(win) ** 2, mode="full")[win - 1:]
    acf = acf / np.maximum(overlap, overlap[0] * 0.25)[None, :]
    zero = acf[:, :1]
    acf = np.where(zero > 1e-12, acf / np.maximum(zero, 1e-12), 0.0)
    return acf, frames, starts, energy


def tempogram(env: np.ndarray, hop_rate: float, bpms: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windowed tempograms of the envelope.

    Returns (acf (windows, lags) normalised to 1 at lag 0, dft (windows, len(bpms)) normalised to its max per
    window, window centres in s, window mean energy).
    """
    acf, frames, starts, energy = window_acf(env, hop_rate)
    win = frames.shape[1]
    basis = np.exp(-2j * np.pi * np.outer(np.arange(win) / hop_rate, bpms / 60.0))
    dft = np.abs(matmul(frames, basis))
    dft = dft / np.maximum(dft.max(axis=1, keepdims=True), 1e-12)
    centres = (starts + win / 2) / hop_rate
    return acf, dft, centres, energy


def _acf_at(acf: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Linear interpolation of each window's ACF at fractional lags (windows, len(lags))."""
    lo = np.floor(lags).astype(int)
    frac = lags - lo
    lo = np.clip(lo, 0, acf.shape[1] - 2)
    return acf[:, lo] * (1 - frac) + acf[:, lo + 1] * frac


def _peak_acf(acf: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """ACF at each lag, taking the best of lag±3 % so a slightly-off grid still finds the peak."""
    return np.maximum.reduce([_acf_at(acf, lags * f) for f in (0.97, 0.985, 1.0, 1.015, 1.03)])


def tempo_salience(acf: np.ndarray, dft: np.ndarray, hop_rate: float, bpms: np.ndarray) -> np.ndarray:
    """Octave-robust tempo evidence (windows, tempi), 0..1.

    The autocorrelation peaks at the beat period and its multiples (half, third tempo...), the Fourier
    tempogram at the beat frequency and its harmonics (double, triple tempo...). Only the true tactus is
    strong in both, so their geometric mean suppresses both octave errors (Peeters 2007; Grosche & Mueller).
    """
    lag = 60.0 * hop_rate / bpms
    periodic = np.clip(_peak_acf(acf, np.minimum(lag, acf.shape[1] - 2)), 0.0, 1.0)
    return np.sqrt(periodic * np.clip(dft, 0.0, 1.0))


#: A per-window tempo prior a caller may add to the search: f(window centres in s, tempo bins in BPM) → log
#: prior (windows, bins).
WindowPrior = Callable[[np.ndarray, np.ndarray], np.ndarray]


def local_tempo_path(acf: np.ndarray, dft: np.ndarray, energy: np.ndarray, hop_rate: float,
                     bpms: np.ndarray, prior_bpm: float = PRIOR_BPM, prior_octaves: float = PRIOR_OCTAVES,
                     window_prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi-smoothed tempo per window (BPM) and the salience along it; `window_prior` (windows, bins) is a
    log prior added to each window's evidence."""
    sal = tempo_salience(acf, dft, hop_rate, bpms)
    octaves = np.log2(bpms / prior_bpm)
    log_prior = -0.5 * (octaves / prior_octaves) ** 2
    active = energy > 1e-6
    emission = np.where(active[:, None], 12.0 * sal, 0.0) + log_prior[None, :]
    if window_prior is not None:
        emission = emission + window_prior
    step = np.log2(bpms[1] / bpms[0])
    delta = np.arange(-bpms.size + 1, bpms.size) * step
    trans = -0.5 * (delta / TEMPO_DRIFT_OCTAVES) ** 2
    trans = np.maximum(trans, -30.0)  # octave jumps stay possible after long evidence
    n_win = acf.shape[0]
    score = emission[0].copy()
    back = np.zeros((n_win, bpms.size), dtype=np.int32)
    idx = np.arange(bpms.size)
    rel = idx[None, :] - idx[:, None] + bpms.size - 1  # rel[j, i] = i - j offset into trans
    trans_matrix = trans[rel]  # [from j, to i]
    for w in range(1, n_win):
        cand = score[:, None] + trans_matrix
        back[w] = np.argmax(cand, axis=0)
        score = cand[back[w], idx] + emission[w]
    path = np.zeros(n_win, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for w in range(n_win - 1, 0, -1):
        path[w - 1] = back[w, path[w]]
    return bpms[path], sal[np.arange(n_win), path]


def tempo_path(onset_raw: np.ndarray, hop_rate: float, bpm_hint: float | None = None,
               tempo_range: tuple[float, float] | None = None, prior: WindowPrior | None = None):
    """(detrended envelope, acf, centres, energy, Viterbi tempo path, salience along it) or None without pulse;
    `prior` adds a per-window tempo prior to the search."""
    env = detrend(onset_raw, hop_rate)
    if onset_raw.size < int(2 * hop_rate) or not np.any(env > 0):
        return None
    bpms, prior_bpm, prior_octaves = tempo_grid(bpm_hint, tempo_range)
    acf, dft, centres, energy = tempogram(env, hop_rate, bpms)
    window_prior = None if prior is None else prior(centres, bpms)
    bpm_path, sal_path = local_tempo_path(acf, dft, energy, hop_rate, bpms, prior_bpm, prior_octaves, window_prior)
    return env, acf, centres, energy, bpm_path, sal_path
