"""`stillmotion render`, end to end through the real CLI: exact frame counts and durations at every rate, audio
length, odd-but-valid inputs that must work, and bad inputs that must fail with one line, exit 2, no file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_fixtures import ffmpeg, photo, write_click_track, write_odd_images
from PIL import Image
from stillmotion.engine.cli import main
from stillmotion.engine.images import fit_image, load_image
from stillmotion.engine.video import VideoInfo, read_frames

SMALL = ["--width", "64", "--height", "48", "--no-qc"]


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "song.wav"
    write_click_track(path, 6.0, bpm=120)
    return path


def _render(args: list[str]) -> int:
    return main(["render", *args])


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name or ".try" in p.name]


@pytest.mark.parametrize("fps_text, fps", [
    ("24", Fraction(24)), ("25", Fraction(25)), ("30", Fraction(30)), ("50", Fraction(50)), ("60", Fraction(60)),
    ("23.976", Fraction(24000, 1001)), ("29.97", Fraction(30000, 1001)), ("59.94", Fraction(60000, 1001)),
    ("24000/1001", Fraction(24000, 1001)),
])
def test_exact_frame_count_and_duration_at_each_rate(tmp_path: Path, song: Path, fps_text: str,
                                                     fps: Fraction) -> None:
    out = tmp_path / "clip.mp4"
    duration = Fraction(13, 10)
    assert _render([str(photo()), "--audio", str(song), "--duration", "1.3", "--fps", fps_text,
                    "-o", str(out), *SMALL]) == 0
    info = VideoInfo(out)
    expected = int(duration * fps + Fraction(1, 2))
    assert info.frames == expected == len(list(read_frames(out)))
    assert info.fps == fps
    assert info.duration == Fraction(expected) / fps  # exact, in the stream's own time base
    assert info.audio_duration is not None
    assert abs(info.audio_duration - float(Fraction(expected) / fps)) < 1 / 48000 * 1100  # AAC frame granularity


def test_audio_segment_is_the_requested_range(tmp_path: Path) -> None:
    """A tone that changes pitch at 2 s: rendering from --audio-start 2 must carry the second tone."""
    sr = 48000
    t = np.arange(4 * sr) / sr
    tone = np.where(t < 2, np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 1000 * t)).astype(np.float32) * 0.5
    wav = tmp_path / "tones.wav"
    sf.write(str(wav), tone, sr)
    out = tmp_path / "clip.mp4"
    assert _render([str(photo()), "--audio", str(wav), "--audio-start", "2", "--duration", "1", "--fps", "25",
                    "-o", str(out), *SMALL]) == 0
    decoded = tmp_path / "decoded.wav"
    ffmpeg("-i", str(out), "-ac", "1", str(decoded))
    samples, rate = sf.read(str(decoded))
    window = samples[: rate // 2]
    peak_hz = np.argmax(np.abs(np.fft.rfft(window))) * rate / len(window)
    assert 900 < peak_hz < 1100
    assert abs(len(samples) / rate - 1.0) < 0.03


def test_json_summary_and_default_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.mp4"
    assert _render([str(photo("cat")), "--duration", "0.5", "--fps", "24", "-o", str(out), "--json",
                    "--no-qc"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(out)
    assert summary["frames"] == 12 and summary["fps"] == "24"
    assert (summary["width"], summary["height"]) == (452, 300)  # 451x300 rounded to even
    assert summary["engine"] == "procedural" and summary["seed"] == 0
    assert set(summary["timings"]) >= {"total"}


def test_first_frame_is_the_fitted_still(tmp_path: Path, song: Path) -> None:
    """Exact before encoding; ≥ 40 dB PSNR after H.264 4:2:0 at HD (chroma subsampling alone costs ~37 dB on
    this detailed photo at 320x240, ~42 dB at 1280x720)."""
    from stillmotion.engine.backends import get_backend
    from stillmotion.engine.backends.base import CancelToken, RenderInputs, ignore_events
    from stillmotion.engine.motion import MotionSchedule
    from stillmotion.engine.request import RenderRequest

    fitted, _ = fit_image(load_image(photo("product")).rgb, 1280, 720)
    schedule = MotionSchedule(preset="dance", intensity=2.0)
    channels = schedule.channels(None, 6, 24.0)
    request = RenderRequest(image=str(photo("product")), output="unused.mp4", fps=Fraction(24), frames=6,
                            width=1280, height=720)
    frames = list(get_backend("procedural").render(RenderInputs(request, fitted, None, schedule, channels, None),
                                                   ignore_events, CancelToken()))
    assert np.array_equal(frames[0], fitted)
    assert not np.array_equal(frames[-1], fitted)

    out = tmp_path / "clip.mp4"
    assert _render([str(photo("product")), "--audio", str(song), "--duration", "0.25", "--fps", "24",
                    "--width", "1280", "--height", "720", "-o", str(out), "--no-qc"]) == 0
    first = next(read_frames(out)).astype(np.float64)
    mse = np.mean((first - fitted.astype(np.float64)) ** 2)
    assert 10 * np.log10(255.0 ** 2 / mse) >= 40.0


@pytest.mark.parametrize("kind", ["tiny", "large", "gray", "gray16", "rgb16", "rgba", "cmyk", "exif"])
def test_odd_but_valid_images(tmp_path: Path, kind: str) -> None:
    images = write_odd_images(tmp_path / "img")
    out = tmp_path / f"{kind}.mp4"
    assert _render([str(images[kind]), "--duration", "0.25", "--fps", "24", "-o", str(out), "--no-qc",
                    "--width", "64"]) == 0
    assert VideoInfo(out).frames == 6


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    images = write_odd_images(tmp_path / "img")
    upright = load_image(images["exif"])
    raw = Image.open(images["exif"])
    assert (upright.width, upright.height) == (raw.height, raw.width)


def test_a_handed_over_decode_is_taken_once_and_only_for_the_same_bytes(tmp_path: Path) -> None:
    """The CLI's validation decode is reused by the render, never for a file that changed in between."""
    still = tmp_path / "still.png"
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(still)
    other = tmp_path / "other.png"
    Image.fromarray(np.full((40, 60, 3), 10, np.uint8)).save(other)
    first = load_image(still, hand_over=True)
    assert load_image(other).rgb[0, 0, 0] == 10  # another file leaves the kept decode alone
    taken = load_image(str(still.resolve()))
    assert taken.rgb is first.rgb and taken.path == str(still.resolve())
    assert load_image(still).rgb is not first.rgb  # taken once
    load_image(still, hand_over=True)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(still)  # the user re-saves the still
    os.utime(still, ns=(1, 1))  # a different modification time even on coarse file systems
    assert load_image(still).rgb[0, 0, 0] == 200


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    images = write_odd_images(tmp_path / "img")
    gray = load_image(images["gray"]).rgb.astype(int)
    gray16 = load_image(images["gray16"]).rgb.astype(int)
    assert np.abs(gray - gray16).max() <= 1


