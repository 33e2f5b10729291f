"""Tempo, beats and downbeats from an onset envelope.

Why not `librosa.beat.beat_track`: it estimates one global tempo from an autocorrelation weighted by a prior
centred on 120 BPM, so fast songs (170 BPM) drop to half tempo, and its tracker assumes that tempo everywhere,
so ramps fall apart. Here:

1. a windowed tempogram and a Viterbi path through (window, tempo) give a smooth local tempo that follows ramps
   but does not flip octaves (tempo.py);
2. a metrical-level scorer picks the path's octave (choose_level);
3. a dynamic-programming tracker (Ellis 2007) uses that local period at every frame;
4. meter (3 or 4) and bar phase come from beat-synchronous low-band energy and harmonic change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reproducible import matmul
from .spectral import SOFT_PEAKINESS, peakiness
from .tempo import PRIOR_BPM, check_tempo_hint, detrend, tempo_path, window_acf

#: DP tightness: how strongly beat intervals stick to the local period (Ellis' alpha).
TIGHTNESS = 200.0
#: No pulse (no beats): the onset envelope's strong level (99th percentile, in the band-normalised units of
#: spectral.compute_envelopes) is below MIN_PULSE_LEVEL (a steady tone), or its peaks stand less than
#: MIN_PEAKINESS × its median above the floor (stationary noise: ≈ 2.3; music with attacks: 20-500).
MIN_PULSE_LEVEL = 1e-3
MIN_PEAKINESS = 2.4
#: In compound time, chords changing at the half bar as strongly as this (fraction of the bar's own change
#: contrast) make a 4-beat reading a bar of 2 (6/8).
COMPOUND_HALF_BAR = 0.35
#: ... or the beat-to-beat chord change at the half bar is this many times that at the bar's other off-beats and
#: this fraction of the change at the bar line (dev seeds only: 6/8 ≈ 1.5-3.4 and 0.4-1.2; 12/8 ≈ 0.7-1.45).
COMPOUND_STEP_RATIO = 1.5
COMPOUND_STEP_OF_BAR = 0.4
#: Off-beat phase: shift half a beat when the low band's flux half-way between the tracked beats exceeds this
#: multiple of its flux on them and the high bands' exceeds this fraction (dev seeds: the one off-phase reggae
#: song 1.40 / 0.86; songs tracked on the beat with low > 1: high ratio ≤ 0.40).
OFF_BEAT_LOW = 1.0
OFF_BEAT_HIGH = 0.6


@dataclass
class BeatResult:
    tempo: float | None
    confidence: float
    beats: np.ndarray          # seconds
    local_tempo: np.ndarray    # BPM per envelope frame (0 where unknown)
    meter: int | None
    beat_positions: np.ndarray  # 1..meter
    downbeats: np.ndarray      # seconds


def _empty(n: int) -> BeatResult:
    return BeatResult(None, 0.0, np.zeros(0), np.zeros(n, dtype=np.float32), None,
                      np.zeros(0, dtype=np.int64), np.zeros(0))


#: Metrical-level candidates: the Viterbi path's tempo times each of these.
LEVEL_MULTIPLIERS = (0.5, 1.0, 2.0)
#: Tempi a metrical-level candidate may have (BPM) when no range is given.
LEVEL_LIMITS = (45.0, 230.0)
#: Periodicity features are read at these multiples of a candidate's beat period.
LEVEL_LAGS = (0.5, 1.0, 2.0, 3.0, 4.0)
LEVEL_FEATURES = ("full", "low", "high", "harmony")
#: Linear scorer over the candidates' features (see level_features for the order). Fit by conditional logistic
#: regression on the DEVELOPMENT seeds of tests/musicgen.py only (bench/fit_levels.py); scored on fresh seeds.
LEVEL_WEIGHTS = np.array([
    -3.7833, -0.2256, 1.7525, -0.6542, 0.6038,   # full mix ACF at 0.5, 1, 2, 3, 4 beats
    -2.9033, 0.6462, -0.0146, 0.2361, 0.6455,    # low band (kick, bass)
    -0.2954, 2.0601, -0.3154, 0.7095, -0.0542,   # high bands (hats, cymbals)
    0.2501, -0.7465, -2.4369, 0.1650, 2.0554,    # harmonic novelty (chord changes)
    -0.4109, -0.8036,                            # log2(tempo / 115) and its square
    0.4109, -0.1875, 0.4109, -0.0468, 0.4109, -0.3060,  # log2(notes per beat), squared: full, low, high
])


def harmonic_novelty(chroma: np.ndarray, hop_rate: float, half_s: float = 0.3) -> np.ndarray:
    """Chord-change envelope: 1 - cosine between the mean chroma of the 0.3 s before and after each frame.

    Arpeggios within one chord barely move it; a new chord (most often on a bar line or a beat) does, so its
    periodicity tells the bar and the beat apart from the notes' own rate.
    """
    n = chroma.shape[1]
    k = max(1, int(round(half_s * hop_rate)))
    cum = np.concatenate([np.zeros((12, 1)), np.cumsum(chroma, axis=1, dtype=np.float64)], axis=1)
    idx = np.arange(n)
    a, b = np.clip(idx - k, 0, n), np.clip(idx + k, 0, n)
    before = (cum[:, idx] - cum[:, a]) / np.maximum(1, idx - a)
    after = (cum[:, b] - cum[:, idx]) / np.maximum(1, b - idx)
    denom = np.linalg.norm(before, axis=0) * np.linalg.norm(after, axis=0)
    cos = np.where(denom > 1e-12, np.sum(before * after, axis=0) / np.maximum(denom, 1e-12), 1.0)
    return np.maximum(0.0, 1.0 - cos)


def level_envelopes(env: np.ndarray, bands: np.ndarray | None, chroma: np.ndarray, hop_rate: float
                    ) -> list[np.ndarray]:
    """The envelopes whose periodicities decide the metrical level (order of LEVEL_FEATURES)."""
    if bands is None:
        low = high = env
    else:
        low = detrend(bands[0], hop_rate)
        high = detrend(bands[2] + bands[3], hop_rate)
    return [env, low, high, harmonic_novelty(chroma, hop_rate)]


def level_features(envelopes: list[np.ndarray], hop_rate: float, bpm_path: np.ndarray, multipliers
                   ) -> np.ndarray:
    """(candidates, features): each envelope's windowed ACF at LEVEL_LAGS × the candidate's beat period, averaged
    over the windows along the tempo path (so ramps are followed), plus the candidate's log2 tempo / 115 and its
    square (a prior the scorer may weigh, not a fixed pull to one octave)."""
    acfs = [window_acf(e, hop_rate)[0] for e in envelopes]
    duration_min = envelopes[0].size / hop_rate / 60.0
    rates = [max(1.0, _onset_count(e, hop_rate)) / duration_min for e in envelopes[:3]]
    rows = []
    for m in multipliers:
        lag = 60.0 * hop_rate / (bpm_path * m)
        feats = []
        for acf in acfs:
            top = acf.shape[1] - 2
            for k in LEVEL_LAGS:
                lags = np.minimum(lag * k, top)
                values = np.max([_acf_at_rows(acf, lags * f) for f in (0.97, 1.0, 1.03)], axis=0)
                feats.append(float(np.mean(values)))
        octave = float(np.log2(np.median(bpm_path) * m / PRIOR_BPM))
        # Notes per beat in the full mix, the bass and the hats: a tactus usually has 1-4 of them.
        for rate in rates:
            per_beat = float(np.log2(rate / (np.median(bpm_path) * m)))
            feats += [per_beat, per_beat ** 2]
        rows.append(feats[:len(acfs) * len(LEVEL_LAGS)] + [octave, octave ** 2] + feats[len(acfs) * len(LEVEL_LAGS):])
    return np.asarray(rows)


def _onset_count(env: np.ndarray, hop_rate: float) -> int:
    """Attacks in an envelope: peaks above 10 % of its strong level, at least 50 ms apart."""
    from .spectral import pick_onsets

    ref = float(np.percentile(env[env > 0], 99)) if np.any(env > 0) else 0.0
    if ref <= 0:
        return 0
    frames, _ = pick_onsets(np.clip(env / ref, 0.0, 1.0), hop_rate, delta=0.1, wait_s=0.05)
    return int(frames.size)


def _acf_at_rows(acf: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Each window's ACF at its own fractional lag (windows,)."""
    rows = np.arange(acf.shape[0])
    lo = np.clip(np.floor(lags).astype(int), 0, acf.shape[1] - 2)
    frac = np.clip(lags - lo, 0.0, 1.0)
    return acf[rows, lo] * (1 - frac) + acf[rows, lo + 1] * frac


