"""What the editor does with a finished attempt: place it at its still's record range (Insert), swap it for the
clip placed before (Replace), play it, or compare attempts side by side. The views are in `widgets/results.py`;
a host's controller places clips through its adapter instead and uses `finished_job` / `clip_metadata`."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from stillmotion.engine.errors import StillMotionError
from stillmotion.engine.timeline import timeline_format
from stillmotion.engine.timeline.edit import generated_clip, place_clip, replace_generated_clip
from stillmotion.engine.timeline.pipeline import ClipOutcome, media_url, provenance
from stillmotion.engine.video import read_frames

from .timeline_session import DEFAULT_INSERT_TRACK, TimelineSession
from .viewmodel import Job, JobState, PanelViewModel
from .worker import TaskRunner, to_qimage

#: Long side of frames decoded to play a result in the panel, and the most frames kept.
PLAYER_SIDE = 480
PLAYER_MAX_FRAMES = 1500


class ResultActions:
    """Insert, Replace, Play and Compare on finished attempts, by job id."""

    def __init__(self, vm: PanelViewModel, session: TimelineSession, tasks: TaskRunner,
                 task_error: Callable[[str], None]) -> None:
        self.vm = vm
        self.session = session
        self.tasks = tasks
        self.task_error = task_error

    def finished_job(self, job_id: str) -> Job | None:
        """The job if it finished and its clip file is still there; else None and an inline error."""
        job = self.vm.jobs.get(job_id)
        if job is None or job.state is not JobState.finished or not job.result:
            self.vm.error = "only a finished attempt can be used"
            return None
        if not Path(job.result["output"]).is_file():
            self.vm.error = f"the rendered file {job.result['output']} is gone"
            return None
        return job

    def clip_metadata(self, job: Job) -> dict[str, Any]:
        """The provenance a placed clip carries in metadata["stillmotion"]."""
        still = self.session.stills[job.still_key]
        outcome = ClipOutcome(still, job.request, SimpleNamespace(**job.result))
        return provenance(outcome, self.session.rate) | {"panel_job": job.id}

    def _media_url(self, job: Job) -> str:
        save_path = self.session.save_path
        assert save_path is not None
        relative = timeline_format(save_path).relative_media
        return media_url(Path(job.result["output"]), save_path, relative)

    def insert_job(self, job_id: str, track: str = "") -> bool:
        """Place the attempt at its still's record range on `track` (default: the chosen insert track); True
        when placed (the controller then saves)."""
        job = self.finished_job(job_id)
        session = self.session
        if job is None or session.timeline is None:
            return False
        still = session.stills.get(job.still_key)
        if still is None:
            self.vm.error = "that attempt's still is no longer on the timeline"
            return False
        track = track or self.vm.insert_track or DEFAULT_INSERT_TRACK
        clip = generated_clip(f"{still.name} (StillMotion)", self._media_url(job), still.frames,
                              session.rate, self.clip_metadata(job))
        try:
            place_clip(session.timeline, clip, still.record_start, session.rate, track)
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        job.inserted = track
        self.vm.jobs.notify(job)
        session.refresh_overview()
        return True

    def replace_job(self, job_id: str) -> bool:
        """Swap the clip inserted earlier for this still with this attempt; True when swapped."""
        job = self.finished_job(job_id)
        session = self.session
        if job is None or session.timeline is None:
            return False
        still = session.stills[job.still_key]
        try:
            clip = replace_generated_clip(session.timeline, still.name, still.record_start,
                                          self._media_url(job), self.clip_metadata(job))
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        job.inserted = clip.parent().name if clip.parent() is not None else "timeline"
        for other in self.vm.jobs:
            if other is not job and other.still_key == job.still_key and other.inserted:
                other.inserted = ""
                self.vm.jobs.notify(other)
        self.vm.jobs.notify(job)
        session.refresh_overview()
        return True

    def play_job(self, job_id: str) -> None:
        job = self.finished_job(job_id)
        if job is None:
            return
        path, fps = job.result["output"], float(Fraction(job.result["fps"]))

        def decode() -> list[Any]:
            frames = []
            for frame in read_frames(path, max_side=PLAYER_SIDE):
                frames.append(to_qimage(frame))
                if len(frames) >= PLAYER_MAX_FRAMES:
                    break
            return frames

        self.vm.status = f"Loading {Path(path).name}…"
        self.tasks.submit("player", decode, lambda frames: self._show_player(job_id, frames, fps),
                          self.task_error)

    def _show_player(self, job_id: str, frames: list[Any], fps: float) -> None:
        self.vm.player = (job_id, frames, fps)
        self.vm.status = f"Playing {len(frames)} frames"

    def stop_player(self) -> None:
        self.vm.player = None

    def compare_jobs(self, job_ids: list[str]) -> None:
        """Show finished attempts side by side (their middle frames, parameters and QC)."""
        jobs = [j for j in (self.vm.jobs.get(i) for i in job_ids) if j is not None and j.usable]
        if len(jobs) < 2:
            self.vm.error = "tick two or more finished attempts to compare them"
            return
        ids = tuple(j.id for j in jobs)

        def middles() -> dict[str, Any]:
            out = {}
            for job in jobs:
                middle = job.request.frames // 2
                for k, frame in enumerate(read_frames(job.result["output"], max_side=320)):
                    if k == middle:
                        out[job.id] = to_qimage(frame)
                        break
            return out

        def show(frames: dict[str, Any]) -> None:
            for job in jobs:
                if job.id in frames:
                    job.preview = frames[job.id]
            self.vm.compare = ids

        self.tasks.submit("compare", middles, show, self.task_error)

    def close_compare(self) -> None:
        self.vm.compare = ()