@pytest.mark.parametrize("kind", ["mono8k", "flac96k", "surround", "short", "silence"])
def test_odd_but_valid_audio(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.wav"
    if kind == "mono8k":
        write_click_track(path, 2.0, sample_rate=8000, channels=1)
    elif kind == "flac96k":
        path = tmp_path / "song.flac"
        write_click_track(path, 2.0, sample_rate=96000, channels=2)
    elif kind == "surround":
        write_click_track(path, 2.0, sample_rate=48000, channels=6)
    elif kind == "short":
        write_click_track(path, 0.1, sample_rate=44100, channels=2)
    else:
        sf.write(str(path), np.zeros((44100 * 2, 2), np.float32), 44100)
    out = tmp_path / "clip.mp4"
    assert _render([str(photo()), "--audio", str(path), "--duration", "1", "--fps", "24", "-o", str(out),
                    *SMALL]) == 0
    info = VideoInfo(out)
    assert info.frames == 24 and info.audio_duration is not None and abs(info.audio_duration - 1.0) < 0.03


def _bomb(path: Path) -> None:
    Image.new("1", (20000, 20000)).save(path)


def _truncate(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("case", [
    "missing_image", "folder_image", "text_image", "truncated_image", "bomb_image",
    "bad_audio", "truncated_audio", "missing_audio",
    "zero_duration", "negative_duration", "absurd_duration", "text_duration",
    "zero_fps", "negative_fps", "absurd_fps", "text_fps",
    "zero_width", "huge_width", "negative_height",
    "missing_out_folder", "out_folder_is_file", "unknown_preset",
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path: Path, song: Path, case: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    image, audio, out = str(photo()), None, tmp_path / "out" / "clip.mp4"
    out.parent.mkdir()
    duration, fps, extra = "1", "24", ["--width", "64", "--height", "48"]
    if case == "missing_image":
        image = str(tmp_path / "nope.png")
    elif case == "folder_image":
        image = str(tmp_path)
    elif case == "text_image":
        (tmp_path / "notes.png").write_text("not a picture")
        image = str(tmp_path / "notes.png")
    elif case == "truncated_image":
        _truncate(photo("product"), tmp_path / "cut.png")
        image = str(tmp_path / "cut.png")
    elif case == "bomb_image":
        _bomb(tmp_path / "bomb.png")
        image = str(tmp_path / "bomb.png")
    elif case == "bad_audio":
        (tmp_path / "song.wav").write_text("RIFF nonsense")
        audio = str(tmp_path / "song.wav")
    elif case == "truncated_audio":
        mp3 = tmp_path / "song.mp3"
        ffmpeg("-i", str(song), str(mp3))
        _truncate(mp3, tmp_path / "cut.mp3")
        (tmp_path / "cut.mp3").write_bytes((tmp_path / "cut.mp3").read_bytes()[:200])
        audio = str(tmp_path / "cut.mp3")
    elif case == "missing_audio":
        audio = str(tmp_path / "nope.wav")
    elif case.endswith("_duration"):
        duration = {"zero": "0", "negative": "-2", "absurd": "1e9", "text": "long"}[case.split("_")[0]]
    elif case.endswith("_fps"):
        fps = {"zero": "0", "negative": "-24", "absurd": "100000", "text": "fast"}[case.split("_")[0]]
    elif case == "zero_width":
        extra = ["--width", "0"]
    elif case == "huge_width":
        extra = ["--width", "9000"]
    elif case == "negative_height":
        extra = ["--height", "-4"]
    elif case == "missing_out_folder":
        out = tmp_path / "no" / "such" / "clip.mp4"
    elif case == "out_folder_is_file":
        (tmp_path / "file.txt").write_text("x")
        out = tmp_path / "file.txt" / "clip.mp4"
    elif case == "unknown_preset":
        extra += ["--preset", "wobble"]
    args = [image, "--duration", duration, "--fps", fps, "-o", str(out), "--no-qc", *extra]
    if audio:
        args += ["--audio", audio]
    with pytest.raises(SystemExit) if case == "unknown_preset" else _no_raise() as caught:
        code = _render(args)
    if case == "unknown_preset":
        code = caught.value.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "error" in err
    assert not out.exists()
    if out.parent.is_dir():
        assert _leftovers(out.parent) == []


class _no_raise:
    def __enter__(self) -> _no_raise:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False


def test_existing_output_needs_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"precious")
    assert _render([str(photo()), "--duration", "0.2", "--fps", "24", "-o", str(out), *SMALL]) == 2
    assert out.read_bytes() == b"precious"
    assert "--overwrite" in capsys.readouterr().err
    assert _render([str(photo()), "--duration", "0.2", "--fps", "24", "-o", str(out), *SMALL,
                    "--overwrite"]) == 0
    assert VideoInfo(out).frames == 5


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; permissions cannot make it unreadable")
def test_unreadable_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "locked.png"
    img.write_bytes(photo().read_bytes())
    img.chmod(0)
    assert _render([str(img), "--duration", "1", "--fps", "24", "-o", str(tmp_path / "o.mp4"), *SMALL]) == 2


def test_cli_process_prints_one_line_no_traceback(tmp_path: Path) -> None:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("stillmotion")
    proc = subprocess.run([str(exe), "render", str(tmp_path / "missing.png"), "--duration", "1", "--fps", "24",
                           "-o", str(tmp_path / "o.mp4")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    assert proc.stdout == ""


def test_output_has_the_users_usual_permissions(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    assert _render([str(photo()), "--duration", "0.2", "--fps", "24", "-o", str(out), *SMALL]) == 0
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("extra", [["--end-image", "/no/such/still.png"], ["--steps", "0"]])
def test_bad_diffusion_options_fail_before_any_work(tmp_path: Path, extra: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.mp4"
    assert _render([str(photo()), "--duration", "0.2", "--fps", "24", "-o", str(out), *SMALL, *extra]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("reasons, factor", [
    (["sync: motion misses the beats: ..."], 1.35), (["frozen: dynamic degree 0.00 < 0.15"], 1.35),
    (["drift: identity drift 0.61 > 0.3"], 0.7), (["flicker: brightness jumps"], 0.7),
    (["ken_burns: 90% of the motion is one pan"], 1.0),
])
def test_a_qc_retry_changes_seed_and_strength_by_the_failed_gate(reasons: list[str], factor: float) -> None:
    from types import SimpleNamespace

    from stillmotion.engine.backends import get_backend
    from stillmotion.engine.request import RenderRequest

    request = RenderRequest(image="x.png", output="x.mp4", fps=Fraction(24), frames=24, width=64, height=48,
                            seed=5, intensity=1.0)
    retry = get_backend("procedural").next_attempt(request, SimpleNamespace(reasons=reasons, frozen=False), 1)
    assert retry.seed != request.seed and retry.intensity == pytest.approx(factor)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no worker threads on one core")
def test_the_command_process_starts_no_openblas_threads() -> None:
    """numpy and OpenCV each start OpenBLAS workers that spin on load; the command keeps to its own thread, and a
    user's OPENBLAS_NUM_THREADS still wins."""
    code = ("import os, sys\nfrom stillmotion.engine import cli\nsys.argv = ['stillmotion', '--version']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\nimport numpy, cv2\n"
            "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split()[-2:] == ["1", "1"]
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    setting, threads = out.split()[-2:]
    assert setting == "2" and int(threads) > 1
