"""Render a batch of requests through the job store: never twice the same work, resumable after any crash.

Each request becomes a job named by the hash of its content. A job already done whose clip still exists (and
still has the checksum it was written with) is reused, copied or hard-linked to a new output name when needed;
a job another live batch is running is waited for; everything else is claimed and rendered by an executor
("local" worker processes or "ray" tasks). A worker that dies mid-clip is replaced and the clip retried; a batch
process that dies leaves its jobs to be picked up by the next run. Outputs are only ever renamed into place.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, check_output, write_bytes
from ..backends.base import CancelToken, Progress
from ..errors import BadInputError, StillMotionError
from ..request import RenderRequest
from .identity import code_digest, output_digest, work_id
from .identity import job_id as compute_job_id
from .local import LocalPool, default_workers, needs_gpu
from .store import HEARTBEAT_SECONDS, JobStore, Owner
from .worker import remove_stale_temps

EXECUTORS = ("local", "ray")
#: Times a clip is re-run after its local worker process died (Ray uses its own task retries).
LOCAL_MAX_RETRIES = 2
_POLL_SECONDS = 0.25


@dataclass
class JobEvent:
    """What the batch reports while it runs: a job's new status, or its render progress."""

    index: int
    job_id: str
    status: str                   # queued running progress done reused failed cancelled retrying
    message: str = ""
    progress: Progress | None = None


@dataclass
class BatchItem:
    """One request's outcome: done (result is RenderResult JSON), failed (error is one line) or cancelled."""

    request: RenderRequest
    job_id: str | None
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    reused: bool = False
    #: The reused clip was made by other code (kept because the caller asked for --reuse-stale).
    stale: bool = False

    def render_result(self) -> Any:
        """The result as the `RenderResult` that `render_clip` returns (for callers written against it)."""
        from ..render import RenderResult

        if self.result is None:
            raise BadInputError(self.error or "the clip was not rendered")
        data = self.result
        return RenderResult(
            output=self.request.output, frames=int(data["frames"]), fps=Fraction(data["fps"]),
            width=int(data["width"]), height=int(data["height"]), engine=data["engine"], seed=int(data["seed"]),
            preset=data["preset"], schedule=data.get("schedule") or {}, qc=data.get("qc"),
            attempts=list(data.get("attempts") or []), timings=dict(data.get("timings") or {}),
            engine_summary=dict(data.get("engine_summary") or {}))

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "output": self.request.output, "status": self.status,
                "reused": self.reused, "stale": self.stale, "result": self.result, "error": self.error}


EventCallback = Callable[[JobEvent], None]


@dataclass
class _Job:
    """A unique piece of work and the batch positions (requests) waiting for it."""

    job_id: str
    request: RenderRequest
    indexes: list[int]
    work: str | None = None
    code: str | None = None
    overwrite_own_output: bool = False
    crashes: int = 0
    attempt_id: int | None = None
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _absolute(request: RenderRequest) -> RenderRequest:
    """The same request with absolute paths (workers and Ray nodes do not share the driver's cwd)."""
    audio = [replace(seg, path=str(Path(seg.path).expanduser().resolve())) for seg in request.audio]
    return replace(request, image=str(Path(request.image).expanduser().resolve()),
                   end_image=str(Path(request.end_image).expanduser().resolve()) if request.end_image else None,
                   output=str(Path(request.output).expanduser().resolve()), audio=audio,
                   options=dict(request.options))


def _place_copy(source: Path, target: Path, overwrite: bool) -> None:
    """Put a done clip at another name: a hard link when the filesystem allows it, else a copy; atomically."""
    with atomic_path(target, overwrite) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


