"""A picture of a QC report: motion energy with beats and onsets, and identity drift, over the clip's time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_path
from .report import QCReport


def plot_report(report: QCReport, path: str | Path, overwrite: bool = False, title: str = "") -> Path:
    """Write a PNG: top, motion energy per frame with beats (hit / missed) and onsets; bottom, drift and
    global-motion share with their thresholds."""
    fps = float(report.fps)
    t = report.thresholds
    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    times = np.arange(report.frames) / fps
    clip_end = report.frames / fps

    top.plot(times, report.motion_energy, color="#1f4e99", lw=1.4, label="motion energy (mean flow, px @ 256)")
    if report.video_peak_frames.size:
        peaks = report.video_peak_frames
        top.plot(peaks / fps, report.motion_energy[peaks], "o", ms=3.5, color="#1f4e99", alpha=0.6,
                 label="motion peaks")
    for i, beat in enumerate(report.beat_times):
        hit = bool(report.beat_hit[i]) if i < report.beat_hit.size else False
        top.axvline(beat, color="#2e9d4a" if hit else "#d62728", lw=1.2, alpha=0.8,
                    label=("beat (hit)" if hit else "beat (missed)") if i in _first_of(report.beat_hit, hit) else None)
    if report.onset_times.size:
        top.plot(report.onset_times, np.full(report.onset_times.size, 1.0), "v", ms=6, color="#ff9f1c",
                 transform=top.get_xaxis_transform(), clip_on=False, label="audio onsets")
    top.set_ylabel("px / frame")
    peak = float(np.nanmax(report.motion_energy)) if report.motion_energy.size else 0.0
    top.set_ylim(0, max(peak, 0.1) * 1.3)  # headroom for the legend
    top.legend(loc="upper left", fontsize=8, ncols=3)
    sync = "—" if report.beat_hit_rate is None else f"{report.beat_hit_rate:.2f}"
    align = "—" if report.av_align is None else f"{report.av_align:.2f}"
    bas = "—" if report.beat_alignment is None else f"{report.beat_alignment:.2f} (σ {report.beat_alignment_sigma:g} f)"
    top.set_title(f"{title + ': ' if title else ''}QC {report.verdict.upper()}  ·  region motion "
                  f"{report.region_motion:.2f}  ·  global share {report.global_motion_share:.2f}  ·  drift "
                  f"{report.identity_drift:.2f}  ·  beat hits {sync}  ·  AV-Align {align}  ·  BAS {bas}", fontsize=9)

    if report.drift_frames.size:
        bottom.plot(report.drift_frames / fps, report.drift_curve, "-o", ms=3, color="#8c2d8c",
                    label="identity drift")
    bottom.axhline(t.max_identity_drift, color="#8c2d8c", ls="--", lw=0.9, label="drift limit")
    if report.sampled_frames.size:
        bottom.plot(report.sampled_frames / fps, report.global_share_curve, "-s", ms=3, color="#777777",
                    label="global-motion share")
    bottom.axhline(t.max_global_motion_share, color="#777777", ls=":", lw=0.9, label="Ken Burns limit")
    bottom.set_ylim(0, 1.25)
    bottom.set_xlim(0, clip_end)
    bottom.set_xlabel("clip time (s)")
    bottom.legend(loc="upper left", fontsize=8, ncols=4)
    if report.reasons:  # below the axes, in a strip the layout keeps free for them
        strip = 0.006 + 0.022 * len(report.reasons)
        figure.get_layout_engine().set(rect=(0, strip, 1, 1 - strip))
        figure.text(0.01, 0.005, "\n".join(report.reasons), fontsize=7, color="#b00000", va="bottom")
    with atomic_path(path, overwrite) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


def _first_of(flags: np.ndarray, value: bool) -> set[int]:
    """Index of the first beat with this hit state (so the legend lists each kind once)."""
    matches = np.flatnonzero(flags == value)
    return {int(matches[0])} if matches.size else set()
