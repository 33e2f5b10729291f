"""The Ray executor on a local cluster (started once for this module, token authentication on): the same frames
as the local executor with clips shipped as bytes or through shared storage, and a worker killed mid-task
retried by Ray."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.jobs import JobStore, job_id, run_batch
from stillmotion.engine.jobs.worker import TEST_CRASH_DIR_ENV
from stillmotion.engine.request import AudioSegment, RenderRequest
from stillmotion.engine.video import read_frames

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, ray_test_token: str) -> Iterator[Path]:
    """A 2-CPU local Ray cluster with token auth (a throwaway token, nothing written to ~/.ray); yields the folder
    where tests arm the test-only crash hook (the env var must be set before Ray starts its workers)."""
    crash_dir = tmp_path_factory.mktemp("ray-crash")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", ray_test_token)
        patch.setenv(TEST_CRASH_DIR_ENV, str(crash_dir))
        if ray.is_initialized():
            ray.shutdown()
        from ray._raylet import Config

        Config.initialize("")  # Ray read RAY_AUTH_MODE when it was imported: make it see the test's setting
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield crash_dir
        finally:
            ray.shutdown()


def _media(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    still = folder / "still.png"
    Image.fromarray((rng.random((96, 128, 3)) * 255).astype(np.uint8)).save(still)
    song = folder / "song.wav"
    t = np.arange(22050) / 22050
    clicks = np.where((t % 0.25) < 0.01, 0.8, 0.0) + 0.1 * np.sin(2 * np.pi * 220 * t)
    sf.write(str(song), np.stack([clicks, clicks], axis=1).astype(np.float32), 22050)
    return still, song


def _requests(still: Path, song: Path, folder: Path) -> list[RenderRequest]:
    folder.mkdir()
    base = dict(image=str(still), fps=Fraction(24), frames=12, width=64, height=48, qc=False)
    return [RenderRequest(output=str(folder / "0.mp4"), seed=0, **base),
            RenderRequest(output=str(folder / "1.mp4"), seed=1, preset="calm", **base),
            RenderRequest(output=str(folder / "2.mp4"), seed=2, **base,
                          audio=[AudioSegment(str(song), Fraction(0), Fraction(1, 2))])]


def _frame_hashes(path: str | Path) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(f).tobytes()).hexdigest() for f in read_frames(path)]


def test_ray_gives_the_same_frames_as_local(cluster: Path, tmp_path: Path) -> None:
    still, song = _media(tmp_path)
    local = run_batch(_requests(still, song, tmp_path / "local"), store=JobStore(tmp_path / "a.sqlite3"), workers=2)
    shipped = run_batch(_requests(still, song, tmp_path / "bytes"), executor="ray",
                        store=JobStore(tmp_path / "b.sqlite3"))
    shared = run_batch(_requests(still, song, tmp_path / "shared"), executor="ray",
                       store=JobStore(tmp_path / "c.sqlite3"), shared_storage=True)
    for batch in (local, shipped, shared):
        assert [i.status for i in batch] == ["done"] * 3, [i.error for i in batch]
        assert not any(i.reused for i in batch)
    assert [i.job_id for i in local] == [i.job_id for i in shipped] == [i.job_id for i in shared]
    for a, b, c in zip(local, shipped, shared, strict=True):
        reference = _frame_hashes(a.request.output)
        assert len(reference) == 12
        assert _frame_hashes(b.request.output) == reference == _frame_hashes(c.request.output)
        assert b.result["output"] == b.request.output  # the driver wrote the shipped bytes at the real path
    assert ray.is_initialized()  # a cluster the caller started is left running


def test_ray_retries_a_killed_worker(cluster: Path, tmp_path: Path) -> None:
    still, song = _media(tmp_path)
    requests = _requests(still, song, tmp_path / "out")
    store = JobStore(tmp_path / "jobs.sqlite3")
    victim = job_id(requests[0])
    (cluster / f"crash-{victim}").touch()
    items = run_batch(requests, executor="ray", store=store)
    assert [i.status for i in items] == ["done"] * 3, [i.error for i in items]
    assert any(p.name.startswith(f"crashed-{victim}") for p in cluster.iterdir())  # the task's worker died ...
    assert not (cluster / f"crash-{victim}").exists()
    assert len(_frame_hashes(items[0].request.output)) == 12  # ... and Ray ran it again to completion
    assert store.attempt_count() == 3  # Ray's retry happens inside one attempt of the batch


def test_ray_refuses_disabled_token_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    from stillmotion.engine.jobs.ray_executor import _require_token_auth

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(BadInputError, match="token authentication"):
        _require_token_auth()  # checked before Ray is started or joined
    monkeypatch.delenv("RAY_AUTH_MODE")
    _require_token_auth()
    assert os.environ["RAY_AUTH_MODE"] == "token"