def choose_level(envelopes: list[np.ndarray], hop_rate: float, bpm_path: np.ndarray,
                 limits: tuple[float, float]) -> float:
    """The multiplier of the tempo path whose metrical level scores best (1.0 when no other is allowed)."""
    typical = float(np.median(bpm_path))
    multipliers = [m for m in LEVEL_MULTIPLIERS if limits[0] <= typical * m <= limits[1]]
    if len(multipliers) < 2 or not np.any(LEVEL_WEIGHTS):
        return 1.0
    score = matmul(level_features(envelopes, hop_rate, bpm_path, multipliers), LEVEL_WEIGHTS[:, None])[:, 0]
    return float(multipliers[int(np.argmax(score))])


def _refine_bpm(acf_row: np.ndarray, bpm: float, hop_rate: float) -> float:
    """Parabolic refinement of the beat lag in one ACF row."""
    lag = 60.0 * hop_rate / bpm
    lo, hi = int(np.floor(lag * 0.96)), int(np.ceil(lag * 1.04)) + 1
    hi = min(hi, acf_row.size - 1)
    if hi - lo < 3:
        return bpm
    seg = acf_row[lo:hi]
    i = int(np.argmax(seg))
    if 0 < i < seg.size - 1:
        a, b, c = seg[i - 1], seg[i], seg[i + 1]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if abs(denom) > 1e-12 else 0.0
    else:
        offset = 0.0
    return 60.0 * hop_rate / (lo + i + offset)


