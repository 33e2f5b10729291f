"""`python -m stillmotion.plugin.blender.worker JOB.json`: the render half of `stillmotion.animate_strips`, run in
the project's Python so torch and the video stack never load inside Blender.

JOB.json holds the sequencer snapshot, the strips to animate, the output folder and the engine settings. The
worker writes the snapshot as OTIO (`<scene>.otio`, kept for inspection), runs the same pipeline as
`stillmotion timeline` on it (`<scene>_animated.otio`, clips in `<scene>_animated_stillmotion/`) and answers one
JSON line: where each clip goes, in Blender frames.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..render_worker import emit


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Render the job's strips; return {"clips": [{strip, output, frame_start, frames}], ...}."""
    from stillmotion.engine.errors import BadInputError
    from stillmotion.engine.timeline import TimelineSettings, process_timeline, safe_file_name, write_timeline

    from .convert import origin_frame, sequencer_to_otio

    snapshot = job["snapshot"]
    names = list(job.get("strips") or [])
    if not names:
        raise BadInputError("no image strips to animate (add an image strip to the sequencer)")
    folder = Path(job["output_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    timeline = sequencer_to_otio(snapshot)  # the engine itself leaves muted strips and channels out
    stem = Path(safe_file_name(snapshot.get("scene") or "scene", 0, "")).name[4:] or "scene"
    source = folder / f"{stem}.otio"
    out = folder / f"{stem}_animated.otio"
    write_timeline(timeline, source, overwrite=True)
    settings = job.get("settings") or {}
    track = str(settings.get("track_name") or "StillMotion")
    existing = {t.name for t in timeline.tracks}
    while track in existing:
        track += "+"
    summary = process_timeline(
        source, out, TimelineSettings(engine=settings.get("engine", "procedural"), model=settings.get("model"),
                                      preset=settings.get("preset", "pulse"), seed=int(settings.get("seed", 0)),
                                      width=settings.get("width"), height=settings.get("height"), clips=names,
                                      track_name=track),
        overwrite=True, report=lambda line: emit({"event": "note", "message": line}))
    origin = origin_frame(snapshot)
    clips = [{"strip": item["clip"], "output": item["output"], "frame_start": origin + item["record_start_frame"],
              "frames": item["frames"], "qc": item.get("qc")} for item in summary.rendered]
    return {"clips": clips, "timeline": str(out), "problems": summary.problems, "rate": summary.rate}


def main(argv: list[str] | None = None) -> int:
    from stillmotion.engine.errors import StillMotionError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        emit({"event": "error", "kind": "BadInputError", "message": "usage: worker JOB.json"})
        return 2
    try:
        job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        emit({"event": "result", "result": run_job(job)})
    except StillMotionError as exc:
        emit({"event": "error", "kind": type(exc).__name__, "message": str(exc)})
        return exc.exit_code
    except (OSError, ValueError, KeyError) as exc:
        emit({"event": "error", "kind": "BadInputError", "message": f"bad job {args[0]}: {exc}"})
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
