"""Whole-file music analysis, cached on disk by content hash.

The whole song is analysed once (a mono mix at 22.05 kHz) and cached: beat tracking on a full song gives far
better tempo and phase than on a clip-length excerpt, and every clip cut from the same song reuses the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import beat_decode, beat_model, spectral, tempo
from . import beats as beats_mod
from .cache import entry_key, file_digest, load_entry, store_entry
from .decode import load_audio
from .sections import find_sections

#: Bump when any analysis output changes: old cache entries are then ignored.
ANALYSIS_VERSION = 11
#: Beat trackers: the trained network + decoder (default when its weights are installed) or the DSP tracker.
TRACKERS = ("model", "dsp")

_ENVELOPE_NAMES = ("energy", "onset_env", "low", "mid", "high", "flux", "local_tempo")


@dataclass
class AudioAnalysis:
    """Features of one whole audio file; times are seconds from the file's start."""

    duration: float
    tempo: float | None
    tempo_confidence: float
    beats: np.ndarray
    beat_positions: np.ndarray  # 1..meter per beat (0 when the meter is unknown: fewer than 8 beats)
    meter: int | None
    downbeats: np.ndarray
    onsets: np.ndarray
    onset_strengths: np.ndarray
    sections: list[tuple[float, float, str]]
    hop_rate: float
    #: Hop-rate envelopes, each 0..1 (local_tempo in BPM): energy, onset_env, low, mid, high, flux.
    envelopes: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""

    @property
    def silent(self) -> bool:
        return not any(float(np.max(self.envelopes[k], initial=0.0)) > 0 for k in ("energy", "onset_env"))

    def to_json(self) -> dict[str, Any]:
        """Time stamps and summary (no hop-rate envelopes: those go to frames)."""
        return {
            "path": self.path,
            "duration": round(self.duration, 6),
            "tempo": None if self.tempo is None else round(self.tempo, 3),
            "tempo_confidence": round(self.tempo_confidence, 4),
            "meter": self.meter,
            "beats": _rounded(self.beats),
            "beat_positions": [int(p) for p in self.beat_positions],
            "downbeats": _rounded(self.downbeats),
            "onsets": _rounded(self.onsets),
            "onset_strengths": _rounded(self.onset_strengths, 4),
            "sections": [{"start": a, "end": b, "label": label} for a, b, label in self.sections],
        }

    def _meta(self) -> dict[str, Any]:
        """Scalars at full precision: a cache hit must return exactly what the analysis returned."""
        return {
            "duration": self.duration, "tempo": self.tempo, "tempo_confidence": self.tempo_confidence,
            "meter": self.meter, "hop_rate": self.hop_rate,
            "sections": [{"start": a, "end": b, "label": label} for a, b, label in self.sections],
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "beats": self.beats.astype(np.float64),
            "beat_positions": self.beat_positions.astype(np.int64),
            "downbeats": self.downbeats.astype(np.float64),
            "onsets": self.onsets.astype(np.float64),
            "onset_strengths": self.onset_strengths.astype(np.float32),
        }
        for name, values in self.envelopes.items():
            arrays[f"env_{name}"] = values
        return arrays

    @classmethod
    def _from_cache(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], path: str) -> AudioAnalysis:
        return cls(
            duration=float(meta["duration"]),
            tempo=meta["tempo"],
            tempo_confidence=float(meta["tempo_confidence"]),
            beats=arrays["beats"],
            beat_positions=arrays["beat_positions"],
            meter=meta["meter"],
            downbeats=arrays["downbeats"],
            onsets=arrays["onsets"],
            onset_strengths=arrays["onset_strengths"],
            sections=[(s["start"], s["end"], s["label"]) for s in meta["sections"]],
            hop_rate=float(meta["hop_rate"]),
            envelopes={k[4:]: v for k, v in arrays.items() if k.startswith("env_")},
            path=path,
        )


def _rounded(values: np.ndarray, digits: int = 5) -> list[float]:
    return [round(float(v), digits) for v in values]


def analysis_params(bpm: float | None = None, tempo_range: tuple[float, float] | None = None,
                    tracker: str = "model") -> dict[str, Any]:
    """Everything that changes the result besides the file itself (part of the cache key)."""
    weights = beat_model.weights_digest()  # a cache hit never loads the weights
    return {
        "tracker": tracker if weights else "dsp",
        "beat_model": weights,
        "bpm_hint": None if bpm is None else float(bpm),
        "tempo_range": None if tempo_range is None else [float(v) for v in tempo_range],
        "sample_rate": spectral.SAMPLE_RATE, "n_fft": spectral.N_FFT, "hop": spectral.HOP,
        "n_mels": spectral.N_MELS, "silence_dbfs": spectral.SILENCE_DBFS,
        "bpm_range": [tempo.MIN_BPM, tempo.MAX_BPM], "prior": [tempo.PRIOR_BPM, tempo.PRIOR_OCTAVES],
        "tightness": beats_mod.TIGHTNESS,
    }


def _check_tracker(tracker: str) -> None:
    if tracker not in TRACKERS:
        raise ValueError(f"tracker must be one of {TRACKERS}, got {tracker!r}")


