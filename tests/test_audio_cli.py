"""`stillmotion analyze` end to end: JSON contents, plot, odd inputs, bad inputs and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import *  # noqa: F403
from audio_fixtures import ffmpeg, tone
from PIL import Image
from stillmotion.engine.cli import main
from stillmotion.engine.rates import frame_count

FRAME_KEYS = ("energy", "onset", "low", "mid", "high", "beat_phase")


def test_analyze_json_and_plot(synthetic_music, tmp_path: Path, capsys) -> None:
    track = synthetic_music["waltz_3_4"]
    out, png = tmp_path / "waltz.json", tmp_path / "waltz.png"
    code = main(["analyze", track["wav"], "--fps", "23.976", "--start", "2.5", "--duration", "10",
                 "--json", str(out), "--plot", str(png)])
    assert code == 0
    assert "BPM" in capsys.readouterr().out
    data = json.loads(out.read_text())
    for key in ("tempo", "beats", "downbeats", "onsets", "sections", "fps", "frames", "meter"):
        assert key in data
    assert data["tempo"] == pytest.approx(138, rel=0.03) and data["meter"] == 3
    assert data["fps"] == pytest.approx(23.976, abs=1e-3) and data["fps_exact"] == "24000/1001"
    count = frame_count(Fraction(10), Fraction(24000, 1001))
    assert data["frames"]["count"] == count
    for key in FRAME_KEYS:
        assert len(data["frames"][key]) == count
        assert 0.0 <= min(data["frames"][key]) and max(data["frames"][key]) <= 1.0
    beats = np.array(data["beats"])
    assert beats.min() >= 2.5 and beats.max() < 12.5  # absolute file times, inside the range
    truth = np.array(track["beats"])
    assert all(np.min(np.abs(truth - b)) < 0.05 for b in beats)
    assert sum(data["frames"]["beat"]) == len(beats)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] >= 1000
        pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 20  # something is drawn
    # An existing output is only replaced when asked.
    assert main(["analyze", track["wav"], "--json", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["analyze", track["wav"], "--json", str(out), "--overwrite"]) == 0


def test_silence_exits_zero_with_null_tempo(tmp_path: Path) -> None:
    wav, out = tmp_path / "quiet.wav", tmp_path / "quiet.json"
    sf.write(wav, np.zeros(44100 * 3), 44100)
    assert main(["analyze", str(wav), "--json", str(out), "--plot", str(tmp_path / "q.png")]) == 0
    data = json.loads(out.read_text())
    assert data["tempo"] is None and data["beats"] == [] and data["downbeats"] == []
    assert all(not any(data["frames"][key]) for key in FRAME_KEYS)
    assert (tmp_path / "q.png").is_file()


@pytest.mark.parametrize("kind", ["tiny_0.1s", "mono_8k", "flac_96k", "surround_51", "mp3", "m4a", "ogg", "aiff"])
def test_odd_inputs_work(kind: str, tmp_path: Path, make_audio) -> None:
    rate = {"mono_8k": 8000, "flac_96k": 96000}.get(kind, 44100)
    seconds = 0.1 if kind == "tiny_0.1s" else 3.0
    channels = {"flac_96k": 2, "surround_51": 6, "mp3": 2, "m4a": 2}.get(kind, 1)
    name = {"flac_96k": "a.flac", "mp3": "a.mp3", "m4a": "a.m4a", "ogg": "a.ogg", "aiff": "a.aiff"}.get(kind, "a.wav")
    # A 2-Hz pulse train so there is something to find.
    data = tone(seconds, rate, 330.0, channels) * (np.sin(2 * np.pi * 2 * np.arange(int(seconds * rate)) / rate)
                                                  > 0)[:, None]
    path = make_audio(name, data, rate, "PCM_24" if kind == "flac_96k" else None)
    out = tmp_path / "out.json"
    assert main(["analyze", str(path), "--fps", "25", "--json", str(out)]) == 0
    frames = json.loads(out.read_text())["frames"]
    assert frames["count"] == frame_count(Fraction(seconds), Fraction(25)) or abs(
        frames["count"] - seconds * 25) <= 2  # compressed formats pad the end a little
    assert max(frames["energy"]) > 0.5


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "bad_fps", "bad_start"])
def test_bad_input_exits_two_with_one_line(case: str, tmp_path: Path, make_audio) -> None:
    path = tmp_path / "song.wav"
    extra: list[str] = []
    if case == "text":
        path.write_text("not audio\n" * 50)
    elif case == "truncated":
        full = make_audio("full.m4a", tone(2.0, 44100), 44100)
        path = tmp_path / "cut.m4a"
        path.write_bytes(full.read_bytes()[:3000])
    elif case in ("bad_fps", "bad_start"):
        sf.write(path, tone(1.0, 44100), 44100)
        extra = ["--fps", "fast"] if case == "bad_fps" else ["--start", "-3"]
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "stillmotion.engine", "analyze", str(path), "--json", str(out),
                           *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()
    if case in ("missing", "text", "truncated"):
        assert path.name in lines[0]


def test_help_is_complete() -> None:
    proc = subprocess.run([sys.executable, "-m", "stillmotion.engine", "analyze", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for word in ("--fps", "--start", "--duration", "--json", "--plot", "--overwrite", "beat_phase", "sections"):
        assert word in proc.stdout


def test_video_container_audio_is_read(tmp_path: Path) -> None:
    """A music video (H.264 + AAC in MP4) is as good as an audio file."""
    video = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=2", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
           "-c:v", "libx264", "-c:a", "aac", "-shortest", str(video))
    out = tmp_path / "v.json"
    assert main(["analyze", str(video), "--json", str(out)]) == 0
    assert max(json.loads(out.read_text())["frames"]["energy"]) > 0.5
