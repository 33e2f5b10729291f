"""The job store and job identity: content hashing, WAL, several writers at once, recovery of dead owners."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.jobs import JobStore, default_store_path, job_id
from stillmotion.engine.jobs.store import STALE_SECONDS, Owner
from stillmotion.engine.request import AudioSegment, RenderRequest


def _still(path: Path, value: int = 0) -> Path:
    rng = np.random.default_rng(value)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _request(image: Path, output: Path, **changes) -> RenderRequest:
    base = dict(image=str(image), output=str(output), fps=Fraction(24), frames=12, width=64, height=48, qc=False)
    return RenderRequest(**(base | changes))


def test_identity_hashes_content_not_paths(tmp_path: Path) -> None:
    still = _still(tmp_path / "a.png")
    moved = tmp_path / "sub" / "renamed.png"
    moved.parent.mkdir()
    shutil.copy(still, moved)
    first = job_id(_request(still, tmp_path / "one.mp4"))
    assert len(first) == 64
    # Same bytes under another name, another output path, another timeline position: the same work.
    same = _request(moved, tmp_path / "other" / "two.mp4", options={"timeline": {"clip": "x", "record_start_frame": 9}})
    assert job_id(same) == first
    # Anything that changes pixels or sound changes the job.
    for change in ({"seed": 1}, {"preset": "calm"}, {"intensity": 1.5}, {"width": 32}, {"frames": 13},
                   {"fps": Fraction(24000, 1001)}, {"anchor": "end"}, {"fit": "letterbox"}, {"engine": "other"},
                   {"model": "/models/x"}, {"qc": True}, {"options": {"schedule": {"preset": "calm"}}}):
        assert job_id(_request(still, tmp_path / "one.mp4", **change)) != first, change
    assert job_id(_request(still, tmp_path / "one.mov")) != first  # another container, other bytes
    _still(moved, value=1)  # edit the still in place: new content, new job
    assert job_id(_request(moved, tmp_path / "one.mp4")) != first


def test_identity_hashes_audio_content_and_ranges(tmp_path: Path) -> None:
    still = _still(tmp_path / "a.png")
    song = tmp_path / "song.wav"
    sf.write(str(song), np.sin(np.linspace(0, 400, 22050)).astype(np.float32), 22050)
    copy = tmp_path / "copy.wav"
    shutil.copy(song, copy)

    def with_audio(path: Path, start: str = "0") -> str:
        return job_id(_request(still, tmp_path / "o.mp4", audio=[AudioSegment(str(path), Fraction(start),
                                                                              Fraction(1, 2))]))

    assert with_audio(song) == with_audio(copy)
    assert with_audio(song) != with_audio(song, "1/4")
    assert with_audio(song) != job_id(_request(still, tmp_path / "o.mp4"))
    with pytest.raises(BadInputError, match="does not exist"):
        with_audio(tmp_path / "missing.wav")


def test_default_location_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STILLMOTION_DATA_DIR", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "jobs.sqlite3"
    monkeypatch.delenv("STILLMOTION_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_store_path() == tmp_path / "xdg" / "stillmotion" / "jobs.sqlite3"
    store = JobStore()
    assert store.path == default_store_path() and store.path.is_file()
    assert store.journal_mode == "wal"


def test_lifecycle_history_and_prefix_lookup(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    still = _still(tmp_path / "a.png")
    request = _request(still, tmp_path / "a.mp4")
    jid = job_id(request)
    assert store.submit(jid, request, timeline="/edits/cut.otio") == {}
    owner = Owner.current()
    assert store.claim(jid, owner, "local")
    attempt = store.start_attempt(jid, "local")
    store.finish_attempt(attempt, "done", seed=3, qc={"verdict": "pass"}, host="h", pid=1)
    store.complete(jid, {"frames": 12, "timings": {"total": 0.5}}, request.output, "ab" * 32, 100)
    done = store.get(jid[:8])
    assert done is not None and done["status"] == "done" and done["result"]["frames"] == 12
    assert store.attempts(jid)[0]["qc"] == {"verdict": "pass"} and store.attempt_count() == 1
    history = store.history(status="done", timeline="/edits/cut.otio")
    assert [h["id"] for h in history] == [jid] and history[0]["attempt_count"] == 1
    json.dumps(history)  # plain dicts: the panel and --json take them as they are
    assert store.history(status="failed") == []
    assert store.history(timeline="/other.otio") == []
    assert not store.claim(jid, Owner.current(), "local")  # done stays done unless forced
    with pytest.raises(BadInputError):
        store.history(status="bogus")


def test_dead_owner_is_recovered_and_live_owner_is_not(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    still = _still(tmp_path / "a.png")
    dead_proc = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_proc.wait()  # a pid that existed and is gone
    requests = [_request(still, tmp_path / f"{n}.mp4", seed=n) for n in range(3)]
    ids = [job_id(r) for r in requests]
    for r, i in zip(requests, ids, strict=True):
        store.submit(i, r)
    live, dead = Owner.current(), Owner("dead", dead_proc.pid, socket.gethostname())
    far = Owner("far", 1, "another-host")
    for jid, owner in zip(ids, (live, dead, far), strict=True):
        assert store.claim(jid, owner, "local")
        store.start_attempt(jid, "local")
    assert not store.claim(ids[0], Owner.current(), "local")  # a live batch keeps its job
    assert store.recover_stale() == [ids[1]]
    assert store.get(ids[1])["status"] == "queued"
    assert store.attempts(ids[1])[0]["status"] == "interrupted"
    # An owner on another host is only declared dead once its heartbeat is stale.
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time() - STALE_SECONDS - 1, ids[2]))
    assert store.recover_stale() == [ids[2]]
    assert store.release(live) == [ids[0]] and store.get(ids[0])["status"] == "cancelled"


_WRITER = """
import sys, time
from fractions import Fraction
from stillmotion.engine.jobs.store import JobStore, Owner
from stillmotion.engine.request import RenderRequest
store = JobStore(sys.argv[1]); worker = sys.argv[2]; owner = Owner.current()
for n in range(40):
    jid = f"{worker}-{n:03d}"
    r = RenderRequest(image="x.png", output=f"/o/{jid}.mp4", fps=Fraction(24), frames=1, width=2, height=2)
    store.submit(jid, r)
    assert store.claim(jid, owner, "local")
    a = store.start_attempt(jid, "local")
    store.heartbeat(owner)
    store.finish_attempt(a, "done", seed=n)
    store.complete(jid, {"n": n}, r.output, "0" * 64, n)
    store.history(limit=5)
"""


def test_store_survives_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    JobStore(path)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{k}"], env=env,
                              stderr=subprocess.PIPE, text=True) for k in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = JobStore(path)
    jobs = store.history(limit=1000)
    assert len(jobs) == 160 and {j["status"] for j in jobs} == {"done"}
    assert store.attempt_count() == 160
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
