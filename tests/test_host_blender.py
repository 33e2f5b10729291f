"""Blender host: the sequencer <-> OTIO mapping (no Blender needed), then the real thing with Debian's blender in
background mode: install the add-on with `stillmotion install-host`, build a scene with image and sound strips,
run `stillmotion.animate_strips`, check the movie strip's channel and frames, render the sequencer and compare
its frames with the generated clip's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile
from PIL import Image
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline import find_stills, timeline_rate
from stillmotion.engine.video import read_frames
from stillmotion.plugin.blender.convert import origin_frame, scene_rate, sequencer_to_otio
from stillmotion.plugin.blender.snapshot import strips_to_animate

BLENDER = shutil.which("blender")


def strip(name: str, kind: str, channel: int, start: int, end: int, **extra: object) -> dict:
    data = {"name": name, "type": kind, "channel": channel, "frame_start": float(start), "frame_final_start": start,
            "frame_final_end": end, "frame_offset_start": 0, "frame_offset_end": 0, "frame_duration": end - start,
            "mute": False, "select": False, "animation_offset_start": 0}
    data.update(extra)
    return data


def snapshot(strips: list[dict], fps: int = 24, fps_base: float = 1.0010000467300415) -> dict:
    return {"version": 1, "scene": "Scene", "fps": fps, "fps_base": fps_base, "frame_start": 1, "frame_end": 250,
            "frame_current": 1, "preview_range": None, "resolution": [160, 90], "blend_file": "",
            "channels": {}, "strips": strips}


# ------------------------------------------------------------------------------------------------ without Blender
def test_scene_rate_is_exact_from_float32_fps_base() -> None:
    assert scene_rate(24, 1.0010000467300415) == Fraction(24000, 1001)
    assert scene_rate(30, 1.0010000467300415) == Fraction(30000, 1001)
    assert scene_rate(25, 1.0) == 25
    with pytest.raises(BadInputError):
        scene_rate(0, 1.0)


def test_sequencer_maps_to_tracks_with_offsets_mutes_and_metas(tmp_path: Path) -> None:
    png, wav = tmp_path / "a.png", tmp_path / "song.wav"
    Image.new("RGB", (8, 8)).save(png)
    soundfile.write(wav, np.zeros(48000 * 4, dtype=np.float32), 48000)
    strips = [
        strip("a", "IMAGE", 2, 10, 34, directory=str(tmp_path), files=["a.png"], select=True),
        strip("muted", "IMAGE", 2, 40, 50, directory=str(tmp_path), files=["a.png"], mute=True),
        # a sound strip trimmed by 12 frames at its head and started 0.5 s into the file
        strip("song", "SOUND", 1, 12, 96, frame_start=0.0, frame_offset_start=12, frame_duration=96,
              filepath=str(wav), sound_offset=0.5, volume=1.0),
        strip("meta", "META", 4, 60, 70, frame_start=60.0, strips=[
            strip("inner", "IMAGE", 1, 60, 70, directory=str(tmp_path), files=["a.png"])]),
        strip("title", "TEXT", 5, -5, 3),
    ]
    snap = snapshot(strips)
    timeline = sequencer_to_otio(snap)
    rate = timeline_rate(timeline)
    assert rate == Fraction(24000, 1001)
    assert origin_frame(snap) == -5 and timeline.global_start_time.value == -5
    video = list(timeline.video_tracks())
    assert [t.name for t in video] == ["Channel 2", "Channel 4", "Channel 5"]
    assert [t.name for t in timeline.audio_tracks()] == ["Channel 1"]
    clip_a = video[0][1]  # a gap of 15 frames (-5..10), then the still
    assert clip_a.name == "a" and clip_a.range_in_parent().start_time.to_frames() == 15
    assert clip_a.duration().to_frames() == 24 and clip_a.enabled
    assert not video[0][3].enabled  # the muted strip
    assert isinstance(video[1][1], otio.schema.Stack) and video[1][1].name == "meta"
    song = next(iter(timeline.audio_tracks()))[1]
    # 12 trimmed frames plus 0.5 s at 24000/1001 = 12 + 11.988 frames into the file
    assert song.source_range.start_time.value == pytest.approx(12 + 0.5 * 24000 / 1001)
    selection = find_stills(timeline, rate, tmp_path)
    still = next(s for s in selection.stills if s.name == "a")
    assert (still.record_start, still.frames) == (15, 24)
    assert [seg.record_start for seg in still.audio] == [Fraction(2) / rate]  # the song starts 2 frames later
    assert any("meta" in p and "nested" in p for p in selection.problems)
    assert strips_to_animate(snap) == ["a"]
    snap["strips"][0]["select"] = False
    assert strips_to_animate(snap) == ["a"]  # none selected: every unmuted image strip


def test_muted_sound_is_not_music(tmp_path: Path) -> None:
    png, wav = tmp_path / "a.png", tmp_path / "song.wav"
    Image.new("RGB", (8, 8)).save(png)
    soundfile.write(wav, np.zeros(48000, dtype=np.float32), 48000)
    timeline = sequencer_to_otio(snapshot([
        strip("a", "IMAGE", 2, 1, 20, directory=str(tmp_path), files=["a.png"]),
        strip("song", "SOUND", 1, 1, 20, filepath=str(wav), mute=True)]))
    stills = find_stills(timeline, timeline_rate(timeline), tmp_path).stills
    assert stills[0].audio == []


def test_overlapping_strips_in_a_channel_are_one_line() -> None:
    with pytest.raises(BadInputError, match="overlap"):
        sequencer_to_otio(snapshot([strip("a", "COLOR", 1, 1, 20), strip("b", "COLOR", 1, 10, 30)]))


# ------------------------------------------------------------------------------------------------ with Blender
SCENE_SCRIPT = r"""
import json, sys, bpy
args = json.loads(sys.argv[sys.argv.index("--") + 1])
bpy.ops.preferences.addon_enable(module="stillmotion_vse")
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = 24, 1.001
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 160, 90, 100
scene.view_settings.view_transform = "Standard"
editor = scene.sequence_editor_create()
strips = editor.sequences
strips.new_sound("music", args["wav"], 1, 1)
still = strips.new_image("still", args["png"], 2, 5)
still.frame_final_duration = 24
other = strips.new_image("other", args["png"], 3, 40)
other.frame_final_duration = 12
for s in editor.sequences_all:
    s.select = False
