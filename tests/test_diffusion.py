"""Diffusion engines end to end on CPU with tiny random models in each pipeline's real layout, loaded back from
disk through the user's `--model DIR` path: exact frame counts at the timeline rate with the music, anchors,
chaining, cancel within a step, a killed worker, missing weights, pickle refusal, `stillmotion models`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from stillmotion.engine import audio
from stillmotion.engine.backends import get_backend
from stillmotion.engine.backends.base import CancelToken, Progress, RenderInputs, Result
from stillmotion.engine.cli import main
from stillmotion.engine.errors import BadInputError, CancelledError, MissingWeightsError, WorkerCrashedError
from stillmotion.engine.images import fit_image, load_image
from stillmotion.engine.motion import MotionSchedule
from stillmotion.engine.rates import FrameGrid
from stillmotion.engine.render import render_clip
from stillmotion.engine.request import AudioSegment, RenderRequest
from stillmotion.engine.video import VideoInfo, read_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
import musicgen  # noqa: E402
import tiny_models  # noqa: E402
from media_fixtures import photo, write_click_track  # noqa: E402

FAST = {"steps": 2}
#: SVD's and Wan's tiny denoisers are the slow ones on CPU: generate at 32x32, conform back to 64x64.
SMALL_GEN = {"steps": 2, "max_area": 32 * 32}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {"root": root, "ltx": tiny_models.build_ltx(root / "ltx"), "svd": tiny_models.build_svd(root / "svd"),
            "wan": tiny_models.build_wan(root / "wan"), "ltx2": tiny_models.build_ltx2(root / "ltx2")}


@pytest.fixture(scope="session")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("song") / "song.wav"
    write_click_track(path, 3.0, bpm=120)
    return path


#: 4 bars of 4/4 rock at 128 BPM (one beat of lead-in): drums in bars 1-2, a drum break (bass and chords only)
#: in bars 3-4. Long enough for the beat tracker to find the metre, so the clip has real downbeats.
BREAK_SONG = musicgen.TrackSpec("break_128", 128, 128, 4, style="rock", break_bars=(2, 3), seed=12)
SONG_SECONDS = 8
LOW_FPS = 8


@pytest.fixture(scope="session")
def break_song(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The track rendered once per session with fluidsynth; beats and downbeats are the MIDI's exact times."""
    if shutil.which("fluidsynth") is None or not musicgen.SOUNDFONT.exists():
        pytest.skip("fluidsynth and the GM soundfont are needed to render test music")
    return musicgen.render_set(tmp_path_factory.mktemp("musicgen"), [BREAK_SONG])[BREAK_SONG.name]


def _request(tmp_path: Path, song: Path, engine: str, model: Path, **extra: object) -> RenderRequest:
    options = dict(extra.pop("options", FAST))  # type: ignore[arg-type]
    return RenderRequest(image=str(photo("cat")), output=str(tmp_path / f"{engine}.mp4"), fps=Fraction(24),
                         frames=48, width=64, height=64, audio=[AudioSegment(str(song), duration=Fraction(2))],
                         engine=engine, model=str(model), qc=False, options=options, **extra)  # type: ignore[arg-type]


def _inputs(request: RenderRequest) -> RenderInputs:
    image, _ = fit_image(load_image(request.image).rgb, request.width, request.height)
    features = audio.clip_features(request.audio, FrameGrid(request.fps, request.frames))
    schedule = MotionSchedule()
    return RenderInputs(request, image, None, schedule, schedule.channels(features, request.frames, 24.0), features)


def _check_clip(path: Path) -> list[np.ndarray]:
    info = VideoInfo(path)
    assert (info.frames, info.fps, info.width, info.height) == (48, Fraction(24), 64, 64)
    assert info.audio_duration is not None and abs(info.audio_duration - 2.0) < 0.05
    frames = list(read_frames(path))
    assert len(frames) == 48
    return frames


