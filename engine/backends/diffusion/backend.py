"""A diffusion engine seen from the parent process (host, panel, CLI): resolve the weights, pack the job, stream
the frames back from a worker. Never imports torch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..base import Backend, CancelToken, EventSink, Progress, RenderInputs, Result
from .protocol import DiffusionJob
from .retime import music_drive
from .weights import resolve_weights


class DiffusionBackend(Backend):
    """A diffusion engine seen from the parent process: resolves weights (fast, no torch), then streams frames
    from a spawned worker. torch is only ever imported in the worker."""

    needs_weights = True
    family_name: str = ""

    def __init__(self) -> None:
        self.worker: Any = None
        self.summary: dict[str, Any] = {}

    def make_job(self, inputs: RenderInputs) -> DiffusionJob:
        request = inputs.request
        weights = resolve_weights(self.family_name, request.model, bool(request.options.get("allow_pickle")))
        end_image = None
        if request.end_image:
            from ...images import fit_image, load_image

            loaded = load_image(request.end_image)
            end_image, _ = fit_image(loaded.rgb, request.width, request.height, request.fit)
        features = inputs.features

        def times(name: str) -> np.ndarray | None:
            value = getattr(features, name, None)
            return None if value is None else np.asarray(value, dtype=np.float64)

        return DiffusionJob(
            family=self.family_name, request=request.to_json(), weights=weights.to_json(),
            image=np.ascontiguousarray(inputs.image[..., :3]), end_image=end_image,
            channels={k: np.asarray(v, dtype=np.float32) for k, v in inputs.channels.items()},
            beat_times=times("beat_times"), downbeat_times=times("downbeat_times"),
            tempo=getattr(features, "tempo", None), drive=music_drive(features, request.frames),
        )

    def render(self, inputs: RenderInputs, on_event: EventSink, cancel: CancelToken) -> Iterator[np.ndarray]:
        from .worker import run_job

        job = self.make_job(inputs)
        cancel.raise_if_cancelled()
        request = inputs.request

        def started(handle: Any) -> None:
            self.worker = handle

        written = 0
        for frame in run_job(job, on_event, cancel, on_start=started):
            if frame.shape[:2] != (request.height, request.width):
                raise RuntimeError(f"worker sent a {frame.shape[1]}x{frame.shape[0]} frame")
            if inputs.alpha is not None:
                frame = np.dstack([frame, inputs.alpha])
            written += 1
            on_event(Progress(written, request.frames))
            yield frame
        self.summary = dict(self.worker.summary)
        on_event(Result(request.output, dict(self.summary)))
