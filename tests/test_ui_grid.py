"""The panel's beat-grid controls: widgets against the fake controller, then the real controller on a 124-BPM
house track read at 62 (tap tempo), fixed with ×2, rendered, and every beat hit; markers as beats."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import opentimelineio as otio  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from grid_fixtures import house_song  # noqa: E402
from media_fixtures import photo  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from stillmotion.engine.qc import qc_video  # noqa: E402
from stillmotion.ui.grid_control import TapTempo, step_factor, tracked_tempo  # noqa: E402
from stillmotion.ui.viewmodel import JobState, MusicView  # noqa: E402
from test_ui import fake_panel, frame_range, store, wait_idle, wait_jobs_done  # noqa: E402, F401
from test_ui import window as window  # noqa: E402, F401  (the panel fixture)

FRAMES = 144  # 6 s at 24 fps


def test_grid_widgets_drive_a_fake_controller(qtbot) -> None:
    vm, panel, fake = fake_panel(qtbot)
    beats = np.arange(0.25, 6, 60 / 62)
    vm.music = MusicView(duration=6.0, peaks=np.zeros((100, 2), np.float32), beats=beats, downbeats=beats[::4],
                         sections=[], tempo=62.0)
    g = panel.grid
    assert g.tempo.text() == "62.0 BPM"
    for button in (g.double, g.halve, g.tap, g.later, g.earlier, g.reset):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert fake.calls == [("double_tempo", ()), ("halve_tempo", ()), ("tap_tempo", ()),
                          ("shift_grid", (0.01,)), ("shift_grid", (-0.01,)), ("reset_grid", ())]
    qtbot.mouseClick(g.markers, Qt.MouseButton.LeftButton)
    assert vm.use_markers is True
    vm.use_markers = False
    assert not g.markers.isChecked()
    vm.beat_offset = -0.035
    assert g.offset.text() == "-35 ms"
    # Dragging the waveform sideways shifts the grid by the dragged time.
    view = panel.signals
    y = view.height() // 4
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, y))
    qtbot.mouseMove(view, QPoint(160, y))
    assert view.drag_shift > 0
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(160, y))
    name, (seconds,) = fake.calls[-1]
    assert name == "shift_grid" and seconds == pytest.approx(60 * 6.0 / (view.width() - 12), rel=1e-3)


def test_tap_tempo_and_factor_steps() -> None:
    now = [0.0]
    tapper = TapTempo(clock=lambda: now[0])
    results = []
    for _ in range(5):
        results.append(tapper.tap())
        now[0] += 60 / 93
    assert results[:2] == [None, None] and results[-1] == pytest.approx(93)
    now[0] += 5  # a pause starts a new count
    assert tapper.tap() is None
    assert step_factor(1.0, up=True) == 2.0 and step_factor(0.5, up=True) == 1.0
    assert step_factor(4.0, up=True) == 4.0 and step_factor(1.0, up=False) == 0.5


def house_timeline(folder: Path, markers: bool = False) -> tuple[Path, np.ndarray]:
    """One still for 6 s over a 124-BPM house track (optionally a timeline marker on every beat)."""
    folder.mkdir(parents=True, exist_ok=True)
    beats, _ = house_song(folder / "house.wav", bpm=124.0, bars=7, lead_in=0.25)
    (folder / "cat.png").write_bytes(photo().read_bytes())
    timeline = otio.schema.Timeline(name="house")
    video = otio.schema.Track(name="V1")
    video.append(otio.schema.Clip(name="Cat", media_reference=otio.schema.ExternalReference(target_url="cat.png"),
                                  source_range=frame_range(0, FRAMES)))
    music = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    music.append(otio.schema.Clip(name="House", media_reference=otio.schema.ExternalReference(
        target_url="house.wav", available_range=frame_range(0, FRAMES + 24)), source_range=frame_range(0, FRAMES)))
    timeline.tracks.extend([video, music])
    if markers:
        for i, t in enumerate(beats):
            timeline.tracks.markers.append(otio.schema.Marker(
                name="bar" if i % 4 == 0 else "", marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(round(t * 24), 24))))
    path = folder / "house.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path, beats


def test_half_tempo_reading_doubled_in_the_panel_hits_every_beat(qtbot, window, tmp_path) -> None:
    """Done when: a 124-BPM song read at 62 becomes 124 with ×2, and the motion peaks land on every beat."""
    edit, truth = house_timeline(tmp_path / "project")
    vm, controller = window.vm, window.controller
    assert controller.open_timeline(str(edit))
    wait_idle(qtbot, controller)
    tracked = tracked_tempo(next(iter(controller.stills.values())))
    # The editor taps along at half speed (62 BPM): the grid is read at 62 ...
    now = [0.0]
    controller.tapper = TapTempo(clock=lambda: now[0])
    for _ in range(4):
        controller.tap_tempo()
        now[0] += 60 / 62
    wait_idle(qtbot, controller)
    assert vm.tap_bpm == pytest.approx(62, abs=0.2)
    assert vm.music.tempo == pytest.approx(62, rel=0.04)
    half_beats = len(vm.music.beats)
    # ... and ×2 makes it 124: beats, waveform and motion curve are redrawn together.
    qtbot.mouseClick(window.panel.grid.double, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, controller)
    assert vm.tap_bpm == pytest.approx(124, abs=0.4)
    assert vm.music.tempo == pytest.approx(124, rel=0.04)
    assert len(vm.music.beats) >= 2 * half_beats - 1
    assert window.panel.grid.tempo.text().endswith("BPM") and "124" in vm.grid_summary
    pulse = vm.motion["pulse"]
    kicks = np.flatnonzero(np.diff(pulse, prepend=0.0) > 0.3)
    assert len(kicks) == len(vm.music.beats)  # one accent on every beat of the new grid
    # Render it: the project's QC beat-hit measure on the rendered clip, against the song's true beats.
    vm.quality, vm.long_side, vm.qc_enabled = "custom", 128, False
    controller.enqueue()
    wait_jobs_done(qtbot, vm, timeout=120000)
    (job,) = list(vm.jobs)
    assert job.state is JobState.finished, job.error
    assert job.request.options["beat_grid"]["bpm"] == pytest.approx(124, abs=0.4)
    report = qc_video(job.result["output"], beat_times=truth)
    assert report.beat_hit_rate == 1.0
    # Regenerating the attempt keeps its grid even after the controls changed.
    controller.reset_grid()
    new_id = controller.regenerate(job.id)
    assert vm.jobs.get(new_id).request.options["beat_grid"] == job.request.options["beat_grid"]
    controller.cancel_all()
    wait_jobs_done(qtbot, vm, timeout=120000)
    # ×2 without tapping asks the tracker for twice its own tempo.
    controller.double_tempo()
    wait_idle(qtbot, controller)
    assert vm.tempo_factor == 2.0 and "tracked at" in vm.grid_summary
    assert f"{round(tracked * 2, 2):g}" in vm.grid_summary


def test_use_timeline_markers_toggle(qtbot, window, tmp_path) -> None:
    edit, truth = house_timeline(tmp_path / "project", markers=True)
    vm, controller = window.vm, window.controller
    assert controller.open_timeline(str(edit))
    wait_idle(qtbot, controller)
    qtbot.mouseClick(window.panel.grid.markers, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, controller)
    assert "from timeline markers" in vm.grid_summary
    on_frames = np.round(truth[truth < FRAMES / 24] * 24) / 24
    assert np.allclose(vm.music.beats, on_frames, atol=1e-6)
    assert np.allclose(vm.music.downbeats, on_frames[::4], atol=1e-6)
    controller.shift_grid(0.05)
    wait_idle(qtbot, controller)
    assert np.allclose(vm.music.beats[:3], on_frames[:3] + 0.05, atol=1e-6)
