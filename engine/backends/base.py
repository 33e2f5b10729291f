"""The Backend seam: render request → stream of frames, reporting through events and honouring a cancel token.

Events are plain dataclasses (progress, preview, result, error) so they cross a process boundary (the diffusion
worker) or a thread boundary (the panel) unchanged.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import CancelledError
from ..motion import MotionSchedule
from ..request import RenderRequest


@dataclass
class Progress:
    step: int
    total: int
    stage: str = "render"
    message: str = ""


@dataclass
class Preview:
    """A cheap, small preview frame (uint8 RGB) while a job renders."""

    frame_index: int
    image: np.ndarray


@dataclass
class Result:
    output: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Error:
    message: str


Event = Progress | Preview | Result | Error
EventSink = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """Default sink for callers that do not listen."""


class CancelToken:
    """Set from any thread (the panel, a signal handler); backends check it between frames or steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("cancelled")


@dataclass
class RenderInputs:
    """What every backend receives besides the request: the fitted first frame and the per-frame motion."""

    request: RenderRequest
    image: np.ndarray               # fitted reference, HxWx3 uint8
    alpha: np.ndarray | None        # fitted alpha, HxW uint8, if the still had one
    schedule: MotionSchedule
    channels: dict[str, np.ndarray]  # per-frame channel levels from the schedule
    features: Any | None            # FrameFeatures of the clip's music, or None


class Backend(ABC):
    """An image-to-video engine. `render` yields exactly `request.frames` frames of request size."""

    #: Registry name, e.g. "procedural".
    name: str = ""
    #: Whether the engine needs model weights (and so a `--model`).
    needs_weights: bool = False

    def prepare(self, image: np.ndarray) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden
        """Start work that depends only on the fitted still (HxWx3 uint8 RGB, the array `render` will get as
        `inputs.image`) while the caller analyses the music and opens the encoder. Optional: by default nothing."""

    def next_attempt(self, request: RenderRequest, report: Any, attempt: int) -> RenderRequest:
        """The request for retry number `attempt` after `report` failed QC: a new seed, and motion made
        stronger when the clip was frozen or off the beat, gentler when the subject drifted."""
        failed = {reason.split(":", 1)[0] for reason in getattr(report, "reasons", [])}  # "gate: why"
        intensity = request.intensity
        if getattr(report, "frozen", False) or failed & {"frozen", "sync"}:
            intensity = min(4.0, intensity * 1.35)
        elif failed & {"drift", "flicker"}:
            intensity = intensity * 0.7
        return replace(request, seed=request.seed + 1009 * attempt, intensity=intensity)

    @abstractmethod
    def render(self, inputs: RenderInputs, on_event: EventSink, cancel: CancelToken) -> Iterator[np.ndarray]:
        """Yield HxWx3 (or HxWx4 with alpha) uint8 frames, one per output frame, in order."""
