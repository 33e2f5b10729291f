"""The Qt panel docked on a host: the same panel as `stillmotion panel`, fed by a `HostAdapter`.

The host's timeline is loaded through `PanelController.load_timeline`; Insert goes to the host
(`HostAdapter.insert_clip`, verified, one undo step where the host has undo) instead of the file round trip;
the host's capabilities become the view model's `host_features` so the panel hides what the host cannot do. Inside
an editor, renders run in the project's Python in a child process (`runtime.render_in_subprocess`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRect, Qt
from PySide6.QtGui import QGuiApplication, QWindow
from PySide6.QtWidgets import QMainWindow, QWidget
from stillmotion.engine.errors import StillMotionError
from stillmotion.engine.timeline.timebase import exact_rate
from stillmotion.ui.app import application, pin_minimum_size
from stillmotion.ui.controller import PanelController
from stillmotion.ui.settings import PanelSettings
from stillmotion.ui.timeline_session import DEFAULT_INSERT_TRACK
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
        job = self.results.finished_job(job_id)
        if job is None:
            return False
        if not self.host.supports(Capability.INSERT_CLIP):
            self.vm.error = f"{self.host.name} cannot insert clips; the file is at {job.result['output']}"
            return False
        still = self.stills.get(job.still_key)
        if still is None:
            self.vm.error = (f"{job.label!r} is not in this {self.host.timeline_noun()}: Insert places a clip at "
                             f"its still's range; the file is at {job.result['output']}")
            return False
        chosen = track or self.vm.insert_track
        wanted = None if chosen in ("", DEFAULT_INSERT_TRACK) else chosen
        try:
            placed = self.host.insert_clip(job.result["output"], RecordRange(still.record_start, still.frames,
                                                                              self.rate),
                                           wanted, self.results.clip_metadata(job))
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        job.inserted = placed.track
        self.vm.jobs.notify(job)
        self.vm.status = (f"Inserted {Path(placed.media_path).name} on "
                          f"{self.host.describe_place(placed.track, placed.start_frame)}")
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


#: The panel's size beside a host's editor: its narrow, stacked layout.
HOST_PANEL_SIZE = (600, 900)


def beside(editor: tuple[int, int, int, int], screen: tuple[int, int, int, int], size: tuple[int, int]
           ) -> tuple[int, int, int, int]:
    """Where a panel of `size` opens next to the host's `editor` on `screen` (all x, y, w, h; top-left origin):
    right of the editor when that fits on the screen, else left of it, else over the screen's right edge (the
    editor's left part, where its timeline starts, stays visible). Clamped to the screen."""
    ex, ey, ew, eh = editor
    sx, sy, sw, sh = screen
    width, height = min(size[0], sw), min(size[1], sh)
    if ex + ew + width <= sx + sw:
        x = ex + ew
    elif ex - width >= sx:
        x = ex - width
    else:
        x = sx + sw - width
    y = max(sy, min(ey, sy + sh - height))
    return x, y, width, height


def host_window_flags(platform: str, transient: bool) -> Qt.WindowType:
    """A window that stays above the host's own. On X11 it is a tool (utility) window; made transient for the
    host's window (`HostAdapter.native_window`), the window manager keeps it above that window only; without
    one (or elsewhere: Qt cannot parent a widget to a foreign window) it is kept on top of all windows."""
    flags = Qt.WindowType.Window
    if platform == "xcb":
        flags |= Qt.WindowType.Tool
    if not (transient and platform == "xcb"):
        flags |= Qt.WindowType.WindowStaysOnTopHint
    return flags


class HostPanelWindow(QMainWindow):
    """The panel in its own top-level window owned by the host's process: it opens beside the host's editor
    (or where the user last put it), stays above the host's window and is closed by the host's exit hook."""

    def __init__(self, host: HostAdapter, render: Any = None, parent: QWidget | None = None,
                 settings: PanelSettings | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.vm = PanelViewModel(self)
        self.settings = settings or PanelSettings()
        self.controller = HostPanelController(host, self.vm, self.settings, render=render, parent=self)
        self.panel = StillMotionPanel(self.vm)
        self.panel.jobs.timeline_noun = host.timeline_noun()
        connect_panel(self.panel, self.controller)
        self.setCentralWidget(self.panel)
        pin_minimum_size(self, self.panel)
        # beside an editor the panel is narrow and stacked: the controls keep their size, the queue grows
        self.panel.splitter.setStretchFactor(0, 0)
        self.panel.splitter.setStretchFactor(1, 1)
        platform = QGuiApplication.platformName()
        native = host.native_window() if platform == "xcb" else None
        self.setWindowFlags(host_window_flags(platform, transient=native is not None))
        #: The host's window as a foreign QWindow, the panel's transient parent (kept alive with the panel).
        self.host_window = QWindow.fromWinId(native) if native is not None else None
        if self.host_window is not None:
            self.winId()  # creates the native window, so it has a handle to set the transient parent on
            self.windowHandle().setTransientParent(self.host_window)
        self.setWindowTitle(f"StillMotion — {host.timeline_title()}")
        self.vm.timeline_path_changed.connect(lambda _path: self.panel.path.setText(host.timeline_title()))
        self.setGeometry(*self.initial_geometry())

    @property
    def geometry_key(self) -> str:
        return f"host_window_{self.host.name or 'host'}"

    def initial_geometry(self) -> tuple[int, int, int, int]:
        """Where the user last left it (when that is still on a screen), else beside the host's editor."""
        screen = QGuiApplication.primaryScreen().availableGeometry()
        area = (screen.x(), screen.y(), screen.width(), screen.height())
        saved = self.settings.get(self.geometry_key)
        if isinstance(saved, list) and len(saved) == 4 and all(isinstance(v, int) for v in saved):
            x, y, w, h = saved
            if any(s.availableGeometry().intersects(QRect(x, y, w, h)) for s in QGuiApplication.screens()):
                return x, y, max(w, self.minimumWidth()), max(h, self.minimumHeight())
        size = (max(HOST_PANEL_SIZE[0], self.minimumWidth()), HOST_PANEL_SIZE[1])
        editor = self.host.editor_rect()
        if editor is None:
            return area[0] + max(0, area[2] - size[0]) // 2, area[1], min(size[0], area[2]), min(size[1], area[3])
        return beside(editor, area, size)

    def remember_geometry(self) -> None:
        rect = self.geometry()
        self.settings.set(self.geometry_key, [rect.x(), rect.y(), rect.width(), rect.height()])

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.remember_geometry()
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
