"""The panel: widgets against a fake controller, the real controller end to end on a timeline with the
procedural engine, cancel, inline errors, settings, event-loop responsiveness while rendering, screenshots."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import opentimelineio as otio  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from media_fixtures import photo, write_click_track  # noqa: E402
from PySide6.QtCore import QPoint, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402
from stillmotion.ui.app import PanelWindow  # noqa: E402
from stillmotion.ui.observable import ObservableObject, observable  # noqa: E402
from stillmotion.ui.settings import PanelSettings  # noqa: E402
from stillmotion.ui.viewmodel import (  # noqa: E402
    ClipItem,
    Job,
    JobState,
    PanelViewModel,
    TimelineOverview,
    TrackItem,
)
from stillmotion.ui.widgets.panel import ACTIONS, StillMotionPanel, connect_panel  # noqa: E402
from stillmotion.ui.widgets.timeline_view import HEADER, ROW, RULER  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------- fixtures
class FakeController:
    """Records every action the panel asks for (same method names as PanelController)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        for method in ACTIONS.values():
            setattr(self, method, self._recorder(method))

    def _recorder(self, method: str):
        def record(*args):
            self.calls.append((method, args))
        return record

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def frame_range(start: int, frames: int, rate: float = 24.0) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(frames, rate))


def make_timeline(folder: Path, still_frames: tuple[int, ...] = (24, 24), music_seconds: float = 3.0) -> Path:
    """An .otio with stills on V1 (relative image paths) over a click track on A1."""
    folder.mkdir(parents=True, exist_ok=True)
    write_click_track(folder / "music.wav", music_seconds, bpm=120)
    names = ["cat", "product", "portrait", "landscape"]
    timeline = otio.schema.Timeline(name="ui test")
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for n, frames in enumerate(still_frames):
        source = photo(names[n % len(names)])
        (folder / source.name).write_bytes(source.read_bytes())
        video.append(otio.schema.Clip(name=f"Still {n + 1}", media_reference=otio.schema.ExternalReference(
            target_url=source.name), source_range=frame_range(0, frames)))
    music = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    music.append(otio.schema.Clip(name="Music", media_reference=otio.schema.ExternalReference(
        target_url="music.wav", available_range=frame_range(0, round(music_seconds * 24))),
        source_range=frame_range(0, sum(still_frames))))
    timeline.tracks.extend([video, music])
    path = folder / "edit.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


