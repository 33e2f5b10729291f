"""The beat-grid row under the music view: the tempo with ÷2 / ×2, tap tempo, the grid's phase shift (drag the
waveform, or nudge here), "use timeline markers" and reset. Buttons emit named signals; the checkbox writes the
view-model directly (a simple two-way value)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from ..viewmodel import MusicView, PanelViewModel

#: Seconds one nudge button moves the grid.
NUDGE_SECONDS = 0.01


class BeatGridControls(QWidget):
    double_requested = Signal()
    halve_requested = Signal()
    tap_requested = Signal()
    shift_requested = Signal(float)
    reset_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm: PanelViewModel | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(3)
        self.tempo = QLabel("— BPM")
        self.tempo.setAccessibleName("Tempo")
        self.tempo.setToolTip("Tempo of the beat grid under the selected still")
        self.halve = QToolButton(text="÷2", toolTip="Half the tempo: every other beat (the tracker re-finds the "
                                 "phase at that level)")
        self.double = QToolButton(text="×2", toolTip="Double the tempo: a beat between every two (for a song "
                                  "read at half speed)")
        self.tap = QToolButton(text="Tap", toolTip="Tap along with the music (three taps or more) to set the tempo")
        self.earlier = QToolButton(text="◀", toolTip=f"Move the grid {NUDGE_SECONDS * 1000:.0f} ms earlier "
                                   "(or drag the waveform)")
        self.later = QToolButton(text="▶", toolTip=f"Move the grid {NUDGE_SECONDS * 1000:.0f} ms later "
                                 "(or drag the waveform)")
        self.offset = QLabel("±0 ms")
        self.offset.setAccessibleName("Grid shift")
        self.markers = QCheckBox("Use markers",
                                 toolTip="The timeline's markers (on the music or the timeline) are the beats; "
                                         "markers named 'downbeat', 'bar' or '1' are downbeats")
        self.markers.setAccessibleName("Use timeline markers")
        self.reset = QToolButton(text="Reset", toolTip="Back to the tracked grid")
        self.summary = QLabel()
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for widget in (self.tempo, self.halve, self.double, self.tap, self.earlier, self.offset, self.later,
                       self.markers, self.reset):
            row.addWidget(widget)
        row.addWidget(self.summary, 1)
        self.double.clicked.connect(self.double_requested)
        self.halve.clicked.connect(self.halve_requested)
        self.tap.clicked.connect(self.tap_requested)
        self.reset.clicked.connect(self.reset_requested)
        self.earlier.clicked.connect(lambda: self.shift_requested.emit(-NUDGE_SECONDS))
        self.later.clicked.connect(lambda: self.shift_requested.emit(NUDGE_SECONDS))
        self.markers.toggled.connect(self._on_markers)

    def bind(self, vm: PanelViewModel) -> None:
        self.vm = vm
        vm.music_changed.connect(self.set_music)
        vm.beat_offset_changed.connect(self.set_offset)
        vm.use_markers_changed.connect(self.markers.setChecked)
        vm.grid_summary_changed.connect(self._set_summary)
        self.set_music(vm.music)
        self.set_offset(vm.beat_offset)
        self.markers.setChecked(vm.use_markers)
        self._set_summary(vm.grid_summary)

    def _set_summary(self, text: str) -> None:
        self.summary.setText(text)
        self.summary.setToolTip(text)

    def _on_markers(self, checked: bool) -> None:
        if self.vm is not None:
            self.vm.use_markers = checked

    def set_music(self, music: MusicView | None) -> None:
        if music is None or not music.tempo:
            self.tempo.setText("— BPM")
        else:
            self.tempo.setText(f"{music.tempo:.1f} BPM")

    def set_offset(self, seconds: float) -> None:
        ms = round(float(seconds) * 1000)
        self.offset.setText("±0 ms" if ms == 0 else f"{ms:+d} ms")
