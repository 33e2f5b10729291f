"""The job store: every render job, its attempts and its outputs, in one SQLite file that survives crashes.

WAL mode, a busy timeout and short transactions let several processes (two batches, the CLI and the panel) use it
at once. A job marked "running" names its owner (a batch process: pid, host, a per-run token) and carries a
heartbeat; when that owner is gone the job is handed back, so a `kill -9` never leaves work stuck.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInputError, OutputError, StillMotionError
from ..request import RenderRequest
from .identity import code_digest, work_id

STATUSES = ("queued", "running", "done", "failed", "cancelled")
#: Attempt outcomes: the job's statuses plus "crashed" (the worker died) and "interrupted" (the batch died).
ATTEMPT_STATUSES = ("running", "done", "failed", "cancelled", "crashed", "interrupted")
#: A running batch refreshes its heartbeat this often ...
HEARTBEAT_SECONDS = 5.0
#: ... and a job whose heartbeat is older than this belongs to nobody (covers owners on other hosts, pid reuse).
STALE_SECONDS = 60.0
BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = 2
DB_NAME = "jobs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    request       TEXT NOT NULL,
    status        TEXT NOT NULL,
    timeline      TEXT,
    output        TEXT NOT NULL,
    engine        TEXT NOT NULL,
    created       REAL NOT NULL,
    updated       REAL NOT NULL,
    started       REAL,
    finished      REAL,
    owner         TEXT,
    owner_pid     INTEGER,
    owner_host    TEXT,
    heartbeat     REAL,
    executor      TEXT,
    result        TEXT,
    error         TEXT,
    timings       TEXT,
    work          TEXT,
    code          TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, updated);
CREATE INDEX IF NOT EXISTS jobs_by_timeline ON jobs(timeline, updated);
CREATE TABLE IF NOT EXISTS attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    TEXT NOT NULL REFERENCES jobs(id),
    number    INTEGER NOT NULL,
    status    TEXT NOT NULL,
    executor  TEXT,
    host      TEXT,
    pid       INTEGER,
    started   REAL NOT NULL,
    finished  REAL,
    seed      INTEGER,
    qc        TEXT,
    error     TEXT,
    timings   TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts(job_id, number);
CREATE TABLE IF NOT EXISTS outputs (
    job_id    TEXT NOT NULL REFERENCES jobs(id),
    path      TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    timeline  TEXT,
    created   REAL NOT NULL,
    PRIMARY KEY (job_id, path)
);
CREATE INDEX IF NOT EXISTS outputs_by_timeline ON outputs(timeline);
"""
#: Columns added since schema 1 (ALTER TABLE on an older store; their index is made after).
_ADDED_COLUMNS = {"jobs": (("work", "TEXT"), ("code", "TEXT"))}
_ADDED_INDEXES = ("CREATE INDEX IF NOT EXISTS jobs_by_work ON jobs(work, status)",)