@pytest.fixture
def store(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "panel.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, store):
    win = PanelWindow(settings=store)
    win.resize(1180, 760)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.controller.shutdown()


def wait_idle(qtbot, controller, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: not controller.tasks.busy(), timeout=timeout)


def wait_jobs_done(qtbot, vm, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: len(vm.jobs) > 0 and not vm.jobs.by_state(JobState.queued, JobState.executing),
                    timeout=timeout)


def no_dialogs() -> bool:
    return not any(isinstance(w, QDialog) and w.isVisible() for w in QApplication.topLevelWidgets())


# ---------------------------------------------------------------------------------------------------- units
def test_observable_emits_once_per_change(qtbot) -> None:
    from PySide6.QtCore import Signal

    class Model(ObservableObject):
        level_changed = Signal(object)
        curve_changed = Signal(object)
        level = observable(1.0, float)
        curve = observable(None)

    model = Model()
    seen: list[object] = []
    model.level_changed.connect(seen.append)
    model.level = 1.0
    model.level = 2
    model.level = 2.0
    assert seen == [2.0] and isinstance(model.level, float)
    arrays: list[object] = []
    model.curve_changed.connect(arrays.append)
    model.curve = np.zeros(3)
    model.curve = np.zeros(3)  # arrays never compare equal: each set is a change
    assert len(arrays) == 2
    with pytest.raises(TypeError, match="no broken_changed signal"):
        type("Broken", (ObservableObject,), {"broken": observable(0)})


def test_job_badges_and_eta() -> None:
    job = Job(id="1", still_key="V1@0", label="x", request=None, params={}, total=100)
    assert job.badges() == {} and job.eta_seconds is None
    job.state, job.started, job.step = JobState.executing, time.monotonic() - 2.0, 50
    assert job.eta_seconds == pytest.approx(2.0, abs=0.2)
    job.result = {"qc": {"reasons": ["frozen: dynamic degree 0.00 < 0.15"], "skipped": ["sync: no beats"],
                         "thresholds": {"gates": ["frozen", "ken_burns", "sync", "flicker"]}}}
    assert job.badges() == {"frozen": "fail", "ken_burns": "pass", "drift": "off", "sync": "off"}


# ---------------------------------------------------------------------------------------------------- widgets
def overview_fixture() -> TimelineOverview:
    v1 = TrackItem(0, "V1", "Video", [ClipItem("V1@0", "Alpha", 0, 48, is_still=True),
                                      ClipItem("V1@48", "Beta", 48, 48, is_still=True),
                                      ClipItem("V1#0@96", "Video clip", 96, 48)])
    a1 = TrackItem(1, "A1", "Audio", [ClipItem("A1#1@0", "Music", 0, 144)])
    return TimelineOverview("t", Fraction(24), 144, [v1, a1])


def fake_panel(qtbot) -> tuple[PanelViewModel, StillMotionPanel, FakeController]:
    """A shown panel wired to a FakeController: the widgets' side of the controller's named signals alone."""
    vm = PanelViewModel()
    panel = StillMotionPanel(vm)
    qtbot.addWidget(panel)
    fake = FakeController()
    connect_panel(panel, fake)
    panel.resize(1100, 700)
    panel.show()
    return vm, panel, fake


def test_widgets_drive_a_fake_controller(qtbot) -> None:
    vm, panel, fake = fake_panel(qtbot)
    vm.overview = overview_fixture()
    vm.selection = ("V1@0",)
    view = panel.overview

    def clip_centre(row: int, start: int, frames: int) -> QPoint:
        x = view._x(start + frames / 2)
        return QPoint(int(x), RULER + row * ROW + ROW // 2)

    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=clip_centre(0, 48, 48))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, clip_centre(0, 0, 48))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=clip_centre(0, 96, 48))  # not a still: ignored
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(HEADER // 2, RULER + ROW // 2))
    assert fake.calls[:3] == [("select", (["V1@48"], "replace")), ("select", (["V1@0"], "toggle")),
                              ("select_track_stills", (0,))]
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert fake.calls[-1] == ("select", (["V1@48"], "replace"))

    qtbot.mouseClick(panel.controls.enqueue, Qt.MouseButton.LeftButton)
    assert fake.calls[-1] == ("enqueue", ())
    assert panel.controls.enqueue.text() == "Animate 1 still"
    panel.shortcuts["Ctrl+Return"].activated.emit()
    assert fake.names().count("enqueue") == 2

    # a job appears, renders, finishes with QC; its buttons ask the controller by job id
    from stillmotion.engine.request import RenderRequest

    request = RenderRequest(image="a.png", output="o.mp4", fps=Fraction(24), frames=48, width=96, height=64)
    job = Job(id="j1", still_key="V1@0", label="Alpha", request=request, params={"seed": 3, "preset": "pulse"},
              total=48)
    vm.jobs.add(job)
    card = panel.jobs.cards["j1"]
    assert card.state.text() == "Queued" and not card.cancel.isHidden() and card.insert.isHidden()
    job.state, job.started, job.step = JobState.executing, time.monotonic() - 1, 24
    job.preview = QImage(24, 16, QImage.Format.Format_RGB888)
    vm.jobs.notify(job)
    assert card.progress.value() == 24 and "ETA" in card.progress.format()
    qtbot.mouseClick(card.cancel, Qt.MouseButton.LeftButton)
    assert fake.calls[-1] == ("cancel_job", ("j1",))
    job.state, job.result = JobState.finished, {"output": "o.mp4", "qc": {
        "verdict": "fail", "reasons": ["drift: identity drift 0.40 > 0.3"], "skipped": [],
        "thresholds": {"gates": ["frozen", "ken_burns", "drift", "sync"]}}}
    vm.jobs.notify(job)
    assert {g: b.status for g, b in card.badges.items()} == {"frozen": "pass", "ken_burns": "pass",
                                                             "drift": "fail", "sync": "pass"}
    assert "drift" in card.badges["drift"].toolTip()
    vm.insert_tracks, vm.insert_track = ["StillMotion", "V2"], "V2"
    qtbot.mouseClick(card.insert, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(card.regenerate, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(card.play, Qt.MouseButton.LeftButton)
    assert fake.calls[-3:] == [("insert_job", ("j1", "V2")), ("regenerate", ("j1",)), ("play_job", ("j1",))]

    vm.error = "timeline.xml is not valid XML"
    assert not panel.banner.isHidden() and "not valid XML" in panel.banner.label.text()
    qtbot.mouseClick(panel.banner.close, Qt.MouseButton.LeftButton)
    assert fake.calls[-1] == ("dismiss_error", ())
    assert no_dialogs()


def test_controls_bind_both_ways_and_tab_order(qtbot) -> None:
    vm = PanelViewModel()
    vm.engines = ["procedural"]
    panel = StillMotionPanel(vm)
    qtbot.addWidget(panel)
    c = panel.controls
    vm.preset = "calm"
    assert c.preset.currentData() == "calm"
    assert set(c.routing_combos) == {"pulse", "sway", "parallax"}  # the calm preset's channels
    c.preset.setCurrentIndex(c.preset.findData("shake"))
    assert vm.preset == "shake" and "shake" in c.routing_combos
    c.routing_combos["pulse"].setCurrentIndex(c.routing_combos["pulse"].findData("low"))
    assert vm.routing == {"pulse": "low"}
    c.intensity.setValue(2.5)
    assert vm.intensity == 2.5 and c.intensity_slider.value() == 250
    vm.diffusion = False
    assert not c.prompt.isEnabled() and not c.negative.isEnabled()
    vm.diffusion = True
    assert c.prompt.isEnabled()
    c.gates["sync"].setChecked(False)
    assert "sync" not in vm.qc_gates
    vm.quality = "custom"
    assert c.long_side.isEnabled()
    c.long_side.setValue(96)
    assert vm.long_side == 96
    # tab order runs overview -> engine ... -> Animate -> queue header
    chain, widget = [], panel.overview
    while widget not in chain:
        chain.append(widget)
        widget = widget.nextInFocusChain()
    order = [chain.index(w) for w in (panel.overview, c.engine, c.preset, c.seed, c.enqueue, panel.jobs.track)]
    assert order == sorted(order)
    assert all(w.toolTip() for w in (c.engine, c.preset, c.intensity, c.seed, c.quality, c.qc, c.enqueue))


def test_settings_persist_between_sessions(qtbot, store) -> None:
    first = PanelViewModel()
    settings = PanelSettings(store)
    settings.restore(first)
    settings.track(first)
    first.preset, first.intensity, first.routing, first.seed_mode = "drift", 1.7, {"sway": "high"}, "lock"
    first.qc_gates = ("frozen", "drift")
    settings.sync()
    second = PanelViewModel()
    PanelSettings(QSettings(store.fileName(), QSettings.Format.IniFormat)).restore(second)
    assert (second.preset, second.intensity, second.routing, second.seed_mode, second.qc_gates) == (
        "drift", 1.7, {"sway": "high"}, "lock", ("frozen", "drift"))


# ---------------------------------------------------------------------------------------------------- real
def test_bad_input_is_an_inline_error(qtbot, window, tmp_path) -> None:
    broken = tmp_path / "broken.otio"
    broken.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ', encoding="utf-8")
    assert not window.controller.open_timeline(str(broken))
    assert "broken.otio" in window.vm.error and not window.panel.banner.isHidden()
    assert not window.controller.open_timeline(str(tmp_path / "missing.xml"))
    assert "missing.xml" in window.vm.error
    window.controller.enqueue()  # nothing open: says so inline
    assert "Open a timeline" in window.vm.error
    assert no_dialogs()


def test_open_render_insert_end_to_end(qtbot, window, tmp_path) -> None:
    edit = make_timeline(tmp_path / "project")
    before = hashlib.sha256(edit.read_bytes()).hexdigest()
    vm, controller = window.vm, window.controller
    assert controller.open_timeline(str(edit))
    keys = list(controller.stills)
    assert len(keys) == 2 and vm.selection == (keys[0],)
    wait_idle(qtbot, controller)
    assert vm.thumbnail is not None and vm.music is not None and not vm.error
    assert len(vm.music.beats) >= 1 and vm.music.peaks[:, 1].max() > 0.1
    pulse_before = vm.motion["pulse"].copy()
    vm.intensity = 2.0  # the motion curve follows the controls live
    assert np.allclose(vm.motion["pulse"], 2 * pulse_before)
    vm.routing = {"pulse": "low"}
    assert not np.allclose(vm.motion["pulse"], 2 * pulse_before)

    vm.quality, vm.long_side, vm.intensity, vm.routing = "custom", 96, 1.0, {}
    vm.seed_mode, vm.seed = "increment", 5
    window.panel.select_requested.emit([keys[1]], "toggle")  # multi-select through the panel
    assert vm.selection == tuple(keys)
    qtbot.mouseClick(window.panel.controls.enqueue, Qt.MouseButton.LeftButton)
    wait_jobs_done(qtbot, vm)
    jobs = list(vm.jobs)
    assert [j.state for j in jobs] == [JobState.finished] * 2, [j.error for j in jobs]
    assert [j.params["seed"] for j in jobs] == [5, 5] and vm.seed == 6
    assert jobs[0].result["width"] == 96 and jobs[0].result["frames"] == 24
    card = window.panel.jobs.cards[jobs[0].id]
    assert not card.badge_row.isHidden() and set(jobs[0].badges()) == {"frozen", "ken_burns", "drift", "sync"}

    vm.insert_track = "Animated"
    qtbot.mouseClick(card.insert, Qt.MouseButton.LeftButton)
    assert not vm.error, vm.error
    saved = edit.with_name("edit_animated.otio")
    assert saved.is_file() and hashlib.sha256(edit.read_bytes()).hexdigest() == before
    timeline = otio.adapters.read_from_file(str(saved))
    track = next(t for t in timeline.video_tracks() if t.name == "Animated")
    clip = next(iter(track.find_clips()))
    assert clip.range_in_parent() == frame_range(0, 24)
    media = saved.parent / clip.media_reference.target_url
    assert media.is_file() and media.resolve() == Path(jobs[0].result["output"]).resolve()
    assert clip.metadata["stillmotion"]["seed"] == jobs[0].result["seed"]  # a QC retry may change it
    assert timeline.metadata["stillmotion"]["panel"]["settings"]["long_side"] == 96
    assert any(c.generated for t in vm.overview.tracks for c in t.clips)

    # inserting the same still again on the same track refuses inline; Replace swaps in a new attempt
    assert not controller.insert_job(jobs[0].id, "Animated") and "already has" in vm.error
    new_id = controller.regenerate(jobs[0].id)
    qtbot.waitUntil(lambda: vm.jobs.get(new_id).state.done, timeout=60000)
    assert controller.replace_job(new_id), vm.error
    replaced = otio.adapters.read_from_file(str(saved))
    clip = next(iter(next(t for t in replaced.video_tracks() if t.name == "Animated").find_clips()))
    assert clip.metadata["stillmotion"]["panel_job"] == new_id

    controller.play_job(new_id)
    qtbot.waitUntil(lambda: vm.player is not None, timeout=20000)
    assert len(vm.player[1]) == 24 and not window.panel.player.isHidden()
    controller.compare_jobs([jobs[0].id, new_id])
    qtbot.waitUntil(lambda: len(vm.compare) == 2, timeout=20000)
    assert not window.panel.compare.isHidden()

    # per-timeline state: reopening the saved timeline brings back the attempts
    assert controller.open_timeline(str(saved))
    assert {j.id for j in vm.jobs} >= {jobs[0].id, new_id}
    assert no_dialogs()


def test_cancel_queued_and_running_jobs(qtbot, window, tmp_path) -> None:
    edit = make_timeline(tmp_path / "p", still_frames=(240, 24), music_seconds=11.0)
    vm, controller = window.vm, window.controller
    controller.open_timeline(str(edit))
    wait_idle(qtbot, controller)
    vm.quality, vm.long_side, vm.qc_enabled = "custom", 320, False
    controller.select_all_stills()
    running, queued = controller.enqueue()
    qtbot.waitUntil(lambda: vm.jobs.get(running).step >= 2, timeout=20000)
    qtbot.mouseClick(window.panel.jobs.cancel_all, Qt.MouseButton.LeftButton)
    assert vm.jobs.get(queued).state is JobState.cancelled
    qtbot.waitUntil(lambda: vm.jobs.get(running).state.done, timeout=20000)
    assert vm.jobs.get(running).state is JobState.cancelled
    assert not Path(vm.jobs.get(running).request.output).exists()
    assert not list(Path(vm.jobs.get(running).request.output).parent.glob(".*try*"))  # no temp left behind
    assert controller.running is None


def _timer_gaps(qtbot, until, timeout_ms: int) -> np.ndarray:
    """Intervals (ms) between ticks of a 5 ms precise timer while `until()` is false."""
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    qtbot.waitUntil(until, timeout=timeout_ms)
    timer.stop()
    return np.diff(ticks) * 1000


def test_event_loop_stays_responsive_while_rendering(qtbot, window, tmp_path) -> None:
    """A 10 s clip renders on the render thread while a 5 ms timer measures how late the UI thread runs.

    p99 lateness <= 30 ms. The machine is shared, so the same timer first runs 1 s with nothing rendering and
    the lateness it shows then (other processes' load, not ours) is allowed on top.
    """
    edit = make_timeline(tmp_path / "p", still_frames=(240,), music_seconds=11.0)
    vm, controller = window.vm, window.controller
    controller.open_timeline(str(edit))
    wait_idle(qtbot, controller)
    vm.quality, vm.long_side = "custom", 384
    start = time.monotonic()
    idle = _timer_gaps(qtbot, lambda: time.monotonic() - start > 1.0, 5000) - 5
    job_id = controller.enqueue()[0]
    busy = _timer_gaps(qtbot, lambda: vm.jobs.get(job_id).state.done, 120000) - 5
    assert vm.jobs.get(job_id).state is JobState.finished
    idle_p99, stall_p99 = float(np.percentile(idle, 99)), float(np.percentile(busy, 99))
    print(f"event-loop lateness: rendering p99 {stall_p99:.1f} ms (max {busy.max():.1f}, {len(busy)} ticks); "
          f"idle p99 {idle_p99:.1f} ms")
    assert len(busy) > 50
    assert stall_p99 <= 30.0 + max(0.0, idle_p99 - 5.0)


# ---------------------------------------------------------------------------------------------------- standalone
def test_panel_command_screenshot_is_dark_and_high_dpi(tmp_path) -> None:
    out = tmp_path / "panel.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2",
               HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    cli = [sys.executable, "-m", "stillmotion.engine.cli"]
    done = subprocess.run([*cli, "panel", str(make_timeline(tmp_path / "p")), "--screenshot", str(out),
                           "--size", "1100x720"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(out) as img:
        assert img.size == (2200, 1440)  # 1100x720 logical at device pixel ratio 2
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert rgb.mean() < 90  # the dark editor palette stays dark
    assert rgb.std() > 15   # and something is drawn on it
    missing = subprocess.run([*cli, "panel", str(tmp_path / "nope.otio")], capture_output=True, text=True,
                             env=env, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.otio" in missing.stderr
    helptext = subprocess.run([*cli, "panel", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert "--screenshot" in helptext.stdout and "never" in helptext.stdout and "TIMELINE.bak" in helptext.stdout


def test_screenshots_of_main_states(qtbot, tmp_path) -> None:
    from stillmotion.ui.screenshots import STATES, take_screenshots

    shots = take_screenshots(tmp_path / "shots", size=(1000, 700))
    assert set(shots) == set(STATES)
    from PIL import Image

    sizes = set()
    for path in shots.values():
        with Image.open(path) as img:
            sizes.add(img.size)
            assert np.asarray(img.convert("L")).std() > 10
    assert len(sizes) == 1
    assert not list((ROOT / "resources" / "demo").glob("*_animated*"))  # the demo folder is never written
    json.dumps({k: str(v) for k, v in shots.items()})


# ---------------------------------------------------------------------------------------------------- job store
def _batch_render_second_still(edit: Path, out: Path):
    """What `stillmotion timeline edit.otio edit_animated.otio` records for the second still, through run_batch."""
    from stillmotion.engine.jobs import JobStore, run_batch
    from stillmotion.engine.timeline import find_stills, read_timeline_info
    from stillmotion.engine.timeline.pipeline import TimelineSettings, build_request, media_folder_for

    timeline, info = read_timeline_info(str(edit))
    stills = find_stills(timeline, info.rate, edit.resolve().parent, media_root=info.media_root).stills
    folder = media_folder_for(out.resolve())
    folder.mkdir(parents=True, exist_ok=True)
    request = build_request(stills[1], 2, info.rate, folder, TimelineSettings(width=96, seed=11))
    [item] = run_batch([request], "local", JobStore(), workers=1, timeline=str(out))
    assert item.status == "done", item.error
    return request, item.job_id


def test_panel_history_shares_the_job_store(qtbot, window, tmp_path, monkeypatch, capsys) -> None:
    """Batch jobs show in the panel's history, panel renders land in the store, reopening never duplicates."""
    monkeypatch.setenv("STILLMOTION_DATA_DIR", str(tmp_path / "data"))
    from stillmotion.engine.cli import main as cli_main
    from stillmotion.engine.jobs import JobStore
    from stillmotion.engine.jobs.identity import job_id

    edit = make_timeline(tmp_path / "project")
    out = edit.with_name("edit_animated.otio")
    batch_request, batch_id = _batch_render_second_still(edit, out)
    vm, controller = window.vm, window.controller

    # opening the timeline shows the batch's job as a past, playable, badged attempt on its still
    assert controller.open_timeline(str(edit))
    wait_idle(qtbot, controller)
    [past] = list(vm.jobs)
    keys = list(controller.stills)
    assert (past.past, past.state, past.store_id, past.still_key) == (True, JobState.finished, batch_id, keys[1])
    assert past.params["seed"] == 11 and past.params["size"] == f"{batch_request.width}x{batch_request.height}"
    assert set(past.badges()) == {"frozen", "ken_burns", "drift", "sync"} and past.preview is not None
    card = window.panel.jobs.cards[past.id]
    assert "past" in card.state.text() and not card.play.isHidden() and not card.badge_row.isHidden()
    controller.play_job(past.id)
    qtbot.waitUntil(lambda: vm.player is not None, timeout=20000)
    assert len(vm.player[1]) == 24

    # a panel render is recorded in the store under the same timeline path the batch used
    vm.quality, vm.long_side, vm.seed_mode, vm.seed = "custom", 96, "lock", 5
    controller.select([keys[0]])
    [panel_job_id] = controller.enqueue()
    wait_jobs_done(qtbot, vm)
    wait_idle(qtbot, controller)
    job = vm.jobs.get(panel_job_id)
    assert job.state is JobState.finished, job.error
    store = JobStore()
    rows = {r["id"]: r for r in store.history(timeline=str(out.resolve()))}
    assert set(rows) == {batch_id, job_id(job.request)} and job.store_id == job_id(job.request)
    row = rows[job.store_id]
    assert row["status"] == "done" and row["output"] == job.result["output"]
    assert row["result"]["qc"]["verdict"] == job.result["qc"]["verdict"]
    assert [a["executor"] for a in store.attempts(job.store_id)] == ["panel"]
    assert cli_main(["jobs", "--timeline", str(out), "--json"]) == 0
    assert {j["id"] for j in json.loads(capsys.readouterr().out)} == set(rows)

    # reopening (not saved): both come back from the store, once each; the panel's own clip is insertable
    for _ in range(2):
        assert controller.open_timeline(str(edit))
        wait_idle(qtbot, controller)
        jobs = list(vm.jobs)
        assert sorted(j.store_id for j in jobs) == sorted(rows) and all(j.past for j in jobs)
    again = next(j for j in jobs if j.store_id == job.store_id)
    assert again.still_key == keys[0] and again.result["output"] == job.result["output"]
    assert controller.insert_job(again.id, "Animated"), vm.error
    saved = otio.adapters.read_from_file(str(out))
    placed = [dict(c.metadata["stillmotion"]) for c in saved.find_clips() if "stillmotion" in c.metadata]
    assert [m["panel_job"] for m in placed if "panel_job" in m] == [again.id]

    # the saved timeline restores the inserted attempt from its metadata; the store adds only what is missing
    assert controller.open_timeline(str(out))
    wait_idle(qtbot, controller)
    jobs = list(vm.jobs)
    assert sorted(j.store_id for j in jobs) == sorted(rows)
    assert len({j.result["output"] for j in jobs}) == 2
    assert next(j for j in jobs if j.store_id == job.store_id).inserted == "Animated"
    assert no_dialogs()


def test_failed_and_cancelled_panel_renders_in_the_store(tmp_path) -> None:
    """A failed / cancelled panel attempt is recorded; it never turns a job the store has done back to failed."""
    from stillmotion.engine.jobs import JobStore
    from stillmotion.engine.jobs.store import Owner
    from stillmotion.engine.request import RenderRequest
    from stillmotion.ui.history import load_past_jobs, record_render

    store, owner, timeline = JobStore(tmp_path / "jobs.sqlite3"), Owner.current(), str(tmp_path / "t.otio")
    image = tmp_path / photo("cat").name
    image.write_bytes(photo("cat").read_bytes())
    failing = RenderRequest(image=str(image), output=str(tmp_path / "a.mp4"), fps=Fraction(24), frames=12,
                            width=64, height=48, seed=1)
    failed_id = record_render(store, owner, failing, "failed", None, "engine exploded", timeline)
    assert store.get(failed_id)["status"] == "failed" and store.get(failed_id)["error"] == "engine exploded"
    clip = tmp_path / "b.mp4"
    clip.write_bytes(b"not really a video, but a file with a checksum")
    done = RenderRequest.from_json(failing.to_json() | {"seed": 2, "output": str(clip)})
    done_id = record_render(store, owner, done, "finished", {"output": str(clip), "seed": 2, "qc": None},
                            "", timeline)
    assert record_render(store, owner, done, "cancelled", None, "", timeline) == done_id
    assert store.get(done_id)["status"] == "done"
    assert [a["status"] for a in store.attempts(done_id)] == ["done", "cancelled"]
    past = {p.store_id: p for p in load_past_jobs(store, [timeline, timeline])}
    assert (past[failed_id].state, past[failed_id].output) == ("failed", None)
    assert (past[done_id].state, past[done_id].output) == ("finished", str(clip))
    clip.unlink()
    assert load_past_jobs(store, [timeline])[0].output is None  # a gone clip is shown, not playable


def test_first_preview_of_a_1080p_still_at_draft_quality(qtbot, window, tmp_path) -> None:
    """"Animate" on a 1920x1080 still at draft quality: the first preview frame reaches the panel from the real
    render worker, and the event loop keeps ticking meanwhile. The time to it is printed (the issue's figure),
    not asserted: the machine is shared."""
    folder = tmp_path / "p"
    edit = make_timeline(folder, still_frames=(48,), music_seconds=3.0)
    big = cv2.resize(cv2.imread(str(photo("cat"))), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(folder / photo("cat").name), big)  # the timeline's still, now 1080p
    vm, controller, panel = window.vm, window.controller, window.panel
    controller.open_timeline(str(edit))
    wait_idle(qtbot, controller)
    vm.quality = "draft"
    controller.select_all_stills()
    started = time.perf_counter()
    qtbot.mouseClick(panel.controls.enqueue, Qt.MouseButton.LeftButton)
    job_id = controller.running
    assert job_id is not None
    gaps = _timer_gaps(qtbot, lambda: vm.jobs.get(job_id).preview is not None, 20000) - 5
    first_preview = time.perf_counter() - started
    first = vm.jobs.get(job_id).preview
    moving = _timer_gaps(qtbot, lambda: vm.jobs.get(job_id).preview is not first or vm.jobs.get(job_id).state.done,
                         30000) - 5
    first_moving = time.perf_counter() - started  # frame 12's preview: the still analysed, warping under way
    qtbot.waitUntil(lambda: vm.jobs.get(job_id).state.done, timeout=60000)
    assert vm.jobs.get(job_id).state is JobState.finished
    both = np.concatenate([gaps, moving])
    print(f"Animate -> first preview (frame 0, the still), 1920x1080 still at draft quality: {first_preview:.2f} s; "
          f"-> first moving preview (frame 12): {first_moving:.2f} s (event-loop lateness meanwhile: "
          f"p99 {float(np.percentile(both, 99)):.1f} ms over {len(both)} ticks)")
    assert first.width() > 0 and len(both) > 5


def test_offline_stills_shown_and_relinked(window, tmp_path) -> None:
    from PIL import Image

    source = tmp_path / "ImageSample.fcpxml"  # its still lives at /Users/user/Movies/... on the editor's Mac
    source.write_bytes((ROOT / "tests/data/timelines/fcpxml/openfcpxmlkit_ImageSample.fcpxml").read_bytes())
    vm, controller = window.vm, window.controller
    assert controller.open_timeline(str(source))
    assert not controller.stills and not vm.error  # never "no stills"
    assert "1 still(s) offline — Relink…" in vm.status
    (clip,) = [c for t in vm.overview.tracks for c in t.clips]
    assert clip.offline
    media = tmp_path / "found"
    media.mkdir()
    Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(media / "aworldofstories.still001.PNG")
    window.panel.relink_requested.emit(str(media))  # what "Relink…" sends after the folder dialog
    assert len(controller.stills) == 1 and "relinked 1 file(s)" in vm.status
    (still,) = controller.stills.values()
    assert still.image == media / "aworldofstories.still001.PNG"
