"""The panel's side of the job store: record a finished panel render the way `run_batch` records a batch job, and
read a timeline's past jobs back as panel history. No Qt here: the controller runs these on its task pool, so the
UI thread never waits on SQLite or on hashing a still and its music."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillmotion.engine.jobs.identity import job_id as compute_job_id
from stillmotion.engine.jobs.identity import output_digest
from stillmotion.engine.jobs.store import JobStore, Owner
from stillmotion.engine.qc import ALL_GATES
from stillmotion.engine.request import RenderRequest

#: The executor name the panel's attempts carry in the store (batches write "local" or "ray").
PANEL_EXECUTOR = "panel"
#: Store statuses the panel shows as past jobs, and the panel state each becomes ("queued" / "running" jobs
#: belong to a live batch and are left to it).
PAST_STATES = {"done": "finished", "failed": "failed", "cancelled": "cancelled"}
#: Most past jobs loaded per timeline path.
HISTORY_LIMIT = 200


def timeline_key(path: str | Path) -> str:
    """A timeline path as the store keys it (`run_batch` resolves it the same way)."""
    return str(Path(path).expanduser().resolve())


def record_render(store: JobStore, owner: Owner, request: RenderRequest, state: str,
                  result: dict[str, Any] | None, error: str, timeline: str | None) -> str:
    """Record one panel render that ended as `state` (finished / failed / cancelled); return its store job id.

    Same steps as a batch: submit, claim, one attempt, then complete (with the output's checksum) or finish. A
    failed or cancelled panel attempt never downgrades a job the store already has done (or another live batch
    is running): only its attempt is added.
    """
    store_id = compute_job_id(request)
    previous = store.submit(store_id, request, timeline)
    if state == "finished":
        assert result is not None
        output = str(result["output"])
        sha256, size = output_digest(output)
        claimed = store.claim(store_id, owner, PANEL_EXECUTOR, force=True)
        attempt = store.start_attempt(store_id, PANEL_EXECUTOR)
        qc_attempts = [{"seed": a.get("seed"), "qc": a.get("qc")} for a in result.get("attempts", [])]
        store.finish_attempt(attempt, "done", host=owner.host, pid=owner.pid, seed=result.get("seed"),
                             qc={"verdict": (result.get("qc") or {}).get("verdict"), "attempts": qc_attempts},
                             timings=result.get("timings"))
        if claimed:
            store.complete(store_id, result, output, sha256, size, timeline)
        else:  # another live batch is rendering the same work: keep our copy as one of its outputs
            store.add_output(store_id, output, sha256, size, timeline)
        return store_id
    status = "failed" if state == "failed" else "cancelled"
    attempt = store.start_attempt(store_id, PANEL_EXECUTOR)
    store.finish_attempt(attempt, status, host=owner.host, pid=owner.pid, seed=request.seed,
                         error=error or status)
    if previous.get("status") not in ("done", "running"):
        store.finish(store_id, status, error or status)
    return store_id


@dataclass
class PastJob:
    """One stored job as the panel shows it: its request and result, and the clip file if it still exists."""

    store_id: str
    request: RenderRequest
    state: str                      # finished / failed / cancelled
    result: dict[str, Any] | None
    error: str
    updated: float
    output: str | None              # an existing file holding the clip (None: gone or never made)
    outputs: set[str] = field(default_factory=set)  # every path the store knows for this job


def _existing_output(store: JobStore, row: dict[str, Any]) -> tuple[str | None, set[str]]:
    main = str(row.get("output") or "")
    known = {main} if main else set()
    if row["status"] != "done":
        return None, known
    if main and Path(main).is_file():
        return main, known
    copies = [str(o["path"]) for o in store.outputs(row["id"])]
    known.update(copies)
    return next((p for p in copies if Path(p).is_file()), None), known


def load_past_jobs(store: JobStore, timelines: list[str]) -> list[PastJob]:
    """Finished, failed and cancelled jobs recorded for any of `timelines`, newest first, once each."""
    seen: set[str] = set()
    past: list[PastJob] = []
    for timeline in dict.fromkeys(timelines):
        for row in store.history(timeline=timeline, limit=HISTORY_LIMIT):
            if row["id"] in seen or row["status"] not in PAST_STATES:
                continue
            seen.add(row["id"])
            try:
                request = RenderRequest.from_json(dict(row["request"]))
            except (KeyError, TypeError, ValueError):
                continue
            output, known = _existing_output(store, row)
            result = dict(row["result"]) if row.get("result") else None
            if result is not None and output is not None:
                result["output"] = output
            past.append(PastJob(store_id=row["id"], request=request, state=PAST_STATES[row["status"]],
                                result=result, error=str(row.get("error") or ""),
                                updated=float(row.get("finished") or row.get("updated") or 0.0),
                                output=output, outputs=known))
    past.sort(key=lambda p: p.updated, reverse=True)
    return past


def params_of(request: RenderRequest) -> dict[str, Any]:
    """The parameters a job card shows, rebuilt from a stored request (the panel's own jobs keep theirs)."""
    schedule = request.options.get("schedule") or {}
    gates = (request.options.get("qc_thresholds") or {}).get("gates")
    return {"engine": request.engine, "model": request.model, "preset": request.preset,
            "intensity": round(float(request.intensity), 3), "seed": request.seed,
            "routing": dict(schedule.get("routing") or {}), "size": f"{request.width}x{request.height}",
            "qc": request.qc, "gates": list(gates if gates is not None else ALL_GATES),
            "prompt": request.prompt or "", "negative_prompt": request.negative_prompt or ""}


__all__ = ["HISTORY_LIMIT", "PANEL_EXECUTOR", "PAST_STATES", "PastJob", "load_past_jobs", "params_of",
           "record_render", "timeline_key"]
