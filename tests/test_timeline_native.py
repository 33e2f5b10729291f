"""Add-only native writers on every real timeline fixture: the real pipeline (procedural engine, tiny frames)
writes OUT in IN's own format; a structural diff shows only additions, and OTIO reads back the new track with
our clips at their stills' record times. Kdenlive: melt renders OUT with the editor's effects still applied."""

from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline import read_timeline_info
from stillmotion.engine.timeline.pipeline import TimelineSettings, process_timeline, render_one
from stillmotion.engine.timeline.select import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, file_name, written_path
from stillmotion.engine.timeline.timebase import to_frames
from stillmotion.engine.video import read_frames
from xml_structure import structural_diff

DATA = Path(__file__).parent / "data" / "timelines"
SHARED = Path(__file__).parent.parent / ".." / "shared" / "fixtures" / "timelines"
NATIVE = (".xml", ".fcpxml", ".kdenlive")
#: Container totals a native writer documents changing (docs/timelines.md).
DOCUMENTED_TOTALS = ("property[name=kdenlive:sequenceproperties.tracksCount]",)


def _fixtures() -> list[Path]:
    found = {p.name: p for p in sorted(DATA.glob("*/*")) if p.suffix in NATIVE}
    if SHARED.is_dir():
        for p in sorted(SHARED.glob("*/*")):
            if p.suffix in NATIVE:
                found.setdefault(p.name, p)
    return sorted(found.values())


def _tiny_video(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 32, 18, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((18, 32, 3), 128, np.uint8), format="rgb24")
        sound = container.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 2 * 4800), np.float32), format="flt", layout="stereo")
        silence.sample_rate = 48000
        for packet in [*sound.encode(silence), *sound.encode()]:
            container.mux(packet)


def _media_for(clip: otio.schema.Clip, folder: Path) -> bool:
    """Stand-in media named as the clip's (relinked by file name, like the editor's media on this machine)."""
    name = file_name(written_path(clip.media_reference))
    suffix = Path(name).suffix.lower()
    if not name or suffix not in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        return False
    target = folder / name
    if suffix in IMAGE_EXTENSIONS:
        Image.fromarray(np.full((18, 32, 3), 90, np.uint8)).save(target, format="PNG")
    elif not target.exists():
        _tiny_video(target)
    return True


def _pick(path: Path, folder: Path) -> tuple[list[str], Fraction]:
    """Up to two short clips on video tracks, with media standing in for theirs."""
    timeline, info = read_timeline_info(path)
    candidates = []
    tracks = list(timeline.video_tracks())
    for track in tracks[:1] if path.suffix == ".fcpxml" else tracks:  # FCPXML: the primary storyline
        for item in track:
            if isinstance(item, otio.schema.Clip):
                candidates.append(item)
    chosen: list[str] = []
    for clip in sorted(candidates, key=lambda c: c.range_in_parent().duration.to_seconds()):
        # clips are chosen by name; of same-named ones only this one gets media (the others stay offline)
        short = clip.range_in_parent().duration.to_seconds() <= 60  # keep the test fast
        if short and clip.name not in chosen and _media_for(clip, folder):
            chosen.append(clip.name)  # an unnamed clip ('') is taken with every still: clips=None below
        if len(chosen) == 2:
            break
    return chosen, info.rate


