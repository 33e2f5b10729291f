"""`python -m stillmotion.plugin.render_worker REQUEST.json`: render one request in the project's Python for a
host (see `runtime.render_in_subprocess`). Speaks JSON lines on stdout: progress events, then one result or
one error line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def emit(message: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed: the protocol every host-side render worker speaks."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    from stillmotion.engine.backends.base import Progress
    from stillmotion.engine.errors import StillMotionError
    from stillmotion.engine.render import render_clip
    from stillmotion.engine.request import RenderRequest

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        emit({"event": "error", "kind": "BadInputError", "message": "usage: render_worker REQUEST.json"})
        return 2
    try:
        request = RenderRequest.loads(Path(args[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        emit({"event": "error", "kind": "BadInputError", "message": f"unreadable request {args[0]}: {exc}"})
        return 2

    def on_event(event: Any) -> None:
        if isinstance(event, Progress):
            emit({"event": "progress", "step": event.step, "total": event.total, "stage": event.stage})

    try:
        result = render_clip(request, on_event)
    except StillMotionError as exc:
        emit({"event": "error", "kind": type(exc).__name__, "message": str(exc)})
        return exc.exit_code
    emit({"event": "result", "result": result.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
