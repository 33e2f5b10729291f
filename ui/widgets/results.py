"""Looking at results in the panel: a frame player (decoded frames on a QTimer; QtMultimedia is not needed) and
a side-by-side comparison of attempts with their parameters and QC."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..viewmodel import PanelViewModel
from .signal_view import ImageView


class PlayerView(QFrame):
    """Plays the frames the controller decoded; loops; Space toggles play / pause."""

    close_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.frames: list = []
        self.index = 0
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.advance)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.title = QLabel()
        self.screen = ImageView("")
        self.screen.setMinimumHeight(140)
        layout.addWidget(self.title)
        layout.addWidget(self.screen, 1)
        row = QHBoxLayout()
        self.play = QToolButton(text="Pause", toolTip="Play / pause (Space)")
        self.play.setShortcut(Qt.Key.Key_Space)
        self.slider = QSlider(Qt.Orientation.Horizontal, toolTip="Scrub")
        self.position = QLabel()
        self.close = QToolButton(text="Close", toolTip="Close the player")
        row.addWidget(self.play)
        row.addWidget(self.slider, 1)
        row.addWidget(self.position)
        row.addWidget(self.close)
        layout.addLayout(row)
        self.play.clicked.connect(self.toggle)
        self.slider.valueChanged.connect(self.show_frame)
        self.close.clicked.connect(self.close_requested)
        self.setVisible(False)

    def bind(self, vm: PanelViewModel) -> None:
        def show(player: tuple | None) -> None:
            if player is None:
                self.stop()
                return
            job_id, frames, fps = player
            job = vm.jobs.get(job_id)
            self.title.setText(f"<b>{job.label if job else job_id}</b> · {len(frames)} frames @ {fps:g} fps")
            self.start(frames, fps)

        vm.player_changed.connect(show)

    def start(self, frames: list, fps: float) -> None:
        self.frames = frames
        self.slider.setRange(0, max(len(frames) - 1, 0))
        self.timer.setInterval(max(1, round(1000 / max(fps, 1))))
        self.setVisible(True)
        self.show_frame(0)
        self.timer.start()
        self.play.setText("Pause")

    def stop(self) -> None:
        self.timer.stop()
        self.frames = []
        self.setVisible(False)

    def toggle(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.play.setText("Play")
        elif self.frames:
            self.timer.start()
            self.play.setText("Pause")

    def advance(self) -> None:
        if self.frames:
            self.slider.setValue((self.index + 1) % len(self.frames))

    def show_frame(self, index: int) -> None:
        if not self.frames:
            return
        self.index = max(0, min(index, len(self.frames) - 1))
        self.screen.set_image(self.frames[self.index])
        self.position.setText(f"{self.index + 1}/{len(self.frames)}")
        if self.slider.value() != self.index:
            self.slider.setValue(self.index)


class CompareView(QFrame):
    """Attempts side by side: middle frame, seed and settings, QC numbers; the best score is marked."""

    close_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.vm: PanelViewModel | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Compare attempts</b>"), 1)
        self.close = QToolButton(text="Close", toolTip="Close the comparison")
        head.addWidget(self.close)
        layout.addLayout(head)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.grid_host)
        self.close.clicked.connect(self.close_requested)
        self.setVisible(False)

    def bind(self, vm: PanelViewModel) -> None:
        self.vm = vm
        vm.compare_changed.connect(self.show_jobs)

    def show_jobs(self, job_ids: tuple[str, ...]) -> None:
        assert self.vm is not None
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        jobs = [j for j in (self.vm.jobs.get(i) for i in job_ids) if j is not None]
        self.setVisible(bool(jobs))
        scores = [((j.qc or {}).get("score") or float("-inf")) for j in jobs]
        best = max(range(len(jobs)), key=lambda i: scores[i]) if jobs else -1
        for col, job in enumerate(jobs):
            image = ImageView("")
            image.setMinimumSize(120, 80)
            image.set_image(job.preview)
            self.grid.addWidget(image, 0, col)
            qc = job.qc or {}
            lines = [f"<b>{job.label}</b> seed {job.params.get('seed')}" + ("  ★ best QC" if col == best and
                                                                             len(jobs) > 1 else ""),
                     f"{job.params.get('preset')} ×{job.params.get('intensity')}  {job.params.get('size')}",
                     f"QC {qc.get('verdict', 'off')}  score {qc.get('score', '–')}",
                     f"motion {qc.get('dynamic_degree', '–')}  drift {qc.get('identity_drift', '–')}",
                     f"beat hits {qc.get('beat_hit_rate', '–')}  BAS {qc.get('beat_alignment', '–')}"]
            label = QLabel("<br>".join(lines))
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignTop)
            self.grid.addWidget(label, 1, col)
