"""Fit the metrical-level scorer (engine/audio/beats.py LEVEL_WEIGHTS) on the DEVELOPMENT seeds only.

For each development song the tracker's tempo path is computed, then the features of each level candidate
(path × 0.5, 1, 2); the label is the candidate within 4 % of the notated tempo. A conditional logistic regression
(softmax over one song's candidates, L2) is fit with plain numpy; it prints the weights to paste into beats.py
and a 2-fold estimate of its accuracy on songs it was not fit on. Fresh seeds are never read here.

    .venv/bin/python bench/fit_levels.py [--dev 160] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from stillmotion.engine.audio import beats, load_audio, spectral  # noqa: E402


def song_features(song: dict) -> tuple[np.ndarray, int, int] | None:
    """(candidate features, index of the correct candidate, index of ×1) or None when no candidate is at the notated level."""
    memo = Path(song["wav"]).with_suffix(".levels.npz")  # beside the cached render: refits skip the STFT
    if memo.is_file():
        with np.load(memo) as d:
            detrended, bands, chroma, bpm_path = d["env"], d["bands"], d["chroma"], d["path"]
    else:
        y = load_audio(song["wav"], sample_rate=spectral.SAMPLE_RATE, mono=True).samples[0]
        env = spectral.compute_envelopes(y)
        found = beats.tempo_path(env.onset_raw, env.hop_rate)
        if found is None:
            return None
        detrended, bands, chroma, bpm_path = found[0], env.onset_bands, env.chroma, found[4]
        np.savez(memo, env=detrended, bands=bands, chroma=chroma, path=bpm_path)
    hop_rate = spectral.SAMPLE_RATE / spectral.HOP
    typical = float(np.median(bpm_path))
    multipliers = [m for m in beats.LEVEL_MULTIPLIERS if beats.LEVEL_LIMITS[0] <= typical * m <= beats.LEVEL_LIMITS[1]]
    ref = 60.0 / np.median(np.diff(song["beats"]))
    errors = [abs(typical * m / ref - 1.0) for m in multipliers]
    if min(errors) > 0.06:
        return None
    envelopes = beats.level_envelopes(detrended, bands, chroma, hop_rate)
    return beats.level_features(envelopes, hop_rate, bpm_path, multipliers), int(np.argmin(errors)), \
        multipliers.index(1.0)


def fit(data: list[tuple[np.ndarray, int]], l2: float = 0.02, steps: int = 6000) -> np.ndarray:
    dim = data[0][0].shape[1]
    w = np.zeros(dim)
    lr = 1.0
    for _ in range(steps):
        grad = l2 * w
        for x, label in data:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += (p @ x - x[label]) / len(data)
        w -= lr * grad
    return w


def accuracy(data, w) -> float:
    return float(np.mean([int(np.argmax(x @ w)) == label for x, label in data]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=int, default=160)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "stillmotion-bench" / "musicgen"))
    parser.add_argument("--l2", type=float, default=0.02)
    args = parser.parse_args()
    from musicgen import render_song

    data, keep, skipped = [], [], 0
    names = []
    for seed in range(args.dev):
        song = render_song(seed, Path(args.cache))
        got = song_features(song)
        if got is None:
            skipped += 1
        else:
            data.append(got[:2])
            keep.append(got[1] == got[2])
            names.append(song["name"])
    print(f"{len(data)} development songs ({skipped} without a candidate at the notated level)")
    half = len(data) // 2
    a, b = data[:half], data[half:]
    cross = 0.5 * (accuracy(b, fit(a, args.l2)) + accuracy(a, fit(b, args.l2)))
    w = fit(data, args.l2)
    print(f"level accuracy: fit on all {accuracy(data, w):.3f}, 2-fold held-out {cross:.3f}, "
          f"middle candidate only {np.mean(keep):.3f}")
    wrong = [n for n, (x, label) in zip(names, data, strict=True) if int(np.argmax(x @ w)) != label]
    print("wrong after the fit:", " ".join(wrong))
    print("LEVEL_WEIGHTS = np.array([" + ", ".join(f"{v:.4f}" for v in w) + "])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
