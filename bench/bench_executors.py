"""Benchmark the batch executors: clips per minute on the local executor and on a local Ray cluster, same machine.

    .venv/bin/python bench/bench_executors.py            # 24 stills x 4 s at 1280x720, 24 fps (the issue's batch)
    .venv/bin/python bench/bench_executors.py --quick    # 4 stills x 1 s at 640x360: a smoke check
    .venv/bin/python bench/bench_executors.py --qc       # with the QC gates on (retries make timings vary)

Each executor renders the same requests (the demo photos, distinct seeds, the demo song under each clip) into a
fresh folder with a fresh job store, so nothing is reused, after one untimed warm-up clip (audio analysis and
numba caches). The local executor's time includes starting its worker processes; Ray's start-up is timed apart from the batch; the
overhead ratio is Ray's batch time over the local executor's (1.00 = free), with and without start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo"
STILLS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def build_requests(folder: Path, count: int, seconds: int, width: int, height: int, qc: bool) -> list:
    from stillmotion.engine.request import AudioSegment, RenderRequest

    folder.mkdir(parents=True)
    fps = Fraction(24)
    song = DEMO / "demo_music.flac"
    requests = []
    for n in range(count):
        audio = [AudioSegment(str(song), Fraction(n % 8), Fraction(seconds))] if song.is_file() else []
        requests.append(RenderRequest(image=str(DEMO / STILLS[n % len(STILLS)]), output=str(folder / f"{n:03d}.mp4"),
                                      fps=fps, frames=seconds * 24, width=width, height=height, audio=audio,
                                      seed=n, qc=qc))
    return requests


def timed_batch(requests: list, executor: str, store_path: Path, workers: int) -> float:
    from stillmotion.engine.jobs import JobStore, run_batch

    started = time.perf_counter()
    items = run_batch(requests, executor=executor, store=JobStore(store_path), workers=workers)
    elapsed = time.perf_counter() - started
    failed = [i.error for i in items if i.status != "done"]
    if failed:
        raise SystemExit(f"{executor}: {len(failed)} clip(s) failed, first: {failed[0]}")
    if any(i.reused for i in items):
        raise SystemExit(f"{executor}: clips were reused; the benchmark needs fresh stores")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 stills x 1 s at 640x360")
    parser.add_argument("--clips", type=int, help="number of stills (default 24, quick 4)")
    parser.add_argument("--qc", action="store_true", help="keep the QC gates on")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="CPUs for both executors")
    parser.add_argument("--skip-ray", action="store_true", help="time the local executor only")
    args = parser.parse_args()
    count = args.clips or (4 if args.quick else 24)
    seconds, width, height = (1, 640, 360) if args.quick else (4, 1280, 720)

    with tempfile.TemporaryDirectory(prefix="stillmotion-bench-") as scratch:
        root = Path(scratch)
        print(f"{count} stills x {seconds} s at {width}x{height} 24 fps, QC {'on' if args.qc else 'off'}, "
              f"{args.workers} worker(s) on {os.cpu_count()} CPU(s)")
        # Untimed warm-up: the song's analysis cache and numba's compile cache are filled once, for both.
        timed_batch(build_requests(root / "warmup", 1, 1, 320, 180, args.qc), "local", root / "warmup.sqlite3", 1)
        local = timed_batch(build_requests(root / "local", count, seconds, width, height, args.qc), "local",
                            root / "local.sqlite3", args.workers)
        report = {"clips": count, "seconds": seconds, "size": f"{width}x{height}", "workers": args.workers,
                  "local_seconds": round(local, 2), "local_clips_per_minute": round(60 * count / local, 2)}
        print(f"local : {local:7.1f} s  {60 * count / local:6.2f} clips/min")
        if not args.skip_ray:
            from stillmotion.engine.jobs.ray_executor import connect, disconnect

            started = time.perf_counter()
            connect(None, args.workers)
            startup = time.perf_counter() - started
            try:
                ray_batch = timed_batch(build_requests(root / "ray", count, seconds, width, height, args.qc),
                                        "ray", root / "ray.sqlite3", args.workers)
            finally:
                disconnect()
            report |= {"ray_startup_seconds": round(startup, 2), "ray_seconds": round(ray_batch, 2),
                       "ray_clips_per_minute": round(60 * count / ray_batch, 2),
                       "ray_overhead_ratio": round(ray_batch / local, 3),
                       "ray_overhead_ratio_with_startup": round((ray_batch + startup) / local, 3)}
            print(f"ray   : {ray_batch:7.1f} s  {60 * count / ray_batch:6.2f} clips/min  "
                  f"(+{startup:.1f} s cluster start-up)")
            print(f"Ray overhead ratio: {ray_batch / local:.3f} (batch only), "
                  f"{(ray_batch + startup) / local:.3f} (with start-up)")
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
