"""The Qt panel docked on a host: the same panel as `stillmotion panel`, fed by a `HostAdapter`.

The host's timeline is loaded through `PanelController.load_timeline`; Insert goes to the host
(`HostAdapter.insert_clip`, verified, one undo step where the host has undo) instead of the file round trip;
the host's capabilities become the view model's `host_features` so the panel hides what the host cannot do. Inside
an editor, renders run in the project's Python in a child process (`runtime.render_in_subprocess`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow, QWidget
from stillmotion.engine.errors import StillMotionError
from stillmotion.engine.timeline.timebase import exact_rate
from stillmotion.ui.app import application
from stillmotion.ui.controller import DEFAULT_INSERT_TRACK, PanelController
from stillmotion.ui.settings import PanelSettings
from stillmotion.ui.viewmodel import PanelViewModel
from stillmotion.ui.widgets.panel import StillMotionPanel, connect_panel

from .host import Capability, HostAdapter, RecordRange, panel_workdir
from .runtime import render_in_subprocess


class HostPanelController(PanelController):
    """A `PanelController` whose timeline comes from, and whose inserts go to, a host."""

    def __init__(self, host: HostAdapter, vm: PanelViewModel, settings: PanelSettings | None = None,
                 render: Any = None, workdir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(vm, settings, render=render, parent=parent)
        self.host = host
        self.workdir = workdir or panel_workdir(host)

    def refresh_from_host(self) -> None:
        """Read the host's timeline, playhead and in / out again."""
        timeline = self.host.read_timeline()
        rate = exact_rate(timeline.global_start_time.rate) if timeline.global_start_time else self.rate
        source = self.workdir / f"{self.host.name}.otio"
        self.load_timeline(timeline, source, rate, output=str(source.with_name(f"{self.host.name}_panel.otio")))
        features = set(self.host.feature_names())
        if self.host.supports(Capability.PLAYHEAD):
            self.set_playhead(self.host.playhead())
        if self.host.supports(Capability.IN_OUT_RANGE):
            span = self.host.in_out_range()
            if span is not None:
                self.set_in_out(span.start_frame, span.start_frame + span.frames)
        if self.host.supports(Capability.INSERT_CLIP):
            features.add("insert")
        self.vm.host_features = frozenset(self.vm.host_features | features)

    def insert_job(self, job_id: str, track: str = "") -> bool:
        """Place the attempt at its still's record range in the host; verified by the adapter."""
        job = self._finished_job(job_id)
        if job is None:
            return False
        if not self.host.supports(Capability.INSERT_CLIP):
            self.vm.error = f"{self.host.name} cannot insert clips; the file is at {job.result['output']}"
            return False
        still = self.stills.get(job.still_key)
        if still is None:
            self.vm.error = "that attempt's still is no longer on the timeline"
            return False
        chosen = track or self.vm.insert_track
        wanted = None if chosen in ("", DEFAULT_INSERT_TRACK) else chosen
        try:
            placed = self.host.insert_clip(job.result["output"], RecordRange(still.record_start, still.frames,
                                                                              self.rate),
                                           wanted, self._clip_metadata(job))
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        job.inserted = placed.track
        self.vm.jobs.notify(job)
        self.vm.status = f"Inserted {Path(placed.media_path).name} on {placed.track} at frame {placed.start_frame}"
        return True

    def replace_job(self, job_id: str) -> bool:
        self.vm.error = f"Replace is not available in {self.host.name}: insert on a free track instead"
        return False

    def save(self, in_place: bool = False) -> bool:
        """The host keeps its own document; only a host that asks for it (the file host) is saved."""
        if self.host.supports(Capability.SAVE):
            try:
                written = self.host.save()
            except StillMotionError as exc:
                self.vm.error = str(exc)
                return False
            self.vm.status = f"Saved {written}"
        return True


class HostPanelWindow(QMainWindow):
    """The panel in its own top-level window owned by the host's process."""

    def __init__(self, host: HostAdapter, render: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = PanelViewModel(self)
        self.settings = PanelSettings()
        self.controller = HostPanelController(host, self.vm, self.settings, render=render, parent=self)
        self.panel = StillMotionPanel(self.vm)
        connect_panel(self.panel, self.controller)
        self.setCentralWidget(self.panel)
        self.setWindowTitle(f"StillMotion — {host.name}")
        self.resize(1180, 760)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.controller.shutdown()
        super().closeEvent(event)


def open_host_panel(host: HostAdapter, render: Any = render_in_subprocess) -> HostPanelWindow:
    """Show the panel on `host` without entering Qt's event loop (the host pumps it; see the Blender add-on's
    timer). Renders run through `render` (a child process by default)."""
    application()
    window = HostPanelWindow(host, render=render)
    window.controller.refresh_from_host()
    window.show()
    return window
