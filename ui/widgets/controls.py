"""Engine, prompt, seed, preset, intensity, band routing, quality and QC controls, bound two-way to the
view-model (setting a property updates the widget; editing the widget sets the property)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)
from stillmotion.engine.motion import PRESETS, SOURCES
from stillmotion.engine.qc import ALL_GATES

from ..viewmodel import QUALITY_PRESETS, SEED_MODES, PanelViewModel

PRESET_HELP = {
    "pulse": "Subject breathes on every beat; textures sway with the mids; layers nudge with the bass.",
    "sway": "Foliage, hair and water motion led by the mids; beats add a gentle push.",
    "drift": "A slow camera drift with parallax, so it reads as depth rather than a flat pan.",
    "shake": "Camera shake on hits, over a living picture.",
    "dance": "Everything on the beat: strong pulses, downbeat bounces, busy textures.",
    "calm": "Gentle and slow: ambient sway and breathing, barely touched by the music.",
}
SEED_HELP = {"lock": "Lock: every job uses this seed", "random": "Random: a new seed for every job",
             "increment": "Increment: this seed, then +1 for the next job"}
GATE_LABELS = {"frozen": "Frozen", "ken_burns": "Ken Burns", "drift": "Drift", "sync": "Sync",
               "flicker": "Flicker"}


def _label(text: str, buddy: QWidget) -> QLabel:
    """A form label whose &-mnemonic (Alt+letter) moves focus to `buddy`."""
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


def _set_combo(combo: QComboBox, data: object) -> None:
    index = combo.findData(data)
    if index >= 0 and index != combo.currentIndex():
        combo.setCurrentIndex(index)


class ControlsView(QWidget):
    enqueue_requested = Signal()
    random_seed_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm: PanelViewModel | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        self.engine = QComboBox(toolTip="Image-to-video engine. 'procedural' needs no weights and runs anywhere.")
        self.model = QComboBox(toolTip="Local model weights for diffusion engines (folders in $STILLMOTION_MODELS)")
        engine_row = QHBoxLayout()
        engine_row.addWidget(self.engine, 1)
        engine_row.addWidget(self.model, 2)
        form.addRow(_label("&Engine", self.engine), engine_row)

        self.prompt = QLineEdit(placeholderText="Prompt (diffusion engines)",
                                toolTip="What should move and how, for diffusion engines")
        self.negative = QLineEdit(placeholderText="Negative prompt",
                                  toolTip="What to avoid (diffusion engines)")
        form.addRow(_label("&Prompt", self.prompt), self.prompt)
        form.addRow(_label("Ne&gative", self.negative), self.negative)

        self.preset = QComboBox(toolTip="Motion preset: how the music moves the picture")
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
            self.preset.setItemData(self.preset.count() - 1, PRESET_HELP.get(name, name), Qt.ItemDataRole.ToolTipRole)
        form.addRow(_label("Pre&set", self.preset), self.preset)

        self.intensity_slider = QSlider(Qt.Orientation.Horizontal, toolTip="How strongly the picture moves (0–4)")
        self.intensity_slider.setRange(0, 400)
        self.intensity_slider.setPageStep(25)
        self.intensity = QDoubleSpinBox(toolTip="Intensity: 1 is the preset as designed")
        self.intensity.setRange(0.0, 4.0)
        self.intensity.setSingleStep(0.05)
        self.intensity.setDecimals(2)
        intensity_row = QHBoxLayout()
        intensity_row.addWidget(self.intensity_slider, 1)
        intensity_row.addWidget(self.intensity)
        form.addRow(_label("&Intensity", self.intensity_slider), intensity_row)

        self.routing_box = QWidget()
        self.routing_grid = QGridLayout(self.routing_box)
        self.routing_grid.setContentsMargins(0, 0, 0, 0)
        self.routing_grid.setHorizontalSpacing(6)
        self.routing_grid.setVerticalSpacing(2)
        self.routing_combos: dict[str, QComboBox] = {}
        form.addRow(QLabel("Band routing"), self.routing_box)

        self.seed = QSpinBox(toolTip="Random seed: the same seed and settings give the same clip")
        self.seed.setRange(0, 2**31 - 1)
        self.seed_mode = QComboBox(toolTip="What the seed does after each job")
        for mode in SEED_MODES:
            self.seed_mode.addItem(mode.capitalize(), mode)
            self.seed_mode.setItemData(self.seed_mode.count() - 1, SEED_HELP[mode], Qt.ItemDataRole.ToolTipRole)
        self.dice = QToolButton(text="Random", toolTip="Pick a new random seed now")
        self.dice.setAccessibleName("New random seed")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_mode)
        seed_row.addWidget(self.dice)
        form.addRow(_label("See&d", self.seed), seed_row)

        self.quality = QComboBox(toolTip="Output resolution (long side); the still's aspect is kept")
        for key, (label, _) in QUALITY_PRESETS.items():
            self.quality.addItem(label, key)
        self.long_side = QSpinBox(toolTip="Long side in pixels for the Custom preset", suffix=" px")
        self.long_side.setRange(16, 8192)
        self.long_side.setSingleStep(16)
        quality_row = QHBoxLayout()
        quality_row.addWidget(self.quality, 1)
        quality_row.addWidget(self.long_side)
        form.addRow(_label("&Quality", self.quality), quality_row)

        self.qc = QCheckBox("QC", toolTip="Check each clip (and retry a failed one) with these gates")
        self.gates: dict[str, QCheckBox] = {}
        qc_row = QHBoxLayout()
        qc_row.addWidget(self.qc)
        for gate in ALL_GATES:
            box = QCheckBox(GATE_LABELS.get(gate, gate), toolTip=f"Fail (and retry) clips that are {gate}")
            self.gates[gate] = box
            qc_row.addWidget(box)
        qc_row.addStretch(1)
        form.addRow("Gates", qc_row)

        self.enqueue = QPushButton("Animate selection", toolTip="Queue one job per selected still (Ctrl+Return)")
        self.enqueue.setDefault(True)
        self.enqueue.setMinimumHeight(30)
        self.selection_count = QLabel()
        go_row = QHBoxLayout()
        go_row.addWidget(self.enqueue, 1)
        form.addRow(self.selection_count, go_row)
        self.enqueue.clicked.connect(self.enqueue_requested)
        self.dice.clicked.connect(self.random_seed_requested)

    # binding
    def bind(self, vm: PanelViewModel) -> None:
        self.vm = vm

        def fill_engines(names: list[str]) -> None:
            self.engine.blockSignals(True)
            self.engine.clear()
            for name in names:
                self.engine.addItem(name, name)
            self.engine.blockSignals(False)
            _set_combo(self.engine, vm.engine)

        def fill_models(paths: list[str]) -> None:
            self.model.blockSignals(True)
            self.model.clear()
            if not paths:
                self.model.addItem("no weights needed" if not vm.diffusion else "no local weights found", "")
            for path in paths:
                self.model.addItem(path.rstrip("/").rsplit("/", 1)[-1], path)
                self.model.setItemData(self.model.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
            self.model.blockSignals(False)
            self.model.setEnabled(bool(paths))
            _set_combo(self.model, vm.model)

        def diffusion(on: bool) -> None:
            self.prompt.setEnabled(on)
            self.negative.setEnabled(on)
            fill_models(vm.models)

        vm.engines_changed.connect(fill_engines)
        vm.engine_changed.connect(lambda v: _set_combo(self.engine, v))
        self.engine.currentIndexChanged.connect(lambda _: setattr(vm, "engine", self.engine.currentData()))
        vm.models_changed.connect(fill_models)
        vm.model_changed.connect(lambda v: _set_combo(self.model, v))
        self.model.currentIndexChanged.connect(lambda _: setattr(vm, "model", self.model.currentData() or ""))
        vm.diffusion_changed.connect(diffusion)

        vm.prompt_changed.connect(lambda v: v != self.prompt.text() and self.prompt.setText(v))
        self.prompt.textChanged.connect(lambda t: setattr(vm, "prompt", t))
        vm.negative_prompt_changed.connect(lambda v: v != self.negative.text() and self.negative.setText(v))
        self.negative.textChanged.connect(lambda t: setattr(vm, "negative_prompt", t))

        vm.preset_changed.connect(lambda v: (_set_combo(self.preset, v), self._build_routing()))
        self.preset.currentIndexChanged.connect(lambda _: setattr(vm, "preset", self.preset.currentData()))

        vm.intensity_changed.connect(self._show_intensity)
        self.intensity.valueChanged.connect(lambda v: setattr(vm, "intensity", round(v, 2)))
        self.intensity_slider.valueChanged.connect(lambda v: setattr(vm, "intensity", v / 100))

        vm.routing_changed.connect(lambda _: self._show_routing())

        vm.seed_changed.connect(lambda v: v != self.seed.value() and self.seed.setValue(v))
        self.seed.valueChanged.connect(lambda v: setattr(vm, "seed", v))
        vm.seed_mode_changed.connect(lambda v: _set_combo(self.seed_mode, v))
        self.seed_mode.currentIndexChanged.connect(lambda _: setattr(vm, "seed_mode", self.seed_mode.currentData()))

        vm.quality_changed.connect(self._show_quality)
        self.quality.currentIndexChanged.connect(lambda _: setattr(vm, "quality", self.quality.currentData()))
        vm.long_side_changed.connect(lambda v: v != self.long_side.value() and self.long_side.setValue(v))
        self.long_side.valueChanged.connect(lambda v: setattr(vm, "long_side", v))

        vm.qc_enabled_changed.connect(self._show_qc)
        self.qc.toggled.connect(lambda on: setattr(vm, "qc_enabled", on))
        vm.qc_gates_changed.connect(lambda _: self._show_qc(vm.qc_enabled))
        for gate, box in self.gates.items():
            box.toggled.connect(lambda on, gate=gate: self._toggle_gate(gate, on))

        vm.selection_changed.connect(self._show_selection)

        fill_engines(vm.engines)
        diffusion(vm.diffusion)
        _set_combo(self.preset, vm.preset)
        self._build_routing()
        self._show_intensity(vm.intensity)
        self.prompt.setText(vm.prompt)
        self.negative.setText(vm.negative_prompt)
        self.seed.setValue(vm.seed)
        _set_combo(self.seed_mode, vm.seed_mode)
        self.long_side.setValue(vm.long_side)
        self._show_quality(vm.quality)
        self._show_qc(vm.qc_enabled)
        self._show_selection(vm.selection)

    def _show_intensity(self, value: float) -> None:
        if abs(self.intensity.value() - value) > 1e-6:
            self.intensity.setValue(value)
        if self.intensity_slider.value() != round(value * 100):
            self.intensity_slider.setValue(round(value * 100))

    def _show_quality(self, quality: str) -> None:
        _set_combo(self.quality, quality)
        self.long_side.setEnabled(quality == "custom")

    def _show_qc(self, enabled: bool) -> None:
        assert self.vm is not None
        self.qc.setChecked(enabled)
        for gate, box in self.gates.items():
            box.blockSignals(True)
            box.setChecked(gate in self.vm.qc_gates)
            box.blockSignals(False)
            box.setEnabled(enabled)

    def _toggle_gate(self, gate: str, on: bool) -> None:
        assert self.vm is not None
        gates = [g for g in ALL_GATES if (g in self.vm.qc_gates and g != gate) or (g == gate and on)]
        self.vm.qc_gates = tuple(gates)

    def _show_selection(self, keys: tuple[str, ...]) -> None:
        n = len(keys)
        self.enqueue.setEnabled(n > 0)
        self.enqueue.setText(f"Animate {n} still{'s' if n != 1 else ''}" if n else "Select stills to animate")
        self.selection_count.setText("")

    def _build_routing(self) -> None:
        """One source menu per channel of the current preset (the preset's own source first)."""
        assert self.vm is not None
        while self.routing_grid.count():
            item = self.routing_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.routing_combos.clear()
        specs = PRESETS[self.vm.preset]
        for n, (channel, spec) in enumerate(specs.items()):
            label = QLabel(channel)
            combo = QComboBox(toolTip=f"Audio band that drives {channel} (preset default: {spec.source})")
            combo.setAccessibleName(f"{channel} source")
            combo.addItem(f"{spec.source} (preset)", "")
            for source in SOURCES:
                if source != spec.source:
                    combo.addItem(source, source)
            combo.currentIndexChanged.connect(lambda _, c=channel, box=combo: self._route(c, box.currentData()))
            self.routing_combos[channel] = combo
            self.routing_grid.addWidget(label, n // 2, (n % 2) * 2)
            self.routing_grid.addWidget(combo, n // 2, (n % 2) * 2 + 1)
        self._show_routing()

    def _show_routing(self) -> None:
        assert self.vm is not None
        for channel, combo in self.routing_combos.items():
            combo.blockSignals(True)
            wanted = self.vm.routing.get(channel, "")
            index = combo.findData(wanted)
            combo.setCurrentIndex(index if index >= 0 else 0)
            combo.blockSignals(False)

    def _route(self, channel: str, source: str) -> None:
        assert self.vm is not None
        routing = dict(self.vm.routing)
        if source:
            routing[channel] = source
        else:
            routing.pop(channel, None)
        self.vm.routing = routing
