"""Batches on the local executor: identical work rendered once, reuse, a killed worker retried, and a batch killed
with SIGKILL resumed by running it again (counting renders through the store's attempts)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image
from stillmotion.engine.cli import main as cli_main
from stillmotion.engine.jobs import JobStore, job_id, run_batch
from stillmotion.engine.jobs.worker import TEST_CRASH_DIR_ENV
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.video import read_frames


def _still(path: Path, value: int = 0) -> Path:
    rng = np.random.default_rng(value)
    Image.fromarray((rng.random((120, 160, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _request(image: Path, output: Path, **changes) -> RenderRequest:
    base = dict(image=str(image), output=str(output), fps=Fraction(24), frames=12, width=64, height=48, qc=False)
    return RenderRequest(**(base | changes))


def frame_hashes(path: str | Path) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(f).tobytes()).hexdigest() for f in read_frames(path)]


def test_identical_work_is_rendered_once_and_reused(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    still = _still(tmp_path / "a.png")
    copy = tmp_path / "copy.png"
    copy.write_bytes(still.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    requests = [_request(still, out / "a.mp4"), _request(copy, out / "b.mp4"), _request(still, out / "c.mp4", seed=5)]
    items = run_batch(requests, store=store, workers=2, timeline=str(tmp_path / "cut.otio"))
    assert [i.status for i in items] == ["done", "done", "done"], [i.error for i in items]
    assert items[0].job_id == items[1].job_id != items[2].job_id
    assert [i.reused for i in items] == [False, True, False]
    assert store.attempt_count() == 2  # three clips asked for, two rendered
    assert frame_hashes(out / "a.mp4") == frame_hashes(out / "b.mp4") != frame_hashes(out / "c.mp4")
    assert items[1].render_result().frames == 12 and items[1].result["output"] == str(out / "b.mp4")
    assert len(store.history(timeline=str(tmp_path / "cut.otio"))) == 2

    # Again, under a new name too: nothing is rendered; a deleted copy comes back from the other one.
    (out / "a.mp4").unlink()
    again = run_batch(requests + [_request(still, out / "d.mp4")], store=store, workers=2)
    assert all(i.status == "done" and i.reused for i in again)
    assert store.attempt_count() == 2
    assert frame_hashes(out / "a.mp4") == frame_hashes(out / "d.mp4")

    # A clip changed on disk is not trusted: its job renders again (replacing it only when asked to).
    for name in ("a.mp4", "b.mp4", "d.mp4"):
        (out / name).write_bytes(b"not a video")
    refused = run_batch([_request(still, out / "a.mp4")], store=store, workers=1)
    assert refused[0].status == "failed" and "exists" in refused[0].error
    assert (out / "a.mp4").read_bytes() == b"not a video"
    changed = run_batch([_request(still, out / "a.mp4", overwrite=True)], store=store, workers=1)
    assert changed[0].status == "done" and not changed[0].reused
    assert store.attempt_count(items[0].job_id) == 2


def test_bad_requests_fail_alone(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    still = _still(tmp_path / "a.png")
    (tmp_path / "taken.mp4").write_bytes(b"user's file")
    items = run_batch([_request(tmp_path / "missing.png", tmp_path / "x.mp4"),
                       _request(still, tmp_path / "odd.mp4", width=63),
                       _request(still, tmp_path / "taken.mp4"),
                       _request(still, tmp_path / "ok.mp4", seed=2)], store=store, workers=1)
    assert [i.status for i in items] == ["failed", "failed", "failed", "done"]
    assert "does not exist" in items[0].error and "even" in items[1].error and "exists" in items[2].error
    assert (tmp_path / "taken.mp4").read_bytes() == b"user's file"
    assert store.get(items[2].job_id)["status"] == "failed"


def test_killed_worker_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    still = _still(tmp_path / "a.png")
    requests = [_request(still, tmp_path / f"{n}.mp4", seed=n) for n in range(3)]
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    victim = job_id(requests[1])
    (crash_dir / f"crash-{victim}").touch()
    monkeypatch.setenv(TEST_CRASH_DIR_ENV, str(crash_dir))
    events: list[str] = []
    items = run_batch(requests, store=store, workers=2, on_event=lambda e: events.append(f"{e.index}:{e.status}"))
    assert [i.status for i in items] == ["done", "done", "done"], [i.error for i in items]
    assert [p.name.split("-")[0] for p in crash_dir.iterdir()] == ["crashed"]  # the worker really died
    attempts = store.attempts(victim)
    assert [a["status"] for a in attempts] == ["crashed", "done"]
    assert "exit code -9" in attempts[0]["error"]
    assert "1:retrying" in events
    assert len(frame_hashes(tmp_path / "1.mp4")) == 12


_BATCH = """
import sys
from fractions import Fraction
from stillmotion.engine.jobs import JobStore, run_batch
from stillmotion.engine.request import RenderRequest
if __name__ == "__main__":
    store = JobStore(sys.argv[1])
    requests = [RenderRequest(image=sys.argv[2], output=f"{sys.argv[3]}/{n}.mp4", fps=Fraction(24), frames=36,
                              width=160, height=120, seed=n, qc=False) for n in range(6)]
    run_batch(requests, store=store, workers=1)
