"""The local executor: long-lived worker processes on this machine, each rendering one clip at a time.

Not a `ProcessPoolExecutor`: when one of its workers dies the whole pool breaks and it cannot say which job killed
it. Here each worker has its own pipe, so a death is pinned to exactly the job it was running; that job is
retried on a fresh worker and the others go on. Workers stay up between clips (a diffusion engine loads its model
once per worker) and exit on their own when the batch process dies.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from ..backends.base import Progress
from ..spawning import main_module_hidden
from .worker import execute

#: Engines that run on the CPU; every other engine needs a GPU slot (one clip at a time per GPU).
CPU_ENGINES = frozenset({"procedural"})
#: Seconds a worker gets to exit after being asked to.
_STOP_GRACE = 5.0


def needs_gpu(engine: str) -> bool:
    return engine not in CPU_ENGINES


def default_workers() -> int:
    """One worker per core (rendering a procedural clip keeps one core busy)."""
    return max(1, os.cpu_count() or 1)


def _die_with_parent() -> None:
    """Exit when the batch process is gone, even after a `kill -9` that gave it no chance to stop us."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(3)

    threading.Thread(target=watch, name="stillmotion-parent-watch", daemon=True).start()


def _worker_main(conn: Connection, threads: int) -> None:
    """Loop: receive (job id, request JSON), render, send events and the outcome back; stop on None or EOF."""
    for name in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):  # read when numba / OpenMP load (at the first render)
        os.environ.setdefault(name, str(threads))
    import cv2

    cv2.setNumThreads(threads)  # N workers x all-core OpenCV pools would fight over the same cores
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle: it stops us cleanly
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, request_json = message

        def forward(event: Any, job_id: str = job_id) -> None:
            if isinstance(event, Progress):
                conn.send(("event", job_id, event))

        payload = execute(request_json, job_id, on_event=forward)
        try:
            conn.send(("done", job_id, payload))
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    job: str | None = None
    gpu: bool = False


@dataclass
class Completion:
    """How a job ended on a worker: its payload, or `crashed` (the worker died) with the exit code."""

    job_id: str
    payload: dict[str, Any] | None = None
    crashed: bool = False
    exit_code: int | None = None
    events: list[Progress] = field(default_factory=list)


class LocalPool:
    """Up to `workers` processes; at most `gpu_slots` of them render GPU-engine clips at the same time."""

    def __init__(self, workers: int, gpu_slots: int = 1,
                 on_progress: Callable[[str, Progress], None] | None = None) -> None:
        self.size = max(1, workers)
        self.gpu_slots = max(1, gpu_slots)
        self.on_progress = on_progress
        self._context = multiprocessing.get_context("spawn")  # no fork: the batch process has threads and SQLite
        self._workers: list[_Worker] = []

    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        threads = max(1, (os.cpu_count() or 1) // self.size)
        process = self._context.Process(target=_worker_main, args=(child_conn, threads), name="stillmotion-worker",
                                        daemon=True)
        with main_module_hidden():  # a script without a __main__ guard must not run again in the worker
            process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self._workers.append(worker)
        return worker

    @property
    def busy(self) -> int:
        return sum(1 for w in self._workers if w.job is not None)

    def can_take(self, engine: str) -> bool:
        if self.busy >= self.size:
            return False
        if needs_gpu(engine):
            return sum(1 for w in self._workers if w.gpu) < self.gpu_slots
        return True

    def submit(self, job_id: str, request_json: dict[str, Any]) -> None:
        worker = next((w for w in self._workers if w.job is None), None) or self._start_worker()
        worker.job = job_id
        worker.gpu = needs_gpu(request_json.get("engine", "procedural"))
        worker.conn.send((job_id, request_json))

    def running(self) -> list[str]:
        return [w.job for w in self._workers if w.job is not None]

    def wait(self, timeout: float) -> list[Completion]:
        """Finished or crashed jobs, waiting at most `timeout` seconds for the first."""
        active = [w for w in self._workers if w.job is not None]
        if not active:
            return []
        ready = wait([w.conn for w in active] + [w.process.sentinel for w in active], timeout)
        done: list[Completion] = []
        for worker in active:
            if worker.conn not in ready and worker.process.sentinel not in ready:
                continue
            completion = self._drain(worker)
            if completion is not None:
                done.append(completion)
        return done

    def _drain(self, worker: _Worker) -> Completion | None:
        job_id = worker.job
        assert job_id is not None
        try:
            while worker.conn.poll():
                kind, _, body = worker.conn.recv()
                if kind == "event":
                    if self.on_progress is not None:
                        self.on_progress(job_id, body)
                    continue
                worker.job, worker.gpu = None, False
                return Completion(job_id, payload=body)
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return None
        worker.process.join(_STOP_GRACE)
        self._workers.remove(worker)
        worker.conn.close()
        return Completion(job_id, crashed=True, exit_code=worker.process.exitcode)

    def stop_jobs(self, job_ids: list[str]) -> None:
        """Kill the workers running these jobs now (cancel): their temp files are cleaned up by the caller."""
        for worker in [w for w in self._workers if w.job in job_ids]:
            worker.process.kill()
            worker.process.join(_STOP_GRACE)
            worker.conn.close()
            self._workers.remove(worker)

    def shutdown(self) -> None:
        """Ask idle workers to exit, kill busy ones, and reap them all."""
        for worker in self._workers:
            try:
                if worker.job is None:
                    worker.conn.send(None)
                else:
                    worker.process.kill()
            except (BrokenPipeError, OSError):
                worker.process.kill()
        for worker in self._workers:
            worker.process.join(_STOP_GRACE)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(_STOP_GRACE)
            worker.conn.close()
        self._workers.clear()
