"""Resolve host, against tests/fake_resolve (a fake of Resolve's documented scripting API: Resolve cannot run
here). Covers reading through the OTIO export and by enumeration, inserting with AppendToTimeline and reading it
back, the silent-failure fallback (import an OTIO timeline), inclusive endFrame builds, and capabilities."""

from __future__ import annotations

import importlib
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.render import render_clip
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.timeline import find_stills, timeline_rate
from stillmotion.plugin.host import Capability, RecordRange

FAKE = Path(__file__).resolve().parent / "fake_resolve"
START = 86400  # 01:00:00:00 at 24 fps


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - the fake module
    monkeypatch.syspath_prepend(str(FAKE))
    sys.modules.pop("DaVinciResolveScript", None)
    module = importlib.import_module("DaVinciResolveScript")
    yield module
    sys.modules.pop("DaVinciResolveScript", None)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("resolve_media")
    still, music, clip = folder / "poster.png", folder / "song.wav", folder / "poster_sm.mp4"
    y, x = np.mgrid[0:36, 0:64]
    Image.fromarray(np.stack([x * 4, y * 7, (x + y) % 256], -1).astype(np.uint8)).save(still)
    t = np.arange(44100 * 3) / 44100
    soundfile.write(music, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    render_clip(RenderRequest(image=str(still), output=str(clip), fps=Fraction(24), frames=48, width=64,
                              height=36, qc=False))
    return {"still": still, "music": music, "clip": clip}


def edit(fake, media: dict[str, Path], fps: str = "24"):  # noqa: ANN001, ANN201
    """A Resolve project with a timeline: the music on A1 from the start, the poster on V1 from frame 24."""
    resolve = fake.reset(fps, START)
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    still, music = pool.ImportMedia([str(media["still"]), str(media["music"])])
    pool.CreateEmptyTimeline("Edit")
    placed = pool.AppendToTimeline([
        {"mediaPoolItem": still, "startFrame": 0, "endFrame": 48, "trackIndex": 1, "recordFrame": START + 24},
        {"mediaPoolItem": music, "startFrame": 0, "endFrame": 72, "mediaType": 2, "trackIndex": 1,
         "recordFrame": START}])
    assert len(placed) == 2
    return resolve


def host_for(fake, resolve, tmp_path: Path):  # noqa: ANN001, ANN201
    from stillmotion.plugin.resolve.adapter import ResolveHost

    return ResolveHost(resolve, workdir=tmp_path)


@pytest.mark.parametrize("export", [True, False], ids=["otio-export", "enumerated"])
def test_reads_the_timeline_with_stills_and_music(fake, media, tmp_path: Path, export: bool) -> None:
    resolve = edit(fake, media)
    fake.FAULTS["no_otio_export"] = not export
    host = host_for(fake, resolve, tmp_path)
    timeline = host.read_timeline()
    rate = timeline_rate(timeline)
    assert rate == 24
    stills = find_stills(timeline, rate, tmp_path).stills
    assert [(s.name, s.record_start, s.frames) for s in stills] == [("poster.png", 24, 48)]
    assert [(str(a.source_start), str(a.duration)) for a in stills[0].audio] == [("1", "2")]
    assert any("enumerate" in n or "items" in n for n in host.notes) == (not export)


@pytest.mark.parametrize("export", [True, False], ids=["otio-export", "enumerated"])
def test_timeline_markers_reach_the_beat_grid(fake, media, tmp_path: Path, export: bool) -> None:
    from stillmotion.engine.timeline.markers import marker_grid, timeline_beat_markers

    resolve = edit(fake, media)
    fake.FAULTS["no_otio_export"] = not export
    resolve_timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
    for frame, name in ((24, "Bar 1"), (36, ""), (48, "beat"), (60, "bar")):
        assert resolve_timeline.AddMarker(frame, "Blue", name, "", 1)
    timeline = host_for(fake, resolve, tmp_path).read_timeline()
    assert [(float(t), n) for t, n in timeline_beat_markers(timeline)] == [(1.0, "Bar 1"), (1.5, ""),
                                                                            (2.0, "beat"), (2.5, "bar")]
    (still,) = find_stills(timeline, Fraction(24), tmp_path).stills
    grid = marker_grid(timeline, still, Fraction(24))
    assert grid is not None and grid.beats == (1.0, 1.5, 2.0, 2.5) and grid.downbeats == (1.0, 2.5)


def test_insert_places_the_clip_and_reads_it_back(fake, media, tmp_path: Path) -> None:
    resolve = edit(fake, media)
    host = host_for(fake, resolve, tmp_path)
    placed = host.insert_clip(str(media["clip"]), RecordRange(24, 48, Fraction(24)))
    assert (placed.track, placed.start_frame, placed.frames, placed.timeline) == ("StillMotion", 24, 48, "")
    timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
    assert timeline.GetTrackCount("video") == 2
    items = timeline.GetItemListInTrack("video", 2)
    assert [(i.GetName(), i.GetStart(), i.GetDuration()) for i in items] == [("poster_sm.mp4", START + 24, 48)]
    with pytest.raises(BadInputError, match="already has"):
        host.insert_clip(str(media["clip"]), RecordRange(40, 48, Fraction(24)), track="StillMotion")


def test_silent_append_failure_falls_back_to_an_imported_timeline(fake, media, tmp_path: Path) -> None:
    resolve = edit(fake, media)
    fake.FAULTS["append_places_nothing"] = True
    host = host_for(fake, resolve, tmp_path)
    project = resolve.GetProjectManager().GetCurrentProject()
    original = project.GetCurrentTimeline()
    placed = host.insert_clip(str(media["clip"]), RecordRange(24, 48, Fraction(24)))
    assert placed.timeline == "Edit (StillMotion)" and placed.start_frame == 24
    assert any("placed nothing" in n for n in host.notes)
    current = project.GetCurrentTimeline()
    assert current.GetName() == "Edit (StillMotion)" and current is not original
    on_tracks = [(i.GetName(), i.GetStart(), i.GetDuration()) for n in range(1, current.GetTrackCount("video") + 1)
                 for i in current.GetItemListInTrack("video", n)]
    assert ("poster_sm.mp4", START + 24, 48) in on_tracks and ("poster.png", START + 24, 48) in on_tracks
    assert all(not original.GetItemListInTrack("video", n) or n == 1
               for n in range(1, original.GetTrackCount("video") + 1))


def test_inclusive_end_frame_builds_are_corrected(fake, media, tmp_path: Path) -> None:
    resolve = edit(fake, media)
    fake.FAULTS["end_frame_inclusive"] = True
    host = host_for(fake, resolve, tmp_path)
    placed = host.insert_clip(str(media["clip"]), RecordRange(0, 48, Fraction(24)))
    timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
    items = timeline.GetItemListInTrack("video", 2)
    assert placed.frames == 48 and [(i.GetStart(), i.GetDuration()) for i in items] == [(START, 48)]


def test_capabilities_playhead_in_out_and_ntsc_rate(fake, media, tmp_path: Path) -> None:
    resolve = edit(fake, media, fps="23.976")
    host = host_for(fake, resolve, tmp_path)
    assert host.rate == Fraction(24000, 1001)
    assert timeline_rate(host.read_timeline()) == Fraction(24000, 1001)
    caps = host.capabilities()
    assert Capability.INSERT_CLIP in caps and Capability.IN_OUT_RANGE in caps
    assert Capability.UNDO_GROUP not in caps and Capability.SELECTION not in caps
    timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
    timeline.SetCurrentTimecode("01:00:01:12")
    assert host.playhead() == 36
    timeline.SetMarkInOut(10, 33)
    assert host.in_out_range() == RecordRange(10, 24, Fraction(24000, 1001))
    with pytest.raises(BadInputError, match="rate"):
        host.insert_clip(str(media["clip"]), RecordRange(0, 48, Fraction(24)))


def test_connects_through_the_scripting_module(fake, media, tmp_path: Path) -> None:
    from stillmotion.plugin.resolve.adapter import ResolveHost, connect

    resolve = edit(fake, media)
    assert connect() is resolve
    assert ResolveHost(workdir=tmp_path).read_timeline().name == "Edit"
    fake._APP = None
    with pytest.raises(BadInputError, match="not running"):
        connect()


def test_panel_keeps_a_host_projects_work_in_one_folder(fake, media, tmp_path: Path) -> None:
    """The host panel's working folder (its clips, and so its job history) is the same in every session of
    the same project and timeline, and differs between timelines."""
    from stillmotion.plugin.host import panel_workdir

    resolve = edit(fake, media)
    first = panel_workdir(host_for(fake, resolve, tmp_path))
    again = panel_workdir(host_for(fake, resolve, tmp_path))
    assert first == again and first.is_dir()
    resolve.GetProjectManager().GetCurrentProject().GetMediaPool().CreateEmptyTimeline("Other cut")
    assert panel_workdir(host_for(fake, resolve, tmp_path)) != first