#: Without a tempo hint, the DSP tracker's grid replaces the network's when its tempo confidence is higher by more
#: than this. The network learned the generated corpus's conventions and is behind the DSP tracker on real
#: recordings (held-out real half: 0.619 vs 0.707 mean F); where the DSP tracker is the surer of the two, it is
#: right more often (held-out real 0.619 -> 0.665; generated songs, where the network is nearly always the
#: surer, unchanged but for one fresh draw, 0.992 -> 0.974). Chosen on the tuned real half (docs/audio.md).
DSP_CONFIDENCE_MARGIN = 0.05
#: A network this sure keeps its grid without asking the DSP tracker (0.22 s per 3 minutes): on the measured sets
#: the DSP tracker won only where the network's confidence was below 0.68.
NETWORK_SURE = 0.8


def track(env: spectral.Envelopes, bpm: float | None, tempo_range: tuple[float, float] | None,
          tracker: str = "model") -> beats_mod.BeatResult:
    """Beats of one song's envelopes: the network + decoder when its weights are installed (and `tracker` is
    "model"), unless the DSP tracker is surer (DSP_CONFIDENCE_MARGIN); the DSP tracker otherwise. Songs without
    a pulse (a drone, noise: beats.has_pulse) get no beats from either."""
    model = beat_model.load_model() if tracker == "model" else None

    def dsp() -> beats_mod.BeatResult:
        return beats_mod.track_beats(env.onset_raw, env.hop_rate, env.onset_bands[0], env.chroma, env.low,
                                     bpm_hint=bpm, tempo_range=tempo_range, bands=env.onset_bands,
                                     onset_soft=env.onset_soft)

    if model is None or env.log_mel is None or not beats_mod.has_pulse(env.onset_raw):
        return dsp()
    outputs = beat_model.forward(model, beat_model.model_input(env.log_mel))
    network = beat_decode.decode_outputs(outputs, env.hop_rate, bpm, tempo_range, env.onset_raw)
    if bpm is not None or network.confidence >= NETWORK_SURE:
        return network  # with a hint the editor has chosen the level: the network's phase tracking is the better
    other = dsp()
    return other if other.confidence > network.confidence + DSP_CONFIDENCE_MARGIN else network


def analyze_samples(y: np.ndarray, path: str = "", *, bpm: float | None = None,
                    tempo_range: tuple[float, float] | None = None, tracker: str = "model") -> AudioAnalysis:
    """Analyse a mono float32 signal at spectral.SAMPLE_RATE (no caching).

    `bpm` is a tempo hint that fixes the metrical level; `tempo_range` (low, high) restricts the tempo search;
    `tracker` "dsp" forces the DSP beat tracker (for comparison).
    """
    beats_mod.check_tempo_hint(bpm, tempo_range)
    _check_tracker(tracker)
    sr = spectral.SAMPLE_RATE
    duration = y.size / sr
    env = spectral.compute_envelopes(y, sr)
    result = track(env, bpm, tempo_range, tracker)
    onset_frames, strengths = spectral.pick_onsets(env.onset, env.hop_rate)
    sections = find_sections(env.timbre, env.chroma, env.energy, env.onset, env.hop_rate, duration, env.silent,
                             result.downbeats)
    envelopes = {
        "energy": env.energy, "onset_env": env.onset, "low": env.low, "mid": env.mid, "high": env.high,
        "flux": env.flux, "local_tempo": result.local_tempo.astype(np.float32),
    }
    return AudioAnalysis(
        duration=duration,
        tempo=result.tempo,
        tempo_confidence=result.confidence,
        beats=np.asarray(result.beats, dtype=np.float64),
        beat_positions=np.asarray(result.beat_positions, dtype=np.int64),
        meter=result.meter,
        downbeats=np.asarray(result.downbeats, dtype=np.float64),
        onsets=onset_frames / env.hop_rate,
        onset_strengths=strengths,
        sections=sections,
        hop_rate=env.hop_rate,
        envelopes=envelopes,
        path=path,
    )


def analyze(path: str | os.PathLike[str], use_cache: bool = True, *, bpm: float | None = None,
            tempo_range: tuple[float, float] | None = None, tracker: str = "model") -> AudioAnalysis:
    """Analyse the whole file (mono mix); results are cached by content hash + parameters + version.

    `bpm` is the editor's tempo hint (the tracker keeps finding the phase and follows drift, at this metrical
    level); `tempo_range` (low, high) restricts the tempo search. Both are part of the cache key; bad values raise
    BadInputError.
    """
    beats_mod.check_tempo_hint(bpm, tempo_range)
    _check_tracker(tracker)
    name = os.fspath(path)
    key = None
    if use_cache:
        try:
            digest = file_digest(name)
        except OSError:
            digest = None  # load_audio below raises the user-facing error
        if digest is not None:
            key = entry_key(digest, analysis_params(bpm, tempo_range, tracker), ANALYSIS_VERSION)
            hit = load_entry(key)
            if hit is not None:
                return AudioAnalysis._from_cache(hit[0], hit[1], name)
    clip = load_audio(name, sample_rate=spectral.SAMPLE_RATE, mono=True)
    result = analyze_samples(clip.samples[0], name, bpm=bpm, tempo_range=tempo_range, tracker=tracker)
    if key is not None:
        store_entry(key, result._meta(), result._arrays())
    return result
