"""One-glance picture of an analysis: waveform, onsets, bands, tempo, beats, downbeats and sections on one axis.

Uses matplotlib's object API with the Agg canvas (no pyplot, no GUI backend, no global state).
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np

from .analysis import AudioAnalysis
from .decode import load_audio

_SECTION_COLOURS = {"low": "#dbe9f6", "mid": "#fde7c8", "high": "#f9d0d0"}


def _envelope_slice(values: np.ndarray, hop_rate: float, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    a = max(0, int(np.floor(start * hop_rate)))
    b = min(values.size, int(np.ceil(end * hop_rate)) + 1)
    return np.arange(a, b) / hop_rate, values[a:b]


def plot_analysis(analysis: AudioAnalysis, path: str | os.PathLike[str], out_png: str | os.PathLike[str],
                  start: Fraction = Fraction(0), duration: Fraction | None = None) -> None:
    """Draw the analysis of [start, start + duration) of `path` into `out_png` (written as given)."""
    from matplotlib.figure import Figure

    t0 = float(start)
    t1 = float(start + duration) if duration is not None else analysis.duration
    t1 = max(t1, t0 + 1e-3)
    clip = load_audio(path, start=Fraction(start), duration=Fraction(t1 - t0).limit_denominator(10 ** 6), mono=True)
    wave = clip.samples[0]
    fig = Figure(figsize=(14, 8.5), dpi=100, layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1.3, 1.0, 1.2, 0.8])
    ax_wave, ax_onset, ax_bands, ax_tempo = axes

    # Waveform as a min/max envelope (one column per ~pixel), so long songs stay readable.
    columns = 2400
    if wave.size > columns * 2:
        usable = wave[: wave.size // columns * columns].reshape(columns, -1)
        xs = t0 + (np.arange(columns) + 0.5) * usable.shape[1] / clip.sample_rate
        ax_wave.fill_between(xs, usable.min(axis=1), usable.max(axis=1), color="#555555", linewidth=0)
    else:
        ax_wave.plot(t0 + np.arange(wave.size) / clip.sample_rate, wave, color="#555555", linewidth=0.6)
    peak = float(np.max(np.abs(wave), initial=0.0)) or 1.0
    ax_wave.set_ylim(-1.15 * peak, 1.35 * peak)
    ax_wave.set_ylabel("waveform")

    for a, b, label in analysis.sections:
        if b <= t0 or a >= t1:
            continue
        for ax in axes:
            ax.axvspan(max(a, t0), min(b, t1), color=_SECTION_COLOURS.get(label, "#eeeeee"), zorder=0)
        ax_wave.text(max(a, t0) + 0.01 * (t1 - t0), 1.18 * peak, f"section: {label}", fontsize=9,
                     va="center", color="#333333")

    times, onset = _envelope_slice(analysis.envelopes["onset_env"], analysis.hop_rate, t0, t1)
    ax_onset.plot(times, onset, color="#1f77b4", linewidth=0.7, label="onset envelope")
    sel = (analysis.onsets >= t0) & (analysis.onsets < t1)
    ax_onset.plot(analysis.onsets[sel], analysis.onset_strengths[sel], "v", color="#ff7f0e", markersize=4,
                  label="onsets")
    ax_onset.set_ylim(0, 1.1)
    ax_onset.set_ylabel("onset (0..1)")
    ax_onset.legend(loc="upper right", fontsize=8, ncols=2)

    for name, colour in (("low", "#d62728"), ("mid", "#2ca02c"), ("high", "#9467bd"), ("energy", "#000000")):
        times, values = _envelope_slice(analysis.envelopes[name], analysis.hop_rate, t0, t1)
        ax_bands.plot(times, values, color=colour, linewidth=0.9 if name != "energy" else 1.3, label=name)
    ax_bands.set_ylim(0, 1.05)
    ax_bands.set_ylabel("energy (0..1)")
    ax_bands.legend(loc="lower right", fontsize=8, ncols=4)

    times, local = _envelope_slice(analysis.envelopes["local_tempo"], analysis.hop_rate, t0, t1)
    if analysis.tempo is not None and np.any(local > 0):
        ax_tempo.plot(times, local, color="#17becf", linewidth=1.2, label="local tempo")
        lo, hi = float(local[local > 0].min()), float(local.max())
        ax_tempo.set_ylim(lo - 10, hi + 10)
    else:
        ax_tempo.text(0.5, 0.5, "no beat found", transform=ax_tempo.transAxes, ha="center", va="center")
    ax_tempo.set_ylabel("tempo (BPM)")
    ax_tempo.set_xlabel("time in file (s)")

    beats = analysis.beats[(analysis.beats >= t0) & (analysis.beats < t1)]
    downs = analysis.downbeats[(analysis.downbeats >= t0) & (analysis.downbeats < t1)]
    dense = beats.size > 120  # a whole song: beats as ticks on top, downbeats only where they stay readable
    for ax in axes:
        if not dense:
            for b in beats:
                ax.axvline(b, color="#1f77b4", alpha=0.35, linewidth=0.6, zorder=1)
        if downs.size <= 150:
            for d in downs:
                ax.axvline(d, color="#d62728", alpha=0.5 if dense else 0.8, linewidth=0.8 if dense else 1.2,
                           zorder=1)
    if dense:
        ax_wave.plot(beats, np.full(beats.size, -1.08 * peak), "|", color="#1f77b4", markersize=6)
        ax_wave.plot(downs, np.full(downs.size, -1.08 * peak), "|", color="#d62728", markersize=10)
        ax.set_xlim(t0, t1)
        ax.grid(axis="y", alpha=0.3)
    tempo = "no tempo" if analysis.tempo is None else f"{analysis.tempo:.1f} BPM"
    meter = f", {analysis.meter}/4" if analysis.meter else ""
    fig.suptitle(f"{os.path.basename(os.fspath(path))}: {tempo}{meter} (confidence "
                 f"{analysis.tempo_confidence:.2f}), {beats.size} beats (blue), {downs.size} downbeats (red)")
    fig.savefig(out_png, format="png")
