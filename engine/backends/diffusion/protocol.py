"""What the parent, the worker and the runtime share, below all three so none imports another: the job that
crosses the process boundary, the exception that stops a pipeline within one step, and the worker's sending side
of the message protocol (described in worker.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class StepCancelled(Exception):
    """Raised from callback_on_step_end when the user cancels: stops the pipeline within one step."""


@dataclass
class DiffusionJob:
    """Everything the worker needs (picklable: plain values and numpy arrays)."""

    family: str
    request: dict[str, Any]
    weights: dict[str, Any]
    image: np.ndarray
    end_image: np.ndarray | None
    channels: dict[str, np.ndarray]
    beat_times: np.ndarray | None
    downbeat_times: np.ndarray | None
    tempo: float | None
    drive: np.ndarray | None = None  # music_drive() per output frame, or None without music


class WorkerChannel:
    """The worker's side of the protocol for one job (every message carries the job's id)."""

    def __init__(self, out: Any, cancel_event: Any, job_id: int) -> None:
        self._out = out
        self._cancel = cancel_event
        self.job_id = job_id

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def event(self, event: Any) -> None:
        self._out.put(("event", self.job_id, event))

    def frame(self, frame: np.ndarray) -> None:
        self._out.put(("frame", self.job_id, frame))
