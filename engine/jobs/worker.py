"""What runs where a clip is rendered (a local worker process or a Ray task): one request in, a plain dict out.

Failures the user can act on come back as a one-line error (they are not retried: rendering again would fail the
same way); only a dead worker is retried, by the executor.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any

from ..backends.base import CancelToken, EventSink, ignore_events
from ..errors import StillMotionError
from ..request import RenderRequest

#: TEST-ONLY fault injection. When this variable names a folder holding a file `crash-<job id>`, the worker that
#: picks up that job consumes the file and kills itself with SIGKILL before rendering, exactly once: the retry
#: tests use it to kill a worker mid-task on any executor. It does nothing unless a test creates such a file.
TEST_CRASH_DIR_ENV = "STILLMOTION_TEST_CRASH_DIR"


def maybe_crash_for_test(job_id: str) -> None:
    """Die like a worker killed by the OOM killer, if (and only if) a test armed this job (see above)."""
    folder = os.environ.get(TEST_CRASH_DIR_ENV)
    if not folder:
        return
    armed = Path(folder) / f"crash-{job_id}"
    try:
        os.rename(armed, armed.with_name(f"crashed-{job_id}-{os.getpid()}"))  # atomic: one worker wins
    except OSError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _temp_patterns(output: Path) -> list[re.Pattern[str]]:
    stem, suffix = re.escape(output.stem), re.escape(output.suffix)
    return [re.compile(rf"^\.{stem}\.[a-z0-9_]{{8}}\.part{suffix}$"),      # engine.atomic.atomic_path
            re.compile(rf"^\.{stem}\.try\d+\.[a-z0-9_]{{8}}{suffix}$")]    # render_clip's QC attempts


def remove_stale_temps(output: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files a killed render of `output` left beside it (never the output itself)."""
    out = Path(output)
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    patterns = _temp_patterns(out)
    for entry in out.parent.iterdir():
        if any(p.match(entry.name) for p in patterns):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def execute(request_json: dict[str, Any], job_id: str, on_event: EventSink = ignore_events,
            cancel: CancelToken | None = None) -> dict[str, Any]:
    """Render one request with `render_clip`; return {ok, result | error, host, pid} (never raises for bad input)."""
    from ..render import render_clip

    maybe_crash_for_test(job_id)
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        result = render_clip(RenderRequest.from_json(request_json), on_event=on_event, cancel=cancel)
    except StillMotionError as exc:
        return {"ok": False, "error": str(exc), "kind": type(exc).__name__, **where}
    except Exception as exc:  # a bug in an engine: report it as this clip's failure, keep the batch going
        return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}", "kind": "internal", **where}
    return {"ok": True, "result": result.to_json(), **where}


def execute_to_bytes(request_json: dict[str, Any], job_id: str, inputs: dict[str, bytes]) -> dict[str, Any]:
    """Render on a machine that shares no folder with the driver: inputs arrive as bytes, the clip leaves as bytes.

    `inputs` maps each input path named in the request (still, end still, audio files) to its content.
    """
    with tempfile.TemporaryDirectory(prefix="stillmotion-job-") as scratch:
        folder = Path(scratch)
        local: dict[str, str] = {}
        for number, (path, data) in enumerate(inputs.items()):
            target = folder / f"input{number}{Path(path).suffix}"
            target.write_bytes(data)
            local[path] = str(target)
        request = RenderRequest.from_json(request_json)
        output = request.output
        request.image = local.get(request.image, request.image)
        if request.end_image:
            request.end_image = local.get(request.end_image, request.end_image)
        for segment in request.audio:
            segment.path = local.get(segment.path, segment.path)
        request.output = str(folder / f"clip{Path(output).suffix}")
        request.overwrite = True
        payload = execute(request.to_json(), job_id)
        if payload["ok"]:
            payload["data"] = Path(request.output).read_bytes()
            payload["result"]["output"] = output
        return payload