def dp_track(local: np.ndarray, period: np.ndarray, tightness: float = TIGHTNESS) -> np.ndarray:
    """Ellis' dynamic-programming beat tracker with a per-frame period (frames); returns beat frames."""
    n = local.size
    cumscore = np.zeros(n)
    backlink = np.full(n, -1, dtype=np.int64)
    t = 0
    while t < n:
        p = float(period[t])
        block = max(1, int(p * 0.45))
        ts = np.arange(t, min(n, t + block))
        p_block = period[ts]
        max_back = int(np.ceil(2.0 * p_block.max())) + 1
        offsets = np.arange(1, max_back + 1)  # τ = t - offset
        taus = ts[:, None] - offsets[None, :]
        valid = (taus >= 0) & (offsets[None, :] >= (0.5 * p_block)[:, None]) & \
                (offsets[None, :] <= (2.0 * p_block)[:, None])
        penalty = -tightness * np.log(offsets[None, :] / p_block[:, None]) ** 2
        cand = np.where(valid, cumscore[np.clip(taus, 0, n - 1)] + penalty, -np.inf)
        best = np.argmax(cand, axis=1)
        best_val = cand[np.arange(ts.size), best]
        has = np.isfinite(best_val) & (best_val > 0)
        cumscore[ts] = local[ts] + np.where(has, best_val, 0.0)
        backlink[ts] = np.where(has, taus[np.arange(ts.size), best], -1)
        t = ts[-1] + 1
    # End on the last strong local maximum of the cumulative score.
    peaks = np.flatnonzero((cumscore[1:-1] >= cumscore[:-2]) & (cumscore[1:-1] >= cumscore[2:])) + 1
    if peaks.size == 0:
        return np.zeros(0, dtype=np.int64)
    threshold = 0.5 * np.median(cumscore[peaks])
    last = int(peaks[cumscore[peaks] >= threshold][-1])
    beats = [last]
    while backlink[beats[-1]] >= 0:
        beats.append(int(backlink[beats[-1]]))
    return np.asarray(beats[::-1], dtype=np.int64)


