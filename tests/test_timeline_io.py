"""Reading every real timeline fixture, the adapter fixes, XML safety, and read -> add track -> write -> read."""

from __future__ import annotations

import zipfile
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from stillmotion.engine.errors import BadInputError, OutputError
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.timeline import read_timeline, read_timeline_info, write_timeline
from stillmotion.engine.timeline.pipeline import ClipOutcome, add_generated_tracks
from stillmotion.engine.timeline.select import Still
from stillmotion.engine.timeline.timebase import to_frames

DATA = Path(__file__).resolve().parent / "data" / "timelines"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "timelines"
GPL_FIXTURE = SHARED / "fcp7_xml" / "resolve_xmeml_multitrack_25fps.xml"

FIXTURES = sorted(p for p in DATA.rglob("*") if p.is_file())
if GPL_FIXTURE.is_file():
    FIXTURES.append(GPL_FIXTURE)

#: Where the round trip goes: the same format, except where that format cannot hold the new track
#: (an EDL holds one video track) or its writer fails on the file (documented in docs/timelines.md).
ROUND_TRIP_SUFFIX = {".edl": ".otio"}
WRITER_FAILS = {"2997fps-DFTC.aaf": ".otio"}  # AAF writer: KeyError 'ImageAspectRatio' on Premiere's AAF
#: FCPXML connected-clip lanes: the adapter's writer re-anchors lane clips to spine clips and its reader then
#: places them elsewhere (lane record positions shift); spine and clip source ranges survive.
LANE_POSITIONS_LOST = {"dawfilekit_23.98.fcpxml", "dawfilekit_29.97d.fcpxml"}
#: Writer losses (docs/timelines.md): the Kdenlive writer drops clip markers; the FCP7 XML writer writes a
#: generator item's in-point as 0. These fixtures also round-trip through .otio with everything equal.
CLIP_MARKERS_LOST = {"kdenlive_mixes_markers.kdenlive"}
GENERATOR_START_LOST = {"premiere_generators.xml"}


def _markers(obj) -> list[tuple[str, object]]:
    return [(m.name, m.marked_range) for m in obj.markers]


def _item_signature(item, losses: frozenset[str] = frozenset()) -> tuple:
    source = getattr(item, "source_range", None)
    placed = item.range_in_parent() if not isinstance(item, otio.schema.Transition) else None
    markers = _markers(item) if hasattr(item, "markers") and "clip_markers" not in losses else []
    if ("generator_start" in losses and isinstance(getattr(item, "media_reference", None),
                                                   otio.schema.GeneratorReference)):
        source = source.duration if source is not None else None
    return (type(item).__name__, item.name, source, placed, markers)


def _signature(timeline: otio.schema.Timeline, skip_lanes: bool = False,
               losses: frozenset[str] = frozenset()) -> list:
    tracks = []
    lane_clips: list = []
    for index, track in enumerate(timeline.tracks):
        if skip_lanes and index > 0 and track.kind == otio.schema.TrackKind.Video:
            lane_clips.extend((c.name, str(c.source_range)) for c in track.find_clips())
            continue
        tracks.append((track.kind, [_item_signature(i, losses) for i in track
                                    if not isinstance(i, otio.schema.Transition)],
                       _markers(track)))
    if skip_lanes:
        tracks.append(("lanes", sorted(lane_clips)))
    return tracks


def _fake_generated(timeline: otio.schema.Timeline, rate: Fraction, tmp: Path) -> list[ClipOutcome]:
    """Two generated clips placed like stills would be: at the first video clip's record range and later."""
    clips = [c for c in timeline.find_clips() if c.parent() in list(timeline.tracks)]
    first = clips[0].range_in_parent() if clips else None
    start = to_frames(first.start_time, rate) if first else 0
    frames = max(1, to_frames(first.duration, rate)) if first else 24
    outcomes = []
    placements = [(start, frames)]
    if start + frames + 20 <= to_frames(timeline.duration(), rate):
        placements.append((start + frames + 7, 13))
    for n, (s, f) in enumerate(placements, start=1):
        media = tmp / "out_stillmotion" / f"{n:03d}.mp4"
        still = Still(clip=otio.schema.Clip(), name=f"still{n}", track_index=0, track_name="V1",
                      record_start=s, frames=f, image=tmp / "x.png")
        request = RenderRequest(image=str(tmp / "x.png"), output=str(media), fps=rate, frames=f, width=16, height=16)
        outcomes.append(ClipOutcome(still, request))
    return outcomes


def _losses(path: Path, suffix: str) -> frozenset[str]:
    if suffix == ".otio":
        return frozenset()
    losses = set()
    if path.name in CLIP_MARKERS_LOST:
        losses.add("clip_markers")
    if path.name in GENERATOR_START_LOST:
        losses.add("generator_start")
    return frozenset(losses)


