"""The controller's parts on their own, each against fakes instead of the whole panel: the beat-grid actions on a
plain namespace, the timeline session's read / save / panel state, the selection with a synchronous task runner,
and the render queue with a fake render function. (The controller composing them is tested in test_ui*.py.)"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from stillmotion.engine import warmup  # noqa: E402
from stillmotion.engine.errors import CancelledError  # noqa: E402
from stillmotion.engine.timeline import read_timeline_info  # noqa: E402
from stillmotion.ui.grid_control import BeatGridControl, TapTempo  # noqa: E402
from stillmotion.ui.parameters import RenderParameters  # noqa: E402
from stillmotion.ui.render_queue import RenderQueue  # noqa: E402
from stillmotion.ui.selection import StillSelection  # noqa: E402
from stillmotion.ui.timeline_session import TimelineSession  # noqa: E402
from stillmotion.ui.timeline_state import restore_panel_state  # noqa: E402
from stillmotion.ui.viewmodel import JobState, PanelViewModel  # noqa: E402
from test_ui import make_timeline  # noqa: E402


class SyncTasks:
    """A task runner that runs each task at once on the calling thread (same `submit` as `TaskRunner`)."""

    def __init__(self) -> None:
        self.channels: list[str] = []

    def submit(self, channel, fn, on_done, on_error) -> int:
        self.channels.append(channel)
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - handed to on_error, as TaskRunner does
            on_error(str(exc))
        else:
            on_done(value)
        return len(self.channels)


def open_session(folder: Path, still_frames: tuple[int, ...] = (24, 24)) -> tuple[PanelViewModel, TimelineSession]:
    vm = PanelViewModel()
    session = TimelineSession(vm)
    path = make_timeline(folder, still_frames)
    timeline, info = session.read(str(path))
    session.load(timeline, path, info.rate, info.media_root)
    return vm, session


def test_beat_grid_control_only_changes_the_view_model() -> None:
    vm = SimpleNamespace(tempo_factor=1.0, tap_bpm=None, beat_offset=0.0)
    grid = BeatGridControl(vm)
    grid.double_tempo()
    grid.double_tempo()
    assert vm.tempo_factor == 4.0
    grid.halve_tempo()
    assert vm.tempo_factor == 2.0
    now = [0.0]
    grid.tapper = TapTempo(clock=lambda: now[0])
    for _ in range(4):
        grid.tap_tempo()
        now[0] += 0.5
    assert (vm.tempo_factor, vm.tap_bpm) == (1.0, 120.0)
    grid.double_tempo()  # a tapped tempo is doubled itself, within the tracker's limits
    assert vm.tap_bpm == 240.0
    grid.shift_grid(0.02)
    grid.shift_grid(100)
    assert vm.beat_offset == 60.0
    grid.forget_tempo()
    assert (vm.tempo_factor, vm.tap_bpm, vm.beat_offset) == (1.0, None, 60.0)
    grid.reset_grid()
    assert (vm.tempo_factor, vm.tap_bpm, vm.beat_offset) == (1.0, None, 0.0)


def test_timeline_session_reads_saves_and_keeps_the_panel_state(tmp_path: Path) -> None:
    vm = PanelViewModel()
    session = TimelineSession(vm)
    assert not session.save() and vm.error == "no timeline to save"
    assert session.read(str(tmp_path / "missing.otio")) is None and vm.error.endswith("missing.otio does not exist")
    vm, session = open_session(tmp_path / "project")
    assert len(session.stills) == 2 and session.save_path.name == "edit_animated.otio"
    session.refresh_overview()
    assert vm.insert_tracks[0] == "StillMotion" and len(vm.overview.tracks) == 2
    vm.preset, vm.intensity = "drift", 0.25
    assert session.save(), vm.error
    assert vm.status == "Saved edit_animated.otio"
    saved, _info = read_timeline_info(str(session.save_path))
    fresh = PanelViewModel()
    restore_panel_state(saved, fresh)
    assert (fresh.preset, fresh.intensity) == ("drift", 0.25)


def test_a_new_timeline_forgets_the_image_sizes_of_the_last(tmp_path: Path) -> None:
    """Stills are keyed by track and start, so the same key on the next timeline is another image."""
    from PIL import Image

    vm, session = open_session(tmp_path / "first")
    parameters = RenderParameters(vm, session)
    key = next(iter(session.stills))
    first_w, first_h = parameters.output_size(key)
    path = make_timeline(tmp_path / "second")
    image = Path(session.stills[key].image).name
    with Image.open(tmp_path / "second" / image) as img:
        img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "second" / image)
    timeline, info = session.read(str(path))
    session.load(timeline, path, info.rate, info.media_root)
    assert parameters.output_size(key) == (first_h, first_w) != (first_w, first_h)


def test_selection_against_a_synchronous_task_runner(tmp_path: Path) -> None:
    vm, session = open_session(tmp_path / "project", (24, 24, 24))
    tasks = SyncTasks()
    errors: list[str] = []
    selection = StillSelection(vm, session, RenderParameters(vm, session), tasks, errors.append)
    vm.selection_changed.connect(selection.on_selection)
    first, second, third = session.stills
    selection.select([first])
    selection.select([third], "extend")
    assert vm.selection == (first, second, third)
    selection.select([second], "toggle")
    assert vm.selection == (first, third)
    assert vm.selection_label.startswith("Still 1 · V1 · 1.00 s (24 frames @ 24)  (+1 more)")
    assert vm.thumbnail is not None and session.image_sizes[first]
    assert vm.music is not None and len(vm.music.beats) >= 1 and vm.motion
    # the primary still stayed the same: its music was analysed once and then cached
    assert tasks.channels == ["thumbnail", "music", "thumbnail", "thumbnail"] and not errors
    selection.select([second])
    assert tasks.channels[-2:] == ["thumbnail", "music"]
    selection.reanalyse()  # a grid control changed: the music is analysed again
    assert tasks.channels[-2:] == ["thumbnail", "music"] and len(tasks.channels) == 8


def test_render_queue_runs_one_job_at_a_time_and_cancels(qtbot, tmp_path: Path) -> None:
    vm, session = open_session(tmp_path / "project")
    hold = [True]

    def render(request, on_event, token):
        while hold[0]:
            if token.cancelled:
                raise CancelledError("cancelled")
            time.sleep(0.005)
        Path(request.output).write_bytes(b"clip")
        return {"output": request.output, "fps": str(request.fps)}

    queue = RenderQueue(vm, session, RenderParameters(vm, session), render)
    ended: list[str] = []
    queue.job_ended.connect(ended.append)
    try:
        assert queue.enqueue() == [] and "select at least one still" in vm.error
        vm.selection = tuple(session.stills)
        first, second = queue.enqueue()
        assert queue.running == first
        assert [vm.jobs.get(i).state for i in (first, second)] == [JobState.executing, JobState.queued]
        queue.cancel_job(second)  # a queued job is cancelled at once, never rendered
        assert vm.jobs.get(second).state is JobState.cancelled
        queue.cancel_job(first)
        qtbot.waitUntil(lambda: ended == [first], timeout=10000)
        assert vm.jobs.get(first).state is JobState.cancelled and queue.running is None
        hold[0] = False
        again = queue.regenerate(first)
        qtbot.waitUntil(lambda: ended == [first, again], timeout=10000)
        job = vm.jobs.get(again)
        assert job.state is JobState.finished and job.step == job.total and Path(job.result["output"]).is_file()
        assert job.params == vm.jobs.get(first).params | {"seed": job.request.seed}
        queue.remove_job(first)
        assert vm.jobs.get(first) is None
    finally:
        queue.renderer.stop()
        warmup.wait()  # the render thread's OpenCV warm-up must not be cut off by the process exiting
