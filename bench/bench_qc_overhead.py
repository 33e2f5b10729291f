"""In-render QC cost as a ratio: the same 10-s 1080p procedural render with QC off and on, alternating.

    .venv/bin/python bench/bench_qc_overhead.py --repeats 5     # no `nice`: QC runs at the renderer's priority

Each repeat renders off then on (order swapped every other repeat, so a load trend does not favour one side);
reported: median wall and CPU (this process, all threads) of each, the ratio on/off, and the per-repeat ratios
(their spread says how far to trust the median on a shared machine). Load average printed at start and end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_procedural as bp  # noqa: E402
from media_fixtures import photo, write_click_track  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    image = photo("landscape")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        song = tmp / "click.wav"
        write_click_track(song, args.seconds + 1)
        runs: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        load_start = os.getloadavg()[0]
        for k in range(args.repeats):
            order = ("off", "on") if k % 2 == 0 else ("on", "off")
            for side in order:
                req = bp.request(image, tmp / f"{side}.mp4", 1920, 1080, args.seconds, song, qc=side == "on")
                runs[side].append(bp._timed_render(req))
        load_end = os.getloadavg()[0]
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
    ratios = [on[0] / off[0] for on, off in zip(runs["on"], runs["off"], strict=True)]
    print(f"1920x1080 24 fps {args.seconds:g} s, {args.repeats} alternating repeats, load {load_start:.1f} -> "
          f"{load_end:.1f} on {os.cpu_count()} cores")
    print(f"wall off / on: {wall['off']:.2f} / {wall['on']:.2f} s  ratio {wall['on'] / wall['off']:.3f}")
    print(f"CPU  off / on: {cpu['off']:.2f} / {cpu['on']:.2f} s  ratio {cpu['on'] / cpu['off']:.3f}")
    print("per-repeat wall ratios: " + ", ".join(f"{r:.3f}" for r in ratios))


if __name__ == "__main__":
    main()
