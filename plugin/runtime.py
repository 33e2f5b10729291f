"""Running StillMotion's work outside a host's process.

A host's embedded Python (Blender's, Resolve's) must never load torch or the video stack into the editor: renders
run in a child process with the project's own interpreter (`project_python`), speaking JSON lines on stdout.
The host side needs only the standard library to drive it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Set by the Blender add-on and the Resolve script from their install-time config.
PYTHON_ENV = "STILLMOTION_PYTHON"
#: Hosts whose embedded interpreter must not render (their module names).
_HOST_MODULES = ("bpy", "DaVinciResolveScript", "fusionscript")


class SubprocessError(Exception):
    """The worker failed; `message` is its one line, `kind` the error class it raised."""

    def __init__(self, message: str, kind: str = "StillMotionError") -> None:
        super().__init__(message)
        self.kind = kind


def project_python() -> str:
    """The interpreter of StillMotion's environment: $STILLMOTION_PYTHON, else this one when it is not a
    host's embedded Python."""
    configured = os.environ.get(PYTHON_ENV)
    if configured:
        return configured
    if any(name in sys.modules for name in _HOST_MODULES):
        raise SubprocessError(f"${PYTHON_ENV} is not set: run `stillmotion install-host` to link the venv")
    return sys.executable


def run_json_lines(argv: Sequence[str], on_line: Callable[[dict[str, Any]], None] | None = None,
                   cancelled: Callable[[], bool] | None = None, cwd: str | None = None) -> dict[str, Any]:
    """Run `python -m ...` (argv after the interpreter) in the project's Python; pass each JSON line to
    `on_line`; return the final {"event": "result"} payload or raise `SubprocessError` with the worker's line."""
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)  # a host's PYTHONHOME would point the venv at the host's stdlib
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen([project_python(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, cwd=cwd)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    stderr_file = tempfile.TemporaryFile(mode="w+")
    try:
        import threading

        def drain() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                stderr_file.write(line)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        assert process.stdout is not None
        for line in process.stdout:
            if cancelled is not None and cancelled():
                process.terminate()
                break
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if message.get("event") == "result":
                result = message
            elif message.get("event") == "error":
                error = message
            elif on_line is not None:
                on_line(message)
        code = process.wait()
        reader.join(timeout=5)
        if cancelled is not None and cancelled():
            raise SubprocessError("cancelled", "CancelledError")
        if error is not None:
            raise SubprocessError(str(error.get("message")), str(error.get("kind", "StillMotionError")))
        if result is None or code != 0:
            stderr_file.seek(0)
            tail = [line.strip() for line in stderr_file.read().splitlines() if line.strip()]
            raise SubprocessError(f"worker exited with code {code}: {tail[-1] if tail else 'no output'}",
                                  "WorkerCrashedError")
        return result
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr_file.close()


def render_in_subprocess(request: Any, on_event: Callable[[Any], None] | None = None, cancel: Any = None
                         ) -> dict[str, Any]:
    """`render_clip`'s signature, run by `stillmotion.plugin.render_worker` in the project's Python: the
    panel inside a host renders through this, so torch never loads in the host."""
    from stillmotion.engine.backends.base import Progress
    from stillmotion.engine.errors import CancelledError, StillMotionError, WorkerCrashedError

    with tempfile.TemporaryDirectory(prefix="stillmotion-job-") as folder:
        job = Path(folder) / "request.json"
        job.write_text(request.dumps(), encoding="utf-8")

        def forward(message: dict[str, Any]) -> None:
            if on_event is not None and message.get("event") == "progress":
                on_event(Progress(int(message["step"]), int(message["total"]), str(message.get("stage", "render"))))

        try:
            reply = run_json_lines(["-m", "stillmotion.plugin.render_worker", str(job)], forward,
                                   (lambda: cancel.cancelled) if cancel is not None else None)
        except SubprocessError as exc:
            if exc.kind == "CancelledError":
                raise CancelledError(str(exc)) from None
            if exc.kind == "WorkerCrashedError":
                raise WorkerCrashedError(str(exc)) from None
            raise StillMotionError(str(exc)) from None
    return dict(reply["result"])