"""


def _requests_for_kill_test(still: Path, folder: Path) -> list[RenderRequest]:
    return [RenderRequest(image=str(still), output=f"{folder}/{n}.mp4", fps=Fraction(24), frames=36, width=160,
                          height=120, seed=n, qc=False) for n in range(6)]


def test_kill_9_mid_batch_then_rerun_renders_only_the_rest(tmp_path: Path) -> None:
    store_path = tmp_path / "jobs.sqlite3"
    still = _still(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "batch.py"
    script.write_text(_BATCH)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    batch = subprocess.Popen([sys.executable, str(script), str(store_path), str(still), str(out)], env=env)
    store = JobStore(store_path)
    deadline = time.monotonic() + 90
    done_before: set[str] = set()
    while time.monotonic() < deadline and len(done_before) < 2 and batch.poll() is None:
        done_before = {j["id"] for j in store.history(status="done")}
        time.sleep(0.02)
    assert batch.poll() is None, "the batch finished before it could be killed; make the clips longer"
    workers = psutil.Process(batch.pid).children(recursive=True)
    os.kill(batch.pid, signal.SIGKILL)  # only the batch process: its worker must notice and exit by itself
    batch.wait()
    done_before = {j["id"] for j in store.history(status="done")}
    assert 2 <= len(done_before) < 6
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, "orphaned workers outlived their batch"

    requests = _requests_for_kill_test(still, out)
    items = run_batch(requests, store=store, workers=1)
    assert all(i.status == "done" for i in items), [i.error for i in items]
    ids = [i.job_id for i in items]
    for jid in ids:
        statuses = [a["status"] for a in store.attempts(jid)]
        if jid in done_before:
            assert statuses == ["done"]  # finished clips were reused, not rendered again
        else:
            assert statuses in (["done"], ["interrupted", "done"]), statuses
    assert sum(len(store.attempts(j)) for j in ids) <= 6 + 1  # at most the one clip in flight was redone
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.mp4" for n in range(6)]  # no stray temp files
    assert all(len(frame_hashes(out / f"{n}.mp4")) == 36 for n in range(6))


def test_jobs_command_lists_filters_and_retries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "jobs.sqlite3"
    still = _still(tmp_path / "a.png")
    items = run_batch([_request(still, tmp_path / "a.mp4"), _request(still, tmp_path / "b.mp4", width=63)],
                      store=JobStore(store_path), workers=1, timeline=str(tmp_path / "cut.otio"))
    assert cli_main(["jobs", "--store", str(store_path)]) == 0
    listing = capsys.readouterr().out
    assert items[0].job_id[:12] in listing and "done" in listing
    assert cli_main(["jobs", "--store", str(store_path), "--status", "done", "--timeline",
                     str(tmp_path / "cut.otio"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [items[0].job_id]
    assert cli_main(["jobs", "--store", str(store_path), "--status", "failed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    before = (tmp_path / "a.mp4").stat().st_ino
    assert cli_main(["jobs", "retry", items[0].job_id[:8], "--store", str(store_path)]) == 0
    assert (tmp_path / "a.mp4").stat().st_ino != before  # rendered again and replaced atomically
    assert JobStore(store_path).attempt_count(items[0].job_id) == 2
    assert cli_main(["jobs", "show", items[0].job_id[:8], "--store", str(store_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [a["status"] for a in shown["attempts"]] == ["done", "done"]
    assert cli_main(["jobs", "retry", "ffffffff", "--store", str(store_path)]) == 2
    assert "no job" in capsys.readouterr().err


_UNGUARDED = """
import sys
from fractions import Fraction
from stillmotion.engine.jobs import JobStore, run_batch
from stillmotion.engine.request import RenderRequest
print("script ran", flush=True)
items = run_batch([RenderRequest(image=sys.argv[2], output=sys.argv[3], fps=Fraction(24), frames=6, width=64,
                                 height=48, qc=False)], store=JobStore(sys.argv[1]), workers=1)
print(items[0].status, flush=True)
"""


def test_a_script_without_a_main_guard_can_run_a_batch(tmp_path: Path) -> None:
    """Spawned workers must not re-run the caller's script (no `if __name__ == "__main__":` needed)."""
    script = tmp_path / "batch.py"
    script.write_text(_UNGUARDED)
    still = _still(tmp_path / "still.png")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "jobs.sqlite3"), str(still),
                           str(tmp_path / "out.mp4")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["script", "ran", "done"]  # the script ran once, in the parent only
    assert len(frame_hashes(tmp_path / "out.mp4")) == 6