@pytest.mark.parametrize("to_otio", [False, True], ids=["native", "otio"])
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_round_trip(path: Path, to_otio: bool, tmp_path: Path) -> None:
    timeline, info = read_timeline_info(path)
    assert any(True for _ in timeline.find_clips()), "every fixture holds clips"
    suffix = WRITER_FAILS.get(path.name, ROUND_TRIP_SUFFIX.get(info.format.suffix, info.format.suffix))
    if to_otio:
        if suffix == ".otio":
            pytest.skip("the native round trip already goes through .otio")
        suffix = ".otio"
    losses = _losses(path, suffix)
    original = _signature(timeline, losses=losses)
    timeline_before = timeline.deepcopy()
    original_names = [t.name for t in timeline.tracks]
    out = tmp_path / f"out{suffix}"
    (tmp_path / "out_stillmotion").mkdir()
    generated = _fake_generated(timeline, info.rate, tmp_path)
    add_generated_tracks(timeline, generated, info.rate, out, "StillMotion", relative_media=True)
    write_timeline(timeline, out, rate=info.rate)
    again, info2 = read_timeline_info(out, rate_hint=info.rate if suffix == ".edl" else None)
    assert info2.rate == info.rate
    names = [t.name for t in again.tracks]
    if suffix == ".fcpxml":  # FCPXML has lanes, not track names: the new track is the new top lane
        assert len(names) == len(original_names) + 1
        new_track = max((t for t in again.tracks if t.kind == otio.schema.TrackKind.Video), key=lambda t: int(t.name))
    else:
        assert "StillMotion" in names
        new_track = again.tracks[names.index("StillMotion")]
    again.tracks.remove(new_track)
    skip = path.name in LANE_POSITIONS_LOST and suffix == ".fcpxml"
    if skip:  # connected clips are re-anchored: their markers move to the spine clip they hang from
        losses = losses | {"clip_markers"}
        original = _signature(timeline_before, skip_lanes=True, losses=losses)
        assert {m.name for c in again.find_clips() for m in c.markers} == set(
            m.name for c in timeline_before.find_clips() for m in c.markers)
    if path.name in CLIP_MARKERS_LOST and suffix != ".otio":
        assert [(c.name, c.source_range) for c in again.find_clips()] == [
            (c.name, c.source_range) for c in timeline_before.find_clips()]
        return
    assert _signature(again, skip_lanes=skip, losses=losses) == original
    placed = [(to_frames(c.range_in_parent().start_time, info.rate), to_frames(c.duration(), info.rate))
              for c in new_track.find_clips()]
    assert placed == [(o.still.record_start, o.still.frames) for o in generated]


def test_premiere_xml_read_write_round_trip(tmp_path: Path) -> None:
    """The 192-clip Premiere XML reads, writes and reads back whole (its speed is bench/bench_timeline.py's)."""
    path = DATA / "fcp7_xml" / "kdenlive_example_from_fcp.xml"
    timeline, info = read_timeline_info(path)
    assert len(list(timeline.find_clips())) == 128 and info.rate == Fraction(30000, 1001)
    written = tmp_path / "out.xml"
    write_timeline(timeline, written, rate=info.rate)
    again, again_info = read_timeline_info(written)
    assert again_info.rate == info.rate
    assert [c.name for c in again.find_clips()] == [c.name for c in timeline.find_clips()]
    assert [to_frames(c.duration(), info.rate) for c in again.find_clips()] == \
        [to_frames(c.duration(), info.rate) for c in timeline.find_clips()]


# ---------------------------------------------------------------------------------------------------------------
# adapter fixes
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,rate", [("dawfilekit_23.98.fcpxml", Fraction(24000, 1001)),
                                       ("dawfilekit_29.97d.fcpxml", Fraction(30000, 1001))])
def test_fcpxml_ntsc_rates_are_exact(name: str, rate: Fraction) -> None:
    timeline, info = read_timeline_info(DATA / "fcpxml" / name)
    assert info.rate == rate
    spine = timeline.tracks[0]
    assert all(abs(item.duration().rate - float(rate)) < 1e-9 for item in spine)
    if name.startswith("dawfilekit_23.98"):
        # the third spine clip sits at offset="1407406/24000s" = exactly 1406 frames of 1001/24000 s
        starts = [to_frames(c.range_in_parent().start_time, rate) for c in spine if isinstance(c, otio.schema.Clip)]
        assert starts[:3] == [0, 760, 1406]
    clip = timeline.find_clips()[0]
    assert clip.media_reference.target_url == "file:///Users/user/Movies/TestVideo.mp4"  # from <media-rep>


def test_fcpxml_still_image_reads() -> None:
    timeline, info = read_timeline_info(DATA / "fcpxml" / "openfcpxmlkit_ImageSample.fcpxml")
    (clip,) = list(timeline.find_clips())
    assert clip.media_reference.target_url.endswith("AWorldofStories.Still001.png")
    # duration="1098097/24000s" at 1001/24000 s per frame = 1097 frames (+97/1001, rounded down)
    assert to_frames(clip.duration(), info.rate) == 1097


