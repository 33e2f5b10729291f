"""Section boundaries (intro / verse / drop / break changes) from a timbre-and-harmony novelty curve.

Blocks of half a second are described by timbre (cepstrum), chroma and energy; a checkerboard kernel on their
self-similarity matrix peaks where the music changes character. Each section is labelled by its energy relative
to the song ("low", "mid", "high"), which is what motion needs: a break calms down, a drop hits.
"""

from __future__ import annotations

import numpy as np

from ..reproducible import matmul

BLOCK_S = 0.5
#: Kernel half-width (s) and the shortest section accepted (s).
KERNEL_S = 8.0
MIN_SECTION_S = 8.0


def _blocks(values: np.ndarray, per_block: int) -> np.ndarray:
    per_block = max(1, min(per_block, values.shape[-1]))
    n_blocks = max(1, values.shape[-1] // per_block)
    trimmed = values[..., : n_blocks * per_block]
    return trimmed.reshape(values.shape[:-1] + (n_blocks, per_block)).mean(axis=-1)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average, then scaled so the busiest stretch is 1 (onset density, not single peaks)."""
    width = max(1, min(width, values.size))
    out = np.convolve(values, np.ones(width) / width, mode="same")
    top = float(out.max()) if out.size else 0.0
    return out / top if top > 0 else out


def find_sections(timbre: np.ndarray, chroma: np.ndarray, energy: np.ndarray, onset: np.ndarray,
                  hop_rate: float, duration: float, silent: np.ndarray,
                  downbeats: np.ndarray | None = None) -> list[tuple[float, float, str]]:
    """[(start_s, end_s, label)] covering [0, duration); empty for silence.

    Boundaries snap to the nearest downbeat within 1.5 s (editors cut on bars); labels rank each section's
    intensity (energy and onset density) against the song's most intense section.
    """
    if duration <= 0 or silent.all():
        return []
    per_block = max(1, int(round(BLOCK_S * hop_rate)))
    block_s = per_block / hop_rate
    tim = _blocks(timbre, per_block)
    chr_ = _blocks(chroma, per_block)
    en = _blocks(energy[None, :], per_block)
    feats = []
    for part, weight in ((tim[1:], 1.0), (chr_, 0.7), (en, 1.0)):
        z = (part - part.mean(axis=1, keepdims=True)) / (part.std(axis=1, keepdims=True) + 1e-6)
        feats.append(weight * z / np.sqrt(part.shape[0]))
    x = np.vstack(feats)
    n = x.shape[1]
    boundaries = [0.0]
    half = int(round(KERNEL_S / block_s))
    if n > 2 * half + 2:
        x = x / (np.linalg.norm(x, axis=0, keepdims=True) + 1e-9)
        ssm = matmul(x.T, x)
        k = np.arange(-half, half)[:, None] + 0.5
        sign = np.sign(k) * np.sign(k.T)
        gauss = np.exp(-0.5 * ((k / (half * 0.5)) ** 2 + (k.T / (half * 0.5)) ** 2))
        kernel = sign * gauss
        padded = np.pad(ssm, half, mode="reflect")
        novelty = np.array([np.sum(padded[i:i + 2 * half, i:i + 2 * half] * kernel) for i in range(n)])
        novelty = np.maximum(novelty, 0.0)
        if novelty.max() > 0:
            novelty /= novelty.max()
            min_gap = int(round(MIN_SECTION_S / block_s))
            order = np.argsort(novelty)[::-1]
            chosen: list[int] = []
            threshold = max(0.5, float(np.median(novelty) + 1.5 * novelty.std()))
            for i in order:
                if novelty[i] < threshold:
                    break
                is_peak = novelty[i] >= novelty[max(0, i - 2):i + 3].max()
                if is_peak and min_gap <= i <= n - min_gap and all(abs(i - c) >= min_gap for c in chosen):
                    chosen.append(int(i))
            for i in sorted(chosen):
                t = i * block_s
                if downbeats is not None and downbeats.size:
                    nearest = float(downbeats[np.argmin(np.abs(downbeats - t))])
                    if abs(nearest - t) <= 1.5:
                        t = nearest
                if t - boundaries[-1] >= MIN_SECTION_S / 2 and duration - t >= MIN_SECTION_S / 2:
                    boundaries.append(t)
    edges = boundaries + [duration]
    intensity = 0.5 * energy + 0.5 * _smooth(onset, int(round(2.0 * hop_rate)))
    levels = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = intensity[int(a * hop_rate):max(int(a * hop_rate) + 1, int(b * hop_rate))]
        levels.append(float(np.mean(sel)) if sel.size else 0.0)
    top = max(levels) if levels else 0.0
    sections = []
    for (a, b), level in zip(zip(edges[:-1], edges[1:], strict=True), levels, strict=True):
        ratio = level / top if top > 0 else 0.0
        label = "high" if ratio > 0.85 else "mid" if ratio > 0.65 else "low"
        sections.append((round(float(a), 3), round(float(b), 3), label))
    return sections