def test_ltx_cli_render_keeps_torch_out_of_the_parent(tmp_path: Path, tiny: dict[str, Path], song: Path) -> None:
    """The documented command, in a fresh interpreter: 48 frames at 24 fps with the music; torch never loads
    in the CLI's process (only in its worker)."""
    out = tmp_path / "out.mp4"
    argv = ["render", str(photo("cat")), "--audio", str(song), "--engine", "ltx", "--model", str(tiny["ltx"]),
            "--fps", "24", "--duration", "2", "--width", "64", "--height", "64", "-o", str(out), "--no-qc"]
    code = ("import sys, json\nfrom stillmotion.engine.cli import main\n"
            f"rc = main({argv!r})\n"
            "print(json.dumps({'rc': rc, 'heavy': sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'diffusers', 'transformers'))}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"rc": 0, "heavy": []}, done.stderr[-2000:]
    _check_clip(out)


@pytest.mark.parametrize("engine", ["svd", "wan", "ltx2"])
def test_engine_renders_exact_frames_with_music(tmp_path: Path, tiny: dict[str, Path], song: Path,
                                                engine: str) -> None:
    options = dict(SMALL_GEN)
    if engine == "ltx2":  # one transformer pass per step: no CFG, STG or modality guidance passes
        options.update(guidance=1.0, stg_scale=0.0, modality_scale=1.0, audio_guidance_scale=1.0,
                       audio_stg_scale=0.0, audio_modality_scale=1.0)
    request = _request(tmp_path, song, engine, tiny[engine], options=options)
    events: list[object] = []
    result = render_clip(request, on_event=events.append)
    assert result.frames == 48
    _check_clip(Path(result.output))
    previews = [e for e in events if type(e).__name__ == "Preview"]
    assert previews and all(p.image.dtype == np.uint8 and p.image.ndim == 3 for p in previews)
    summary = [e for e in events if isinstance(e, Result)][-1].summary
    assert summary["engine"] == engine and summary["generated_size"] == [32, 32]
    if engine == "svd":  # the music sets SVD's motion conditioning per segment
        assert 1 <= summary["segments"][0]["motion_bucket_id"] <= 255
    if engine == "ltx2":  # the music, encoded by the pipeline's audio VAE, covers the generated duration
        latent_frames = summary["audio_latents"][0][2]
        assert abs(latent_frames - summary["generated_frames"] / 24 * 25) <= 2  # 16 kHz / hop 160 / 4


def test_ltx_in_process_cli_with_qc(tmp_path: Path, tiny: dict[str, Path], song: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Through cli.main in this process (warm worker), QC on: the JSON summary reports the engine and QC."""
    out = tmp_path / "qc.mp4"
    rc = main(["render", str(photo("cat")), "--audio", str(song), "--engine", "ltx", "--model", str(tiny["ltx"]),
               "--fps", "25", "--duration", "1", "--width", "64", "--height", "64", "-o", str(out), "--json",
               "--qc-retries", "0", "--steps", "2", "--prompt", "a cat"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "ltx" and summary["qc"] is not None and summary["frames"] == 25
    assert summary["engine_summary"]["engine"] == "ltx" and "beat_sync" in summary["engine_summary"]
    info = VideoInfo(out)
    assert (info.frames, info.fps) == (25, Fraction(25))


def test_ltx_chained_segments_anchor_end_and_events(tmp_path: Path, tiny: dict[str, Path], song: Path) -> None:
    """17-frame segments force a chain; anchor 'end' makes the last frame the still. Events: per-step progress,
    previews, and a Result whose summary reports the beat-hit rate before and after retiming."""
    request = _request(tmp_path, song, "ltx", tiny["ltx"], anchor="end", options={**FAST, "segment_frames": 17})
    inputs = _inputs(request)
    events: list[object] = []
    frames = list(get_backend("ltx").render(inputs, events.append, CancelToken()))
    assert len(frames) == 48 and frames[0].shape == (64, 64, 3)
    assert np.array_equal(frames[-1], inputs.image)  # the anchor frame is exactly the still
    steps = [e for e in events if isinstance(e, Progress) and e.stage == "diffusion"]
    assert len(steps) == steps[-1].total and steps[-1].total >= 2 * 3  # ≥ 3 segments x 2 steps
    assert any(type(e).__name__ == "Preview" for e in events)
    summary = [e for e in events if isinstance(e, Result)][-1].summary
    assert summary["generated_frames"] >= 48
    sync = summary["beat_sync"]
    assert {"beat_hit_rate_before", "beat_hit_rate_after", "retimed"} <= set(sync)
    assert 1 / 1.5 - 1e-6 <= sync["speed_range"][0] <= sync["speed_range"][1] <= 1.5 + 1e-6


def test_two_still_mode(tmp_path: Path, tiny: dict[str, Path], song: Path) -> None:
    request = _request(tmp_path, song, "ltx", tiny["ltx"], end_image=str(photo("product")))
    inputs = _inputs(request)
    frames = list(get_backend("ltx").render(inputs, lambda e: None, CancelToken()))
    end, _ = fit_image(load_image(photo("product")).rgb, 64, 64)
    assert np.array_equal(frames[0], inputs.image) and np.array_equal(frames[-1], end)


def test_cancel_stops_within_one_step(tmp_path: Path, tiny: dict[str, Path], song: Path) -> None:
    request = _request(tmp_path, song, "ltx", tiny["ltx"], options={"steps": 8})
    cancel = CancelToken()
    seen: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress) and event.stage == "diffusion":
            seen.append(event.step)
            cancel.cancel()

    with pytest.raises(CancelledError):
        list(get_backend("ltx").render(_inputs(request), on_event, cancel))
    assert seen and max(seen) <= seen[0] + 1  # at most the step already under way finished


def test_killed_worker_is_reported(tmp_path: Path, tiny: dict[str, Path], song: Path) -> None:
    backend = get_backend("ltx")
    request = _request(tmp_path, song, "ltx", tiny["ltx"], options={"steps": 8})

    def on_event(event: object) -> None:
        if isinstance(event, Progress) and event.stage == "diffusion" and event.step == 1:
            os.kill(backend.worker.pid, signal.SIGKILL)

    with pytest.raises(WorkerCrashedError, match="killed by signal 9"):
        list(backend.render(_inputs(request), on_event, CancelToken()))


def test_missing_weights_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("STILLMOTION_MODELS", raising=False)
    base = ["render", str(photo("cat")), "--engine", "ltx", "--fps", "24", "--duration", "1", "--width", "64",
            "--height", "64", "-o", str(tmp_path / "x.mp4")]
    assert main([*base, "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model_index.json" in err and "hf download" in err
    assert main(base) == 2  # no --model and nothing local: names the repo it looked for
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Lightricks/LTX-Video" in err
    assert main([*base, "--model", "Lightricks/LTX-Video"]) == 2  # a repo id not in the cache: no download
    assert "not in the local Hugging Face cache" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_pickle_checkpoint_refused_unless_allowed(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from stillmotion.engine.backends.diffusion.weights import resolve_weights

    folder = tmp_path / "pickled"
    shutil.copytree(tiny["ltx"], folder)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(weights), folder / "transformer" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(BadInputError, match="--allow-pickle"):
        resolve_weights("ltx", str(folder))
    allowed = resolve_weights("ltx", str(folder), allow_pickle=True)
    assert allowed.pickle_files and allowed.pickle_files[0].endswith(".bin")
    (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match="no weights"):
        resolve_weights("ltx", str(folder), allow_pickle=True)


def test_models_command_lists_local_weights(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["models", "--model-dir", str(tiny["root"]), "--json"]) == 0
    engines = {e["engine"]: e for e in json.loads(capsys.readouterr().out)["engines"]}
    assert set(engines) >= {"procedural", "ltx", "ltx2", "svd", "wan"}
    for name in ("ltx", "svd", "wan"):
        assert [w["path"] for w in engines[name]["weights"]] == [str(tiny[name])]
        assert engines[name]["weights"][0]["usable"]
    assert [w["path"] for w in engines["ltx2"]["weights"]] == [str(tiny["ltx2"])]
    monkeypatch.setenv("STILLMOTION_MODELS", str(tmp_path / "nothing"))
    assert main(["models"]) == 0
    assert "no local weights" in capsys.readouterr().out


# ------------------------------------------------------------------------------ pure parts (no torch needed)
def _disk_clip(count: int, jumps: set[int]) -> list[np.ndarray]:
    """A disk drifting slowly right that jumps on `jumps` frames (motion-energy peaks)."""
    import cv2

    frames, x = [], 20.0
    for j in range(count):
        x += 6.0 if j in jumps else 0.4
        frame = np.full((64, 96, 3), 90, np.uint8)
        cv2.circle(frame, (int(round((x % 80 + 8) * 16)), 32 * 16), 8 * 16, (250, 250, 250), -1, cv2.LINE_AA, 4)
        cv2.rectangle(frame, (0, 50), (95, 63), (30, 120, 60), -1)
        frames.append(frame)
    return frames


def test_beat_retiming_moves_motion_peaks_onto_beats() -> None:
    from stillmotion.engine.backends.diffusion.retime import (
        FlowInterpolator,
        beat_aligned_positions,
        motion_report,
    )

    generated = _disk_clip(60, {6, 18, 30, 42, 54})  # peaks two frames before each beat
    beats = np.array([8, 20, 32, 44]) / 24.0
    base = np.arange(48, dtype=float)
    energy = np.asarray(motion_report(generated, 24.0, None).motion_energy)
    warped = beat_aligned_positions(base, energy, np.array([8, 20, 32, 44]), 0, len(generated), 1.5)
    speed = np.diff(warped)
    assert warped[0] == 0 and np.all(speed > 0) and speed.min() >= 1 / 1.5 - 1e-9 and speed.max() <= 1.5 + 1e-9
    interp = FlowInterpolator(generated)
    before = motion_report([interp.at(p) for p in base], 24.0, beats).beat_hit_rate
    after = motion_report([interp.at(p) for p in warped], 24.0, beats).beat_hit_rate
    assert before == 0.0 and after == 1.0


def test_model_constraints_and_chaining() -> None:
    from stillmotion.engine.backends.diffusion.plan import Constraints, chain_lengths, fit_size, legal_frames

    ltx = Constraints(spatial=32, temporal=8, max_frames=121, overlap=9)
    assert fit_size(1920, 1080, 32, 768 * 512) == (832, 480)
    assert legal_frames(48, ltx) == 49 and legal_frames(50, ltx) == 57 and legal_frames(500, ltx) == 121
    lengths = chain_lengths(300, ltx)
    assert all((n - 1) % 8 == 0 and n <= 121 for n in lengths)
    assert sum(lengths) - ltx.overlap * (len(lengths) - 1) >= 300
    svd = Constraints(spatial=64, temporal=1, max_frames=25, fixed_frames=(25,), overlap=1)
    assert legal_frames(10, svd) == 25 and chain_lengths(60, svd) == [25, 25, 25]


def test_memory_defaults_by_free_vram() -> None:
    from stillmotion.engine.backends.diffusion.plan import plan_memory

    assert plan_memory({}, None).to_json() == {"device": "cpu", "dtype": "fp32", "offload": "none",
                                               "vae_tiling": False, "vae_slicing": False}
    assert (plan_memory({}, 40.0).dtype, plan_memory({}, 40.0).offload) == ("bf16", "none")
    mid = plan_memory({}, 16.0, bf16_supported=False)
    assert (mid.dtype, mid.offload, mid.vae_tiling) == ("fp16", "model", True)
    assert plan_memory({}, 8.0).offload == "sequential" and plan_memory({"offload": "none"}, 8.0).offload == "none"
    with pytest.raises(BadInputError):
        plan_memory({"dtype": "int3"}, None)


def test_panel_model_picker_uses_the_same_survey(tiny: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel's model list comes from the engine's survey: $STILLMOTION_MODELS folders, usable ones only."""
    from stillmotion.engine.models import usable_weights

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("STILLMOTION_MODELS", str(tiny["root"]))
    assert usable_weights("ltx") == [str(tiny["ltx"])]
    assert usable_weights("procedural") == []


# ------------------------------------------------------------------------- music-synced conditioning, real music
def test_ltx_keyframes_land_on_downbeats_and_retiming_is_bounded(tmp_path: Path, tiny: dict[str, Path],
                                                                  break_song: dict,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`stillmotion render --engine ltx --json` on real music with downbeats: the still is re-imposed on every
    downbeat after the first bar (indices on the model's 4-frame grid, pinned back onto the downbeat's frame by the
    conform), strengths follow 0.4·(1 − 0.6·level) and are tighter in the drum break; the beat-aligned retiming is
    monotonic, within 1.5x, and reports the beat-hit rate before and after."""
    from stillmotion.engine.backends.diffusion.ltx import KEYFRAME_STRENGTH, keyframe_strength

    out = tmp_path / "keys.mp4"
    rc = main(["render", str(photo("cat")), "--audio", break_song["wav"], "--engine", "ltx", "--model",
               str(tiny["ltx"]), "--fps", str(LOW_FPS), "--duration", str(SONG_SECONDS), "--width", "64", "--height",
               "64", "-o", str(out), "--json", "--no-qc", "--steps", "2"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    info = VideoInfo(out)
    assert (info.frames, info.fps) == (SONG_SECONDS * LOW_FPS, Fraction(LOW_FPS))
    assert info.audio_duration is not None and abs(info.audio_duration - SONG_SECONDS) < 0.05
    engine = summary["engine_summary"]
    keys = [key for segment in engine["keyframes"] for key in segment]
    truth = np.asarray(break_song["downbeats"])
    # The first downbeat (0.47 s) is too close to the still at frame 0 to take a keyframe; every later one does.
    expected = [d for d in truth if 1.0 < d < SONG_SECONDS - 0.5]
    assert len(expected) == 3 and len(keys) == len(expected)
    for downbeat, key in zip(expected, sorted(keys, key=lambda k: k["downbeat"]), strict=True):
        assert abs(key["downbeat"] - downbeat) < 0.05  # detected from the audio, not taken from the MIDI
        assert key["index"] % 4 == 0  # the tiny model's temporal ratio (VAE 4 x patch 1)
        assert abs(key["frame"] - round(downbeat * LOW_FPS)) <= 1, (key, downbeat)
        assert 0.0 <= key["level"] <= 1.0
        assert key["strength"] == keyframe_strength(KEYFRAME_STRENGTH, key["level"])
    loud = [k for k in keys if k["downbeat"] < truth[2] - 0.1]
    quiet = [k for k in keys if k["downbeat"] > truth[2] + 0.1]
    assert loud and quiet
    assert max(k["level"] for k in quiet) < min(k["level"] for k in loud)
    assert min(k["strength"] for k in quiet) > max(k["strength"] for k in loud)
    sync = engine["beat_sync"]
    assert sync["retimed"] is True  # keyframes generated off their downbeat are pinned back by the warp
    assert 0.0 <= sync["beat_hit_rate_before"] <= 1.0 and 0.0 <= sync["beat_hit_rate_after"] <= 1.0
    low, high = sync["speed_range"]
    assert 1 / 1.5 - 1e-3 <= low <= high <= 1.5 + 1e-3  # monotonic (speed > 0) and bounded


def test_svd_motion_conditioning_follows_loud_and_quiet_music(tmp_path: Path, tiny: dict[str, Path],
                                                               break_song: dict) -> None:
    """SVD chained over 8 s of music: motion_bucket_id and noise_aug_strength per segment come from the music's
    drive, higher where the drums play than in the drum break (read from RenderResult.engine_summary)."""
    from stillmotion.engine.backends.diffusion.svd import motion_bucket, noise_augmentation

    request = RenderRequest(image=str(photo("cat")), output=str(tmp_path / "svd.mp4"), fps=Fraction(LOW_FPS),
                            frames=SONG_SECONDS * LOW_FPS, width=64, height=64,
                            audio=[AudioSegment(break_song["wav"], duration=Fraction(SONG_SECONDS))], engine="svd",
                            model=str(tiny["svd"]), qc=False, options=dict(SMALL_GEN))
    result = render_clip(request)
    segments = result.engine_summary["segments"]
    assert len(segments) >= 4  # 14-frame segments at 7 fps: a chain
    for segment in segments:
        assert segment["motion_bucket_id"] == motion_bucket(segment["level"], 1.0)
        assert segment["noise_aug_strength"] == noise_augmentation(segment["level"])
    break_start = break_song["downbeats"][2]
    loud = [s for s in segments if s["seconds"][1] <= break_start + 0.1]
    quiet = [s for s in segments if break_start - 0.1 <= s["seconds"][0] and s["seconds"][1] <= SONG_SECONDS]
    assert loud and quiet
    assert min(s["motion_bucket_id"] for s in loud) - max(s["motion_bucket_id"] for s in quiet) >= 8
    assert min(s["noise_aug_strength"] for s in loud) > max(s["noise_aug_strength"] for s in quiet)


def test_retiming_meets_keyframe_pins_within_the_speed_bound() -> None:
    """Pins (keyframes generated up to half a latent frame off their downbeat) are met exactly when the speed
    bound allows, as closely as it allows otherwise, and the warp stays monotonic and anchored."""
    from stillmotion.engine.backends.diffusion.retime import beat_aligned_positions

    base = np.arange(64, dtype=float)
    flat = np.zeros(65)
    warped = beat_aligned_positions(base, flat, np.zeros(0, dtype=int), 0, 65, 1.5, pins={19: 20.0, 34: 32.0})
    assert warped[0] == 0 and warped[19] == 20.0 and warped[34] == 32.0
    speed = np.diff(warped)
    assert speed.min() >= 1 / 1.5 - 1e-9 and speed.max() <= 1.5 + 1e-9
    far = beat_aligned_positions(base, flat, np.zeros(0, dtype=int), 0, 65, 1.5, pins={4: 12.0})
    assert far[4] == 6.0 and np.all(np.diff(far) > 0)  # 1.5x for 4 frames is as far as it may go
