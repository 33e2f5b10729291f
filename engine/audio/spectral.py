"""Spectral envelopes at the analysis hop rate, in plain numpy (no numba: nothing to JIT on a cold start).

Everything is derived from one STFT of the mono mix: a multi-band log-mel flux (the onset / beat detection
function), broadband spectral flux, RMS energy, three band energies and coarse chroma / timbre vectors for
downbeats and sections. Values are normalised per song so the mapping to motion never sees absolute loudness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reproducible import matmul

#: Analysis sample rate, FFT size and hop: 86.13 envelope frames per second, 46 ms windows.
SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 256
N_MELS = 64
#: Chroma needs finer frequency resolution than onsets: a separate, longer STFT at a quarter of the hop rate.
CHROMA_N_FFT = 4096
CHROMA_HOP = 4 * HOP
#: Band edges (Hz): low ≈ kick and bass, mid ≈ voice, snare body and chords, high ≈ hats and air.
LOW_BAND = (20.0, 200.0)
MID_BAND = (200.0, 2000.0)
HIGH_BAND = (2000.0, SAMPLE_RATE / 2)
#: Frames quieter than this (dBFS, whole-spectrum) count as silence: every feature is 0 there.
SILENCE_DBFS = -70.0
#: Smallest per-band flux scale (log-mel units; music sits at 0.05-1) and onset scale: below these a signal has
#: no attacks worth the name (a steady tone, a drone) and its envelope stays near zero instead of being
#: normalised up.
MIN_BAND_FLUX = 0.02
MIN_ONSET_REF = 0.25
#: Below this peakiness (see peakiness) the flux envelope has attacks but no sharp ones (bowed strings ≈ 2.6-2.9
#: on the dev seeds; every song with drums, piano or plucked notes ≥ 8): beats are tracked on soft_onsets.
SOFT_PEAKINESS = 5.0
#: Soft-attack envelope: log-mel smoothed over SOFT_SMOOTH_S, its dips below the SOFT_LOCAL_S moving mean.
SOFT_SMOOTH_S = 0.02
SOFT_LOCAL_S = 0.25
#: Dynamic range (dB) mapped onto 0..1 for energy and band envelopes.
ENERGY_RANGE_DB = 40.0


@dataclass
class Envelopes:
    """Hop-rate arrays (all the same length) describing one song."""

    hop_rate: float
    onset: np.ndarray        # multi-band log flux, 0..1 (1 ≈ the song's strongest onsets)
    onset_raw: np.ndarray    # same before normalisation, for the beat tracker
    onset_bands: np.ndarray  # (4, n) per-band flux, each scaled by its own level
    flux: np.ndarray         # broadband magnitude flux, 0..1
    energy: np.ndarray       # RMS energy, 0..1 on a dB scale relative to the song's loud parts
    low: np.ndarray
    mid: np.ndarray
    high: np.ndarray
    chroma: np.ndarray       # (12, n) pitch-class energy, for harmonic change
    timbre: np.ndarray       # (13, n) cepstral shape, for section boundaries
    silent: np.ndarray       # bool, frame below SILENCE_DBFS
    #: Soft-attack detection function (see soft_onsets), for music whose flux has no peaks (bowed strings).
    onset_soft: np.ndarray | None = None
    #: (N_MELS, n) loudness-normalised log-mel spectrogram: the beat model's input (beat_model.model_input).
    log_mel: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.onset.shape[0])

    def times(self) -> np.ndarray:
        """Centre time (s) of each hop frame."""
        return np.arange(self.count) / self.hop_rate


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


_FILTER_CACHE: dict[tuple, np.ndarray] = {}


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = 30.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters (n_mels, n_fft//2 + 1), area-normalised."""
    key = ("mel", sample_rate, n_fft, n_mels, fmin, fmax)
    if key not in _FILTER_CACHE:
        fmax = fmax or sample_rate / 2
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
        bank = np.zeros((n_mels, freqs.size), dtype=np.float32)
        for i in range(n_mels):
            lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
            rise = (freqs - lo) / max(mid - lo, 1e-9)
            fall = (hi - freqs) / max(hi - mid, 1e-9)
            tri = np.maximum(0.0, np.minimum(rise, fall))
            if tri.sum() == 0:  # narrower than one bin: take the nearest bin
                tri[np.argmin(np.abs(freqs - mid))] = 1.0
            bank[i] = tri / tri.sum()
        _FILTER_CACHE[key] = bank
    return _FILTER_CACHE[key]


