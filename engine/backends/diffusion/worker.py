"""The diffusion worker: a spawned process that imports torch, runs one job and streams messages back.

Protocol (worker → parent, over one multiprocessing queue; every message is a tuple whose first item is its kind):

- ("event", Progress | Preview)  progress per denoising step, cheap latent previews, load / conform stages
- ("frame", ndarray)             one finished output frame (request size, uint8 RGB), in order
- ("done", summary dict)         after the last frame
- ("cancelled",)                 the cancel event was seen (checked in callback_on_step_end)
- ("error", kind, message)       kind is a StillMotionError class name (re-raised as such) or "internal"

Parent → worker: one multiprocessing Event, set on cancel. A worker that dies without "done" / "error" /
"cancelled" (killed, segfault, out of memory) is reported as WorkerCrashedError, never waited on forever.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import queue as queue_module
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ... import errors
from ...errors import CancelledError, StillMotionError, WorkerCrashedError
from ...spawning import main_module_hidden
from ..base import CancelToken, EventSink
from .protocol import StepCancelled, WorkerChannel

#: How long the parent waits for a cancelled worker to stop by itself before terminating it.
CANCEL_GRACE_SECONDS = 10.0
#: A warm worker exits after this long without a job (frees GPU memory); override with STILLMOTION_WORKER_IDLE.
DEFAULT_IDLE_SECONDS = 600.0
IDLE_ENV = "STILLMOTION_WORKER_IDLE"
#: Set to 0 to stop each worker after its job instead of keeping it warm.
KEEP_ENV = "STILLMOTION_KEEP_WORKER"
#: Poll interval of the parent's receive loop (also how quickly a dead worker is noticed).
POLL_SECONDS = 0.1
#: Families and the modules (in this package) holding their DiffusionRuntime subclass `RUNTIME`.
#: Python interpreter for the worker when the host's own executable is not one (e.g. an editor's embedded Python).
PYTHON_ENV = "STILLMOTION_PYTHON"
RUNTIME_MODULES = {"ltx": "ltx", "ltx2": "ltx2", "svd": "svd", "wan": "wan"}
#: torch intra-op threads in every diffusion worker, whatever the machine: bit-identical CPU renders everywhere
#: (GPU kernels are another matter, see docs/cluster.md). Measured cost in docs/cluster.md.
TORCH_CPU_THREADS = 4


def _quiet_offline_environment() -> None:
    """Before diffusers / transformers are imported: never reach the network, no telemetry, no bars."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def worker_main(inbox: Any, out: Any, cancel_event: Any, idle_seconds: float) -> None:
    """Entry point of the spawned process: run jobs from `inbox` until None arrives or it idles too long.

    The process stays warm between jobs (torch imported, last pipeline loaded), so only the first render of a
    session pays for process start, imports and weight loading.
    """
    _quiet_offline_environment()
    try:
        import importlib
        import warnings

        warnings.filterwarnings("ignore")
        import torch
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        # Always the same intra-op thread count: torch's CPU kernels split sums by it, so frames changed with the
        # machine's cores or OMP_NUM_THREADS (1 in a Ray task). STILLMOTION_TORCH_THREADS overrides it (and then
        # clips match only clips made with the same setting).
        torch.set_num_threads(int(os.environ.get("STILLMOTION_TORCH_THREADS") or TORCH_CPU_THREADS))
    except BaseException as exc:  # noqa: BLE001 - a broken install must reach the parent as one message
        out.put(("error", None, "BadInputError", f"the diffusion stack does not import ({type(exc).__name__}: "
                                                 f"{exc}); install the 'diffusion' extra"))
        return
    while True:
        try:
            item = inbox.get(timeout=idle_seconds)
        except queue_module.Empty:
            break
        if item is None:
            break
        job_id, job = item
        channel = WorkerChannel(out, cancel_event, job_id)
        try:
            module = importlib.import_module(f"{__package__}.{RUNTIME_MODULES[job.family]}")
            runtime = module.RUNTIME(job, channel)
            try:
                frames, summary = runtime.generate()
            except StepCancelled:
                out.put(("cancelled", job_id))
                continue
            for frame in frames:
                channel.frame(frame)
            out.put(("done", job_id, summary))
        except StillMotionError as exc:
            out.put(("error", job_id, type(exc).__name__, str(exc)))
        except MemoryError:
            out.put(("error", job_id, "StillMotionError",
                     "out of memory: use a smaller size, dtype bf16, or offload"))
        except Exception as exc:  # noqa: BLE001 - everything must reach the parent as one message
            message = str(exc).splitlines()[0] if str(exc) else ""
            if "out of memory" in message.lower():
                out.put(("error", job_id, "StillMotionError", f"out of memory on the GPU ({message}); try "
                                                              "offload model or sequential, VAE tiling, or a "
                                                              "smaller size"))
            else:
                out.put(("error", job_id, "internal", f"{type(exc).__name__}: {message}"))
    with contextlib.suppress(Exception):
        out.close()
        out.join_thread()


def _error_from(kind: str, message: str) -> Exception:
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, StillMotionError):
        return cls(message)
    return RuntimeError(f"diffusion worker: {message}")


