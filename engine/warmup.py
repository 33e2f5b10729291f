"""One-time set-up costs moved off the critical path of a render's first frame.

OpenCV builds its 8-bit RGB->Lab lookup tables on the first Lab conversion: ~0.3 s of one core on this machine,
paid by the still's saliency analysis (or, when that is cached, by QC's drift meter) right before the first
frame. The tables are static, so building them on a second core while the rest of the start-up runs (imports,
music, encoder) gives the same results sooner. `wait()` before anything converts to Lab, so nothing ever races
with the build.
"""

from __future__ import annotations

import threading

_started: threading.Thread | None = None
_lock = threading.Lock()


def _build_tables() -> None:
    import cv2
    import numpy as np

    cv2.cvtColor(np.zeros((1, 1, 3), np.uint8), cv2.COLOR_RGB2LAB)


def start() -> None:
    """Begin building the tables in a background thread (once per process; later calls do nothing)."""
    global _started
    with _lock:
        if _started is None:
            # Not a daemon: a process that ends while OpenCV is inside the build (bad input found at once, a short
            # test) would otherwise abort in C++ ("terminate called without an active exception", exit 134)
            # instead of exiting with its own code; joining at exit costs at most the build's 0.3 s.
            _started = threading.Thread(target=_build_tables, name="stillmotion-warmup", daemon=False)
            _started.start()


def wait() -> None:
    """Block until the tables exist (builds them here if `start` was never called)."""
    start()
    assert _started is not None
    _started.join()