def _add_only_without_stills(source: Path, folder: Path) -> None:
    from stillmotion.engine.timeline.native import NewClip, NewTrack, write_native

    timeline, info = read_timeline_info(source)
    first = next(c for t in timeline.video_tracks() for c in t if isinstance(c, otio.schema.Clip))
    placed = first.range_in_parent()
    start, frames = to_frames(placed.start_time, info.rate), max(1, to_frames(placed.duration, info.rate))
    media = folder / "render.mp4"
    _tiny_video(media)
    out = folder / f"out{source.suffix}"
    write_native(source, out, [NewTrack("StillMotion", [NewClip("x (StillMotion)", media, start, frames, 32, 18)])],
                 info.rate)
    diff = structural_diff(source.read_bytes(), out.read_bytes())
    assert diff.removed == [] and [c for c in diff.changed if not any(t in c for t in DOCUMENTED_TOTALS)] == []
    again, _ = read_timeline_info(out)
    (clip,) = [c for c in again.find_clips() if c.name == "x (StillMotion)"]
    got = clip.range_in_parent()
    assert (to_frames(got.start_time, info.rate), to_frames(got.duration, info.rate)) == (start, frames)


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.name)
def test_native_write_only_adds(tmp_path: Path, path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    source = tmp_path / path.name
    shutil.copyfile(path, source)
    names, rate = _pick(source, media)
    if not names:  # nothing here has media to animate (generators): add a rendered clip at V1's first clip
        _add_only_without_stills(source, tmp_path)
        return
    out = tmp_path / f"out{path.suffix}"
    settings = TimelineSettings(clips=None if "" in names else names, from_video=True, relink=[str(media)], width=32, height=18,
                                render={"qc": False})  # QC has its own tests; here only the writing counts
    summary = process_timeline(source, out, settings, report=lambda _line: None, render=render_one)
    assert summary.rendered
    diff = structural_diff(source.read_bytes(), out.read_bytes())
    assert diff.removed == []
    assert [c for c in diff.changed if not any(t in c for t in DOCUMENTED_TOTALS)] == []
    assert diff.out_elements > diff.in_elements and diff.added
    # OTIO reads OUT back: our clips at exactly their stills' record ranges, the originals unchanged
    timeline, info = read_timeline_info(out)
    assert info.rate == rate
    placed = sorted((to_frames(r.start_time, rate), to_frames(r.duration, rate))
                    for c in timeline.find_clips() if c.name.endswith(" (StillMotion)") for r in [c.range_in_parent()])
    assert placed == sorted((item["record_start_frame"], item["frames"]) for item in summary.rendered)
    before, _ = read_timeline_info(source)
    assert len(list(timeline.video_tracks())) > len(list(before.video_tracks()))  # FCPXML: a track per lane
    assert source.read_bytes() == path.read_bytes()


def _kdenlive_with_effect(folder: Path) -> Path:
    """A Kdenlive project (OTIO's writer) whose V1 red clip carries a visible effect (MLT `brightness` at 0.4),
    inserted as Kdenlive stores a clip effect: a <filter> inside the timeline entry."""
    from stillmotion.engine.timeline import write_timeline

    rate = 25.0

    def tr(start: int, dur: int) -> otio.opentime.TimeRange:
        return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(dur, rate))

    Image.fromarray(np.stack(np.mgrid[0:90, 0:160], -1).sum(-1, keepdims=True).repeat(3, -1).astype(np.uint8)
                    ).save(folder / "still.png")
    timeline = otio.schema.Timeline(name="fx")
    v1 = otio.schema.Track(name="V1")
    v1.append(otio.schema.Clip(name="red", media_reference=otio.schema.GeneratorReference(
        generator_kind="SolidColor", parameters={"color": "0xff0000ff"}, available_range=tr(0, 100)),
        source_range=tr(0, 40)))
    v2 = otio.schema.Track(name="V2")
    v2.append(otio.schema.Gap(source_range=tr(0, 10)))
    v2.append(otio.schema.Clip(name="still.png", media_reference=otio.schema.ExternalReference(
        target_url="still.png", available_range=tr(0, 1000)), source_range=tr(0, 12)))
    timeline.tracks.extend([v1, v2])
    plain = folder / "plain.kdenlive"
    write_timeline(timeline, plain)
    text = plain.read_text(encoding="utf-8")
    timeline_part = text.index('<playlist id="playlist0">')
    red_entry = re.compile(r"<entry [^>]*>").search(text, timeline_part)
    effect = ('<filter id="fx_brightness"><property name="mlt_service">brightness</property>'
              '<property name="level">0.4</property><property name="kdenlive_id">brightness</property></filter>')
    source = folder / "in.kdenlive"
    source.write_text(text[:red_entry.end()] + effect + text[red_entry.end():], encoding="utf-8")
    return source


