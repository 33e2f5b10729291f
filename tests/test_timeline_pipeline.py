"""`stillmotion timeline` / `regenerate` end to end: selection, music, exact placement, bad input, and a real
Kdenlive project rendered by melt before and after."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf
from PIL import Image
from stillmotion.engine.cli import main
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline import find_stills, read_timeline, read_timeline_info, safe_file_name
from stillmotion.engine.timeline.pipeline import TimelineSettings, process_timeline
from stillmotion.engine.timeline.regenerate import regenerate
from stillmotion.engine.timeline.timebase import to_frames
from stillmotion.engine.video import VideoInfo, read_frames

RATES = ["24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60"]


def _still(path: Path, size: tuple[int, int] = (64, 36)) -> Path:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), (xx * yy) % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _music(path: Path, seconds: float = 3.0) -> Path:
    sr = 48000
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.4 * np.sin(2 * np.pi * 110 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32), sr)
    return path


def _tr(start: int, dur: int, rate: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(dur, rate))


def _timeline(folder: Path, rate: Fraction, still_at: int = 5, still_frames: int = 9,
              music_trim: int = 10, music_at: int = 2) -> Path:
    """V1: gap, still.png, gap, still2.png; A1: gap, music.wav trimmed; written as .otio with relative paths."""
    r = float(rate)
    _still(folder / "still.png")
    _still(folder / "still2.png")
    _music(folder / "music.wav")
    timeline = otio.schema.Timeline(name="t", global_start_time=otio.opentime.RationalTime(0, r))
    video = otio.schema.Track(name="V1")
    video.append(otio.schema.Gap(source_range=_tr(0, still_at, r)))
    video.append(otio.schema.Clip(name="still.png", media_reference=otio.schema.ExternalReference(
        target_url="still.png"), source_range=_tr(0, still_frames, r)))
    video.append(otio.schema.Gap(source_range=_tr(0, 3, r)))
    video.append(otio.schema.Clip(name="second", media_reference=otio.schema.ExternalReference(
        target_url=(folder / "still2.png").as_uri()), source_range=_tr(0, 4, r)))
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audio.append(otio.schema.Gap(source_range=_tr(0, music_at, r)))
    audio.append(otio.schema.Clip(name="music", media_reference=otio.schema.ExternalReference(
        target_url="music.wav", available_range=_tr(0, int(3 * r), r)), source_range=_tr(music_trim, 40, r)))
    timeline.tracks.extend([video, audio])
    path = folder / "in.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


@pytest.mark.parametrize("rate_text", RATES)
def test_frame_exact_at_every_rate(tmp_path: Path, rate_text: str) -> None:
    rate = Fraction(rate_text)
    still_at, frames = 1001, 7  # an awkward record start: 1001 frames in (drop-frame minutes at 29.97)
    source = _timeline(tmp_path, rate, still_at=still_at, still_frames=frames, music_at=1000)
    out = tmp_path / "out.xml"  # FCP7 XML: a rate-sensitive writer/reader pair
    summary = process_timeline(source, out, TimelineSettings(clips=["still.png"]))
    assert [r["frames"] for r in summary.rendered] == [frames]
    timeline, info = read_timeline_info(out)
    assert info.rate == rate
    track = next(t for t in timeline.tracks if t.name == "StillMotion")
    (clip,) = track.find_clips()
    placed = clip.range_in_parent()
    assert (to_frames(placed.start_time, rate), to_frames(placed.duration, rate)) == (still_at, frames)
    original = next(c for c in timeline.find_clips() if c.name == "still.png")
    assert clip.range_in_parent() == original.range_in_parent()
    video = VideoInfo(summary.rendered[0]["output"])
    assert (video.frames, video.fps) == (frames, rate)


def test_music_segments_stills_and_provenance(tmp_path: Path) -> None:
    source = _timeline(tmp_path, Fraction(24), still_at=5, still_frames=9, music_trim=10, music_at=2)
    out = tmp_path / "edit.otio"
    before = source.read_bytes()
    summary = process_timeline(source, out, TimelineSettings(seed=3))
    assert source.read_bytes() == before
    assert [r["clip"] for r in summary.rendered] == ["still.png", "second"]
    timeline, _ = read_timeline_info(out)
    names = [t.name for t in timeline.tracks]
    assert names == ["V1", "A1", "StillMotion"]
    generated = timeline.tracks[2].find_clips()
    meta = generated[0].metadata["stillmotion"]
    # the still covers record frames [5, 14); music plays from record frame 2 with its in-point at frame 10:
    # under the still it starts at source frame 10 + (5 - 2) = 13, at the still's first frame, for 9 frames
    (segment,) = meta["request"]["audio"]
    assert Fraction(segment["source_start"]) == Fraction(13, 24)
    assert Fraction(segment["duration"]) == Fraction(9, 24)
    assert Fraction(segment["record_start"]) == 0
    assert meta["seed"] == 3 and meta["engine"] == "procedural" and meta["schedule"]
    assert meta["source_image"] == str(tmp_path / "still.png") and meta["record_range"]["frames"] == 9
    # relative media reference, resolvable from OUT's folder, with available_range set
    ref = generated[0].media_reference
    assert ref.target_url == "edit_stillmotion/001_still.mp4" and ref.available_range is not None
    assert (tmp_path / ref.target_url).is_file()
    # second still [17, 21): music ends at record 42, so it is all under music; starts at 10 + 15
    seg2 = generated[1].metadata["stillmotion"]["request"]["audio"][0]
    assert Fraction(seg2["source_start"]) == Fraction(25, 24)
    assert to_frames(generated[1].range_in_parent().start_time, Fraction(24)) == 17


def test_regenerate_from_metadata_alone(tmp_path: Path) -> None:
    source = _timeline(tmp_path, Fraction(25))
    out = tmp_path / "edit.otio"
    process_timeline(source, out, TimelineSettings(clips=["second"]))
    source.unlink()  # the original timeline is not needed
    media = tmp_path / "edit_stillmotion" / "001_second.mp4"
    first = media.read_bytes()
    summary = regenerate(out, "second", seed=99)
    assert summary["seed"] == 99 and media.read_bytes() != first
    timeline, _ = read_timeline_info(out)
    (clip,) = [c for c in timeline.find_clips() if "stillmotion" in c.metadata]
    assert clip.metadata["stillmotion"]["seed"] == 99
    assert VideoInfo(media).frames == 4


def test_cli_bad_input_and_partial_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _timeline(tmp_path, Fraction(24))
    (tmp_path / "still2.png").unlink()  # one still's media is missing: reported, the rest done
    code = main(["timeline", str(source), "-o", str(tmp_path / "a.otio"), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert "media for 'second' on V1 is missing" in captured.err
    assert [r["clip"] for r in json.loads(captured.out)["rendered"]] == ["still.png"]
    # OUT exists without --overwrite
    assert main(["timeline", str(source), "-o", str(tmp_path / "a.otio")]) == 2
    assert "exists" in capsys.readouterr().err
    # nothing to do -> exit 2, OUT not written
    (tmp_path / "still.png").unlink()
    assert main(["timeline", str(source), "-o", str(tmp_path / "b.otio")]) == 2
    err = capsys.readouterr().err
    assert "nothing to animate" in err and not (tmp_path / "b.otio").exists()
    # a name from the timeline cannot escape the media folder
    assert safe_file_name("../../etc/passwd", 1) == "001_etc_passwd.mp4"
    assert "/" not in safe_file_name("/abs/x\\y\x00z", 2)
    assert safe_file_name("shot.PNG", 3) == "003_shot.mp4" and safe_file_name("v1.2 final", 4) == "004_v1.2_final.mp4"


def test_zero_length_nested_offline_audio_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _timeline(tmp_path, Fraction(30))
    timeline = otio.adapters.read_from_file(str(source))
    video = timeline.tracks[0]
    nested = otio.schema.Stack(name="compound")
    inner = otio.schema.Track()
    inner.append(otio.schema.Clip(name="inner.png", media_reference=otio.schema.ExternalReference(
        target_url="still.png"), source_range=_tr(0, 5, 30)))
    nested.append(inner)
    video.append(nested)
    video.append(otio.schema.Clip(name="empty.png", media_reference=otio.schema.ExternalReference(
        target_url="still.png"), source_range=_tr(0, 0, 30)))
    otio.adapters.write_to_file(timeline, str(source))
    (tmp_path / "music.wav").rename(tmp_path / "gone.wav")
    before = source.read_bytes()
    code = main(["timeline", str(source), "--in-place", "--clips", "still.png,empty.png,inner.png"])
    err = capsys.readouterr().err
    assert code == 0
    assert "zero length" in err and "nested sequence" in err and "offline" in err
    assert (tmp_path / "in.otio.bak").read_bytes() == before  # backup of IN
    written = otio.adapters.read_from_file(str(source))
    assert [t.name for t in written.tracks] == ["V1", "A1", "StillMotion"]


def test_from_video_takes_the_in_point_frame(tmp_path: Path) -> None:
    from stillmotion.engine.video import VideoWriter

    video_path = tmp_path / "clip.mp4"
    with VideoWriter(video_path, 64, 36, Fraction(25)) as writer:
        for k in range(20):
            writer.write(np.full((36, 64, 3), k * 12, np.uint8))
    timeline = otio.schema.Timeline(name="v")
    track = otio.schema.Track(name="V1")
    track.append(otio.schema.Clip(name="shot", media_reference=otio.schema.ExternalReference(
        target_url="clip.mp4", available_range=_tr(0, 20, 25)), source_range=_tr(10, 6, 25)))
    timeline.tracks.append(track)
    source = tmp_path / "v.otio"
    otio.adapters.write_to_file(timeline, str(source))
    summary = process_timeline(source, tmp_path / "o.otio", TimelineSettings(from_video=True))
    still = np.asarray(Image.open(tmp_path / "o_stillmotion" / "001_shot.png"))
    assert abs(int(still.mean()) - 120) <= 3  # frame 10 of a ramp 0, 12, 24, ...
    assert summary.rendered[0]["frames"] == 6


@pytest.mark.skipif(shutil.which("melt") is None, reason="melt (MLT) is not installed")
def test_kdenlive_rendered_by_melt(tmp_path: Path) -> None:
    rate = 25.0
    _still(tmp_path / "still.png", (160, 90))
    _music(tmp_path / "music.wav", 2.5)
    timeline = otio.schema.Timeline(name="melt")
    v1 = otio.schema.Track(name="V1")
    v1.append(otio.schema.Clip(name="red", media_reference=otio.schema.GeneratorReference(
        generator_kind="SolidColor", parameters={"color": "0xff0000ff"}, available_range=_tr(0, 100, rate)),
        source_range=_tr(0, 50, rate)))
    v2 = otio.schema.Track(name="V2")
    v2.append(otio.schema.Gap(source_range=_tr(0, 10, rate)))
    v2.append(otio.schema.Clip(name="still.png", media_reference=otio.schema.ExternalReference(
        target_url="still.png", available_range=_tr(0, 1000, rate)), source_range=_tr(0, 20, rate)))
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    a1.append(otio.schema.Clip(name="music", media_reference=otio.schema.ExternalReference(
        target_url="music.wav", available_range=_tr(0, 62, rate)), source_range=_tr(5, 50, rate)))
    timeline.tracks.extend([v1, v2, a1])
    source = tmp_path / "in.kdenlive"
    from stillmotion.engine.timeline import write_timeline

    write_timeline(timeline, source)
    assert main(["timeline", str(source), "-o", str(tmp_path / "out.kdenlive"), "--size", "image"]) == 0

    def render(name: str) -> list[np.ndarray]:
        target = tmp_path / f"{name}.mkv"
        subprocess.run(["melt", "-quiet", str(tmp_path / f"{name}.kdenlive"), "out=49", "-consumer",
                        f"avformat:{target}", "vcodec=ffv1", "an=1", "width=160", "height=90"],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=120, cwd=tmp_path)
        return [f.astype(np.int16) for f in read_frames(target)]

    before, after = render("in"), render("out")
    generated = [f.astype(np.int16) for f in read_frames(tmp_path / "out_stillmotion" / "001_still.mp4")]
    assert len(before) == len(after) == 50 and len(generated) == 20
    outside = [k for k in range(50) if not 10 <= k < 30]
    assert all(np.array_equal(before[k], after[k]) for k in outside)
    # inside: IN shows the still frozen; OUT moves exactly as the generated clip does, frame for frame
    assert all(np.array_equal(before[k], before[10]) for k in range(10, 30))
    moved_out = np.array([np.abs(after[k + 1] - after[k]).mean() for k in range(10, 29)])
    moved_gen = np.array([np.abs(generated[k + 1] - generated[k]).mean() for k in range(19)])
    assert moved_out.max() > 0.2
    assert np.corrcoef(moved_out, moved_gen)[0, 1] > 0.95
    assert np.corrcoef(moved_out[1:], moved_gen[:-1])[0, 1] < 0.8  # a one-frame shift would not match


def test_out_only_when_every_clip_rendered_or_partial(tmp_path: Path) -> None:
    """A clip whose render fails keeps OUT unwritten (finished clips stay for the rerun); --partial writes OUT
    with the clips that are done."""
    from stillmotion.engine.render import render_clip

    def flaky(request):  # the second still's render fails, as a crashed or cancelled job would
        if "second" in request.output:
            raise BadInputError("worker died")
        return render_clip(request)

    source = _timeline(tmp_path, Fraction(24))
    out = tmp_path / "a.otio"
    with pytest.raises(BadInputError, match="1 of 2 clip"):
        process_timeline(source, out, TimelineSettings(), render=flaky)
    assert not out.exists() and (tmp_path / "a_stillmotion" / "001_still.mp4").is_file()
    summary = process_timeline(source, out, TimelineSettings(partial=True), render=flaky, overwrite=True)
    assert [r["clip"] for r in summary.rendered] == ["still.png"]
    assert out.exists() and any("worker died; skipped" in p for p in summary.problems)


def test_timeline_command_resumes_from_the_job_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the job store: a second run of the same command reuses every finished clip."""
    source = _timeline(tmp_path, Fraction(24))
    out = tmp_path / "a.otio"
    assert main(["timeline", str(source), "-o", str(out), "--workers", "1"]) == 0
    clip = tmp_path / "a_stillmotion" / "001_still.mp4"
    stamp = clip.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["timeline", str(source), "-o", str(tmp_path / "b.otio"), "--json"]) == 0
    reused = tmp_path / "b_stillmotion" / "001_still.mp4"
    assert reused.read_bytes() == clip.read_bytes() and clip.stat().st_mtime_ns == stamp