def _trim_weak_edges(beats: np.ndarray, env: np.ndarray, hop_rate: float) -> np.ndarray:
    """Drop beats in leading / trailing stretches with no onsets (the DP extrapolates into silence)."""
    if beats.size == 0:
        return beats
    width = max(1, int(round(0.05 * hop_rate)))
    strength = np.array([env[max(0, b - width):b + width + 1].max() for b in beats])
    ref = np.sqrt(np.mean(strength ** 2))
    strong = np.flatnonzero(strength >= 0.2 * ref)
    if strong.size == 0:
        return beats[:0]
    return beats[strong[0]:strong[-1] + 1]


def _band_at(band: np.ndarray, frames: np.ndarray) -> float:
    """Mean of a band's strongest flux within ±2 frames (±23 ms) of each frame."""
    frames = frames[(frames >= 0) & (frames < band.size)]
    if frames.size == 0:
        return 0.0
    win = np.lib.stride_tricks.sliding_window_view(np.pad(band, 2), 5)
    return float(win[frames].max(axis=1).mean())


def _off_beat_phase(beats: np.ndarray, bands: np.ndarray) -> bool:
    """Whether the tracked beats sit on the off-beats: the low band (kick, bass) hits harder half-way between
    them than on them, and the high bands (hats) do not mark them either (reggae's one drop: skank and hats on
    the off-beats, kick on 3). A song tracked on its beats has its kick or its hats on them."""
    if beats.size < 8:
        return False
    mids = (beats[:-1] + beats[1:]) // 2
    low_on, low_off = _band_at(bands[0], beats), _band_at(bands[0], mids)
    high = bands[2] + bands[3]
    high_on, high_off = _band_at(high, beats), _band_at(high, mids)
    return bool(low_off > OFF_BEAT_LOW * low_on and high_off > OFF_BEAT_HIGH * high_on)


def _half_beat_shift(beats: np.ndarray, n: int) -> np.ndarray:
    """The midpoints between beats, plus one half a period past the last beat when it is inside the file."""
    mids = (beats[:-1] + beats[1:]) // 2
    last = beats[-1] + (beats[-1] - beats[-2]) // 2
    return np.append(mids, last) if last < n else mids


def _sync(values: np.ndarray, beats: np.ndarray, reduce: str = "mean") -> np.ndarray:
    """Aggregate (d, n) hop-rate features over each beat interval → (d, len(beats))."""
    edges = np.append(beats, values.shape[-1]).astype(int)
    out = np.zeros(values.shape[:-1] + (beats.size,))
    for i in range(beats.size):
        a, b = edges[i], max(edges[i] + 1, edges[i + 1])
        seg = values[..., a:b]
        out[..., i] = seg.max(axis=-1) if reduce == "max" else seg.mean(axis=-1)
    return out


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


def _harmonic_change(chroma_b: np.ndarray, context: int = 2) -> np.ndarray:
    """Per beat: how different the next `context` beats' chroma is from the previous `context` beats'."""
    n = chroma_b.shape[1]
    cum = np.concatenate([np.zeros((12, 1)), np.cumsum(chroma_b, axis=1)], axis=1)
    change = np.zeros(n)
    for i in range(1, n):
        a, b = max(0, i - context), min(n, i + context)
        before = (cum[:, i] - cum[:, a]) / (i - a)
        after = (cum[:, b] - cum[:, i]) / (b - i)
        denom = np.linalg.norm(before) * np.linalg.norm(after)
        change[i] = 1.0 - float(before @ after) / denom if denom > 1e-12 else 0.0
    return change


