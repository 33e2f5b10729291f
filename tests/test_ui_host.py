"""The panel on a host, as an editor sees it: the host's own frame numbers and track names in what it says,
result thumbnails for renders that send no previews, track names that fit, timeline markers, Insert disabled
(with the reason) for clips whose still is elsewhere, the window's place beside the host's editor (remembered),
and no Qt warnings while it is shown and changes. The real thing inside Blender is tests/test_blender_gui.py."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import opentimelineio as otio  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt, qInstallMessageHandler  # noqa: E402
from PySide6.QtGui import QFontMetrics, QImage, QPalette  # noqa: E402
from stillmotion.engine.render import render_clip  # noqa: E402
from stillmotion.plugin.host import HostAdapter  # noqa: E402
from stillmotion.plugin.panel import HostPanelWindow, beside, host_window_flags  # noqa: E402
from stillmotion.ui.app import PanelWindow  # noqa: E402
from stillmotion.ui.settings import PanelSettings  # noqa: E402
from stillmotion.ui.timeline_edit import build_overview  # noqa: E402
from stillmotion.ui.viewmodel import (  # noqa: E402
    ClipItem,
    Job,
    JobState,
    MarkerItem,
    PanelViewModel,
    TimelineOverview,
    TrackItem,
)
from stillmotion.ui.widgets.jobs_view import JobsView  # noqa: E402
from stillmotion.ui.widgets.timeline_view import RULER, TimelineOverviewView  # noqa: E402
from test_host_resolve import START, edit, fake, host_for, media  # noqa: E402, F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


def mean_brightness(image: QImage) -> float:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    row = rgb.bytesPerLine()
    data = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=row * rgb.height()).reshape(rgb.height(), row)
    return float(data[:, : rgb.width() * 3].mean())


def in_process_render(request, on_event=None, cancel=None):  # noqa: ANN001, ANN201 - render_clip's shape
    """What a host's child-process render does: progress only, never a preview frame."""
    from stillmotion.engine.backends.base import Progress

    def progress_only(event) -> None:  # noqa: ANN001
        if on_event is not None and isinstance(event, Progress):
            on_event(event)

    return render_clip(request, on_event=progress_only, cancel=cancel)


@pytest.fixture
def settings(tmp_path: Path) -> PanelSettings:
    return PanelSettings(QSettings(str(tmp_path / "settings" / "panel.ini"), QSettings.Format.IniFormat))