class WorkerHandle:
    """The parent's side of one worker process: submit a job, turn its messages into events and frames."""

    def __init__(self, family: str, idle_seconds: float | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        if os.environ.get(PYTHON_ENV):  # hosts whose sys.executable is not a Python (editors' embedded ones)
            context.set_executable(os.environ[PYTHON_ENV])
        idle = idle_seconds if idle_seconds is not None else float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_SECONDS))
        self._inbox = context.Queue()
        self._queue = context.Queue()
        self._cancel = context.Event()
        self._process = context.Process(target=worker_main, args=(self._inbox, self._queue, self._cancel, idle),
                                        name=f"stillmotion-{family}", daemon=True)
        self.family = family
        self.summary: dict[str, Any] = {}
        self.jobs = 0
        self._next_id = 0
        with main_module_hidden():
            self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def frames(self, job: Any, on_event: EventSink, cancel: CancelToken) -> Iterator[np.ndarray]:
        """Run `job`; yield its frames in order, forwarding its events. Raises the job's error, CancelledError
        or WorkerCrashedError. Sets `self.clean` when the job ended with a final message (worker reusable)."""
        import time

        self.clean = False
        self.heard = False
        self._next_id += 1
        job_id = self._next_id
        self._cancel.clear()
        self._inbox.put((job_id, job))
        self.jobs += 1
        cancel_sent_at: float | None = None
        while True:
            if cancel.cancelled and cancel_sent_at is None:
                self._cancel.set()
                cancel_sent_at = time.monotonic()
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_SECONDS:
                self.close()
                raise CancelledError("cancelled")
            try:
                message = self._queue.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                if self._process.is_alive():
                    continue
                message = self._drain()
                if message is None:
                    self._process.join(1.0)
                    code = self._process.exitcode
                    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    raise WorkerCrashedError(f"the {self.family} worker stopped without a result ({how}); "
                                             "out of memory is the usual cause: try a smaller size or "
                                             "offloading") from None
            kind, message_job = message[0], message[1]
            if message_job is not None and message_job != job_id:
                continue  # left over from an earlier job
            self.heard = True
            if kind == "event":
                on_event(message[2])
            elif kind == "frame":
                yield message[2]
            elif kind == "done":
                self.summary = message[2]
                self.clean = True
                return
            elif kind == "cancelled":
                self.clean = True
                raise CancelledError("cancelled")
            elif kind == "error":
                self.clean = message_job is not None
                raise _error_from(message[2], message[3])

    def _drain(self) -> tuple | None:
        try:
            return self._queue.get(timeout=POLL_SECONDS)
        except (queue_module.Empty, EOFError, OSError):
            return None

    def close(self) -> None:
        """Stop the worker (ask, then terminate, then kill) and free its queues."""
        process = self._process
        if process.is_alive():
            with contextlib.suppress(Exception):
                self._cancel.set()
                self._inbox.put(None)
            process.join(1.0)
        if process.is_alive():
            process.terminate()
            process.join(2.0)
        if process.is_alive():
            process.kill()
            process.join(2.0)
        for q in (self._queue, self._inbox):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


class WorkerPool:
    """Warm workers kept between renders (QC retries, batches, the panel): one idle worker per family is
    reused; a busy one never is (a second concurrent render gets its own process)."""

    def __init__(self) -> None:
        self._idle: dict[str, list[WorkerHandle]] = {}
        self._lock = threading.Lock()
        atexit.register(self.shutdown)

    def acquire(self, family: str) -> WorkerHandle:
        with self._lock:
            idle = self._idle.get(family, [])
            while idle:
                handle = idle.pop()
                if handle.alive:
                    return handle
                handle.close()
        return WorkerHandle(family)

    def release(self, handle: WorkerHandle) -> None:
        """Keep a worker whose last job ended cleanly; stop any other."""
        if getattr(handle, "clean", False) and handle.alive and os.environ.get(KEEP_ENV, "1") != "0":
            with self._lock:
                self._idle.setdefault(handle.family, []).append(handle)
        else:
            handle.close()

    def shutdown(self) -> None:
        """Stop every idle worker (at exit, or when a host unloads the plugin)."""
        with self._lock:
            handles = [h for hs in self._idle.values() for h in hs]
            self._idle.clear()
        for handle in handles:
            handle.close()


POOL = WorkerPool()


def run_job(job: Any, on_event: EventSink, cancel: CancelToken,
            on_start: Callable[[WorkerHandle], None] | None = None) -> Iterator[np.ndarray]:
    """Run `job` on a pooled worker and yield its frames. A worker that quit on its idle timeout just before
    taking the job (exit code 0, nothing heard) is replaced once; any other death is WorkerCrashedError."""
    for attempt in range(2):
        handle = POOL.acquire(job.family)
        if on_start is not None:
            on_start(handle)
        try:
            yield from handle.frames(job, on_event, cancel)
            return
        except WorkerCrashedError:
            if attempt == 0 and handle.exitcode == 0 and not handle.heard:
                continue
            raise
        finally:
            POOL.release(handle)