def chroma_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = CHROMA_N_FFT) -> np.ndarray:
    """(12, bins) pitch-class weights from 150 Hz to 4 kHz (above most bass notes: chords carry the bar), Gaussian in cents around each semitone."""
    key = ("chroma", sample_rate, n_fft)
    if key not in _FILTER_CACHE:
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        bank = np.zeros((12, freqs.size), dtype=np.float32)
        valid = (freqs >= 150.0) & (freqs <= 4000.0)
        midi = 69.0 + 12.0 * np.log2(np.maximum(freqs[valid], 1.0) / 440.0)
        pitch_class = np.mod(midi, 12.0)
        for pc in range(12):
            dist = np.minimum(np.abs(pitch_class - pc), 12.0 - np.abs(pitch_class - pc))
            bank[pc, valid] = np.exp(-0.5 * (dist / 0.5) ** 2)
        _FILTER_CACHE[key] = bank
    return _FILTER_CACHE[key]


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    return (np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)).astype(np.float32)


def stft_power(y: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Power spectrogram (bins, frames) of a mono signal, frames centred (padded by n_fft/2 each side)."""
    import scipy.fft  # here, not at module level: ~0.2 s of start-up that a song the cache holds never needs

    pad = n_fft // 2
    padded = np.pad(y.astype(np.float32, copy=False), (pad, pad))
    n_frames = 1 + max(0, (padded.size - n_fft) // hop)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    out = np.empty((n_frames, n_fft // 2 + 1), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    step = 4096  # frames per chunk: bounds memory on long files
    for s in range(0, n_frames, step):
        spec = scipy.fft.rfft(frames[s:s + step] * window, axis=1, workers=2)
        np.square(spec.real, out=out[s:s + step])
        out[s:s + step] += np.square(spec.imag)
    return out.T  # (bins, frames) view


def _bands_db(power: np.ndarray, freqs: np.ndarray, bands: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Summed power in each band, dB (one matrix product over the spectrogram)."""
    masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in bands]).astype(np.float32)
    return 10.0 * np.log10(matmul(masks, power) + 1e-12)


def _normalise_db(db: np.ndarray, audible: np.ndarray, floor_ref: float | None = None) -> np.ndarray:
    """Map dB to 0..1: the song's loud level (98th percentile of audible frames) → 1, 40 dB below → 0."""
    if not audible.any():
        return np.zeros_like(db, dtype=np.float32)
    ref = float(np.percentile(db[audible], 98))
    if floor_ref is not None:
        ref = max(ref, floor_ref)
    value = np.clip((db - (ref - ENERGY_RANGE_DB)) / ENERGY_RANGE_DB, 0.0, 1.0)
    value[~audible] = 0.0
    return value.astype(np.float32)


def _normalise_peak(values: np.ndarray, audible: np.ndarray, pct: float = 99.0, floor: float = 0.0) -> np.ndarray:
    """Scale so that the song's strong events reach ~1 (robust percentile, not the single loudest)."""
    out = np.where(audible, values, 0.0)
    active = out[out > 0]
    if active.size == 0:
        return np.zeros_like(values, dtype=np.float32)
    ref = max(float(np.percentile(active, pct)), floor)
    if ref <= 0:
        return np.zeros_like(values, dtype=np.float32)
    return np.clip(out / ref, 0.0, 1.0).astype(np.float32)


