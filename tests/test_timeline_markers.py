"""Markers as beats, downbeats and cues: real exports (FCP7 XML, FCPXML, Kdenlive) and a timeline rendered end to
end (`--beats-from-markers`, a "Hit" cue on a still), reproduced by `regenerate`."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from audio_fixtures import *  # noqa: F403
from grid_fixtures import house_song
from PIL import Image
from stillmotion.engine.cli import main
from stillmotion.engine.motion import MotionSchedule
from stillmotion.engine.qc import qc_video
from stillmotion.engine.timeline import find_stills, read_timeline_info
from stillmotion.engine.timeline.markers import is_cue, is_downbeat, still_cues, timeline_beat_markers
from stillmotion.engine.video import read_frames

DATA = Path(__file__).parent / "data" / "timelines"
RATE = 24


def _times(path: Path) -> list[tuple[float, str]]:
    timeline, _ = read_timeline_info(path)
    return [(round(float(t), 3), name) for t, name in timeline_beat_markers(timeline)]


def test_markers_of_real_exports_reach_the_grid() -> None:
    # Kdenlive guides (SOURCES.md: "Purple Marker" at frame 230, "Green" at frame 466, 25 fps) sit on the stack.
    assert _times(DATA / "kdenlive" / "kdenlive_example_v240770.kdenlive") == [(9.2, "Purple Marker"),
                                                                                (18.64, "Green")]
    # Premiere's FCP7 XML: three sequence markers (frames 113, 298, 492 at 30 fps); its clip marker is on a
    # video clip, which is not music.
    assert [t for t, _ in _times(DATA / "fcp7_xml" / "premiere_example.xml")] == [3.767, 9.933, 16.4]
    # Kdenlive clip markers on audio clips: only those inside a clip's trimmed range are on the timeline.
    assert [t for t, _ in _times(DATA / "kdenlive" / "kdenlive_mixes_markers.kdenlive")] == [19.84, 57.6]
    # FCPXML: one marker on an audio clip; the other audio clip's marker lies before its in-point.
    assert _times(DATA / "fcpxml" / "fcpx_example.fcpxml") == [(28.0, "Marker 2")]


def test_marker_names() -> None:
    assert all(is_cue(n) for n in ("hit", "Hit", "HIT!", "cue 2", "big accent"))
    assert not any(is_cue(n) for n in ("white", "Marker 1", "chitchat"))
    assert all(is_downbeat(n) for n in ("downbeat", "Bar 3", "1", "DB"))
    assert not any(is_downbeat(n) for n in ("beat", "10", "Marker 1"))


def _edit(folder: Path, seconds: float = 4.0, cue_frame: int | None = 50) -> tuple[Path, np.ndarray]:
    """V1: one still for `seconds`; A1: a 124-BPM house track; a marker on the timeline at every true beat
    ("bar" on the downbeats) and a "Hit" marker on the still."""
    beats, _ = house_song(folder / "house.wav", bpm=124.0, bars=3, lead_in=0.25)
    yy, xx = np.mgrid[0:72, 0:128]
    rgb = np.stack([xx * 2, yy * 3, (xx * yy) % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "still.png")
    frames = int(seconds * RATE)
    tr = lambda s, d: otio.opentime.TimeRange(otio.opentime.RationalTime(s, RATE),  # noqa: E731
                                              otio.opentime.RationalTime(d, RATE))
    timeline = otio.schema.Timeline(name="edit")
    video = otio.schema.Track(name="V1")
    still = otio.schema.Clip(name="still.png", media_reference=otio.schema.ExternalReference(target_url="still.png"),
                             source_range=tr(0, frames))
    if cue_frame is not None:
        still.markers.append(otio.schema.Marker(name="Hit", marked_range=tr(cue_frame, 0)))
    video.append(still)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audio.append(otio.schema.Clip(name="house", media_reference=otio.schema.ExternalReference(
        target_url="house.wav", available_range=tr(0, frames + 48)), source_range=tr(0, frames)))
    timeline.tracks.extend([video, audio])
    for i, t in enumerate(beats):
        timeline.tracks.markers.append(otio.schema.Marker(
            name="bar" if i % 4 == 0 else f"beat {i}",
            marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(t * 48000, 48000))))
    path = folder / "edit.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path, beats


def test_still_cue_frame_and_schedule_peak(tmp_path: Path) -> None:
    path, _ = _edit(tmp_path, cue_frame=37)
    timeline, info = read_timeline_info(path)
    (still,) = find_stills(timeline, info.rate, tmp_path).stills
    assert still_cues(still, info.rate) == [37]
    # The schedule's biggest accent is on the cue even with beats all around it.
    from stillmotion.engine.audio import clip_features
    from stillmotion.engine.rates import FrameGrid

    features = clip_features(still.audio, FrameGrid(info.rate, still.frames))
    pulse = MotionSchedule(cues=[37]).channels(features, still.frames, RATE)["pulse"]
    assert int(np.argmax(np.abs(np.diff(pulse, prepend=0.0)))) == 37
    assert int(np.argmax(pulse)) == 37
    assert MotionSchedule.from_json(MotionSchedule(cues=[37]).to_json()).cues == [37]
    assert "cues" not in MotionSchedule().to_json()  # schedules without cues keep their JSON (and job ids)


def test_beats_from_markers_and_cue_render_and_regenerate(tmp_path: Path, capsys) -> None:
    path, beats = _edit(tmp_path, cue_frame=50)
    out = tmp_path / "out.otio"
    assert main(["timeline", str(path), "-o", str(out), "--beats-from-markers", "--beat-offset", "0",
                 "--no-qc", "--workers", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    (item,) = summary["rendered"]
    timeline, _ = read_timeline_info(out)
    (clip,) = [c for c in timeline.find_clips() if "stillmotion" in c.metadata]
    meta = clip.metadata["stillmotion"]
    grid = {"source": meta["beat_grid"]["source"], "beats": list(meta["beat_grid"]["beats"]),
            "downbeats": list(meta["beat_grid"]["downbeats"])}
    assert grid["source"] == "timeline markers"
    inside = beats[beats < 4.0 + 4.0]
    assert np.allclose(grid["beats"], inside, atol=1e-6)
    assert np.allclose(grid["downbeats"], inside[::4], atol=1e-6)
    assert np.allclose(meta["request"]["options"]["beat_grid"]["beats"], grid["beats"])
    assert list(meta["request"]["options"]["schedule"]["cues"]) == [50]
    # The rendered clip's biggest motion is on the cue's frame (the project's QC motion energy).
    report = qc_video(item["output"], beat_times=beats)
    assert int(np.argmax(report.motion_energy)) == 50
    first = [f.copy() for f in read_frames(item["output"])]
    # regenerate reproduces the same grid and cue from the provenance alone: the same frames.
    assert main(["regenerate", str(out), "--clip", "still.png"]) == 0
    again = list(read_frames(item["output"]))
    assert len(again) == len(first) and all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    timeline, _ = read_timeline_info(out)
    (clip,) = [c for c in timeline.find_clips() if "stillmotion" in c.metadata]
    assert np.allclose(clip.metadata["stillmotion"]["beat_grid"]["beats"], grid["beats"])


def test_markers_and_beat_file_are_exclusive(tmp_path: Path, capsys) -> None:
    path, _ = _edit(tmp_path)
    beats = tmp_path / "b.txt"
    beats.write_text("0.5\n1.0\n")
    assert main(["timeline", str(path), "-o", str(tmp_path / "o.otio"), "--beats-from-markers",
                 "--beats", str(beats)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose one" in err and not (tmp_path / "o.otio").exists()


@pytest.mark.parametrize("rate", [Fraction(24)])
def test_no_markers_near_a_still_keeps_the_tracker(tmp_path: Path, rate: Fraction) -> None:
    from stillmotion.engine.timeline.markers import annotate_request
    from stillmotion.engine.timeline.pipeline import TimelineSettings, build_request

    path, _ = _edit(tmp_path, cue_frame=None)
    timeline, info = read_timeline_info(path)
    timeline.tracks.markers.clear()
    (still,) = find_stills(timeline, info.rate, tmp_path).stills
    folder = tmp_path / "media"
    folder.mkdir()
    request = build_request(still, 1, rate, folder, TimelineSettings())
    note = annotate_request(request, timeline, still, rate, beats_from_markers=True)
    assert note is not None and "tracked beat grid" in note and "beat_grid" not in request.options


def test_timeline_grid_options_and_a_beat_file_beyond_the_song(tmp_path: Path, capsys) -> None:
    path, _ = _edit(tmp_path, cue_frame=None)
    late = tmp_path / "late.txt"
    late.write_text("0.5\n1.0\n300.0\n")
    out = tmp_path / "out.otio"
    assert main(["timeline", str(path), "-o", str(out), "--beats", str(late), "--no-qc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "beyond the end of house.wav" in err
    assert not out.exists() and not (tmp_path / "out_stillmotion").exists()
    assert main(["timeline", str(path), "-o", str(out), "--bpm", "124", "--no-qc", "--workers", "1"]) == 0
    timeline, _ = read_timeline_info(out)
    (clip,) = [c for c in timeline.find_clips() if "stillmotion" in c.metadata]
    assert dict(clip.metadata["stillmotion"]["beat_grid"]) == {"bpm": 124.0}