def default_data_dir() -> Path:
    """$STILLMOTION_DATA_DIR, else the platform's user data folder (on Linux $XDG_DATA_HOME/stillmotion)."""
    override = os.environ.get("STILLMOTION_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("stillmotion"))


def default_store_path() -> Path:
    return default_data_dir() / DB_NAME


@dataclass(frozen=True)
class Owner:
    """The batch process that runs a job: alive while its pid exists on its host and its heartbeat is fresh."""

    token: str
    pid: int
    host: str

    @classmethod
    def current(cls) -> Owner:
        return cls(token=uuid.uuid4().hex, pid=os.getpid(), host=socket.gethostname())


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie has exited; only its parent has not reaped it yet
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def owner_is_gone(row: dict[str, Any], now: float | None = None) -> bool:
    """Whether a running job's owner has died: its process is gone (same host) or its heartbeat is stale."""
    now = time.time() if now is None else now
    heartbeat = row.get("heartbeat") or 0.0
    if now - heartbeat > STALE_SECONDS:
        return True
    if row.get("owner_host") == socket.gethostname():
        return not pid_alive(int(row.get("owner_pid") or 0))
    return False


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class JobStore:
    """Render jobs, attempts and outputs in SQLite; every method is one short transaction on a fresh connection
    (safe from several threads and processes)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:  # WAL is persistent in the file, and cannot be switched on inside a transaction
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
            with self._connect(write=True) as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise BadInputError(f"job store {self.path} was written by a newer StillMotion "
                                        f"(schema {version}); upgrade StillMotion")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                for table, columns in _ADDED_COLUMNS.items():
                    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                    for name, kind in columns:
                        if name not in have:
                            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                for statement in _ADDED_INDEXES:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise OutputError(f"job store {self.path} cannot be opened: {exc}") from None
        except OSError as exc:
            raise OutputError(f"job store folder {self.path.parent} cannot be created: {exc.strerror}") from None

    # ------------------------------------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection per call: autocommit off, IMMEDIATE for writes (no lock upgrade deadlocks)."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @property
    def journal_mode(self) -> str:
        with self._connect() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    # ------------------------------------------------------------------------------------------------- writes
    def submit(self, job_id: str, request: RenderRequest, timeline: str | None = None, *,
               work: str | None = None, code: str | None = None) -> dict[str, Any]:
        """Record a job (queued) or note that it was asked for again; return its row as it was before.

        `work` and `code` (see identity.work_id / code_digest; computed here when not given) let a later batch
        tell a clip made by other code from a current one."""
        if work is None or code is None:
            with contextlib.suppress(StillMotionError, OSError):
                work, code = work or work_id(request), code or code_digest(request.engine)
        now = time.time()
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO jobs (id, request, status, timeline, output, engine, created, updated, work, code) "
                    "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, request.dumps(), timeline, request.output, request.engine, now, now, work, code))
                return {}
            previous = dict(row)
            if previous["status"] in ("failed", "cancelled"):
                conn.execute("UPDATE jobs SET status = 'queued', error = NULL, updated = ?, request = ?, "
                             "output = ?, timeline = COALESCE(?, timeline) WHERE id = ?",
                             (now, request.dumps(), request.output, timeline, job_id))
            elif timeline is not None:
                conn.execute("UPDATE jobs SET timeline = ?, updated = ? WHERE id = ?", (timeline, now, job_id))
            return previous

    def claim(self, job_id: str, owner: Owner, executor: str, force: bool = False) -> bool:
        """Take a job for `owner` unless another live batch is running it (or, without force, it is done)."""
        now = time.time()
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            current = dict(row)
            if current["status"] == "running" and current["owner"] != owner.token and not owner_is_gone(current, now):
                return False
            if current["status"] == "done" and not force:
                return False
            if current["status"] == "running" and current["owner"] != owner.token:
                self._interrupt_attempts(conn, job_id, now)
            conn.execute("UPDATE jobs SET status = 'running', owner = ?, owner_pid = ?, owner_host = ?, "
                         "heartbeat = ?, executor = ?, started = ?, finished = NULL, error = NULL, updated = ? "
                         "WHERE id = ?", (owner.token, owner.pid, owner.host, now, executor, now, now, job_id))
            return True

    def heartbeat(self, owner: Owner) -> None:
        """Tell other processes that `owner` is still alive and working on its running jobs."""
        now = time.time()
        with self._connect(write=True) as conn:
            conn.execute("UPDATE jobs SET heartbeat = ? WHERE owner = ? AND status = 'running'", (now, owner.token))

    def start_attempt(self, job_id: str, executor: str) -> int:
        now = time.time()
        with self._connect(write=True) as conn:
            number = conn.execute("SELECT COUNT(*) FROM attempts WHERE job_id = ?", (job_id,)).fetchone()[0] + 1
            cursor = conn.execute("INSERT INTO attempts (job_id, number, status, executor, started) "
                                  "VALUES (?, ?, 'running', ?, ?)", (job_id, number, executor, now))
            return int(cursor.lastrowid)

    def finish_attempt(self, attempt_id: int, status: str, *, host: str | None = None, pid: int | None = None,
                       seed: int | None = None, qc: Any = None, error: str | None = None,
                       timings: dict[str, float] | None = None) -> None:
        if status not in ATTEMPT_STATUSES:
            raise ValueError(f"unknown attempt status {status!r}")
        with self._connect(write=True) as conn:
            conn.execute("UPDATE attempts SET status = ?, host = ?, pid = ?, finished = ?, seed = ?, qc = ?, "
                         "error = ?, timings = ? WHERE id = ?",
                         (status, host, pid, time.time(), seed, None if qc is None else json.dumps(qc), error,
                          None if timings is None else json.dumps(timings), attempt_id))

    def complete(self, job_id: str, result: dict[str, Any], output: str, sha256: str, size: int,
                 timeline: str | None = None) -> None:
        """Mark a job done with its result and record its output file's checksum."""
        now = time.time()
        with self._connect(write=True) as conn:
            conn.execute("UPDATE jobs SET status = 'done', result = ?, output = ?, finished = ?, updated = ?, "
                         "owner = NULL, error = NULL, timings = ? WHERE id = ?",
                         (json.dumps(result), output, now, now, json.dumps(result.get("timings", {})), job_id))
            self._add_output(conn, job_id, output, sha256, size, timeline, now)

    def add_output(self, job_id: str, path: str, sha256: str, size: int, timeline: str | None = None) -> None:
        """Record another copy of a done job's clip (reused under a new name)."""
        with self._connect(write=True) as conn:
            self._add_output(conn, job_id, path, sha256, size, timeline, time.time())

    @staticmethod
    def _add_output(conn: sqlite3.Connection, job_id: str, path: str, sha256: str, size: int,
                    timeline: str | None, now: float) -> None:
        conn.execute("INSERT OR REPLACE INTO outputs (job_id, path, sha256, size, timeline, created) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (job_id, path, sha256, size, timeline, now))

    def finish(self, job_id: str, status: str, error: str | None = None) -> None:
        """End a job without a clip: failed (with its one-line error) or cancelled."""
        if status not in ("failed", "cancelled", "queued"):
            raise ValueError(f"cannot finish a job as {status!r}")
        now = time.time()
        with self._connect(write=True) as conn:
            conn.execute("UPDATE jobs SET status = ?, error = ?, finished = ?, updated = ?, owner = NULL "
                         "WHERE id = ? AND status != 'done'", (status, error, now, now, job_id))

    def release(self, owner: Owner, status: str = "cancelled", error: str | None = None) -> list[str]:
        """Hand back every job `owner` still runs (when a batch stops early); returns their ids."""
        now = time.time()
        with self._connect(write=True) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE owner = ? AND status = 'running'",
                                              (owner.token,))]
            for job_id in ids:
                conn.execute("UPDATE attempts SET status = 'cancelled', finished = ?, error = ? "
                             "WHERE job_id = ? AND status = 'running'", (now, error or status, job_id))
                conn.execute("UPDATE jobs SET status = ?, error = ?, owner = NULL, updated = ?, finished = ? "
                             "WHERE id = ?", (status, error, now, now, job_id))
            return ids

    def recover_stale(self) -> list[str]:
        """Requeue every running job whose owner is gone (killed batch, rebooted host); returns their ids."""
        now = time.time()
        with self._connect(write=True) as conn:
            rows = [dict(r) for r in conn.execute("SELECT * FROM jobs WHERE status = 'running'")]
            stale = [r["id"] for r in rows if owner_is_gone(r, now)]
            for job_id in stale:
                self._interrupt_attempts(conn, job_id, now)
                conn.execute("UPDATE jobs SET status = 'queued', owner = NULL, updated = ?, "
                             "error = 'interrupted: its batch process died' WHERE id = ?", (now, job_id))
            return stale

    @staticmethod
    def _interrupt_attempts(conn: sqlite3.Connection, job_id: str, now: float) -> None:
        conn.execute("UPDATE attempts SET status = 'interrupted', finished = ?, "
                     "error = 'its batch process died mid-render' WHERE job_id = ? AND status = 'running'",
                     (now, job_id))

    # -------------------------------------------------------------------------------------------------- reads
    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job by id, or by an unambiguous id prefix (at least 4 hex digits), as a plain dict."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE id = ? OR (length(?) >= 4 AND id LIKE ? || '%') "
                                "LIMIT 3", (job_id, job_id, job_id.lower())).fetchall()
        exact = [r for r in rows if r["id"] == job_id]
        if exact:
            return self._job_dict(exact[0])
        if len(rows) > 1:
            raise BadInputError(f"job id {job_id!r} is ambiguous; give more digits")
        return self._job_dict(rows[0]) if rows else None

    def request(self, job_id: str) -> RenderRequest:
        """The stored request of a job (for `stillmotion jobs retry`)."""
        with self._connect() as conn:
            row = conn.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise BadInputError(f"no job {job_id}")
        return RenderRequest.loads(row[0])

    def done_with_work(self, work: str, exclude: str | None = None) -> list[dict[str, Any]]:
        """Finished jobs doing the same work as `work` (identity.work_id), newest first: clips of this request
        made by other code (what --reuse-stale may keep)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE work = ? AND status = 'done' AND id != ? "
                                "ORDER BY finished DESC", (work, exclude or "")).fetchall()
        return [self._job_dict(r) for r in rows]

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM attempts WHERE job_id = ? ORDER BY number", (job_id,)).fetchall()
        return [{**dict(r), "qc": _loads(r["qc"]), "timings": _loads(r["timings"])} for r in rows]

    def attempt_count(self, job_id: str | None = None) -> int:
        """Renders started (for one job or in total): how much work a batch really did."""
        with self._connect() as conn:
            if job_id is None:
                return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM attempts WHERE job_id = ?", (job_id,)).fetchone()[0])

    def outputs(self, job_id: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM outputs WHERE job_id = ? ORDER BY created DESC", (job_id,))
            return [dict(r) for r in rows]

    def history(self, status: str | None = None, timeline: str | None = None, limit: int = 100
                ) -> list[dict[str, Any]]:
        """Recent jobs, newest first, as plain JSON-ready dicts (the CLI and the panel's history use this)."""
        if status is not None and status not in STATUSES:
            raise BadInputError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if timeline is not None:
            clauses.append("(timeline = ? OR id IN (SELECT job_id FROM outputs WHERE timeline = ?))")
            params += [timeline, timeline]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT jobs.*, (SELECT COUNT(*) FROM attempts WHERE job_id = jobs.id) AS "
                                f"attempt_count FROM jobs {where} ORDER BY updated DESC LIMIT ?",
                                (*params, max(1, int(limit)))).fetchall()
        return [self._job_dict(r) for r in rows]

    @staticmethod
    def _job_dict(row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        engine = data.get("engine") or "procedural"
        # Made by other code: a store from before code digests (code NULL) or a digest that is not this code's.
        data["stale"] = data.get("code") != code_digest(engine)
        data["request"] = _loads(data["request"])
        data["result"] = _loads(data.get("result"))
        data["timings"] = _loads(data.get("timings"))
        return data


__all__ = ["ATTEMPT_STATUSES", "HEARTBEAT_SECONDS", "STALE_SECONDS", "STATUSES", "JobStore", "Owner",
           "default_data_dir", "default_store_path", "owner_is_gone", "pid_alive"]