def detect_meter(beats: np.ndarray, low_onset: np.ndarray, onset: np.ndarray, chroma: np.ndarray,
                 low_energy: np.ndarray, compound: bool = False) -> tuple[int | None, int]:
    """(meter, index of the first downbeat among `beats`).

    Meter: which bar length (3 or 4 beats) makes beat-synchronous features repeat best; in compound time
    (beats split in three) a 4-beat reading whose chords change every 2 beats is a 6/8 bar of 2 dotted
    quarters. Phase: downbeats carry the kick / bass (low-band onsets and energy) and the chord changes.
    """
    if beats.size < 8:
        return None, 0
    low_at = _sync(low_onset[None, :], beats, "max")[0]
    low_e = _sync(low_energy[None, :], beats)[0]
    on_at = _sync(onset[None, :], beats, "max")[0]
    chroma_b = _sync(chroma, beats)
    chroma_b = chroma_b / (np.linalg.norm(chroma_b, axis=0, keepdims=True) + 1e-9)
    change = _harmonic_change(chroma_b)
    feats = np.vstack([_zscore(low_at), _zscore(low_e), _zscore(on_at), _zscore(change), chroma_b * 2])

    def lag_similarity(lag: int) -> float:
        if beats.size <= lag + 2:
            return -1.0
        a, b = feats[:, :-lag], feats[:, lag:]
        return float(np.mean(-np.linalg.norm(a - b, axis=0)))

    score3 = lag_similarity(3) + 0.5 * lag_similarity(6)
    score4 = lag_similarity(4) + 0.5 * lag_similarity(8)
    meter = 3 if score3 > score4 else 4

    accent = 1.0 * _zscore(low_at) + 0.6 * _zscore(low_e) + 1.0 * _zscore(change) + 0.3 * _zscore(on_at)
    phases = [float(np.mean(accent[p::meter])) for p in range(meter)]
    first = int(np.argmax(phases))
    if compound and meter == 4 and beats.size >= 12:
        folded = np.array([float(np.mean(change[(first + p) % 4::4])) for p in range(4)])
        spread = folded[0] - folded.min()
        if spread > 0 and folded[2] >= folded[0] - COMPOUND_HALF_BAR * spread:
            return 2, first % 2
        # Bar model over two dotted quarters: beat-to-beat chord change, folded on the 4-beat bar. In 12/8 the
        # chord holds through the bar (the half bar changes no more than the other in-bar beats); in 6/8 the
        # half bar is a bar line, so it changes clearly more than beats 2 and 4 and comparably to beat 1.
        step = _harmonic_change(chroma_b, context=1)
        f = np.array([float(np.mean(step[(first + p) % 4::4])) for p in range(4)])
        inside = max(f[1], f[3])
        if inside > 0 and f[2] >= COMPOUND_STEP_RATIO * inside and f[2] >= COMPOUND_STEP_OF_BAR * f[0]:
            return 2, first % 2
    return meter, first


def _mean_acf_at(acf: np.ndarray, centres: np.ndarray, beats: np.ndarray, lags: np.ndarray) -> float:
    """Mean windowed ACF at a per-beat lag (frames), each beat read in its nearest window."""
    rows = np.clip(np.searchsorted(centres, beats), 0, acf.shape[0] - 1)
    lo = np.clip(np.floor(lags).astype(int), 0, acf.shape[1] - 2)
    frac = np.clip(lags - lo, 0.0, 1.0)
    return float(np.mean(acf[rows, lo] * (1 - frac) + acf[rows, lo + 1] * frac))


def _tempo_from_beats(beats: np.ndarray, span: int = 8) -> float:
    """Typical tempo: median over 8-beat spans (averages away the envelope's 11.6-ms time quantisation)."""
    span = min(span, beats.size - 1)
    periods = (beats[span:] - beats[:-span]) / span
    return float(60.0 / np.median(periods))


def has_pulse(onset_raw: np.ndarray) -> bool:
    """Whether the onset envelope has attacks at all (not a drone, not stationary noise)."""
    sounding = onset_raw[onset_raw > 0]
    if sounding.size < 10:
        return False
    strong = float(np.percentile(sounding, 99))
    return bool(strong >= MIN_PULSE_LEVEL and peakiness(onset_raw) >= MIN_PEAKINESS)