class Messages:
    """Every Qt message printed while installed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __enter__(self) -> Messages:
        self.previous = qInstallMessageHandler(lambda mode, context, text: self.lines.append(text))
        return self

    def __exit__(self, *exc: object) -> None:
        qInstallMessageHandler(self.previous)


# ------------------------------------------------------------------------------------------------ host wording
def test_default_host_speaks_record_frames() -> None:
    class Plain(HostAdapter):
        name = "plain"

        def capabilities(self):  # noqa: ANN201
            from stillmotion.plugin.host import Capability

            return Capability.READ_TIMELINE

        def read_timeline(self):  # noqa: ANN201
            return otio.schema.Timeline()

        def insert_clip(self, media_path, record, track=None, metadata=None):  # noqa: ANN001, ANN201
            raise NotImplementedError("reading only")

    host = Plain()
    assert host.describe_place("V2", 24) == "V2 at frame 24" and host.timeline_noun() == "timeline"


def test_host_panel_renders_inserts_and_speaks_the_hosts_timecode(qtbot, fake, media, tmp_path, settings,  # noqa: ANN001, F811
                                                                  monkeypatch) -> None:
    """Resolve (its documented API, faked) starts its timeline at 01:00:00:00: the still at record frame 24 is
    inserted at 01:00:01:00, and the status says so; the render sent no previews, yet the card shows a frame."""
    monkeypatch.setenv("STILLMOTION_DATA_DIR", str(tmp_path / "data"))
    resolve = edit(fake, media)
    host = host_for(fake, resolve, tmp_path)
    assert host.host_frame(24) == START + 24 and host.describe_place("V2", 24) == "V2 at 01:00:01:00"
    window = HostPanelWindow(host, render=in_process_render, settings=settings)
    qtbot.addWidget(window)
    window.controller.refresh_from_host()
    window.show()
    vm, controller = window.vm, window.controller
    qtbot.waitUntil(lambda: not controller.tasks.busy(), timeout=20000)
    vm.quality, vm.long_side, vm.seed_mode = "custom", 64, "lock"
    qtbot.mouseClick(window.panel.controls.enqueue, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(vm.jobs) and all(j.state.done for j in vm.jobs), timeout=60000)
    job = next(iter(vm.jobs))
    assert job.state is JobState.finished, job.error
    qtbot.waitUntil(lambda: job.preview is not None, timeout=20000)
    card = window.panel.jobs.cards[job.id]
    assert card.preview.image is job.preview and mean_brightness(job.preview) > 40  # the clip, not black

    qtbot.mouseClick(card.insert, Qt.MouseButton.LeftButton)
    assert not vm.error, vm.error
    assert vm.status.endswith("on StillMotion at 01:00:01:00"), vm.status

    job.still_key = ""  # as a past job for another still: Insert says why it cannot, never nothing
    assert not controller.insert_job(job.id)
    assert "is not in this timeline" in vm.error and job.result["output"] in vm.error
    window.close()


# ------------------------------------------------------------------------------------------------ the window
def test_panel_opens_beside_the_editor_and_remembers_where_it_was_put(qtbot, fake, media, tmp_path,  # noqa: ANN001, F811
                                                                      settings, monkeypatch) -> None:
    # right of the editor when it fits, else left of it, else over the screen's right edge
    assert beside((0, 0, 800, 900), (0, 0, 1600, 1000), (600, 900)) == (800, 0, 600, 900)
    assert beside((700, 20, 900, 900), (0, 0, 1600, 1000), (600, 900)) == (100, 20, 600, 900)
    assert beside((0, 27, 1321, 879), (0, 0, 1600, 1000), (600, 900)) == (1000, 27, 600, 900)
    assert beside((0, 500, 800, 500), (0, 0, 1600, 1000), (600, 900)) == (800, 100, 600, 900)
    transient, alone = host_window_flags("xcb", transient=True), host_window_flags("xcb", transient=False)
    assert transient & Qt.WindowType.Tool == Qt.WindowType.Tool and alone & Qt.WindowType.Tool == Qt.WindowType.Tool
    assert not transient & Qt.WindowType.WindowStaysOnTopHint and alone & Qt.WindowType.WindowStaysOnTopHint
    assert host_window_flags("offscreen", transient=True) & Qt.WindowType.WindowStaysOnTopHint

    monkeypatch.setenv("STILLMOTION_DATA_DIR", str(tmp_path / "data"))
    host = host_for(fake, edit(fake, media), tmp_path)
    monkeypatch.setattr(host, "editor_rect", lambda: (0, 0, 300, 400))
    window = HostPanelWindow(host, render=in_process_render, settings=settings)
    qtbot.addWidget(window)
    assert window.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    screen = window.screen().availableGeometry()
    expected = beside((0, 0, 300, 400), (screen.x(), screen.y(), screen.width(), screen.height()), (600, 900))
    rect = window.geometry()
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == expected and rect.width() >= 494
    window.setGeometry(40, 50, 700, 600)
    window.close()
    again = HostPanelWindow(host, render=in_process_render, settings=settings)
    qtbot.addWidget(again)
    assert (again.geometry().x(), again.geometry().y(), again.width(), again.height()) == (40, 50, 700, 600)
    again.close()


def test_no_size_hint_warnings_while_the_panel_changes(qtbot, tmp_path) -> None:  # noqa: ANN001
    """The window's minimum is explicit, so content changes (the error banner, a comparison) do not push a new
    one to the platform (offscreen used to print "does not support propagateSizeHints()" each time)."""
    with Messages() as messages:
        window = PanelWindow(settings=QSettings(str(tmp_path / "p.ini"), QSettings.Format.IniFormat))
        qtbot.addWidget(window)
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        window.show()
        qtbot.wait(20)
        window.vm.error = "a long error line " * 10
        qtbot.wait(20)
        window.vm.error = ""
        window.panel.compare.setVisible(True)
        qtbot.wait(20)
        window.close()
    assert window.minimumWidth() > 0
    assert not [m for m in messages.lines if "propagateSizeHints" in m], messages.lines


# ------------------------------------------------------------------------------------------------ timeline strip
def test_track_names_fit_and_markers_are_drawn(qtbot) -> None:  # noqa: ANN001
    rate = Fraction(24)
    timeline = otio.schema.Timeline(name="markers")
    for name in ("Channel 12", "Channel 1"):
        track = otio.schema.Track(name=name)
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(96, 24))))
        timeline.tracks.append(track)
    timeline.tracks.markers.append(otio.schema.Marker(name="Drop", color="RED", marked_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(48, 24), otio.opentime.RationalTime(0, 24))))
    timeline.tracks[0].markers.append(otio.schema.Marker(name="Cue", color="GREEN", marked_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(12, 24), otio.opentime.RationalTime(6, 24))))
    overview = build_overview(timeline, rate, [])
    assert [(m.frame, m.name, m.frames, m.colour) for m in overview.markers] == [
        (12, "Cue", 6, "GREEN"), (48, "Drop", 0, "RED")]

    view = TimelineOverviewView()
    qtbot.addWidget(view)
    view.resize(600, 80)
    view.set_overview(overview)
    fm = QFontMetrics(view.font())
    assert view.header_width() >= fm.horizontalAdvance("Channel 12") + 8  # never "Chann…"
    image = view.grab().toImage()
    x = round(view._x(48))
    flag = image.pixelColor(x, RULER + 4)
    assert flag.red() > 150 and flag.green() < 120, flag.name()  # the red "Drop" flag in the marker lane
    empty = image.pixelColor(round(view._x(36)), RULER + 4)
    assert empty == view.palette().color(QPalette.ColorRole.Base), empty.name()  # the lane between markers


# ------------------------------------------------------------------------------------------------ history rows
def test_insert_is_disabled_with_the_reason_for_a_clip_whose_still_is_elsewhere(qtbot, tmp_path) -> None:  # noqa: ANN001
    from stillmotion.engine.request import RenderRequest

    vm = PanelViewModel()
    vm.overview = TimelineOverview(name="Scene", rate=Fraction(24), frames=48, tracks=[
        TrackItem(index=0, name="Channel 2", kind="Video", clips=[
            ClipItem(key="V1@0", name="still", start=0, frames=48, is_still=True)])], markers=[MarkerItem(0, "M")])
    view = JobsView()
    view.timeline_noun = "scene"
    qtbot.addWidget(view)
    view.bind(vm)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    request = RenderRequest(image=str(tmp_path / "a.png"), output=str(clip), fps=Fraction(24), frames=48,
                            width=64, height=36)

    def finished(job_id: str, key: str, label: str) -> Job:
        return vm.jobs.add(Job(id=job_id, still_key=key, label=label, request=request, params={},
                               state=JobState.finished, result={"output": str(clip)}, past=True))

    here, elsewhere = finished("here", "V1@0", "still"), finished("elsewhere", "V1@24", "poster.png")
    assert view.cards[here.id].insert.isEnabled() and view.cards[here.id].replace.isEnabled()
    card = view.cards[elsewhere.id]
    assert not card.insert.isEnabled() and not card.replace.isEnabled()
    tip = card.insert.toolTip()
    assert "“poster.png”" in tip and "not in this scene" in tip and str(clip) in tip
    # another scene is loaded where that still is: Insert comes back
    vm.overview = TimelineOverview(name="Other", rate=Fraction(24), frames=48, tracks=[
        TrackItem(index=0, name="Channel 2", kind="Video", clips=[
            ClipItem(key="V1@24", name="poster.png", start=24, frames=48, is_still=True)])])
    assert card.insert.isEnabled() and not view.cards[here.id].insert.isEnabled()
