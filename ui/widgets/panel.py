"""The StillMotion panel: the whole dock, assembled from the views and bound to one view-model.

It emits one named signal per user action (`<action>_requested`); `connect_panel` wires each to the controller
method of the `ACTIONS` table, so any object with those methods (the real controller, a host's, a test's fake)
can drive it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..theme import badge_colours, mix
from ..viewmodel import PanelViewModel
from .controls import ControlsView
from .grid_controls import BeatGridControls
from .jobs_view import JobsView
from .results import CompareView, PlayerView
from .signal_view import ImageView, MusicMotionView
from .timeline_view import TimelineOverviewView

#: panel signal -> controller method.
ACTIONS = {
    "open_requested": "open_timeline",
    "select_requested": "select",
    "track_stills_requested": "select_track_stills",
    "all_stills_requested": "select_all_stills",
    "enqueue_requested": "enqueue",
    "random_seed_requested": "random_seed",
    "cancel_requested": "cancel_job",
    "cancel_all_requested": "cancel_all",
    "regenerate_requested": "regenerate",
    "insert_requested": "insert_job",
    "replace_requested": "replace_job",
    "play_requested": "play_job",
    "stop_player_requested": "stop_player",
    "compare_requested": "compare_jobs",
    "close_compare_requested": "close_compare",
    "remove_requested": "remove_job",
    "save_requested": "save",
    "error_dismissed": "dismiss_error",
    "double_tempo_requested": "double_tempo",
    "halve_tempo_requested": "halve_tempo",
    "tap_tempo_requested": "tap_tempo",
    "shift_grid_requested": "shift_grid",
    "reset_grid_requested": "reset_grid",
    "relink_requested": "relink",
}
#: Panels narrower than this stack their two columns (a docked panel) instead of placing them side by side.
TWO_COLUMN_WIDTH = 1000


class ErrorBanner(QFrame):
    """One inline error line with a dismiss button: never a blocking dialog."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(True)
        self.setAccessibleName("Error")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.icon = QLabel("⚠")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close = QToolButton(text="✕", toolTip="Dismiss")
        self.close.setAutoRaise(True)
        layout.addWidget(self.icon)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close)
        self.close.clicked.connect(self.dismissed)
        self.setVisible(False)

    def show_error(self, message: str) -> None:
        background, text = badge_colours(self.palette(), "fail")
        self.setStyleSheet(f"ErrorBanner {{ background: {background.name()}; border-radius: 4px; }} "
                           f"QLabel {{ color: {text.name()}; }}")
        self.label.setText(message)
        self.setVisible(bool(message))