def compute_envelopes(y: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Envelopes:
    """All hop-rate envelopes of a mono signal at SAMPLE_RATE."""
    hop_rate = sample_rate / HOP
    power = stft_power(y)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    n = power.shape[1]
    # Window energy sums to n_fft * mean(w^2) for a full-scale sine... use a power reference of a 0 dBFS sine.
    window = np.hanning(N_FFT + 1)[:-1]
    full_scale = (np.sum(window) / 2.0) ** 2 * 2.0  # power of a 0 dBFS sine summed over its bins
    total_db = 10.0 * np.log10(power.sum(axis=0) / full_scale + 1e-12)
    audible = total_db > SILENCE_DBFS

    # One row-major copy of the spectrogram for both filterbank products (each would make its own: 32 MB for 3 min)
    power_rows = np.ascontiguousarray(power)
    mel = matmul(mel_filterbank(sample_rate), power_rows)
    # Loudness-independent log compression: scale by the song's typical level first.
    level = float(np.percentile(mel[:, audible].sum(axis=0), 90)) if audible.any() else 1.0
    log_mel = np.log1p(mel * (1000.0 / max(level, 1e-12) * N_MELS))

    # Multi-band flux: positive change against a frequency max-filtered previous frame (SuperFlux-style
    # vibrato suppression), summed in four bands each scaled to its own level so a loud bass does not drown
    # the hats that carry the off-beats and vice versa.
    prev = np.maximum(np.maximum(log_mel[:-2], log_mel[1:-1]), log_mel[2:])
    prev = np.pad(prev, ((1, 1), (0, 0)), mode="edge")
    diff = np.zeros_like(log_mel)
    diff[:, 1:] = np.maximum(0.0, log_mel[:, 1:] - prev[:, :-1])
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(30.0), _hz_to_mel(sample_rate / 2), N_MELS + 2))[1:-1]
    band_edges = [0.0, 200.0, 800.0, 4000.0, sample_rate]
    bands = np.zeros((4, n), dtype=np.float32)
    for b in range(4):
        sel = (mel_freqs >= band_edges[b]) & (mel_freqs < band_edges[b + 1])
        band = diff[sel].mean(axis=0) if sel.any() else np.zeros(n)
        ref = float(np.percentile(band[audible], 95)) if audible.any() else 0.0
        # The floor keeps a steady tone's numerical jitter from being scaled up into "onsets".
        bands[b] = band / max(ref, MIN_BAND_FLUX)
    onset_raw = bands.sum(axis=0) / 4.0
    onset_raw[~audible] = 0.0
    # Only songs without sharp attacks need it (the beat tracker switches to it below SOFT_PEAKINESS).
    onset_soft = soft_onsets(log_mel, audible, hop_rate) if peakiness(onset_raw) < SOFT_PEAKINESS else None

    magnitude = np.sqrt(power)
    mag_flux = np.zeros(n, dtype=np.float32)
    mag_flux[1:] = np.maximum(0.0, np.diff(magnitude, axis=1)).sum(axis=0)

    low_db, mid_db, high_db = _bands_db(power_rows, freqs, (LOW_BAND, MID_BAND, HIGH_BAND))
    del power_rows
    all_ref = float(np.percentile(total_db[audible], 98)) if audible.any() else 0.0
    band_floor = all_ref - 30.0

    chroma_power = stft_power(y, CHROMA_N_FFT, CHROMA_HOP)
    chroma = matmul(chroma_filterbank(sample_rate), np.sqrt(chroma_power, order="C"))  # row-major, as matmul needs
    chroma = chroma / (chroma.max(axis=0, keepdims=True) + 1e-12)
    # Back onto the hop grid (each chroma frame is centred on every 4th hop frame).
    chroma = np.repeat(chroma, CHROMA_HOP // HOP, axis=1)
    chroma = np.pad(chroma, ((0, 0), (CHROMA_HOP // HOP // 2, 0)), mode="edge")[:, :n]
    if chroma.shape[1] < n:
        chroma = np.pad(chroma, ((0, 0), (0, n - chroma.shape[1])), mode="edge")
    timbre = matmul(_dct_matrix(13, N_MELS), np.log(mel + 1e-10))

    return Envelopes(
        hop_rate=hop_rate,
        onset=_normalise_peak(onset_raw, audible, floor=MIN_ONSET_REF),
        onset_raw=onset_raw.astype(np.float32),
        onset_bands=bands,
        flux=_normalise_peak(mag_flux, audible),
        energy=_normalise_db(total_db, audible),
        low=_normalise_db(low_db, audible, band_floor),
        mid=_normalise_db(mid_db, audible, band_floor),
        high=_normalise_db(high_db, audible, band_floor),
        chroma=chroma.astype(np.float32),
        timbre=timbre.astype(np.float32),
        silent=~audible,
        onset_soft=onset_soft,
        log_mel=log_mel.astype(np.float32, copy=False),
    )


def peakiness(onset_raw: np.ndarray) -> float:
    """99th / 50th percentile of the sounding onset envelope: ≈ 2.3 for noise, 20-500 for music with attacks."""
    sounding = onset_raw[onset_raw > 0]
    if sounding.size < 10:
        return 0.0
    strong, typical = np.percentile(sounding, [99, 50])
    return float(strong / max(typical, 1e-12))


def soft_onsets(log_mel: np.ndarray, audible: np.ndarray, hop_rate: float) -> np.ndarray:
    """Soft-attack detection function: how far each band's (20-ms smoothed) log level dips below its 0.25-s
    moving mean, averaged over the mel bands.

    A bowed or swelling note has no sharp rise for the flux to see (it speaks over 100-200 ms), but a repeated
    or changing note leaves a short dip between the old note's release and the new one's attack, right at
    the note's start; that dip marks the beat where the rise would mark it late.
    """
    from scipy.ndimage import gaussian_filter1d, uniform_filter1d

    n = log_mel.shape[1]
    if n < 3:
        return np.zeros(n, dtype=np.float32)
    smooth = gaussian_filter1d(log_mel.astype(np.float32), SOFT_SMOOTH_S * hop_rate, axis=1, mode="nearest")
    local = uniform_filter1d(smooth, int(SOFT_LOCAL_S * hop_rate) | 1, axis=1, mode="nearest")
    out = np.maximum(0.0, local - smooth).mean(axis=0)
    out[~audible] = 0.0
    return out.astype(np.float32)


def pick_onsets(onset: np.ndarray, hop_rate: float, delta: float = 0.06, wait_s: float = 0.03
                ) -> tuple[np.ndarray, np.ndarray]:
    """Peak-pick a 0..1 onset envelope: (frame indices, strengths).

    A peak is the maximum within ±30 ms, above the local mean over the surrounding ±100 ms by `delta`, and at
    least `wait_s` after the previous one.
    """
    n = onset.size
    if n < 3 or not np.any(onset > 0):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    half_max = max(1, int(round(0.03 * hop_rate)))
    half_avg = max(1, int(round(0.1 * hop_rate)))
    padded = np.pad(onset, half_max, mode="constant", constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_max + 1).max(axis=1)
    kernel = np.ones(2 * half_avg + 1) / (2 * half_avg + 1)
    local_mean = np.convolve(np.pad(onset, half_avg, mode="edge"), kernel, mode="valid")
    candidates = np.flatnonzero((onset >= local_max) & (onset > local_mean + delta) & (onset > 0))
    wait = max(1, int(round(wait_s * hop_rate)))
    picked: list[int] = []
    for idx in candidates:
        if not picked or idx - picked[-1] >= wait:
            picked.append(int(idx))
    frames = np.asarray(picked, dtype=np.int64)
    return frames, onset[frames].astype(np.float32)
