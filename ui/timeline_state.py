"""The panel's state kept in the timeline itself, metadata["stillmotion"]["panel"]: the per-timeline settings and
the attempts this panel put on the timeline. Written on every save, read back when the timeline is opened again
(past jobs from batches and earlier sessions come from the job store instead: `job_history.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import opentimelineio as otio
from stillmotion.engine.request import RenderRequest

from .viewmodel import Job, JobState, PanelViewModel


def store_panel_state(timeline: otio.schema.Timeline, vm: PanelViewModel) -> None:
    """Put the view-model's per-timeline settings and attempt history into the timeline's metadata."""
    data = dict(timeline.metadata.get("stillmotion", {}) or {})
    # past jobs live in the job store; the metadata only keeps those this panel put on the timeline
    history = [j.summary() for j in vm.jobs if j.state.done and (not j.past or j.inserted)]
    data["panel"] = {"settings": {k: (list(v) if isinstance(v, tuple) else v)
                                  for k in vm.settings_keys() for v in [getattr(vm, k)]},
                     "history": history}
    timeline.metadata["stillmotion"] = jsonable(data)


def restore_panel_state(timeline: otio.schema.Timeline, vm: PanelViewModel) -> None:
    """Per-timeline settings and attempt history from the timeline's metadata["stillmotion"]["panel"]."""
    for job in list(vm.jobs):
        vm.jobs.remove(job.id)
    vm.compare, vm.player = (), None
    panel = (timeline.metadata.get("stillmotion") or {}).get("panel") or {}
    for key, value in dict(panel.get("settings") or {}).items():
        if key in vm.settings_keys():
            try:
                setattr(vm, key, tuple(value) if key == "qc_gates" else value)
            except (TypeError, ValueError):
                continue
    for entry in panel.get("history") or []:
        try:
            request = RenderRequest.from_json(dict(entry["request"]))
            state = JobState(entry["state"])
        except (KeyError, TypeError, ValueError):
            continue
        if state is JobState.finished and not Path(request.output).is_file():
            continue
        job = Job(id=str(entry["id"]), still_key=str(entry["still_key"]), label=str(entry["label"]),
                  request=request, params=dict(entry.get("params") or {}), state=state,
                  step=request.frames, total=request.frames, result=entry.get("result"),
                  error=str(entry.get("error") or ""), inserted=str(entry.get("inserted") or ""),
                  created=float(entry.get("created") or 0.0), store_id=str(entry.get("store_id") or ""),
                  past=bool(entry.get("past")))
        vm.jobs.add(job)


def jsonable(value: Any) -> Any:
    """Plain JSON types only: OTIO metadata rejects Fractions, tuples of numpy scalars and the like."""
    return json.loads(json.dumps(value, default=str))
