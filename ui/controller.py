"""The panel's controller: the one object the widgets (through `connect_panel`) and the hosts talk to. Each of
its named actions is handed to the part that holds that concern, composed here explicitly:

* `TimelineSession` (timeline_session.py): the open timeline, its stills, relinking, the overview, saving;
* `StillSelection` (selection.py): the selection, and the primary still's thumbnail, music and motion;
* `BeatGridControl` (grid_control.py): ×2, ÷2, tap tempo, grid shift and reset;
* `RenderParameters` (parameters.py): engine models, output size, seeds, the motion schedule;
* `RenderQueue` (render_queue.py): jobs queued → executing → finished / cancelled / failed;
* `JobHistory` (job_history.py): the job store, past jobs and their previews;
* `ResultActions` (results.py): Insert, Replace, Play and Compare of finished attempts.

Widgets never call this directly: they emit named signals that `connect_panel` wires to the methods of the same
name (tests wire a fake controller instead)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from PySide6.QtCore import QObject, Signal
from stillmotion.engine.backends import engine_names
from stillmotion.engine.jobs.store import JobStore
from stillmotion.engine.timeline.select import Still

from .grid_control import BeatGridControl, TapTempo
from .job_history import JobHistory
from .parameters import RenderParameters
from .render_queue import RenderQueue
from .results import ResultActions
from .selection import StillSelection
from .settings import PanelSettings
from .timeline_session import TimelineSession
from .timeline_state import restore_panel_state
from .viewmodel import PanelViewModel
from .worker import TaskRunner


class PanelController(QObject):
    """Holds the timeline and the jobs; every method is a named action a widget (or a host) can ask for."""

    timeline_loaded = Signal(str)
    job_done = Signal(str)  # any terminal state: finished, cancelled or failed

    def __init__(self, vm: PanelViewModel, settings: PanelSettings | None = None, render: Any = None,
                 parent: QObject | None = None, store: JobStore | None = None) -> None:
        super().__init__(parent)
        from stillmotion.engine.render import render_clip

        self.vm = vm
        self.settings = settings
        self.tasks = TaskRunner(self)
        self.session = TimelineSession(vm)
        self.parameters = RenderParameters(vm, self.session)
        self.selection = StillSelection(vm, self.session, self.parameters, self.tasks, self._task_error)
        self.grid = BeatGridControl(vm)
        self.queue = RenderQueue(vm, self.session, self.parameters, render or render_clip, self)
        self.history = JobHistory(vm, self.session, self.tasks, self._task_error, store=store)
        self.results = ResultActions(vm, self.session, self.tasks, self._task_error)
        self.queue.job_ended.connect(self._on_job_ended)

        vm.engines = engine_names()
        if settings is not None:
            settings.restore(vm)
            settings.track(vm)
        self.parameters.fix_choices()
        vm.engine_changed.connect(self.parameters.on_engine)
        vm.quality_changed.connect(self.parameters.on_quality)
        for name in ("preset", "intensity", "routing", "seed", "selection"):
            getattr(vm, f"{name}_changed").connect(self.selection.refresh_motion)
        vm.selection_changed.connect(self.selection.on_selection)
        self.job_done.connect(self.history.load_result_preview)
        for name in ("tempo_factor", "tap_bpm", "beat_offset"):
            getattr(vm, f"{name}_changed").connect(self.selection.reanalyse)
        vm.use_markers_changed.connect(self._on_use_markers)

    # ------------------------------------------------------------------ state the hosts and tests read
    @property
    def timeline(self) -> otio.schema.Timeline | None:
        return self.session.timeline

    @property
    def rate(self) -> Fraction:
        return self.session.rate

    @property
    def stills(self) -> dict[str, Still]:
        return self.session.stills

    @property
    def running(self) -> str | None:
        """The id of the job rendering now."""
        return self.queue.running

    @property
    def tapper(self) -> TapTempo:
        return self.grid.tapper

    @tapper.setter
    def tapper(self, tapper: TapTempo) -> None:
        self.grid.tapper = tapper

    # ------------------------------------------------------------------ timeline
    def open_timeline(self, path: str, output: str | None = None) -> bool:
        """Read a timeline file; a bad file is one inline error line, never a dialog."""
        read = self.session.read(path)
        if read is None:
            return False
        timeline, info = read
        self.load_timeline(timeline, Path(path), info.rate, info.media_root, output=output)
        for note in info.notes:
            self.vm.status = note
        return True

    def load_timeline(self, timeline: otio.schema.Timeline, source_path: Path, rate: Fraction,
                      media_root: Path | None = None, output: str | None = None) -> None:
        """Show an OTIO timeline (from a file, or handed over by a host)."""
        session = self.session
        found, relinker = session.load(timeline, source_path, rate, media_root, output)
        self.selection.forget_music()
        self.vm.problems = list(found.problems)
        self.vm.error = ""
        session.refresh_overview()
        restore_panel_state(timeline, self.vm)
        self.history.load_past_jobs()
        name = session.source_path.name
        self.vm.timeline_path = str(session.source_path)
        first = next(iter(session.stills), None)
        self.vm.selection = (first,) if first else ()
        if not session.stills and not found.offline:
            self.vm.error = f"{name}: no stills (image clips) on this timeline"
        self.vm.status = f"{len(session.stills)} still(s) on {timeline.name or name}"
        if found.offline:
            self.vm.status = (f"{len(found.offline)} still(s) offline — Relink… to find their media "
                              f"({len(session.stills)} ready)")
        if relinker.relinked:
            self.vm.status += f"; relinked {len(relinker.relinked)} file(s)"
        self.timeline_loaded.emit(str(session.source_path))

    def relink(self, folder: str) -> None:
        """Search `folder` (and those given before) for offline media by file name, and read the timeline again.
        The saved file keeps the editor's paths for every clip StillMotion did not add."""
        session = self.session
        if folder and folder not in session.relink_folders:
            session.relink_folders.append(folder)
        if session.source_path is not None:
            self.open_timeline(str(session.source_path),
                               output=str(session.save_path) if session.save_path else None)

    def set_playhead(self, frame: int | None) -> None:
        """Hosts with a playhead call this; the overview draws it."""
        self.session.set_playhead(frame)

    def set_in_out(self, start: int | None, end: int | None) -> None:
        self.session.set_in_out(start, end)

    # ------------------------------------------------------------------ selection
    def select(self, keys: list[str], mode: str = "replace") -> None:
        """mode: replace, toggle (ctrl-click) or extend (shift-click: everything between, same track)."""
        self.selection.select(keys, mode)

    def select_track_stills(self, track_index: int) -> None:
        self.selection.select_track_stills(track_index)

    def select_all_stills(self) -> None:
        self.selection.select_all_stills()

    def _task_error(self, message: str) -> None:
        self.vm.error = message

    # ------------------------------------------------------------------ beat grid and parameters
    def double_tempo(self) -> None:
        self.grid.double_tempo()

    def halve_tempo(self) -> None:
        self.grid.halve_tempo()

    def tap_tempo(self) -> None:
        self.grid.tap_tempo()

    def shift_grid(self, seconds: float) -> None:
        self.grid.shift_grid(seconds)

    def reset_grid(self) -> None:
        self.grid.reset_grid()

    def _on_use_markers(self, *_: Any) -> None:
        self.grid.forget_tempo()
        self.selection.reanalyse()

    def random_seed(self) -> None:
        self.parameters.random_seed()

    # ------------------------------------------------------------------ jobs
    def enqueue(self) -> list[str]:
        """One job per selected still, with the current parameters; returns the new job ids."""
        return self.queue.enqueue()

    def cancel_job(self, job_id: str) -> None:
        self.queue.cancel_job(job_id)

    def cancel_all(self) -> None:
        self.queue.cancel_all()

    def regenerate(self, job_id: str) -> str | None:
        """The same still and parameters with a new random seed."""
        return self.queue.regenerate(job_id)

    def remove_job(self, job_id: str) -> None:
        self.queue.remove_job(job_id)

    def _on_job_ended(self, job_id: str) -> None:
        job = self.vm.jobs.get(job_id)
        if job is not None:
            self.history.record(job)
        self.job_done.emit(job_id)

    # ------------------------------------------------------------------ results
    def insert_job(self, job_id: str, track: str = "") -> bool:
        """Place the attempt at its still's record range on `track` (default: the chosen insert track)."""
        return self.results.insert_job(job_id, track) and self.save()

    def replace_job(self, job_id: str) -> bool:
        """Swap the clip inserted earlier for this still with this attempt."""
        return self.results.replace_job(job_id) and self.save()

    def play_job(self, job_id: str) -> None:
        self.results.play_job(job_id)

    def stop_player(self) -> None:
        self.results.stop_player()

    def compare_jobs(self, job_ids: list[str]) -> None:
        """Show finished attempts side by side (their middle frames, parameters and QC)."""
        self.results.compare_jobs(job_ids)

    def close_compare(self) -> None:
        self.results.close_compare()

    # ------------------------------------------------------------------ saving
    def save(self, in_place: bool = False) -> bool:
        """Write the timeline (with the panel's state in its metadata) atomically beside the input, or over the
        input when asked (keeping IN.bak)."""
        return self.session.save(in_place)

    def dismiss_error(self) -> None:
        self.vm.error = ""

    def shutdown(self) -> None:
        """Cancel everything and stop the threads (the window is closing)."""
        self.queue.cancel_all()
        self.queue.renderer.stop()
        self.tasks.wait()
        if self.settings is not None:
            self.settings.sync()