still.select = True
result = bpy.ops.stillmotion.animate_strips(output_dir=args["out"], preset="pulse", seed=3)
report = {"operator": list(result), "strips": [
    {"name": s.name, "type": s.type, "channel": s.channel, "start": s.frame_final_start,
     "frames": s.frame_final_duration, "path": getattr(s, "filepath", "")} for s in editor.sequences_all],
    "menu": hasattr(bpy.types, "STILLMOTION_OT_open_panel")}
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGB"
for frame in args["frames"]:  # only these few frames of the generated range
    scene.frame_set(frame)
    scene.render.filepath = args["render"] + "/f_%04d.png" % frame
    bpy.ops.render.render(write_still=True)
with open(args["report"], "w") as handle:
    json.dump(report, handle)
"""


def _music(path: Path, seconds: float = 3.0, bpm: float = 120.0) -> None:
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    beat = (t % (60 / bpm)) < 0.05
    signal = 0.6 * np.sin(2 * np.pi * 80 * t) * beat + 0.1 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(path, signal.astype(np.float32), rate)


def _still(path: Path) -> None:
    y, x = np.mgrid[0:180, 0:320]
    rgb = np.stack([(x * 255 // 319), (y * 255 // 179), ((x // 20 + y // 20) % 2) * 255], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


@pytest.mark.skipif(BLENDER is None, reason="blender is not installed (apt-get install blender)")
def test_blender_animates_strips_and_renders_them(tmp_path: Path) -> None:
    png, wav, out, render = tmp_path / "still.png", tmp_path / "music.wav", tmp_path / "out", tmp_path / "render"
    _still(png)
    _music(wav)
    render.mkdir()
    scripts = tmp_path / "scripts"
    installed = subprocess.run([sys.executable, "-m", "stillmotion.engine", "install-host", "blender",
                                "--target", str(scripts / "addons")], capture_output=True, text=True, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert (scripts / "addons" / "stillmotion_vse" / "blender_manifest.toml").is_file()
    frames = [12, 16, 23]  # Blender frames inside the still's 5..28 (clip frames 7, 11, 18)
    args = {"png": str(png), "wav": str(wav), "out": str(out), "render": str(render), "frames": frames,
            "report": str(tmp_path / "report.json")}
    script = tmp_path / "scene.py"
    script.write_text(SCENE_SCRIPT)
    env = dict(os.environ, BLENDER_USER_SCRIPTS=str(scripts))
    env.pop("STILLMOTION_PYTHON", None)
    done = subprocess.run([BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script),
                           "--", json.dumps(args)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["operator"] == ["FINISHED"] and report["menu"]
    movies = [s for s in report["strips"] if s["type"] == "MOVIE"]
    # only the selected still is animated, on the lowest channel above it that is free over frames 5..28
    # ("other" sits on channel 3 but later), at exactly the still's frames
    assert [(m["name"], m["channel"], m["start"], m["frames"]) for m in movies] == [
        ("still (StillMotion)", 3, 5, 24)]
    clip = Path(movies[0]["path"])
    animated = otio.adapters.read_from_file(str(out / "Scene_animated.otio"))
    assert timeline_rate(animated) == Fraction(24000, 1001)
    decoded = list(read_frames(clip, max_side=160))
    assert len(decoded) == 24 and decoded[0].shape[:2] == (90, 160)
    still = np.asarray(Image.open(png).convert("RGB").resize((160, 90)), dtype=np.float32)
    assert sorted(p.name for p in render.iterdir()) == [f"f_{f:04d}.png" for f in frames]
    for frame in frames:
        rendered = np.asarray(Image.open(render / f"f_{frame:04d}.png").convert("RGB"), dtype=np.float32)
        distance = [float(np.abs(rendered - d).mean()) for d in decoded]
        # the sequencer shows clip frame (frame - 5): the closest of all 24, nearly identical, and not the still
        assert int(np.argmin(distance)) == frame - 5, distance
        assert distance[frame - 5] < 3.0
        assert np.abs(rendered - still).mean() > distance[frame - 5] + 2.0


def test_scene_markers_become_timeline_markers_at_record_frames() -> None:
    snap = snapshot([strip("title", "COLOR", 1, -5, 20)])
    snap["markers"] = [{"name": "Drop", "frame": 1}, {"name": "Out", "frame": 19}]
    timeline = sequencer_to_otio(snap)
    assert [(m.name, m.marked_range.start_time.to_frames(), m.metadata["blender"]["frame"])
            for m in timeline.tracks.markers] == [("Drop", 6, 1), ("Out", 24, 19)]  # origin is frame -5