def _melt(project: Path, frames: int) -> list[np.ndarray]:
    target = project.with_suffix(".mkv")
    subprocess.run(["melt", "-quiet", str(project), f"out={frames - 1}", "-consumer", f"avformat:{target}",
                    "vcodec=ffv1", "an=1", "width=160", "height=90"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=120, cwd=project.parent)
    return [f.astype(np.int16) for f in read_frames(target)]


@pytest.mark.skipif(shutil.which("melt") is None, reason="melt (MLT) is not installed")
def test_kdenlive_native_keeps_effects_in_melt_render(tmp_path: Path) -> None:
    source = _kdenlive_with_effect(tmp_path)
    out = tmp_path / "out.kdenlive"
    summary = process_timeline(source, out, TimelineSettings(), report=lambda _line: None, render=render_one)
    assert [(r["record_start_frame"], r["frames"]) for r in summary.rendered] == [(10, 12)]
    diff = structural_diff(source.read_bytes(), out.read_bytes())
    assert diff.removed == [] and diff.changed == []
    before, after, plain = _melt(source, 40), _melt(out, 40), _melt(tmp_path / "plain.kdenlive", 40)
    assert len(before) == len(after) == 40
    outside = [k for k in range(40) if not 10 <= k < 22]
    # the effect is visible (IN differs from the same project without it) and OUT keeps it exactly
    assert min(np.abs(before[k] - plain[k]).mean() for k in outside) > 20
    assert max(np.abs(before[k] - after[k]).max() for k in outside) == 0
    # inside the generated range OUT shows the generated clip (it differs from IN's frozen still)
    assert min(np.abs(before[k] - after[k]).mean() for k in range(10, 22)) > 0


def _relinked_settings(folder: Path, still_name: str) -> TimelineSettings:
    """Settings that find a grey 32x18 stand-in for the timeline's still (saved as `still_name`) via --relink."""
    media = folder / "media"
    media.mkdir()
    Image.fromarray(np.full((18, 32, 3), 90, np.uint8)).save(media / still_name)
    return TimelineSettings(relink=[str(media)], width=32, height=18, render={"qc": False})


def test_fcpxml_tc_start_is_the_timeline_start(tmp_path: Path) -> None:
    """A sequence starting at 01:00:00:00 (tcStart 3600 s): read as the start time, not an hour of gap; the
    connected clip lands on the still at the same spine time."""
    text = (DATA / "fcpxml" / "openfcpxmlkit_ImageSample.fcpxml").read_text(encoding="utf-8")
    source = tmp_path / "hour.fcpxml"
    source.write_text(text.replace('tcStart="0s"', 'tcStart="86400399/24000s"')
                      .replace('<video ref="r2" offset="0s"', '<video ref="r2" offset="86400399/24000s"'),
                      encoding="utf-8")
    timeline, info = read_timeline_info(source)
    assert to_frames(timeline.global_start_time, info.rate) == 86314  # 86400399/24000 s = 3600.0166 s
    (still,) = [c for c in timeline.find_clips()]
    assert to_frames(still.range_in_parent().start_time, info.rate) == 0
    out = tmp_path / "out.fcpxml"
    settings = _relinked_settings(tmp_path, "AWorldofStories.Still001.png")
    summary = process_timeline(source, out, settings, report=lambda _line: None, render=render_one)
    diff = structural_diff(source.read_bytes(), out.read_bytes())
    assert diff.removed == [] and diff.changed == []
    (added,) = [e for e in diff.added if e.tag == "asset-clip"]
    # connected to the still at its own start (86399313/24000 s), lane 1, for the still's whole duration
    assert (added.get("offset"), added.get("lane")) == ("86399313/24000s", "1")
    assert added.get("duration") == f"{summary.rendered[0]['frames'] * 1001}/24000s"


def test_generated_clips_take_the_sequence_frame_size(tmp_path: Path) -> None:
    from stillmotion.engine.timeline.pipeline import build_request
    from stillmotion.engine.timeline.select import Still

    _, info = read_timeline_info(DATA / "fcp7_xml" / "premiere_example.xml")
    assert info.frame_size == (1280, 720)
    image = tmp_path / "s.png"
    Image.fromarray(np.zeros((300, 200, 3), np.uint8)).save(image)
    still = Still(clip=otio.schema.Clip(name="s"), name="s", track_index=0, track_name="V1", record_start=0,
                  frames=5, image=image)
    by_sequence = build_request(still, 1, info.rate, tmp_path, TimelineSettings(), frame_size=info.frame_size)
    by_image = build_request(still, 2, info.rate, tmp_path, TimelineSettings(size="image"),
                             frame_size=info.frame_size)
    assert (by_sequence.width, by_sequence.height) == (1280, 720)
    assert (by_image.width, by_image.height) == (200, 300)


def test_fcpxmld_bundle_written_into_a_copy_of_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "edit.fcpxmld"
    bundle.mkdir()
    original = (DATA / "fcpxml" / "openfcpxmlkit_ImageSample.fcpxml").read_bytes()
    (bundle / "Info.fcpxml").write_bytes(original)
    (bundle / "Other").mkdir()
    (bundle / "Other" / "keep.bin").write_bytes(b"\x00kept")
    out = tmp_path / "out.fcpxmld"
    settings = _relinked_settings(tmp_path, "AWorldofStories.Still001.png")
    summary = process_timeline(bundle, out, settings, report=lambda _line: None, render=render_one)
    assert summary.rendered and (out / "Other" / "keep.bin").read_bytes() == b"\x00kept"
    diff = structural_diff(original, (out / "Info.fcpxml").read_bytes())
    assert diff.removed == [] and diff.changed == [] and any(e.tag == "asset-clip" for e in diff.added)
    assert (bundle / "Info.fcpxml").read_bytes() == original
    timeline, _ = read_timeline_info(out)
    assert any(c.name.endswith("(StillMotion)") for c in timeline.find_clips())


@pytest.mark.parametrize("name", ["fcp7_xml/premiere_example.xml", "kdenlive/qtblend-freeze.kdenlive"])
def test_file_host_saves_into_the_editor_document(tmp_path: Path, name: str) -> None:
    from stillmotion.plugin.files import FileHost
    from stillmotion.plugin.host import RecordRange

    source = tmp_path / Path(name).name
    source.write_bytes((DATA / name).read_bytes())
    host = FileHost(source)
    clip = tmp_path / "render.mp4"
    _tiny_video(clip)
    inserted = host.insert_clip(str(clip), RecordRange(start_frame=2, frames=1, fps=host.rate),
                                track="StillMotion")
    saved = Path(host.save())
    assert saved.suffix == source.suffix and (inserted.start_frame, inserted.frames) == (2, 1)
    diff = structural_diff(source.read_bytes(), saved.read_bytes())
    assert diff.removed == [] and [c for c in diff.changed if not any(t in c for t in DOCUMENTED_TOTALS)] == []
    timeline, _ = read_timeline_info(saved)
    placed = [c.range_in_parent() for c in timeline.find_clips() if c.name.endswith("(StillMotion)")]
    assert [(to_frames(r.start_time, host.rate), to_frames(r.duration, host.rate)) for r in placed] == [(2, 1)]


def test_in_place_native_write_keeps_a_backup_and_adds_once(tmp_path: Path) -> None:
    source = tmp_path / "qtblend-freeze.kdenlive"
    original = (DATA / "kdenlive" / "qtblend-freeze.kdenlive").read_bytes()
    source.write_bytes(original)
    settings = _relinked_settings(tmp_path, "large-pixmap.png")
    summary = process_timeline(source, None, settings, in_place=True, report=lambda _line: None, render=render_one)
    assert Path(summary.backup).read_bytes() == original
    diff = structural_diff(original, source.read_bytes())
    assert diff.removed == [] and [c for c in diff.changed if not any(t in c for t in DOCUMENTED_TOTALS)] == []
    with pytest.raises(BadInputError, match="already has a track named 'StillMotion'"):
        process_timeline(source, None, settings, in_place=True, report=lambda _line: None, render=render_one)


def test_crlf_document_stays_crlf() -> None:
    from stillmotion.engine.timeline.native import NewClip, NewTrack, add_to_document

    data = (DATA / "fcp7_xml" / "hiero_xml_export.xml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    clip = NewClip("x (StillMotion)", Path("/tmp/x.mp4"), 0, 5, 32, 18)
    out, _ = add_to_document(data, ".xml", [NewTrack("StillMotion", [clip])], Fraction(24), "crlf.xml")
    assert out.count(b"\n") == out.count(b"\r\n") > data.count(b"\r\n")
    diff = structural_diff(data, out)
    assert diff.removed == [] and diff.changed == [] and [e.tag for e in diff.added] == ["track"]