def follow_tempo(detection: np.ndarray, acf: np.ndarray, centres: np.ndarray, bpm_path: np.ndarray,
                 hop_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(local BPM per frame, beat frames): the tempo path refined per window, then the DP tracker on
    `detection` (an onset envelope, or the network's beat activation) with weak edges trimmed."""
    refined = np.array([_refine_bpm(acf[w], bpm_path[w], hop_rate) for w in range(acf.shape[0])])
    local_bpm = np.interp(np.arange(detection.size) / hop_rate, centres, refined)
    beat_frames = dp_track(detection / (detection.std() + 1e-9), 60.0 * hop_rate / local_bpm)
    return local_bpm, _trim_weak_edges(beat_frames, detection, hop_rate)


def splits_in_three(acf: np.ndarray, centres: np.ndarray, beats: np.ndarray, lags: np.ndarray) -> bool:
    """Compound time: the periodicity at a third of the beat above that at a half."""
    return bool(_mean_acf_at(acf, centres, beats, lags / 3) > _mean_acf_at(acf, centres, beats, lags / 2))


def bar_positions(beats: np.ndarray, meter: int | None, first: int) -> tuple[np.ndarray, np.ndarray]:
    """(position in the bar of each beat, 1 = downbeat; downbeat times); unknown (0) without a meter."""
    if meter is None:  # too few beats to tell bars apart
        return np.zeros(beats.size, dtype=np.int64), np.zeros(0)
    positions = ((np.arange(beats.size) - first) % meter + 1).astype(np.int64)
    return positions, beats[positions == 1]


def track_beats(onset_raw: np.ndarray, hop_rate: float, low_onset: np.ndarray, chroma: np.ndarray,
                low_energy: np.ndarray, bpm_hint: float | None = None,
                tempo_range: tuple[float, float] | None = None, bands: np.ndarray | None = None,
                onset_soft: np.ndarray | None = None) -> BeatResult:
    """Tempo, beats, meter and downbeats of one song's onset envelope.

    `bpm_hint` fixes the metrical level (the tracker still finds the phase and follows drift near it);
    `tempo_range` (low, high) restricts the tempo search. Bad values raise BadInputError.
    """
    check_tempo_hint(bpm_hint, tempo_range)
    n = onset_raw.size
    pulse = has_pulse(onset_raw)
    soft = bool(pulse and onset_soft is not None and peakiness(onset_raw) < SOFT_PEAKINESS
                and np.any(onset_soft > 0))
    if soft:
        onset_raw, bands = onset_soft, None  # soft attacks: track the note starts' dips, one envelope
    found = tempo_path(onset_raw, hop_rate, bpm_hint, tempo_range)
    if found is None:
        return _empty(n)
    env, acf, centres, energy, bpm_path, sal_path = found
    active = energy > 1e-6
    if not active.any():
        return _empty(n)
    confidence = float(np.clip(np.median(sal_path[active]), 0.0, 1.0))
    if not pulse:
        return BeatResult(None, confidence, np.zeros(0), np.zeros(n, dtype=np.float32), None,
                          np.zeros(0, dtype=np.int64), np.zeros(0))
    if bpm_hint is None:  # the editor's hint fixes the level; otherwise the level scorer decides
        limits = LEVEL_LIMITS if tempo_range is None else tempo_range
        bpm_path = bpm_path * choose_level(level_envelopes(env, bands, chroma, hop_rate), hop_rate, bpm_path,
                                           limits)
    local_bpm, beat_frames = follow_tempo(env, acf, centres, bpm_path, hop_rate)
    if bands is not None and _off_beat_phase(beat_frames, bands):
        beat_frames = _half_beat_shift(beat_frames, n)
    if beat_frames.size < 2:
        return BeatResult(None, confidence, np.zeros(0), local_bpm.astype(np.float32), None,
                          np.zeros(0, dtype=np.int64), np.zeros(0))
    beats = beat_frames / hop_rate
    tempo = _tempo_from_beats(beats)
    lag = 60.0 * hop_rate / local_bpm[beat_frames]
    compound = splits_in_three(acf, centres, beats, lag)
    meter, first = detect_meter(beat_frames, low_onset, env, chroma, low_energy, compound)
    positions, downbeats = bar_positions(beats, meter, first)
    return BeatResult(tempo, confidence, beats, local_bpm.astype(np.float32), meter, positions, downbeats)
