"""Overhead of StillMotion's code around a diffusion pipeline, on the tiny random LTX model (CPU).

Renders the same 2-s, 64x64, 24-fps clip with music several times through `render_clip` (QC off) and splits the
wall time into: worker start (spawn + torch/diffusers import, until the worker's first message), loading the
weights, the pipeline itself (denoising + VAE decode, measured inside the worker), conform (beat retiming +
resampling to the timeline), and the rest (weight discovery, audio analysis, encoding, frame transport).
The first render is cold; later ones reuse the warm worker and its loaded pipeline. Target: ≤ 1.5 s fixed
overhead per warm render.

usage: .venv/bin/python bench/bench_diffusion_overhead.py [--runs 3] [--steps 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TARGET_SECONDS = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import tiny_models
    from media_fixtures import photo, write_click_track
    from stillmotion.engine.backends.base import Progress, Result
    from stillmotion.engine.render import render_clip
    from stillmotion.engine.request import AudioSegment, RenderRequest

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = tiny_models.build_ltx(folder / "ltx")
        song = folder / "song.wav"
        write_click_track(song, 3.0)
        for run in range(args.runs):
            marks: dict[str, float] = {}
            summary: dict = {}

            def on_event(event: object, marks: dict[str, float] = marks, summary: dict = summary) -> None:
                now = time.perf_counter()
                if isinstance(event, Progress) and event.stage == "load":
                    marks.setdefault("worker_ready", now)
                if isinstance(event, Result):
                    summary.update(event.summary)

            request = RenderRequest(image=str(photo("cat")), output=str(folder / f"run{run}.mp4"), fps=Fraction(24),
                                    frames=48, width=64, height=64, audio=[AudioSegment(str(song),
                                                                                        duration=Fraction(2))],
                                    engine="ltx", model=str(model), qc=False, options={"steps": args.steps})
            started = time.perf_counter()
            result = render_clip(request, on_event=on_event)
            total = time.perf_counter() - started
            worker_start = marks["worker_ready"] - started - result.timings.get("load_image", 0) \
                - result.timings.get("audio", 0)
            pipeline = summary["pipeline_seconds"]
            row = {
                "run": run, "cold": run == 0, "total": round(total, 3),
                "worker_start": round(worker_start, 3), "load": summary["load_seconds"],
                "pipeline": pipeline, "conform": summary["conform_seconds"],
                "prepare": round(result.timings.get("load_image", 0) + result.timings.get("audio", 0), 3),
                "overhead": round(total - pipeline, 3),
            }
            row["other"] = round(row["overhead"] - row["worker_start"] - row["load"] - row["conform"]
                                 - row["prepare"], 3)
            rows.append(row)
    warm = [r["overhead"] for r in rows if not r["cold"]]
    verdict = {"warm_overhead_max": max(warm) if warm else None, "target": TARGET_SECONDS,
               "meets_target": bool(warm) and max(warm) <= TARGET_SECONDS}
    if args.json:
        print(json.dumps({"runs": rows, **verdict}, indent=2))
        return 0
    cols = ["run", "cold", "total", "pipeline", "overhead", "worker_start", "load", "prepare", "conform", "other"]
    print(" ".join(f"{c:>12}" for c in cols))
    for row in rows:
        print(" ".join(f"{str(row[c]):>12}" for c in cols))
    print(f"warm overhead (max over runs): {verdict['warm_overhead_max']} s; target ≤ {TARGET_SECONDS} s: "
          f"{'met' if verdict['meets_target'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
