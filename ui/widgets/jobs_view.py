"""The job queue and history: one card per job with live progress, step and ETA, preview, QC badges and the
actions (cancel, play, insert, replace, regenerate with a new seed, compare, remove)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..theme import badge_colours, mix
from ..viewmodel import BADGES, Job, JobState, PanelViewModel
from .signal_view import ImageView

STATE_TEXT = {JobState.queued: "Queued", JobState.executing: "Rendering", JobState.finished: "Done",
              JobState.cancelled: "Cancelled", JobState.failed: "Failed"}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"ETA {seconds} s"


class Badge(QLabel):
    """A small coloured QC badge (pass / fail / off), colours from the palette."""

    def __init__(self, gate: str, parent: QWidget | None = None) -> None:
        super().__init__(BADGES[gate], parent)
        self.gate = gate
        self.status = "off"
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setContentsMargins(5, 0, 5, 0)

    def set_status(self, status: str, detail: str = "") -> None:
        self.status = status
        background, text = badge_colours(self.palette(), status)
        mark = {"pass": "✓", "fail": "✗", "off": "–"}[status]
        self.setText(f"{mark} {BADGES[self.gate]}")
        self.setStyleSheet(f"QLabel {{ background: {background.name()}; color: {text.name()}; "
                           "border-radius: 3px; padding: 1px 4px; }")
        self.setToolTip(detail or f"{BADGES[self.gate]}: {status}")


class JobCard(QFrame):
    """One job. Buttons emit the parent view's signals with this job's id."""

    def __init__(self, job: Job, view: JobsView) -> None:
        super().__init__(view)
        self.view = view
        self.job_id = job.id
        self.created = job.created
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setAccessibleName(f"Job {job.label}")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(6, 5, 6, 5)
        outer.setSpacing(8)
        self.preview = ImageView("")
        self.preview.setFixedSize(84, 56)
        outer.addWidget(self.preview)
        body = QVBoxLayout()
        body.setSpacing(3)
        outer.addLayout(body, 1)
        top = QHBoxLayout()
        self.select = QCheckBox(toolTip="Tick attempts to compare them")
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.state = QLabel()
        self.state.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.select)
        top.addWidget(self.title, 1)
        top.addWidget(self.state)
        body.addLayout(top)
        self.params = QLabel()
        self.params.setWordWrap(True)
        muted = self.params.palette()
        muted.setColor(QPalette.ColorRole.WindowText, mix(muted.color(QPalette.ColorRole.WindowText),
                                                          muted.color(QPalette.ColorRole.Window), 0.3))
        self.params.setPalette(muted)
        body.addWidget(self.params)
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(True)
        body.addWidget(self.progress)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body.addWidget(self.error)
        self.badges = {gate: Badge(gate) for gate in BADGES}
        badge_row = QHBoxLayout()
        badge_row.setSpacing(4)
        for badge in self.badges.values():
            badge_row.addWidget(badge)
        badge_row.addStretch(1)
        self.badge_row = QWidget()
        self.badge_row.setLayout(badge_row)
        badge_row.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.badge_row)
        actions = QHBoxLayout()
        actions.setSpacing(4)

        def button(text: str, tip: str) -> QToolButton:
            b = QToolButton(text=text, toolTip=tip)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            actions.addWidget(b)
            return b

        self.cancel = button("Cancel", "Stop this job")
        self.play = button("▶ Play", "Play the result here")
        self.insert = button("Insert", INSERT_TIP)
        self.replace = button("Replace", REPLACE_TIP)
        self.regenerate = button("New seed", "Render again with the same settings and a new seed")
        self.remove = button("✕", "Remove from the history")
        actions.addStretch(1)
        body.addLayout(actions)
        self.cancel.clicked.connect(lambda: view.cancel_requested.emit(self.job_id))
        self.play.clicked.connect(lambda: view.play_requested.emit(self.job_id))
        self.insert.clicked.connect(lambda: view.insert_requested.emit(self.job_id, view.track.currentText()))
        self.replace.clicked.connect(lambda: view.replace_requested.emit(self.job_id))
        self.regenerate.clicked.connect(lambda: view.regenerate_requested.emit(self.job_id))
        self.remove.clicked.connect(lambda: view.remove_requested.emit(self.job_id))
        self._shown: tuple | None = None
        self.update_job(job)

    def update_job(self, job: Job) -> None:
        """Cheap while a job renders (progress and preview only); the rest when its state changes."""
        key = (job.state, job.inserted, job.error, id(job.result), job.stage)
        if key != self._shown:
            self._shown = key
            self._update_state(job)
        if job.state is JobState.executing:
            self.progress.setFormat(f"frame %v / %m  {format_eta(job.eta_seconds)}".rstrip())
            self.progress.setValue(job.step)
        if job.preview is not None and job.preview is not self.preview.image:
            self.preview.set_image(job.preview)

    def _update_state(self, job: Job) -> None:
        params = job.params
        seed = params.get("seed", job.request.seed)
        kept = (job.result or {}).get("seed", seed)
        retry = f" → {kept} (QC retry)" if kept != seed else ""
        self.title.setText(f"{job.label}  ·  seed {seed}{retry}")
        routing = ", ".join(f"{k}={v}" for k, v in (params.get("routing") or {}).items())
        parts = [params.get("engine", ""), params.get("preset", ""), f"×{params.get('intensity', 1):g}",
                 params.get("size", ""), routing, "QC off" if not params.get("qc", True) else ""]
        self.params.setText("  ".join(p for p in parts if p))
        self.params.setToolTip("\n".join(f"{k}: {v}" for k, v in params.items()))
        state = STATE_TEXT[job.state]
        if job.state is JobState.executing and job.stage in ("prepare", "starting", "cancelling"):
            state = {"prepare": "Preparing", "starting": "Starting", "cancelling": "Cancelling…"}[job.stage]
        elif job.inserted:
            state = f"Done · on {job.inserted}"
        if job.past:
            state = f"{state} · past" + (" · file gone" if job.missing else "")
        self.state.setText(state)
        self.state.setToolTip("From the job store (a batch or an earlier session)" if job.past else "")
        finished = job.usable
        self.progress.setVisible(job.state in (JobState.queued, JobState.executing))
        self.progress.setRange(0, max(job.total, 1))
        self.progress.setValue(0)
        if job.state is JobState.queued:
            self.progress.setFormat("waiting")
        self.error.setVisible(bool(job.error))
        if job.error:
            self.error.setText(job.error)
            self.error.setStyleSheet(f"color: {badge_colours(self.palette(), 'fail')[0].lighter(150).name()}")
        badges = job.badges()
        self.badge_row.setVisible(bool(badges))
        reasons = (job.qc or {}).get("reasons", [])
        for gate, badge in self.badges.items():
            if gate in badges:
                detail = next((r for r in reasons if r.startswith(f"{gate}:")), "")
                badge.set_status(badges[gate], detail)
        self.cancel.setVisible(not job.state.done)
        for b in (self.play, self.insert, self.replace):
            b.setVisible(finished)
        self.update_insertable(job)
        self.regenerate.setVisible(job.state.done)
        self.remove.setVisible(job.state.done)
        self.select.setEnabled(finished)
        if not finished:
            self.select.setChecked(False)


    def update_insertable(self, job: Job) -> None:
        """Insert and Replace place a clip at its still's range: a clip whose still is not on this timeline
        (a past job for another still, scene or project) has them disabled, and their tooltips say why."""
        here = self.view.still_keys is None or job.still_key in self.view.still_keys
        for button, tip in ((self.insert, INSERT_TIP), (self.replace, REPLACE_TIP)):
            button.setEnabled(here)
            button.setToolTip(tip if here else self.elsewhere_tip(job, button.text()))

    def elsewhere_tip(self, job: Job, action: str) -> str:
        noun = self.view.timeline_noun
        output = (job.result or {}).get("output", "")
        return (f"{action} is off: “{job.label}”, the still this clip was rendered for, is not in this {noun} "
                f"(the clip comes from another still, {noun} or session), so there is no range to put it at. "
                f"Play it here, or use its file: {output}")


INSERT_TIP = "Insert into the timeline on the chosen track, at the still's range"
REPLACE_TIP = "Replace the clip inserted earlier for this still with this attempt"


class JobsView(QWidget):
    cancel_requested = Signal(str)
    cancel_all_requested = Signal()
    play_requested = Signal(str)
    insert_requested = Signal(str, str)
    replace_requested = Signal(str)
    regenerate_requested = Signal(str)
    remove_requested = Signal(str)
    compare_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cards: dict[str, JobCard] = {}
        #: Keys of the stills on the open timeline (None until one is shown: then nothing is disabled).
        self.still_keys: frozenset[str] | None = None
        #: What the tooltips call the timeline ("timeline"; a host says its own word, Blender's "scene").
        self.timeline_noun = "timeline"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        title = QLabel("<b>Queue &amp; history</b>")
        self.track = QComboBox(toolTip="Track that Insert puts clips on (a new track if it does not exist)")
        self.track.setEditable(True)
        self.track.setMinimumContentsLength(10)
        self.track.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.track.setAccessibleName("Insert track")
        track_label = QLabel("Insert on")
        track_label.setBuddy(self.track)
        self.compare = QPushButton("Compare", toolTip="Show the ticked attempts side by side")
        self.cancel_all = QPushButton("Cancel all", toolTip="Stop the running job and drop the queue "
                                      "(Ctrl+Backspace)")
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(track_label)
        header.addWidget(self.track)
        header.addWidget(self.compare)
        header.addWidget(self.cancel_all)
        layout.addLayout(header)
        self.empty = QLabel("No jobs yet. Select stills on the timeline and press “Animate” (Ctrl+Return).")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.list = QWidget()
        self.list_layout = QVBoxLayout(self.list)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(4)
        self.list_layout.addWidget(self.empty)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(scroll, 1)
        self.cancel_all.clicked.connect(self.cancel_all_requested)
        self.compare.clicked.connect(lambda: self.compare_requested.emit(self.ticked()))

    def ticked(self) -> list[str]:
        return [job_id for job_id, card in self.cards.items() if card.select.isChecked()]

    def bind(self, vm: PanelViewModel) -> None:
        vm.jobs.job_added.connect(self.add_job)
        vm.jobs.job_changed.connect(self.update_job)
        vm.jobs.job_removed.connect(self.remove_job)

        def fill_tracks(names: list[str]) -> None:
            self.track.blockSignals(True)
            self.track.clear()
            self.track.addItems(names)
            self.track.blockSignals(False)
            self.track.setCurrentText(vm.insert_track)

        vm.insert_tracks_changed.connect(fill_tracks)
        vm.overview_changed.connect(lambda overview: self.set_stills(vm, overview))
        vm.insert_track_changed.connect(lambda v: v != self.track.currentText() and self.track.setCurrentText(v))
        self.track.currentTextChanged.connect(lambda t: setattr(vm, "insert_track", t))
        fill_tracks(vm.insert_tracks)
        if vm.overview is not None:
            self.still_keys = frozenset(vm.overview.still_keys())
        for job in vm.jobs:
            self.add_job(job)

    def set_stills(self, vm: PanelViewModel, overview: object) -> None:
        """A timeline was (re)loaded: re-check which cards can be inserted."""
        self.still_keys = frozenset(overview.still_keys()) if overview is not None else frozenset()
        for job_id, card in self.cards.items():
            job = vm.jobs.get(job_id)
            if job is not None:
                card.update_insertable(job)

    def add_job(self, job: Job) -> None:
        """Newest first by creation time (past jobs from the store arrive after the timeline's own)."""
        card = JobCard(job, self)
        position = sum(1 for c in self.cards.values() if c.created > job.created)
        self.cards[job.id] = card
        self.list_layout.insertWidget(position, card)
        self.empty.setVisible(False)

    def update_job(self, job: Job) -> None:
        card = self.cards.get(job.id)
        if card is not None:
            card.update_job(job)

    def remove_job(self, job_id: str) -> None:
        card = self.cards.pop(job_id, None)
        if card is not None:
            card.setParent(None)
            card.deleteLater()
        self.empty.setVisible(not self.cards)
