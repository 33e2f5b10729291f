"""Work off the UI thread: one render thread that runs `render_clip` job by job, and a pool for short tasks
(thumbnails, music analysis, decoding a result to play). Results come back as queued Qt signals, so every
view-model change happens on the UI thread."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage
from stillmotion.engine import warmup
from stillmotion.engine.backends.base import CancelToken, Error, Preview, Progress, Result
from stillmotion.engine.errors import CancelledError, StillMotionError

#: Progress signals are sent at most this often (a fast engine reports hundreds of frames a second).
PROGRESS_INTERVAL = 0.05


def to_qimage(rgb: np.ndarray) -> QImage:
    """An owned QImage copy of an HxWx3 (or HxWx4) uint8 array; safe to make on any thread."""
    array = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = array.shape[:2]
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class RenderWorker(QObject):
    """Lives on the render thread; `run` renders one request and reports through signals."""

    progress = Signal(str, int, int, str)
    preview = Signal(str, object)
    finished = Signal(str, object)
    failed = Signal(str, str)
    cancelled = Signal(str)

    def __init__(self, render: Callable[..., Any]) -> None:
        super().__init__()
        self._render = render

    @Slot(str, object, object)
    def run(self, job_id: str, request: Any, token: CancelToken) -> None:
        last = 0.0

        def on_event(event: Any) -> None:
            nonlocal last
            now = time.monotonic()
            if isinstance(event, Progress):
                if now - last >= PROGRESS_INTERVAL or event.step >= event.total or event.stage != "render":
                    last = now
                    self.progress.emit(job_id, event.step, event.total, event.stage)
            elif isinstance(event, Preview):
                self.preview.emit(job_id, to_qimage(event.image))
            elif isinstance(event, Result):
                pass  # the return value of render_clip is the result
            elif isinstance(event, Error):
                self.failed.emit(job_id, event.message)

        try:
            if token.cancelled:
                raise CancelledError("cancelled")
            result = self._render(request, on_event, token)
        except CancelledError:
            self.cancelled.emit(job_id)
        except StillMotionError as exc:
            self.failed.emit(job_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in an engine must not take the panel down
            traceback.print_exc()
            self.failed.emit(job_id, f"internal error: {type(exc).__name__}: {exc}")
        else:
            self.finished.emit(job_id, result.to_json() if hasattr(result, "to_json") else result)


class RenderThread(QObject):
    """Owns the render thread and its worker; `start_job` hands a request over without blocking."""

    _start = Signal(str, object, object)

    def __init__(self, render: Callable[..., Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("stillmotion-render")
        self.worker = RenderWorker(render)
        self.worker.moveToThread(self.thread)
        self._start.connect(self.worker.run)
        self.thread.start()
        warmup.start()  # OpenCV's one-time colour tables, built while the editor is still choosing stills

    def start_job(self, job_id: str, request: Any, token: CancelToken) -> None:
        self._start.emit(job_id, request, token)

    def stop(self, timeout_ms: int = 10000) -> None:
        self.thread.quit()
        self.thread.wait(timeout_ms)


class _TaskSignals(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)


class _Task(QRunnable):
    def __init__(self, ticket: int, fn: Callable[[], Any], signals: _TaskSignals) -> None:
        super().__init__()
        self.ticket, self.fn, self.signals = ticket, fn, signals

    def run(self) -> None:
        try:
            value = self.fn()
        except StillMotionError as exc:
            self.signals.failed.emit(self.ticket, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported inline, never a crash
            traceback.print_exc()
            self.signals.failed.emit(self.ticket, f"internal error: {type(exc).__name__}: {exc}")
        else:
            self.signals.done.emit(self.ticket, value)


class TaskRunner(QObject):
    """Runs short functions on a thread pool; only the latest call per `channel` delivers its result, so a
    quick change of selection never shows a stale thumbnail."""

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(threads)
        self._signals = _TaskSignals()
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._ticket = 0
        self._pending: dict[int, tuple[str, Callable[[Any], None], Callable[[str], None]]] = {}
        self._latest: dict[str, int] = {}

    def submit(self, channel: str, fn: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[str], None]) -> int:
        self._ticket += 1
        self._pending[self._ticket] = (channel, on_done, on_error)
        self._latest[channel] = self._ticket
        self.pool.start(_Task(self._ticket, fn, self._signals))
        return self._ticket

    def busy(self) -> bool:
        return bool(self._pending)

    def _take(self, ticket: int) -> tuple[Callable[[Any], None], Callable[[str], None]] | None:
        channel, on_done, on_error = self._pending.pop(ticket)
        if self._latest.get(channel) != ticket:
            return None
        return on_done, on_error

    def _on_done(self, ticket: int, value: Any) -> None:
        handlers = self._take(ticket)
        if handlers is not None:
            handlers[0](value)

    def _on_failed(self, ticket: int, message: str) -> None:
        handlers = self._take(ticket)
        if handlers is not None:
            handlers[1](message)

    def wait(self, timeout_ms: int = 10000) -> bool:
        return self.pool.waitForDone(timeout_ms)
