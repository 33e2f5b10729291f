"""One clip from one request: fit the still, hear the music, move the picture, check it, encode it.

This is the whole weight-free pipeline and the frame for every backend: the still is fitted once, the music under
the clip becomes per-frame features and motion channels, the backend streams frames straight into the encoder and
the QC accumulator (constant memory), and a failed QC gate triggers a retry whose best attempt is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import audio, warmup
from .atomic import atomic_path, check_output
from .audio.grid import BeatGrid
from .backends import get_backend
from .backends.base import Backend, CancelToken, EventSink, Progress, RenderInputs, ignore_events
from .errors import BadInputError
from .images import fit_image, load_image
from .motion import MotionSchedule
from .opencv_threads import single_threaded
from .qc import QCAccumulator, QCReport, QCThresholds
from .rates import FrameGrid
from .request import RenderRequest
from .video import AUDIO_RATE, VideoWriter

#: Attempts beyond the first when a QC gate fails.
DEFAULT_QC_RETRIES = 2
ANCHORS = ("start", "end", "middle")


@dataclass
class RenderResult:
    """What a finished render reports (and what goes into the clip's metadata)."""

    output: str
    frames: int
    fps: Fraction
    width: int
    height: int
    engine: str
    seed: int
    preset: str
    schedule: dict[str, Any]
    qc: dict[str, Any] | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: What the engine itself reported (diffusion: keyframes, beat-hit before/after retiming, step timings).
    engine_summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "frames": self.frames,
            "fps": str(self.fps),
            "fps_float": float(self.fps),
            "duration": float(Fraction(self.frames) / self.fps),
            "width": self.width,
            "height": self.height,
            "engine": self.engine,
            "seed": self.seed,
            "preset": self.preset,
            "schedule": self.schedule,
            "qc": self.qc,
            "attempts": self.attempts,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "engine_summary": self.engine_summary,
        }


def validate(request: RenderRequest) -> None:
    """Reject impossible requests before any work (the CLI and every executor call this)."""
    if request.frames < 1:
        raise BadInputError(f"a clip needs at least one frame, got {request.frames}")
    if request.anchor not in ANCHORS:
        raise BadInputError(f"anchor {request.anchor!r} is not one of {', '.join(ANCHORS)}")
    if not (0 < request.width <= 8192 and 0 < request.height <= 8192):
        raise BadInputError(f"size {request.width}x{request.height} is out of range (1..8192)")
    if request.width % 2 or request.height % 2:
        raise BadInputError(f"size {request.width}x{request.height} must be even for H.264")


def _qc_thresholds(request: RenderRequest) -> QCThresholds:
    data = request.options.get("qc_thresholds")
    return QCThresholds.from_json(data) if data else QCThresholds()


def _mixed_audio(request: RenderRequest) -> audio.SegmentMix | None:
    """The clip's mix as a stream the encoder pulls block by block (never the whole mix in memory)."""
    if not request.audio or not request.mux_audio:
        return None
    return audio.SegmentMix(request.audio, request.duration, AUDIO_RATE, channels=2)


def _portable_request_json(request: RenderRequest) -> dict[str, Any]:
    """The request as embedded in the clip, without what only this machine knows (its paths, --overwrite): a
    Ray task sees its inputs under temporary names, and the file must be the same bytes wherever it was made."""
    data = request.to_json()
    for local in ("output", "overwrite", "image", "end_image"):
        data.pop(local, None)
    data["audio"] = [{k: v for k, v in seg.items() if k != "path"} for seg in data["audio"]]
    return data


def _encode_attempt(backend: Backend, inputs: RenderInputs, path: Path, music: audio.SegmentMix | None,
                    qc: QCAccumulator | None, on_event: EventSink, cancel: CancelToken) -> int:
    request = inputs.request
    codec = "prores4444" if request.options.get("alpha") else "h264"
    metadata = {"comment": json.dumps({"stillmotion": {"request": _portable_request_json(request),
                                                       "schedule": inputs.schedule.to_json()}},
                                       sort_keys=True)}  # key order must not depend on where the JSON came from
    written = 0
    # OpenCV on one thread for the frame loop: the warp thread, this thread and x264's threads already share
    # the cores, and QC's own single-threaded blocks then nest here instead of rebuilding the pool per frame.
    with single_threaded(), VideoWriter(path, request.width, request.height, request.fps, audio=music,
                                        codec=codec, metadata=metadata,
                                        key_frames=(request.anchor_frame(),)) as writer:
        for frame in backend.render(inputs, on_event, cancel):
            writer.write(frame)
            if qc is not None:
                qc.add(frame[..., :3])
            written += 1
    if written != request.frames:
        raise RuntimeError(f"engine {backend.name} produced {written} frames, expected {request.frames}")
    return written


