"""Analysis speed on a 3-minute song: warm in-process time and real-time factor, cold-process times.

    .venv/bin/python bench/bench_audio_speed.py

Renders a 180-s synthetic song (tests/musicgen.py) as WAV and MP3, then reports
- warm: decode + all features + frame_features at 23.976 fps in an already-running process (cache bypassed);
- cold process, uncached: `python -c "analyze(...)"` in a fresh interpreter with an empty cache;
- cold process, cached: the same again, now hitting the on-disk cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from stillmotion.engine.audio import analyze, frame_features  # noqa: E402
from stillmotion.engine.rates import FrameGrid, frame_count  # noqa: E402

COLD_SNIPPET = (
    "import time; t=time.perf_counter();"
    "from stillmotion.engine.audio import analyze, frame_features;"
    "from stillmotion.engine.rates import FrameGrid, frame_count; from fractions import Fraction as F;"
    "a=analyze({path!r}); fps=F(24000,1001);"
    "frame_features(a, FrameGrid(fps, frame_count(F(a.duration).limit_denominator(1000), fps)));"
    "print(time.perf_counter()-t)"
)


def make_song(folder: Path) -> tuple[Path, Path]:
    from musicgen import TrackSpec, compose, render_midi

    spec = TrackSpec("three_minutes", 120, 120, 90, style="rock", break_bars=tuple(range(40, 48)), seed=11)
    midi, _, _ = compose(spec)
    mid, wav, mp3 = folder / "song.mid", folder / "song.wav", folder / "song.mp3"
    midi.save(mid)
    render_midi(mid, wav)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-b:a", "192k", str(mp3)], check=True)
    return wav, mp3


def cold_run(path: Path, cache: Path) -> tuple[float, float]:
    """(wall time of the whole process, time inside Python after interpreter start)."""
    env = dict(os.environ, STILLMOTION_CACHE_DIR=str(cache))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD_SNIPPET.format(path=str(path))], env=env, check=True,
                         capture_output=True, text=True)
    return time.perf_counter() - t0, float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["STILLMOTION_CACHE_DIR"] = str(folder / "warm-cache")
        wav, mp3 = make_song(folder)
        fps = Fraction(24000, 1001)
        print(f"{'input':10s} {'duration':>9s} {'warm s':>8s} {'RTF':>8s}")
        for path in (wav, mp3):
            analyze(path, use_cache=False)  # warm-up (imports, filter banks)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                result = analyze(path, use_cache=False)
                grid = FrameGrid(fps, frame_count(Fraction(result.duration).limit_denominator(1000), fps))
                frame_features(result, grid)
                best = min(best, time.perf_counter() - t0)
            print(f"{path.suffix[1:]:10s} {result.duration:8.1f}s {best:8.3f} {best / result.duration:8.4f}")
        print(f"tempo {result.tempo:.2f} BPM, {len(result.beats)} beats, meter {result.meter}, "
              f"{len(result.sections)} sections")
        cache = folder / "cold-cache"
        wall_u, inner_u = cold_run(wav, cache)
        wall_c, inner_c = cold_run(wav, cache)
        print(f"cold process, uncached: {wall_u:.2f} s wall ({inner_u:.2f} s after interpreter start)")
        print(f"cold process, cached:   {wall_c:.2f} s wall ({inner_c:.2f} s after interpreter start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