def test_edl_drop_frame_and_speed_lines() -> None:
    timeline, info = read_timeline_info(DATA / "edl" / "edlgenius_cmx3600_2997df.edl")
    assert info.rate == Fraction(30000, 1001) and len(list(timeline.find_clips())) == 9
    music, info = read_timeline_info(DATA / "edl" / "edlgenius_12_16_TL01_MUSIC.edl")
    assert len(list(music.find_clips())) == 588 and any("ignore_timecode_mismatch" in n for n in info.notes)
    ntsc, info = read_timeline_info(DATA / "edl" / "premiere_example.edl", rate_hint="29.97")
    assert info.rate == Fraction(30000, 1001)


def test_edl_output_refuses_second_video_track(tmp_path: Path) -> None:
    timeline = read_timeline(DATA / "edl" / "premiere_example.edl")
    timeline.tracks.append(otio.schema.Track(name="StillMotion"))
    with pytest.raises(OutputError, match="one video track"):
        write_timeline(timeline, tmp_path / "out.edl")
    assert not (tmp_path / "out.edl").exists()


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------
BOMB = """<?xml version="1.0"?>
<!DOCTYPE xmeml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<xmeml version="5"><sequence><name>&d;</name></sequence></xmeml>
"""


def test_entity_bomb_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(BOMB)
    with pytest.raises(BadInputError, match="refused unsafe XML"):
        read_timeline(path)


@pytest.mark.parametrize("suffix,root", [(".xml", "xmeml"), (".fcpxml", "fcpxml"), (".kdenlive", "mlt")])
def test_external_entity_refused_and_not_read(tmp_path: Path, suffix: str, root: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    path = tmp_path / f"xxe{suffix}"
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY x SYSTEM "{secret.as_uri()}">]>\n'
                    f'<{root} version="5"><name>&x;</name></{root}>\n')
    with pytest.raises(BadInputError) as caught:
        read_timeline(path)
    assert "unsafe XML" in str(caught.value) and "TOP-SECRET" not in str(caught.value)


def test_truncated_files(tmp_path: Path) -> None:
    for source in (DATA / "fcp7_xml" / "premiere_example.xml", DATA / "kdenlive" / "qtblend-freeze.kdenlive",
                   DATA / "otio" / "ayon_hiero_timeline.otio"):
        data = source.read_bytes()
        cut = tmp_path / source.name
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(BadInputError, match="truncated"):
            read_timeline(cut)
    aaf = tmp_path / "cut.aaf"
    aaf.write_bytes((DATA / "aaf" / "transitions.aaf").read_bytes()[:3000])
    with pytest.raises(BadInputError, match="AAF adapter cannot read it"):
        read_timeline(aaf)
    bundle = tmp_path / "cut.otioz"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("content.otio", "{}" * 1000)
    bundle.write_bytes(bundle.read_bytes()[:100])
    with pytest.raises(BadInputError, match="truncated or damaged zip"):
        read_timeline(bundle)


@pytest.mark.parametrize("source,wrong,expect", [
    ("kdenlive/qtblend-freeze.kdenlive", ".xml", "Kdenlive"),
    ("fcp7_xml/hiero_xml_export.xml", ".fcpxml", "Final Cut Pro 7"),
    ("otio/ayon_hiero_timeline.otio", ".edl", "JSON"),
    ("aaf/transitions.aaf", ".otio", "AAF"),
    ("edl/avid_example.edl", ".kdenlive", "text"),
    ("fcp7_xml/hiero_xml_export.xml", ".aaf", "Final Cut Pro 7"),
])
def test_content_not_matching_extension(tmp_path: Path, source: str, wrong: str, expect: str) -> None:
    path = tmp_path / f"renamed{wrong}"
    path.write_bytes((DATA / source).read_bytes())
    with pytest.raises(BadInputError, match=expect):
        read_timeline(path)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown timeline extension"):
        read_timeline(tmp_path / "cut.mov")
    with pytest.raises(BadInputError, match="does not exist"):
        read_timeline(tmp_path / "cut.otio")


def test_edl_rate_guessed_from_timecodes_and_avid_transition_refused(tmp_path: Path) -> None:
    edl = tmp_path / "pal.edl"
    edl.write_text("TITLE: pal\n\n001  AX       V     C        00:00:00:00 00:00:01:24 01:00:00:00 01:00:01:24\n"
                   "* FROM CLIP NAME: a.png\n", encoding="utf-8")
    timeline, info = read_timeline_info(edl)
    assert info.rate == 25 and "frame 24" in info.notes[0] and "--rate" in info.notes[0]
    # the first record-in is the timeline's start, not a gap
    assert timeline.global_start_time.to_timecode() == "01:00:00:00"
    assert timeline.tracks[0][0].range_in_parent().start_time.value == 0
    avid = tmp_path / "audio.edl"
    avid.write_text("TITLE: music\nFCM: NON-DROP FRAME\n\n"
                    "001  BL       A     C        00:00:00:00 00:00:00:00 01:00:00:00 01:00:00:00\n"
                    "001  MUSIC    A     D    012 00:00:00:00 00:00:05:00 01:00:00:00 01:00:05:00\n",
                    encoding="utf-8")
    with pytest.raises(BadInputError) as caught:
        read_timeline_info(avid)
    assert "\n" not in str(caught.value) and "its first event is a transition" in str(caught.value)
