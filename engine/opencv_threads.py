"""OpenCV on one thread for a stretch of work, the caller's setting restored after.

A render already runs its stages side by side: the engine's warp thread, the caller's thread (colour conversion,
QC) and libx264's frame threads. OpenCV's own pool on top of that only adds hand-offs, and switching the
process-wide setting back and forth per frame (as QC once did) tears the pool down and rebuilds it every time:
0.3 s of the caller's thread in a 10-s 1080p render; holding one thread for the frame loop took the whole
command's CPU down ~2.5 % in paired runs (docs/procedural.md, "Measurements"). Results do not depend on the
thread count (the same bytes either way).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import cv2

_lock = threading.Lock()
_depth = 0
_saved = 1


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with OpenCV on one thread. Nesting- and thread-safe: the setting is process-wide, so it is
    set by the first concurrent user to enter and restored only when the last one leaves."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                cv2.setNumThreads(_saved)
