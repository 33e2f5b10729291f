"""A render is a pure function of its request (issue 16): the same request gives bit-identical decoded frames in
this process (twice in a row), in local worker processes, in Ray tasks, and in processes whose OpenCV and BLAS run
on one thread or on two, for the procedural engine at 23.976, 29.97 and 25 fps at odd sizes (with and without QC
retries) and for a diffusion engine with a tiny model on CPU. Every run gets a fresh analysis cache, so the music
is analysed again where the clip is made (a shared cache would hide a difference)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stillmotion.engine.audio.cache import CACHE_ENV
from stillmotion.engine.backends.diffusion.worker import POOL
from stillmotion.engine.jobs import JobStore, job_id, run_batch
from stillmotion.engine.jobs.identity import frame_digests
from stillmotion.engine.render import render_clip
from stillmotion.engine.reproducible import matmul
from stillmotion.engine.request import AudioSegment, RenderRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_models  # noqa: E402
from media_fixtures import photo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MUSIC = ROOT / "resources" / "demo" / "demo_music.flac"
#: Every QC run fails the frozen gate, so each clip is rendered twice and the better-scored attempt is kept.
ALWAYS_RETRY = {"qc_retries": 1, "qc_thresholds": {"min_dynamic_degree": 1.01}}

#: Renders the requests in a JSON file with OpenCV on N threads (BLAS threads come from the environment).
RENDER_SCRIPT = """
import json, sys
import cv2
cv2.setNumThreads(int(sys.argv[2]))
from stillmotion.engine.render import render_clip
from stillmotion.engine.request import RenderRequest
for data in json.loads(open(sys.argv[1]).read()):
    render_clip(RenderRequest.from_json(data))
"""


@pytest.fixture(scope="module")
def stills(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stills")
    out = {}
    for name, source, size in (("740x500", "landscape", (740, 500)), ("1366x768", "portrait", (1366, 768)),
                               ("5000x3000", "cat", (5000, 3000))):
        out[name] = folder / f"{name}.jpg"
        Image.open(photo(source)).convert("RGB").resize(size).save(out[name], quality=90)
    return out


def _procedural_requests(stills: dict[str, Path], folder: Path) -> list[RenderRequest]:
    """Three clips of the demo music (starting on and off the beat), each at its own rate and size."""
    def music(start: Fraction, frames: int, fps: Fraction) -> list[AudioSegment]:
        return [AudioSegment(str(MUSIC), start, Fraction(frames) / fps)]

    film, ntsc, pal = Fraction(24000, 1001), Fraction(30000, 1001), Fraction(25)
    return [
        RenderRequest(image=str(stills["740x500"]), output=str(folder / "film.mp4"), fps=film, frames=14,
                      width=740, height=500, audio=music(Fraction(17017, 2400), 14, film), options=ALWAYS_RETRY),
        RenderRequest(image=str(stills["1366x768"]), output=str(folder / "ntsc.mp4"), fps=ntsc, frames=6,
                      width=1366, height=768, audio=music(Fraction(3), 6, ntsc), preset="sway", seed=3),
        RenderRequest(image=str(stills["5000x3000"]), output=str(folder / "pal.mp4"), fps=pal, frames=6,
                      width=500, height=300, audio=music(Fraction(11, 2), 6, pal), preset="dance", seed=8,
                      qc=False),
    ]


def _moved(requests: list[RenderRequest], folder: Path) -> list[RenderRequest]:
    folder.mkdir(parents=True, exist_ok=True)
    return [replace(r, output=str(folder / Path(r.output).name)) for r in requests]


def _digests(requests: list[RenderRequest]) -> list[list[str]]:
    return [frame_digests(r.output) for r in requests]


def _in_subprocess(requests: list[RenderRequest], folder: Path, threads: int) -> list[RenderRequest]:
    """Render in a fresh interpreter with OpenCV, OpenMP and BLAS limited to `threads` and its own cache."""
    requests = _moved(requests, folder)
    spec = folder / "requests.json"
    spec.write_text(json.dumps([r.to_json() for r in requests]))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), **{CACHE_ENV: str(folder / "cache")})
    done = subprocess.run([sys.executable, "-c", RENDER_SCRIPT, str(spec), str(threads)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return requests


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, ray_test_token: str) -> Iterator[None]:
    """A 2-CPU local Ray cluster (token auth with a throwaway token) whose workers have their own cache."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", ray_test_token)
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("ray-cache")))
        if ray.is_initialized():
            ray.shutdown()
        from ray._raylet import Config

        Config.initialize("")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()


