"""Cost of thread-count-independent music analysis: `engine.reproducible.matmul` against BLAS `a @ b`.

Analyses the demo music (19 s, and tiled to 190 s) with each in the same run, alternating, and prints the median
times and their ratio (fixed-order / BLAS). The fixed-order product is what renders use (issue 16).

    .venv/bin/python bench/bench_determinism.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from stillmotion.engine import reproducible
from stillmotion.engine.audio import analysis, beats, sections, spectral
from stillmotion.engine.audio.decode import load_audio

MUSIC = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo_music.flac"
USERS = (spectral, beats, sections)


def _blas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b


def _time(samples: np.ndarray, product: object) -> float:
    for module in USERS:
        module.matmul = product  # type: ignore[attr-defined]
    start = time.perf_counter()
    analysis.analyze_samples(samples, "bench")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    song = load_audio(str(MUSIC), sample_rate=spectral.SAMPLE_RATE, mono=True).samples[0]
    try:
        for tiles in (1, 10):
            samples = np.tile(song, tiles)
            times: dict[str, list[float]] = {"blas": [], "fixed": []}
            for _ in range(args.repeats):
                times["blas"].append(_time(samples, _blas))
                times["fixed"].append(_time(samples, reproducible.matmul))
            blas, fixed = statistics.median(times["blas"]), statistics.median(times["fixed"])
            print(f"{samples.size / spectral.SAMPLE_RATE:5.0f} s of music: BLAS {blas:.3f} s, fixed-order "
                  f"{fixed:.3f} s, ratio {fixed / blas:.2f}")
    finally:
        for module in USERS:
            module.matmul = reproducible.matmul  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
