"""Job identity includes the code that makes the pixels: clips made by other code are never reused silently,
`stillmotion jobs` marks them, `--reuse-stale` keeps them on purpose; `regenerate` reproduces the stored clip bit
for bit and says so."""

from __future__ import annotations

import importlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image
from stillmotion.engine.cli import main
from stillmotion.engine.jobs import JobStore, run_batch
from stillmotion.engine.request import RenderRequest

identity_module = importlib.import_module("stillmotion.engine.jobs.identity")
CODE_USERS = ("stillmotion.engine.jobs.identity", "stillmotion.engine.jobs.batch", "stillmotion.engine.jobs.store",
              "stillmotion.engine.timeline.pipeline")


def _other_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend StillMotion's pixel code changed (as after an upgrade)."""
    for name in CODE_USERS:
        monkeypatch.setattr(importlib.import_module(name), "code_digest", lambda engine: "0123456789abcdef")


def _still(folder: Path) -> Path:
    path = folder / "still.png"
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _request(still: Path, output: Path) -> RenderRequest:
    return RenderRequest(image=str(still), output=str(output), fps=Fraction(24), frames=6, width=64, height=48,
                         qc=False)


def test_code_digest_names_the_code_that_makes_pixels(tmp_path: Path) -> None:
    sources = {p.relative_to(identity_module.ENGINE_ROOT).as_posix() for p in identity_module.code_sources("ltx")}
    assert {"render.py", "motion.py", "video.py", "audio/spectral.py", "qc/accumulator.py",
            "backends/diffusion/ltx.py", "backends/diffusion/runtime.py", "backends/diffusion/retime.py"} <= sources
    assert "backends/procedural.py" not in sources and "jobs/store.py" not in sources
    assert identity_module.code_digest("procedural") != identity_module.code_digest("ltx")
    request = _request(_still(tmp_path), tmp_path / "a.mp4")
    assert identity_module.identity(request)["code"] == identity_module.code_digest("procedural")


def test_clips_made_by_other_code_are_marked_and_reused_only_on_purpose(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    still = _still(tmp_path)
    store_path = tmp_path / "jobs.sqlite3"
    store = JobStore(store_path)
    output = tmp_path / "clip.mp4"
    (first,) = run_batch([_request(still, output)], store=store, workers=1)
    assert first.status == "done" and not first.reused
    old_job, old_work = first.job_id, identity_module.work_id(_request(still, output))
    assert store.get(old_job)["stale"] is False

    _other_code(monkeypatch)
    request = _request(still, output)
    assert identity_module.job_id(request) != old_job  # other code: another job ...
    assert identity_module.work_id(request) == old_work  # ... doing the same work
    assert main(["jobs", "--store", str(store_path)]) == 0
    listing = capsys.readouterr()
    assert "other" in listing.out.splitlines()[1] and "--reuse-stale" in listing.err
    assert store.get(old_job)["stale"] is True

    # kept on purpose: served from the old clip (under its own job), nothing rendered
    (kept,) = run_batch([_request(still, tmp_path / "kept.mp4")], store=store, workers=1, reuse_stale=True)
    assert kept.status == "done" and kept.reused and kept.stale and kept.job_id == old_job
    assert (tmp_path / "kept.mp4").read_bytes() == output.read_bytes()
    assert store.attempt_count() == 1

    # by default rendered again by this code, replacing its own older clip at the same path (no --overwrite)
    (fresh,) = run_batch([_request(still, output)], store=store, workers=1)
    assert fresh.status == "done" and not fresh.reused and not fresh.stale, fresh.error
    assert fresh.job_id != old_job and store.attempt_count() == 2
    assert store.get(fresh.job_id)["stale"] is False


def _storyboard(folder: Path) -> Path:
    """A one-still timeline at 23.976 fps over the demo music (odd size: 740x500)."""
    rate = 24000 / 1001
    still = folder / "board.png"
    Image.open(Path(__file__).resolve().parent.parent / "resources" / "demo" / "rocket.jpg").convert("RGB") \
        .resize((740, 500)).save(still)

    def span(start: int, frames: int) -> otio.opentime.TimeRange:
        return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate),
                                       otio.opentime.RationalTime(frames, rate))

    timeline = otio.schema.Timeline(name="board", global_start_time=otio.opentime.RationalTime(0, rate))
    video = otio.schema.Track(name="V1")
    video.append(otio.schema.Clip(name="board.png", media_reference=otio.schema.ExternalReference(
        target_url=str(still), available_range=span(0, 1)), source_range=span(0, 12)))
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    music = Path(__file__).resolve().parent.parent / "resources" / "demo" / "demo_music.flac"
    audio.append(otio.schema.Clip(name="music", media_reference=otio.schema.ExternalReference(
        target_url=str(music)), source_range=span(40, 12)))
    timeline.tracks.extend([video, audio])
    path = folder / "board.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_regenerate_with_the_stored_seed_is_bit_identical(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = _storyboard(tmp_path)
    out = tmp_path / "board_sm.otio"
    assert main(["timeline", str(source), "-o", str(out), "--workers", "1", "--qc-retries", "1"]) == 0
    clip = next((tmp_path / "board_sm_stillmotion").glob("*.mp4"))
    before = clip.read_bytes()
    capsys.readouterr()
    assert main(["regenerate", str(out), "--clip", "board.png"]) == 0
    said = capsys.readouterr().out
    assert "identical to the stored clip (same bytes)" in said
    assert clip.read_bytes() == before  # rendered in this process, stored by a worker: the same bytes
    assert main(["regenerate", str(out), "--clip", "board.png", "--seed", "41"]) == 0
    said = capsys.readouterr().out
    assert "differs from the stored clip" in said and "a new seed (0 -> 41)" in said