class _Batch:
    def __init__(self, requests: list[RenderRequest], executor: str, store: JobStore, workers: int | None,
                 ray_address: str | None, shared_storage: bool, on_event: EventCallback | None,
                 cancel: CancelToken | None, timeline: str | None, force: bool, reuse_stale: bool = False) -> None:
        self.requests = [_absolute(r) for r in requests]
        self.executor = executor
        self.store = store
        self.workers = workers
        self.ray_address = ray_address
        self.shared_storage = shared_storage
        self.on_event = on_event
        self.cancel = cancel or CancelToken()
        self.timeline = str(Path(timeline).expanduser().resolve()) if timeline else None
        self.force = force
        self.reuse_stale = reuse_stale
        self.owner = Owner.current()
        self.items: list[BatchItem | None] = [None] * len(requests)
        self.jobs: dict[str, _Job] = {}
        self.originals = requests

    # ------------------------------------------------------------------------------------------------- events
    def emit(self, job: _Job, status: str, message: str = "", progress: Progress | None = None) -> None:
        if self.on_event is None:
            return
        for index in job.indexes:
            self.on_event(JobEvent(index, job.job_id, status, message, progress))

    def settle(self, index: int, job_id: str | None, status: str, result: dict[str, Any] | None = None,
               error: str | None = None, reused: bool = False, stale: bool = False) -> None:
        self.items[index] = BatchItem(self.originals[index], job_id, status, result, error, reused, stale)

    # ------------------------------------------------------------------------------------------------ planning
    def plan(self) -> None:
        """Hash every request; bad requests fail at once, identical ones share one job."""
        from ..render import validate

        for index, request in enumerate(self.requests):
            try:
                validate(request)
                job_id = compute_job_id(request)
                work = work_id(request)
            except StillMotionError as exc:
                self.settle(index, None, "failed", error=str(exc))
                continue
            if job_id in self.jobs:
                self.jobs[job_id].indexes.append(index)
            else:
                self.jobs[job_id] = _Job(job_id, request, [index], work, code_digest(request.engine))

    def _intact_output(self, job_id: str) -> tuple[Path, tuple[str, int]] | None:
        """A recorded output of `job_id` still on disk with the checksum it was written with."""
        for output in self.store.outputs(job_id):
            path = Path(output["path"])
            if path.is_file() and path.stat().st_size == output["size"] and \
                    output_digest(path) == (output["sha256"], output["size"]):
                return path, (output["sha256"], output["size"])
        return None

    def reuse(self, job: _Job) -> bool:
        """Serve a job from a clip already rendered (and unchanged on disk); False when there is none."""
        row = self.store.get(job.job_id)
        if row is None or row["status"] != "done" or self.force:
            return False
        found = self._intact_output(job.job_id)
        if found is None:
            return False
        self.deliver(job, found[0], found[1], row["result"], reused=True)
        return True

    def stale_rows(self, job: _Job) -> list[dict[str, Any]]:
        """Finished jobs that did this work with other code (newest first)."""
        return self.store.done_with_work(job.work, exclude=job.job_id) if job.work else []

    def reuse_stale_clip(self, job: _Job) -> bool:
        """--reuse-stale: serve the job from a clip of the same work made by other code, kept under that job's
        id (it is that code's clip: no job is recorded for this code)."""
        if self.force:
            return False
        for row in self.stale_rows(job):
            found = self._intact_output(row["id"])
            if found is not None:
                old = _Job(row["id"], job.request, job.indexes, job.work, row.get("code"))
                self.deliver(old, found[0], found[1], row["result"], reused=True, stale=True)
                job.done = True
                return True
        return False

    def owns_stale_output(self, job: _Job) -> bool:
        """Whether the file at the job's output is a clip of this same work made by other code (so rendering it
        again with this code may replace it without --overwrite)."""
        target = Path(job.request.output)
        if not target.is_file():
            return False
        for row in self.stale_rows(job):
            for output in self.store.outputs(row["id"]):
                if Path(output["path"]) == target and output_digest(target) == (output["sha256"], output["size"]):
                    return True
        return False

    def deliver(self, job: _Job, source: Path, digest: tuple[str, int], result: dict[str, Any],
                reused: bool, stale: bool = False) -> None:
        """Give every request of `job` its clip: the source itself, or a copy at its own output name."""
        job.done = True
        for index in job.indexes:
            request = self.requests[index]
            target = Path(request.output)
            try:
                if target != source:
                    same = target.is_file() and output_digest(target) == digest
                    if not same:
                        _place_copy(source, target, request.overwrite)
                    self.store.add_output(job.job_id, str(target), digest[0], digest[1], self.timeline)
                elif reused:
                    self.store.add_output(job.job_id, str(target), digest[0], digest[1], self.timeline)
            except StillMotionError as exc:
                self.settle(index, job.job_id, "failed", error=str(exc))
                continue
            self.settle(index, job.job_id, "done", dict(result, output=str(target)),
                        reused=reused or index != job.indexes[0], stale=stale)
        self.emit(job, "reused" if reused else "done", "made by other code (--reuse-stale)" if stale else "")

    def fail(self, job: _Job, error: str, status: str = "failed") -> None:
        job.done = True
        self.store.finish(job.job_id, status, error)
        for index in job.indexes:
            self.settle(index, job.job_id, status, error=error)
        self.emit(job, status, error)

    # ------------------------------------------------------------------------------------------------- running
    def prepare(self, job: _Job) -> dict[str, Any] | None:
        """Make a claimed job ready to send: clear a killed run's leftovers; fail early on an existing output."""
        request = job.request
        remove_stale_temps(request.output)
        overwrite = request.overwrite or job.overwrite_own_output
        try:
            check_output(request.output, overwrite)
        except StillMotionError as exc:
            self.fail(job, str(exc))
            return None
        return replace(request, overwrite=overwrite).to_json()

    def run(self) -> list[BatchItem]:
        self.plan()
        self.store.recover_stale()
        waiting: deque[_Job] = deque()
        ready: deque[_Job] = deque()
        for job in self.jobs.values():
            if self.reuse_stale and not self.reuse(job) and self.reuse_stale_clip(job):
                continue
            if job.done:
                continue
            previous = self.store.submit(job.job_id, job.request, self.timeline, work=job.work, code=job.code)
            if self.reuse(job):
                continue
            if previous and previous.get("output") == job.request.output:
                # Our own earlier run died while writing this very file: it is ours to replace.
                job.overwrite_own_output = any(a["status"] in ("interrupted", "crashed")
                                               for a in self.store.attempts(job.job_id))
            if not job.overwrite_own_output and self.owns_stale_output(job):
                # The file there is this work made by older code: rendering it with this code replaces it.
                job.overwrite_own_output = True
                self.emit(job, "queued", "the stored clip was made by other code: rendering it again")
            # force: a "done" job whose clip is gone (or changed) is rendered again.
            if self.store.claim(job.job_id, self.owner, self.executor, force=True):
                ready.append(job)
                self.emit(job, "queued")
            elif self.reuse(job):
                continue
            else:
                waiting.append(job)  # another live batch is rendering it right now
                self.emit(job, "queued", "being rendered by another batch")
        if ready or waiting:
            self.execute(ready, waiting)
        return [item if item is not None else BatchItem(self.originals[i], None, "cancelled", error="cancelled")
                for i, item in enumerate(self.items)]

    def make_pool(self) -> Any:
        if self.executor == "ray":
            from .ray_executor import RayPool

            return RayPool(shared_storage=self.shared_storage)

        def progress(job_id: str, event: Progress) -> None:
            job = self.jobs.get(job_id)
            if job is not None:
                self.emit(job, "progress", event.message, event)

        return LocalPool(self.workers or default_workers(), on_progress=progress)

    def execute(self, ready: deque[_Job], waiting: deque[_Job]) -> None:
        started_ray = False
        pool: Any = None
        running: dict[str, _Job] = {}
        last_beat = time.monotonic()
        try:
            if self.executor == "ray" and ready:
                from .ray_executor import connect

                started_ray = connect(self.ray_address, self.workers)
            pool = self.make_pool()
            while ready or waiting or running:
                if self.cancel.cancelled:
                    self.cancel_all(pool, ready, waiting, running)
                    return
                self.dispatch(pool, ready, running)
                for completion in pool.wait(_POLL_SECONDS if running else 0):
                    self.complete(running.pop(completion.job_id), completion, ready)
                if waiting:
                    self.check_waiting(waiting, ready)
                    if not running and not ready and waiting:
                        time.sleep(_POLL_SECONDS)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    self.store.heartbeat(self.owner)
                    last_beat = time.monotonic()
        except BaseException:
            if pool is not None:
                pool.shutdown()
            self.store.release(self.owner, "cancelled", "the batch stopped before this clip finished")
            for job in running.values():
                remove_stale_temps(job.request.output)
            raise
        finally:
            if pool is not None:
                pool.shutdown()
            if started_ray:
                from .ray_executor import disconnect

                disconnect()

    def dispatch(self, pool: Any, ready: deque[_Job], running: dict[str, _Job]) -> None:
        """Send every job the pool can take now (a GPU job waits for a free GPU slot; CPU jobs go around it)."""
        for job in list(ready):
            if not pool.can_take(job.request.engine):
                if needs_gpu(job.request.engine):
                    continue
                break
            ready.remove(job)
            payload = self.prepare(job)
            if payload is None:
                continue
            job.attempt_id = self.store.start_attempt(job.job_id, self.executor)
            try:
                pool.submit(job.job_id, payload)
            except StillMotionError as exc:
                self.store.finish_attempt(job.attempt_id, "failed", error=str(exc))
                self.fail(job, str(exc))
                continue
            running[job.job_id] = job
            self.emit(job, "running")

    def complete(self, job: _Job, completion: Any, ready: deque[_Job]) -> None:
        payload = completion.payload or {}
        assert job.attempt_id is not None
        if completion.crashed and self.executor == "local":
            job.crashes += 1
            message = f"worker process died (exit code {completion.exit_code})"
            self.store.finish_attempt(job.attempt_id, "crashed", error=message)
            remove_stale_temps(job.request.output)
            if job.crashes <= LOCAL_MAX_RETRIES:
                ready.appendleft(job)
                self.emit(job, "retrying", message)
            else:
                self.fail(job, f"{message}; gave up after {job.crashes} tries")
            return
        where = {"host": payload.get("host"), "pid": payload.get("pid")}
        if not payload.get("ok"):
            error = payload.get("error") or "the clip failed"
            self.store.finish_attempt(job.attempt_id, "crashed" if completion.crashed else "failed",
                                      error=error, **where)
            self.fail(job, error)
            return
        result = payload["result"]
        output = Path(job.request.output)
        try:
            if "data" in payload:  # the clip came back as bytes (Ray without shared storage)
                write_bytes(output, payload["data"], overwrite=job.request.overwrite or job.overwrite_own_output)
            digest = output_digest(output)
        except (StillMotionError, OSError) as exc:
            error = str(exc) if isinstance(exc, StillMotionError) else f"{output}: {exc.strerror or exc}"
            self.store.finish_attempt(job.attempt_id, "failed", error=error, **where)
            self.fail(job, error)
            return
        qc_attempts = [{"seed": a.get("seed"), "qc": a.get("qc")} for a in result.get("attempts", [])]
        self.store.finish_attempt(job.attempt_id, "done", seed=result.get("seed"),
                                  qc={"verdict": (result.get("qc") or {}).get("verdict"), "attempts": qc_attempts},
                                  timings=result.get("timings"), **where)
        result = dict(result, output=str(output))
        self.store.complete(job.job_id, result, str(output), digest[0], digest[1], self.timeline)
        self.deliver(job, output, digest, result, reused=False)

    def check_waiting(self, waiting: deque[_Job], ready: deque[_Job]) -> None:
        """Jobs another batch was rendering: take its clip once done, or the job itself if that batch died."""
        for job in list(waiting):
            if self.reuse(job):
                waiting.remove(job)
            elif self.store.claim(job.job_id, self.owner, self.executor, force=True):
                waiting.remove(job)
                ready.append(job)
            else:
                row = self.store.get(job.job_id)
                if row is not None and row["status"] in ("failed", "cancelled"):
                    waiting.remove(job)
                    self.fail(job, row.get("error") or row["status"], row["status"])

    def cancel_all(self, pool: Any, ready: deque[_Job], waiting: deque[_Job], running: dict[str, _Job]) -> None:
        pool.stop_jobs(list(running))
        for job in running.values():
            if job.attempt_id is not None:
                self.store.finish_attempt(job.attempt_id, "cancelled", error="cancelled")
            remove_stale_temps(job.request.output)
        for job in [*running.values(), *ready]:
            self.fail(job, "cancelled", "cancelled")
        for job in waiting:
            job.done = True
            for index in job.indexes:
                self.settle(index, job.job_id, "cancelled", error="cancelled")
        running.clear()
        ready.clear()
        waiting.clear()


