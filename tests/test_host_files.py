"""The standalone file host (any OTIO-readable file in, the same format out), the subprocess render the hosts use,
and the panel driven by a host adapter (capabilities become the view model's host features)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile
from PIL import Image
from stillmotion.engine.errors import BadInputError, StillMotionError
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.timeline import find_stills, read_timeline_info, timeline_rate, write_timeline
from stillmotion.engine.timeline.edit import find_placed
from stillmotion.engine.timeline.timebase import frames_range
from stillmotion.engine.video import VideoInfo
from stillmotion.plugin.files import FileHost, default_output
from stillmotion.plugin.host import Capability, RecordRange
from stillmotion.plugin.runtime import render_in_subprocess

RATE = Fraction(30000, 1001)


def make_edit(folder: Path, suffix: str) -> Path:
    """A 29.97 timeline: a still on V1 at frame 12 for 30 frames over a song on A1."""
    still, song = folder / "card.png", folder / "song.wav"
    y, x = np.mgrid[0:36, 0:64]
    Image.fromarray(np.stack([x * 4, y * 7, (x * y) % 256], -1).astype(np.uint8)).save(still)
    t = np.arange(44100 * 3) / 44100
    soundfile.write(song, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 44100)
    timeline = otio.schema.Timeline(name="edit")
    timeline.global_start_time = otio.opentime.RationalTime(0, float(RATE))
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    video.append(otio.schema.Gap(source_range=frames_range(0, 12, RATE)))
    video.append(otio.schema.Clip(name="card", media_reference=otio.schema.ExternalReference(
        target_url=still.as_uri()), source_range=frames_range(0, 30, RATE)))
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audio.append(otio.schema.Clip(name="song", media_reference=otio.schema.ExternalReference(
        target_url=song.as_uri(), available_range=frames_range(0, 89, RATE)), source_range=frames_range(0, 60, RATE)))
    timeline.tracks.extend([video, audio])
    path = folder / f"edit{suffix}"
    write_timeline(timeline, path)
    return path


def rendered(folder: Path, frames: int = 30) -> Path:
    from stillmotion.engine.render import render_clip

    out = folder / "card_sm.mp4"
    render_clip(RenderRequest(image=str(folder / "card.png"), output=str(out), fps=RATE, frames=frames, width=64,
                              height=36, qc=False))
    return out


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".fcpxml"])
def test_file_host_round_trip_in_the_same_format(tmp_path: Path, suffix: str) -> None:
    source = make_edit(tmp_path, suffix)
    host = FileHost(source)
    assert host.output == tmp_path / f"edit_animated{suffix}"
    assert host.rate == RATE and timeline_rate(host.read_timeline()) == RATE
    still = find_stills(host.read_timeline(), host.rate, tmp_path).stills[0]
    assert (still.record_start, still.frames) == (12, 30)
    clip = rendered(tmp_path)
    placed = host.insert_clip(str(clip), RecordRange(12, 30, RATE))
    assert (placed.track, placed.start_frame, placed.frames) == ("StillMotion", 12, 30)
    saved = Path(host.save())
    back, info = read_timeline_info(saved)
    assert saved.suffix == suffix and info.rate == RATE
    found = find_placed(back, clip, RATE, saved.parent)  # read back by media (FCPXML drops track names)
    assert found is not None and found[1:] == (12, 30)
    with pytest.raises(BadInputError, match="already has"):
        host.insert_clip(str(clip), RecordRange(20, 30, RATE), track="StillMotion")


def test_file_host_refuses_bad_input(tmp_path: Path) -> None:
    source = make_edit(tmp_path, ".otio")
    with pytest.raises(BadInputError):
        FileHost(source, output=source)
    with pytest.raises(BadInputError, match="does not exist"):
        FileHost(tmp_path / "missing.otio")
    host = FileHost(source)
    with pytest.raises(BadInputError, match="does not exist"):
        host.insert_clip(str(tmp_path / "nothing.mp4"), RecordRange(0, 10, RATE))
    assert default_output(Path("reel.edl")) == Path("reel_animated.otio")
    assert Capability.SAVE in host.capabilities() and Capability.PLAYHEAD not in host.capabilities()
    assert {"read_timeline", "insert_clip", "save"} <= host.feature_names()


def test_subprocess_render_streams_progress_and_reports_errors(tmp_path: Path) -> None:
    make_edit(tmp_path, ".otio")
    request = RenderRequest(image=str(tmp_path / "card.png"), output=str(tmp_path / "sub.mp4"), fps=RATE, frames=12,
                            width=64, height=36, qc=False)
    events: list = []
    result = render_in_subprocess(request, events.append)
    assert result["frames"] == 12 and Path(result["output"]).is_file()
    assert VideoInfo(result["output"]).frames == 12
    assert events and events[-1].step == events[-1].total
    with pytest.raises(StillMotionError, match="exists"):
        render_in_subprocess(request)


def test_panel_on_a_host_shows_its_timeline_and_features(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    from stillmotion.plugin.panel import HostPanelController
    from stillmotion.ui.viewmodel import PanelViewModel

    host = FileHost(make_edit(tmp_path, ".otio"))
    vm = PanelViewModel()
    controller = HostPanelController(host, vm, workdir=tmp_path)
    controller.refresh_from_host()
    assert controller.rate == RATE and len(controller.stills) == 1
    assert "insert" in vm.host_features and "save" in vm.host_features and "playhead" not in vm.host_features
    assert not controller.replace_job("nothing") and "Replace" in vm.error
    controller.shutdown()
