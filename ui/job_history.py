"""The panel's attempt history across sessions: each render that ends is recorded in the job store, and a
timeline's past jobs (batch renders, earlier sessions) come back as cards with their first frame. The store work
itself is Qt-free in `history.py`; this runs it on the task pool so the UI thread never waits on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stillmotion.engine.jobs.store import JobStore, Owner
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.video import read_frames

from . import history
from .timeline_session import TimelineSession
from .viewmodel import Job, JobState, PanelViewModel
from .worker import TaskRunner, to_qimage

#: Past jobs (from the job store) whose first frame is decoded for their card, newest first, and its long side.
PAST_PREVIEWS = 24
PAST_PREVIEW_SIDE = 168


class JobHistory:
    """Records ended jobs and loads the open timeline's past ones into the view-model's job list."""

    def __init__(self, vm: PanelViewModel, session: TimelineSession, tasks: TaskRunner,
                 task_error: Callable[[str], None], store: JobStore | None = None) -> None:
        self.vm = vm
        self.session = session
        self.tasks = tasks
        self.task_error = task_error
        self._store = store
        self._store_lock = threading.Lock()
        self.store_owner = Owner.current()

    def job_store(self) -> JobStore:
        """The job store (the user's default one unless given); opened on first use, from any thread."""
        with self._store_lock:
            if self._store is None:
                self._store = JobStore()
            return self._store

    def store_timeline(self) -> str | None:
        """The timeline path panel renders are recorded under: the file the panel saves to, like a batch's OUT
        (`stillmotion jobs --timeline OUT` lists both)."""
        save_path = self.session.save_path
        return history.timeline_key(save_path) if save_path is not None else None

    def record(self, job: Job) -> None:
        """Write a render that just ended into the job store, on the task pool (hashing and SQLite off the UI
        thread); the job learns its store id when that is done."""
        request, state, result, error = job.request, job.state.value, job.result, job.error
        timeline, owner = self.store_timeline(), self.store_owner

        def write() -> str:
            return history.record_render(self.job_store(), owner, request, state, result, error, timeline)

        def recorded(store_id: str) -> None:
            job.store_id = store_id

        self.tasks.submit(f"record:{job.id}", write, recorded, self._store_error)

    def _store_error(self, message: str) -> None:
        self.vm.status = f"Job history not updated: {message}"

    def load_past_jobs(self) -> None:
        """Bring this timeline's jobs from the store (batch renders, earlier sessions) into the history."""
        session = self.session
        assert session.source_path is not None
        timelines = [history.timeline_key(session.source_path)]
        if session.save_path is not None:
            timelines.append(history.timeline_key(session.save_path))
        loading = session.source_path

        def load() -> list[history.PastJob]:
            return history.load_past_jobs(self.job_store(), timelines)

        def show(past: list[history.PastJob]) -> None:
            if session.source_path == loading:
                self._add_past_jobs(past)

        self.tasks.submit("past_jobs", load, show, self._store_error)

    def _still_for(self, request: RenderRequest) -> tuple[str, str]:
        """(still key, label) of the still a stored request was rendered for, matched by track and record start
        (then by clip name); key "" when that still is not on this timeline."""
        where = request.options.get("timeline") or {}
        name = str(where.get("clip") or Path(request.image).name)
        stills = self.session.stills
        for key, still in stills.items():
            if still.track_name == where.get("track") and still.record_start == where.get("record_start_frame"):
                return key, still.name
        same_name = [k for k, s in stills.items() if s.name == name]
        return (same_name[0] if len(same_name) == 1 else ""), name

    def _add_past_jobs(self, past: list[history.PastJob]) -> None:
        """Add stored jobs the history does not already show (same store id, or one of its clip files)."""
        known_ids = {j.store_id for j in self.vm.jobs if j.store_id}
        known_outputs = set()
        for job in self.vm.jobs:
            for path in (job.request.output, (job.result or {}).get("output")):
                if path:
                    known_outputs.add(history.timeline_key(path))
        for item in past:
            if item.store_id in known_ids or any(history.timeline_key(p) in known_outputs for p in item.outputs):
                continue
            key, label = self._still_for(item.request)
            state = JobState(item.state)
            missing = state is JobState.finished and item.output is None
            job = Job(id=f"store-{item.store_id[:16]}", still_key=key, label=label, request=item.request,
                      params=history.params_of(item.request), state=state, step=item.request.frames,
                      total=item.request.frames, result=item.result,
                      error=item.error or ("the clip file is gone" if missing else ""),
                      created=item.updated, store_id=item.store_id, past=True, missing=missing)
            if job.id in self.vm.jobs:
                continue
            self.vm.jobs.add(job)
        self._load_past_previews()

    def _load_past_previews(self) -> None:
        """First frames of the newest past clips for their cards (decoded on the pool, a few at a time)."""
        wanted = sorted((j for j in self.vm.jobs if j.past and j.usable and j.preview is None),
                        key=lambda j: j.created, reverse=True)[:PAST_PREVIEWS]
        paths = {j.id: str(j.result["output"]) for j in wanted if j.result}

        def decode() -> dict[str, Any]:
            previews = {}
            for job_id, path in paths.items():
                for frame in read_frames(path, max_side=PAST_PREVIEW_SIDE):
                    previews[job_id] = to_qimage(frame)
                    break
            return previews

        def show(previews: dict[str, Any]) -> None:
            for job_id, image in previews.items():
                job = self.vm.jobs.get(job_id)
                if job is not None:
                    job.preview = image
                    self.vm.jobs.notify(job)

        if paths:
            self.tasks.submit("past_previews", decode, show, self._store_error)

    def load_result_preview(self, job_id: str) -> None:
        """A finished job whose render sent no preview (a host's child-process render sends progress only)
        gets its clip's first frame on its card, as past jobs do, instead of an empty black box."""
        job = self.vm.jobs.get(job_id)
        if job is None or job.preview is not None or not job.usable or not job.result:
            return
        path = str(job.result["output"])

        def decode() -> Any:
            for frame in read_frames(path, max_side=PAST_PREVIEW_SIDE):
                return to_qimage(frame)
            return None

        def show(image: Any) -> None:
            if image is not None and job.preview is None:
                job.preview = image
                self.vm.jobs.notify(job)

        self.tasks.submit(f"result_preview:{job_id}", decode, show, self.task_error)