def test_muted_music_and_disabled_stills_are_left_alone(tmp_path: Path) -> None:
    """Muted audio is not heard, so it does not drive motion; a disabled still is skipped unless named."""
    source = _timeline(tmp_path, Fraction(24))
    timeline = otio.adapters.read_from_file(str(source))
    timeline.tracks[1].enabled = False  # mute A1
    timeline.tracks[0][1].enabled = False  # disable the first still
    otio.adapters.write_to_file(timeline, str(source))
    selection = find_stills(read_timeline(source), Fraction(24), tmp_path)
    assert [s.name for s in selection.stills] == ["second"]
    assert selection.stills[0].audio == []
    assert any("muted" in p for p in selection.problems) and any("disabled" in p for p in selection.problems)
    named = find_stills(read_timeline(source), Fraction(24), tmp_path, names=["still.png"])
    assert [s.name for s in named.stills] == ["still.png"]


def test_timeline_takes_the_same_render_options_as_render(tmp_path: Path) -> None:
    """--preset/--intensity/--anchor/--fit/--qc-* mean the same for `timeline` as for `render`."""
    source = _timeline(tmp_path, Fraction(24))
    out = tmp_path / "a.otio"
    assert main(["timeline", str(source), "-o", str(out), "--clips", "still.png", "--preset", "calm",
                 "--intensity", "0.5", "--anchor", "end", "--fit", "letterbox", "--seed", "7",
                 "--qc-gates", "frozen,drift", "--qc-threshold", "max_identity_drift=0.4"]) == 0
    timeline, _ = read_timeline_info(out)
    (clip,) = [c for c in timeline.find_clips() if "stillmotion" in c.metadata]
    request = clip.metadata["stillmotion"]["request"]
    assert (request["preset"], request["intensity"], request["anchor"], request["fit"], request["seed"]) == (
        "calm", 0.5, "end", "letterbox", 7)
    thresholds = request["options"]["qc_thresholds"]
    assert list(thresholds["gates"]) == ["frozen", "drift"] and thresholds["max_identity_drift"] == 0.4