def run_batch(requests: list[RenderRequest], executor: str = "local", store: JobStore | None = None,
              workers: int | None = None, ray_address: str | None = None, on_event: EventCallback | None = None,
              cancel: CancelToken | None = None, *, timeline: str | None = None, shared_storage: bool = False,
              force: bool = False, reuse_stale: bool = False) -> list[BatchItem]:
    """Render `requests` (one BatchItem each, same order), reusing finished work and surviving crashes.

    executor: "local" (worker processes; `workers` defaults to one per core, GPU engines one at a time) or "ray"
    (Ray tasks; a private local cluster with `workers` CPUs unless `ray_address` names a cluster to join).
    shared_storage: Ray nodes read inputs and write outputs at the same paths as this machine (else bytes travel
    through Ray). timeline: recorded with each job so history can be filtered by it. force: render again even
    when a finished clip exists (`stillmotion jobs retry`). reuse_stale: keep a finished clip of the same work
    made by other code (another StillMotion version, engine or preset table) instead of rendering it again.
    """
    if executor not in EXECUTORS:
        raise BadInputError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise BadInputError(f"workers must be ≥ 1, got {workers}")
    if ray_address and executor != "ray":
        raise BadInputError("--ray-address needs --executor ray")
    batch = _Batch(list(requests), executor, store or JobStore(), workers, ray_address, shared_storage, on_event,
                   cancel, timeline, force, reuse_stale)
    return batch.run()


def clip_paths(items: list[BatchItem]) -> list[str]:
    """The outputs that exist after a batch (for callers writing a partial timeline)."""
    return [item.request.output for item in items if item.status == "done"]

__all__ = ["EXECUTORS", "BatchItem", "JobEvent", "clip_paths", "run_batch"]