def render_clip(request: RenderRequest, on_event: EventSink = ignore_events,
                cancel: CancelToken | None = None) -> RenderResult:
    """Render `request` to `request.output` atomically, with QC gates and retries; return what happened."""
    validate(request)
    warmup.start()  # OpenCV's Lab tables build on the other core while the still and the music load
    cancel = cancel or CancelToken()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out = check_output(request.output, request.overwrite)
    backend = get_backend(request.engine)

    t0 = time.perf_counter()
    still = load_image(request.image)
    image, alpha = fit_image(still.rgb, request.width, request.height, request.fit,
                             still.alpha if request.options.get("alpha") else None)
    backend.prepare(image)  # e.g. the still's analysis, on the other core while the music loads
    timings["load_image"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    grid = FrameGrid(request.fps, request.frames)
    features = audio.clip_features(request.audio, grid, BeatGrid.of_request(request)) if request.audio else None
    music = _mixed_audio(request)
    timings["audio"] = time.perf_counter() - t0
    on_event(Progress(0, request.frames, stage="prepare", message="analysed still and music"))

    thresholds = _qc_thresholds(request)
    retries = int(request.options.get("qc_retries", DEFAULT_QC_RETRIES)) if request.qc else 0
    attempts: list[dict[str, Any]] = []
    best: tuple[float, Path, QCReport | None, RenderRequest, MotionSchedule, dict[str, Any]] | None = None
    temps: list[Path] = []
    warmup.wait()  # the still's analysis and QC's drift meter convert to Lab
    first_schedule = (MotionSchedule.from_json(request.options["schedule"]) if request.options.get("schedule")
                      else MotionSchedule(preset=request.preset, intensity=request.intensity, seed=request.seed))
    try:
        with atomic_path(out, request.overwrite) as final_tmp:
            attempt_request = request
            for attempt in range(retries + 1):
                cancel.raise_if_cancelled()
                schedule = first_schedule if attempt == 0 else replace(
                    first_schedule, intensity=attempt_request.intensity, seed=attempt_request.seed)
                channels = schedule.channels(features, request.frames, float(request.fps))
                inputs = RenderInputs(attempt_request, image, alpha, schedule, channels, features)
                fd, name = tempfile.mkstemp(prefix=f".{out.stem}.try{attempt}.", suffix=final_tmp.suffix,
                                            dir=out.parent)
                os.close(fd)
                path = Path(name)
                temps.append(path)
                qc = None
                if request.qc:
                    qc = QCAccumulator(request.fps, reference=image,
                                       beat_times=getattr(features, "beat_times", None),
                                       onset_times=getattr(features, "onset_times", None),
                                       thresholds=thresholds)
                t0 = time.perf_counter()
                _encode_attempt(backend, inputs, path, music, qc, on_event, cancel)
                timings[f"render_attempt_{attempt}"] = time.perf_counter() - t0
                report = qc.finish() if qc is not None else None
                score = report.score() if report is not None else 0.0
                engine_summary = dict(getattr(backend, "summary", None) or {})
                attempts.append({"attempt": attempt, "seed": attempt_request.seed,
                                 "intensity": attempt_request.intensity,
                                 "qc": report.to_json(curves=False) if report is not None else None,
                                 "engine": engine_summary})
                if best is None or score > best[0]:
                    best = (score, path, report, attempt_request, schedule, engine_summary)
                if report is None or report.verdict == "pass":
                    break
                attempt_request = backend.next_attempt(attempt_request, report, attempt + 1)
            assert best is not None
            os.replace(best[1], final_tmp)
    finally:
        for path in temps:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    timings["total"] = time.perf_counter() - started
    _, _, report, chosen, schedule, engine_summary = best
    return RenderResult(
        output=str(out), frames=request.frames, fps=request.fps, width=request.width, height=request.height,
        engine=request.engine, seed=chosen.seed, preset=chosen.preset, schedule=schedule.to_json(),
        qc=report.to_json(curves=False) if report is not None else None, attempts=attempts, timings=timings,
        engine_summary=engine_summary,
    )