class StillMotionPanel(QWidget):
    open_requested = Signal(str)
    select_requested = Signal(list, str)
    track_stills_requested = Signal(int)
    all_stills_requested = Signal()
    enqueue_requested = Signal()
    random_seed_requested = Signal()
    cancel_requested = Signal(str)
    cancel_all_requested = Signal()
    regenerate_requested = Signal(str)
    insert_requested = Signal(str, str)
    replace_requested = Signal(str)
    play_requested = Signal(str)
    stop_player_requested = Signal()
    compare_requested = Signal(list)
    close_compare_requested = Signal()
    remove_requested = Signal(str)
    save_requested = Signal(bool)
    error_dismissed = Signal()
    double_tempo_requested = Signal()
    halve_tempo_requested = Signal()
    tap_tempo_requested = Signal()
    shift_grid_requested = Signal(float)
    reset_grid_requested = Signal()
    relink_requested = Signal(str)

    def __init__(self, vm: PanelViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.setObjectName("StillMotionPanel")
        self.setWindowTitle("StillMotion")
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 6)
        root.setSpacing(6)

        bar = QHBoxLayout()
        self.title = QLabel("<b>StillMotion</b>")
        self.path = QLabel("No timeline")
        self.path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.open = QToolButton(text="Open…", toolTip="Open a timeline file (Ctrl+O)")
        self.track_stills = QToolButton(text="All stills on track",
                                        toolTip="Select every still on the selected still's track (Ctrl+T)")
        self.save = QToolButton(text="Save", toolTip="Save the timeline beside the input (Ctrl+S); "
                                "the input file is never overwritten")
        for widget in (self.title, self.path):
            bar.addWidget(widget)
        bar.setStretch(1, 1)
        self.relink = QToolButton(text="Relink…", toolTip="Find offline media (a path from another machine) "
                                  "by file name in a folder; the saved file keeps the editor's paths")
        for widget in (self.track_stills, self.open, self.relink, self.save):
            bar.addWidget(widget)
        root.addLayout(bar)

        self.banner = ErrorBanner()
        root.addWidget(self.banner)

        self.overview = TimelineOverviewView()
        root.addWidget(self.overview)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.selection_label = QLabel()
        self.selection_label.setTextFormat(Qt.TextFormat.PlainText)
        self.selection_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        left_layout.addWidget(self.selection_label)
        inspect = QHBoxLayout()
        self.thumbnail = ImageView("Reference frame of the selected still")
        self.thumbnail.setFixedWidth(150)
        self.thumbnail.setMinimumHeight(110)
        self.thumbnail.setToolTip("Reference frame: the rendered clip shows exactly this at its anchor frame")
        self.signals = MusicMotionView()
        inspect.addWidget(self.thumbnail)
        inspect.addWidget(self.signals, 1)
        left_layout.addLayout(inspect)
        self.grid = BeatGridControls()
        left_layout.addWidget(self.grid)
        self.controls = ControlsView()
        left_layout.addWidget(self.controls)
        left_layout.addStretch(1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.jobs = JobsView()
        self.player = PlayerView()
        self.compare = CompareView()
        right_layout.addWidget(self.jobs, 3)
        right_layout.addWidget(self.player, 2)
        right_layout.addWidget(self.compare, 2)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        root.addWidget(self.splitter, 1)

        self.status = QLabel()
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        palette = self.status.palette()
        palette.setColor(QPalette.ColorRole.WindowText, mix(palette.color(QPalette.ColorRole.WindowText),
                                                            palette.color(QPalette.ColorRole.Window), 0.25))
        self.status.setPalette(palette)
        root.addWidget(self.status)

        self._wire()
        self._shortcuts()
        self._tab_order()
        self.bind(vm)

    # wiring the views' signals to the panel's named actions
    def _wire(self) -> None:
        self.open.clicked.connect(self._ask_open)
        self.save.clicked.connect(lambda: self.save_requested.emit(False))
        self.relink.clicked.connect(self._ask_relink)
        self.track_stills.clicked.connect(self._select_track_of_primary)
        self.banner.dismissed.connect(self.error_dismissed)
        self.overview.clip_clicked.connect(lambda key, mode: self.select_requested.emit([key], mode))
        self.overview.track_clicked.connect(self.track_stills_requested)
        self.overview.all_requested.connect(self.all_stills_requested)
        self.controls.enqueue_requested.connect(self.enqueue_requested)
        self.controls.random_seed_requested.connect(self.random_seed_requested)
        j = self.jobs
        j.cancel_requested.connect(self.cancel_requested)
        j.cancel_all_requested.connect(self.cancel_all_requested)
        j.play_requested.connect(self.play_requested)
        j.insert_requested.connect(self.insert_requested)
        j.replace_requested.connect(self.replace_requested)
        j.regenerate_requested.connect(self.regenerate_requested)
        j.remove_requested.connect(self.remove_requested)
        j.compare_requested.connect(self.compare_requested)
        self.player.close_requested.connect(self.stop_player_requested)
        g = self.grid
        g.double_requested.connect(self.double_tempo_requested)
        g.halve_requested.connect(self.halve_tempo_requested)
        g.tap_requested.connect(self.tap_tempo_requested)
        g.shift_requested.connect(self.shift_grid_requested)
        g.reset_requested.connect(self.reset_grid_requested)
        self.signals.shift_requested.connect(self.shift_grid_requested)
        self.compare.close_requested.connect(self.close_compare_requested)

    def _shortcuts(self) -> None:
        """Shortcuts work whenever focus is anywhere inside the panel (a dock must not steal the host's keys)."""
        table = [
            ("Ctrl+Return", self.enqueue_requested.emit, "Animate the selected stills"),
            ("Ctrl+Backspace", self.cancel_all_requested.emit, "Cancel all jobs"),
            ("Ctrl+O", self._ask_open, "Open a timeline"),
            ("Ctrl+S", lambda: self.save_requested.emit(False), "Save the timeline beside the input"),
            ("Ctrl+T", self._select_track_of_primary, "All stills on the selected still's track"),
            ("Ctrl+A", self.all_stills_requested.emit, "Select every still"),
            ("Ctrl+I", lambda: self._on_latest("insert"), "Insert the latest finished attempt"),
            ("Ctrl+R", lambda: self._on_latest("regenerate"), "Regenerate the latest attempt with a new seed"),
            ("Ctrl+P", lambda: self._on_latest("play"), "Play the latest finished attempt"),
        ]
        self.shortcuts: dict[str, QShortcut] = {}
        for keys, slot, what in table:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            shortcut.setWhatsThis(what)
            self.shortcuts[keys] = shortcut

    def _tab_order(self) -> None:
        c = self.controls
        chain = [self.overview, c.engine, c.model, c.prompt, c.negative, c.preset, c.intensity_slider, c.intensity,
                 c.seed, c.seed_mode, c.dice, c.quality, c.long_side, c.qc, *c.gates.values(), c.enqueue,
                 self.jobs.track, self.jobs.compare, self.jobs.cancel_all, self.open, self.save]
        for a, b in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(a, b)

    def bind(self, vm: PanelViewModel) -> None:
        self.overview.bind(vm)
        self.signals.bind(vm)
        self.grid.bind(vm)
        self.controls.bind(vm)
        self.jobs.bind(vm)
        self.player.bind(vm)
        self.compare.bind(vm)
        vm.thumbnail_changed.connect(self.thumbnail.set_image)
        vm.selection_label_changed.connect(self.selection_label.setText)
        vm.error_changed.connect(self.banner.show_error)
        vm.status_changed.connect(self.status.setText)
        vm.problems_changed.connect(self._show_problems)
        vm.timeline_path_changed.connect(lambda p: self.path.setText(p or "No timeline"))
        vm.timeline_path_changed.connect(lambda p: self.path.setToolTip(p))
        vm.selection_changed.connect(lambda keys: self.track_stills.setEnabled(bool(keys)))
        self.thumbnail.set_image(vm.thumbnail)
        self.banner.show_error(vm.error)
        self.status.setText(vm.status)
        self.path.setText(vm.timeline_path or "No timeline")
        self.track_stills.setEnabled(bool(vm.selection))

    def _show_problems(self, problems: list[str]) -> None:
        self.overview.setToolTip("\n".join(["Click a still to select it, Ctrl-click to add, Shift-click for a "
                                            "range; click a track name for all its stills", *problems[:8]]))

    # helpers for actions that need a little view state
    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open timeline", "", "Timelines (*.otio *.otioz *.xml "
                                              "*.fcpxml *.fcpxmld *.edl *.kdenlive *.aaf);;All files (*)")
        if path:
            self.open_requested.emit(path)

    def _ask_relink(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder holding the offline media")
        if folder:
            self.relink_requested.emit(folder)

    def _select_track_of_primary(self) -> None:
        vm = self.vm
        if not vm.selection or vm.overview is None:
            return
        for track in vm.overview.tracks:
            if any(c.key == vm.selection[0] for c in track.clips):
                self.track_stills_requested.emit(track.index)
                return

    def _on_latest(self, action: str) -> None:
        jobs = list(self.vm.jobs)
        wanted = [j for j in jobs if j.usable] if action != "regenerate" else [j for j in jobs if j.state.done]
        if not wanted:
            return
        latest = max(reversed(wanted), key=lambda j: j.created).id  # past jobs from the store come in last
        if action == "insert":
            self.insert_requested.emit(latest, self.vm.insert_track)
        elif action == "play":
            self.play_requested.emit(latest)
        else:
            self.regenerate_requested.emit(latest)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        wide = self.width() >= TWO_COLUMN_WIDTH
        self.splitter.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        super().resizeEvent(event)


def connect_panel(panel: StillMotionPanel, controller: object) -> None:
    """Wire each `<action>_requested` signal of the panel to the controller method named in ACTIONS."""
    for signal_name, method_name in ACTIONS.items():
        getattr(panel, signal_name).connect(getattr(controller, method_name))