def test_procedural_frames_are_the_same_everywhere(stills: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, ray_cluster: None) -> None:
    base = _procedural_requests(stills, tmp_path / "base")
    # (a) in this process, then (e) again in a row (the second run reads the analysis the first one cached)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache-here"))
    here = _moved(base, tmp_path / "here")
    results = [render_clip(r) for r in here]
    again = _moved(base, tmp_path / "again")
    for r in again:
        render_clip(r)
    reference = _digests(here)
    assert [len(d) for d in reference] == [14, 6, 6]
    assert len(results[0].attempts) == 2  # the QC-retry case really retried
    assert len(results[1].attempts) >= 1 and results[2].qc is None
    assert _digests(again) == reference
    # (b) local worker processes (OpenCV and OpenMP on cores / workers threads each)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache-local"))
    local = run_batch(_moved(base, tmp_path / "local"), store=JobStore(tmp_path / "local.sqlite3"), workers=2)
    # (c) Ray tasks (OMP_NUM_THREADS=1 in Ray's workers), inputs and clips shipped as bytes
    ray_items = run_batch(_moved(base, tmp_path / "ray"), executor="ray", store=JobStore(tmp_path / "ray.sqlite3"))
    for items in (local, ray_items):
        assert [i.status for i in items] == ["done"] * 3, [i.error for i in items]
        assert [i.job_id for i in items] == [job_id(r) for r in here]
        assert _digests([i.request for i in items]) == reference
        # the same bytes too: fixed encoder threads, nothing machine-local in the embedded request
        assert [hashlib.sha256(Path(i.request.output).read_bytes()).digest() for i in items] == \
            [hashlib.sha256(Path(r.output).read_bytes()).digest() for r in here]
    # (d) OpenCV + BLAS + OpenMP on one thread, and on two
    for threads in (1, 2):
        assert _digests(_in_subprocess(base, tmp_path / f"threads{threads}", threads)) == reference, threads


def test_matmul_is_exact_and_thread_independent() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(5)
    sparse = np.where(rng.random((12, 300)) < 0.2, rng.random((12, 300)), 0).astype(np.float32)
    dense = rng.standard_normal((300, 700)).astype(np.float32)
    product = matmul(sparse, dense)
    assert product.dtype == np.float32
    np.testing.assert_allclose(product, sparse.astype(np.float64) @ dense.astype(np.float64), rtol=1e-4, atol=1e-4)
    complex_basis = np.exp(-2j * np.pi * rng.random((300, 9)))
    np.testing.assert_allclose(matmul(dense.T.astype(np.float64), complex_basis), dense.T @ complex_basis,
                               rtol=1e-9, atol=1e-9)
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            results.append(matmul(sparse, dense).tobytes())
    assert results[0] == results[1]
    with pytest.raises(ValueError):
        matmul(sparse, dense.T)


@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("diffusers")
    return tiny_models.build_ltx(tmp_path_factory.mktemp("tiny-ltx") / "ltx")


def test_tiny_diffusion_frames_are_the_same_for_any_thread_count(tiny_ltx: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    base = RenderRequest(image=str(photo("cat")), output=str(tmp_path / "ltx.mp4"), fps=Fraction(24000, 1001),
                         frames=9, width=64, height=64, engine="ltx", model=str(tiny_ltx), seed=4,
                         audio=[AudioSegment(str(MUSIC), Fraction(7), Fraction(9 * 1001, 24000))],
                         qc=False, options={"steps": 2})
    # here with OpenMP / BLAS on two threads (a fresh diffusion worker inherits them), twice in a row in the same
    # warm worker; then a separate process on one thread (what a Ray task gets)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache-here"))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "2")
    POOL.shutdown()
    first, second = _moved([base], tmp_path / "here"), _moved([base], tmp_path / "again")
    result = render_clip(first[0])
    render_clip(second[0])
    reference = _digests(first)
    assert len(reference[0]) == 9
    assert result.engine_summary["kernels"] == {"device": "cpu", "torch": result.engine_summary["kernels"]["torch"],
                                                "threads": 4}  # the kernel class is recorded with the clip
    assert _digests(second) == reference
    assert _digests(_in_subprocess([base], tmp_path / "threads1", 1)) == reference
