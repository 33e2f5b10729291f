"""`stillmotion jobs`: the render history in the job store, and re-running one job from it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import BadInputError, StillMotionError
from ..jobs import STATUSES, JobStore, run_batch
from ..jobs.batch import EXECUTORS

NAME = "jobs"
HELP = "list past render jobs (history), show one, or retry one from its stored request"
DESCRIPTION = """\
Every clip StillMotion renders through a batch (`stillmotion timeline`) is a job in the job store, named by a hash
of its content (still and music bytes, engine, preset, seed, size, rate...) and of the code that makes the
pixels: identical work is never rendered twice, and a batch killed mid-way resumes where it stopped. CODE says
whether a clip was made by this code or by other code (another StillMotion version); a batch renders those again
unless asked to keep them (`stillmotion timeline --reuse-stale`). The store is a SQLite file in the user data folder
($XDG_DATA_HOME/stillmotion/jobs.sqlite3 on Linux; STILLMOTION_DATA_DIR or --store overrides it).

actions:
  list (default)   newest jobs first: id, status, renders started, when, size, rate, code, output
  show ID          one job with its request, result and every attempt (QC, seed, error), as JSON
  retry ID         render the job again from its stored request, replacing its output
                   (IDs may be shortened to any unique prefix of 4+ characters)

examples:
  stillmotion jobs
  stillmotion jobs --status failed --timeline edit.otio
  stillmotion jobs show 3fa9c2
  stillmotion jobs retry 3fa9c2 --executor ray
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "show", "retry"), default="list",
                        help="what to do (default: list)")
    parser.add_argument("job", nargs="?", metavar="ID", help="job id or unique prefix (show, retry)")
    parser.add_argument("--status", choices=STATUSES, help="list only jobs with this status")
    parser.add_argument("--timeline", metavar="PATH", help="list only jobs rendered for this timeline (OUT file)")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="list at most N jobs (default 50)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="where retry renders (default local)")
    parser.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join for retry --executor ray")
    parser.add_argument("--shared-storage", action="store_true",
                        help="Ray nodes see the still, music and output at the same paths (else bytes travel)")
    parser.add_argument("--store", metavar="FILE", help="job store file (default: the user data folder's)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _age(seconds: float) -> str:
    delta = max(0.0, time.time() - seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"


def _row(job: dict[str, Any]) -> str:
    request = job.get("request") or {}
    size = f"{request.get('width')}x{request.get('height')}"
    clip = f"{request.get('frames')}f@{request.get('fps')}"
    code = "other" if job.get("stale") else "this"
    line = (f"{job['id'][:12]}  {job['status']:<9}  {job.get('attempt_count', 0):>2}  {_age(job['updated']):>8}  "
            f"{request.get('engine', '?'):<10}  {size:>9}  {clip:>12}  {code:<5}  {job['output']}")
    if job.get("error") and job["status"] != "done":
        line += f"\n{'':14}{job['error']}"
    return line


def _find(store: JobStore, job: str | None) -> dict[str, Any]:
    if not job:
        raise BadInputError("give a job ID (see `stillmotion jobs`)")
    found = store.get(job)
    if found is None:
        raise BadInputError(f"no job {job!r} in {store.path}")
    return found


def run(args: argparse.Namespace) -> int:
    store = JobStore(args.store)
    if args.action == "list":
        if args.job:
            raise BadInputError(f"list takes no ID (did you mean `stillmotion jobs show {args.job}`?)")
        timeline = str(Path(args.timeline).expanduser().resolve()) if args.timeline else None
        jobs = store.history(status=args.status, timeline=timeline, limit=args.limit)
        if args.json:
            json.dump(jobs, sys.stdout, indent=2)
            sys.stdout.write("\n")
        elif not jobs:
            print(f"no jobs in {store.path}" + (" matching the filter" if args.status or timeline else ""),
                  file=sys.stderr)
        else:
            print(f"{'ID':<12}  {'STATUS':<9}  {'RUNS':>2}  {'UPDATED':>8}  {'ENGINE':<10}  {'SIZE':>9}  "
                  f"{'FRAMES':>12}  {'CODE':<5}  OUTPUT")
            for job in jobs:
                print(_row(job))
            stale = sum(1 for job in jobs if job.get("stale") and job["status"] == "done")
            if stale:
                print(f"{stale} finished clip(s) were made by other code (another StillMotion version or engine "
                      f"change): a batch renders them again, or keeps them with --reuse-stale", file=sys.stderr)
        return 0

    found = _find(store, args.job)
    if args.action == "show":
        json.dump(found | {"attempts": store.attempts(found["id"]), "outputs": store.outputs(found["id"])},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    request = store.request(found["id"])
    request.overwrite = True  # retry means: render it again and replace the clip
    if not Path(request.image).is_file():
        raise BadInputError(f"the still {request.image} of job {found['id'][:12]} is missing")
    (item,) = run_batch([request], executor=args.executor, store=store, ray_address=args.ray_address, workers=1,
                        timeline=found.get("timeline"), shared_storage=args.shared_storage, force=True)
    if args.json:
        json.dump(item.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    if item.status != "done":
        raise StillMotionError(f"job {found['id'][:12]} {item.status}: {item.error}")
    if not args.json:
        print(f"job {found['id'][:12]}: rendered again -> {item.request.output}", file=sys.stderr)
    return 0
