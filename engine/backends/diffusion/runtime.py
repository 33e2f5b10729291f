"""The torch side of every diffusion family, run only inside the worker process: load and place the pipeline by
the memory plan, generate one segment or a chain of them around the still, stream step progress and latent
previews, and hand the generated frames to retime.conform_frames. torch is imported inside methods only, so the
parent can import the family modules (which subclass DiffusionRuntime) without it."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ...errors import BadInputError, MissingWeightsError
from ...request import RenderRequest
from ..base import Preview, Progress
from .families import Family
from .plan import (
    Condition,
    Constraints,
    MemoryPlan,
    SegmentJob,
    TimelinePlan,
    anchor_index,
    chain_lengths,
    fit_size,
    generation_fps,
    legal_frames,
    plan_memory,
    plan_timeline,
)
from .protocol import DiffusionJob, StepCancelled, WorkerChannel
from .retime import blend_overlap, conform_frames, resize_cover, segment_level

DEFAULT_PROMPT = "a photograph coming gently to life, natural subtle motion, steady camera"
DEFAULT_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted, morphing"
#: The worker's last loaded pipeline (one at a time: a new model replaces it), reused by the next job.
_PIPELINE_CACHE: dict[str, Any] = {}


class DiffusionRuntime:
    """Per-family code that runs in the worker. Subclasses implement `load`, `constraints`, `run_segment`."""

    family: Family

    def __init__(self, job: DiffusionJob, channel: WorkerChannel) -> None:
        self.job = job
        self.channel = channel
        self.request = RenderRequest.from_json(job.request)
        self.options = dict(self.request.options)
        self.summary: dict[str, Any] = {"engine": self.family.name}
        self.pipe: Any = None
        self.still: np.ndarray | None = None
        #: Keyframes placed on downbeats (LTX): summary dicts, plus "time" (timeline seconds of the keyframe's
        #: generated frame at the base speed) until conform pins them and records the output "frame".
        self.keyframes: list[dict[str, Any]] = []
        self.memory: MemoryPlan | None = None
        self._step = 0
        self._total_steps = 1
        self._last_preview = 0.0

    # -- torch helpers ----------------------------------------------------------------------------------------
    def torch_dtype(self) -> Any:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.memory.dtype]

    def plan_memory(self) -> MemoryPlan:
        import torch

        free = None
        bf16 = True
        if torch.cuda.is_available() and self.options.get("device", "auto") != "cpu":
            free = torch.cuda.mem_get_info()[0] / 2**30
            bf16 = torch.cuda.is_bf16_supported()
        self.memory = plan_memory(self.options, free, bf16)
        return self.memory

    def from_pretrained(self, cls: Any, **extra: Any) -> Any:
        """Load strictly offline, safetensors only unless pickles were allowed, never remote code."""
        weights = self.job.weights
        kwargs: dict[str, Any] = {"torch_dtype": self.torch_dtype(), "local_files_only": True}
        if not weights.get("pickle_files"):
            kwargs["use_safetensors"] = True
        kwargs.update(extra)
        try:
            return cls.from_pretrained(weights["path"], **kwargs)
        except OSError as exc:
            raise MissingWeightsError(f"could not load {weights['path']}: {str(exc).splitlines()[0]}") from exc

    def place(self, pipe: Any) -> Any:
        """Apply the memory plan: device or offload, VAE tiling / slicing."""
        plan = self.memory
        if plan.offload == "model":
            pipe.enable_model_cpu_offload()
        elif plan.offload == "sequential":
            pipe.enable_sequential_cpu_offload()
        else:
            pipe.to(plan.device)
        vae = getattr(pipe, "vae", None)
        if plan.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if plan.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def prompts(self) -> tuple[str, str]:
        """The request's prompt and negative prompt, or the defaults (a still coming gently to life)."""
        return (self.request.prompt or DEFAULT_PROMPT, self.request.negative_prompt or DEFAULT_NEGATIVE)

    def generator(self, seed: int) -> Any:
        import torch

        return torch.Generator(device="cpu").manual_seed(int(seed))

    # -- family hooks -----------------------------------------------------------------------------------------
    def load(self) -> Any:
        raise NotImplementedError

    def constraints(self) -> Constraints:
        raise NotImplementedError

    def run_segment(self, segment: SegmentJob) -> list[np.ndarray]:
        raise NotImplementedError

    def preview_from_latents(self, latents: Any, segment: SegmentJob) -> np.ndarray | None:
        """Latents (B, C, F, H, W) → a small RGB image of the middle latent frame."""
        return latent_projection(latents[0, :, latents.shape[2] // 2]) if latents.ndim == 5 else None

    # -- step callback ----------------------------------------------------------------------------------------
    def step_callback(self, segment: SegmentJob) -> Callable[..., dict[str, Any]]:
        def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if self.channel.cancelled:
                raise StepCancelled()
            self._step += 1
            self.channel.event(Progress(self._step, self._total_steps, stage="diffusion",
                                        message=f"{segment.label} step {step + 1}/{segment.steps}"))
            now = time.monotonic()
            latents = kwargs.get("latents")
            if latents is not None and now - self._last_preview >= float(self.options.get("preview_every", 0.5)):
                self._last_preview = now
                try:
                    image = self.preview_from_latents(latents, segment)
                except Exception:  # a preview must never break a render
                    image = None
                if image is not None:
                    self.channel.event(Preview(self._step, image))
            return {}

        return on_step_end

    # -- the whole clip ---------------------------------------------------------------------------------------
    def generate(self) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Load, generate (chained) segments, retime onto the beats and conform to the request."""
        request, family = self.request, self.family
        t0 = time.perf_counter()
        self.channel.event(Progress(0, 1, stage="load", message=f"loading {family.label}"))
        self.plan_memory()
        key = json.dumps([family.name, self.job.weights, self.memory.to_json()], sort_keys=True)
        if _PIPELINE_CACHE.get("key") != key:
            _PIPELINE_CACHE.clear()
            _PIPELINE_CACHE.update(key=key, pipe=self.load())
        self.pipe = _PIPELINE_CACHE["pipe"]
        self.summary["memory"] = self.memory.to_json()
        self.summary["kernels"] = kernel_class(self.memory.device)
        self.summary["load_seconds"] = round(time.perf_counter() - t0, 3)
        limits = self.constraints()
        seg_cap = int(self.options.get("segment_frames", 0) or 0)
        if seg_cap:
            limits.max_frames = min(limits.max_frames, max(seg_cap, limits.overlap + 2))
        gen_w, gen_h = fit_size(request.width, request.height, limits.spatial,
                                int(self.options.get("max_area", family.max_area)))
        fps = float(request.fps)
        gen_fps = float(self.options.get("gen_fps", 0) or 0) or self.generation_fps(fps, limits)
        end_image = self.job.end_image
        if end_image is not None and request.anchor != "start":
            raise BadInputError("with an end image the still is the first frame: use --anchor start")
        if end_image is not None and not family.supports_end_image:
            raise BadInputError(f"{family.label} cannot condition on an end image; use --engine ltx or wan")
        anchor_out = anchor_index(request.anchor, request.frames)
        plan = plan_timeline(request.frames, fps, anchor_out, gen_fps)
        steps = int(self.options.get("steps", family.default_steps))
        if steps < 1:
            raise BadInputError(f"steps must be ≥ 1, got {steps}")
        still = resize_cover(self.job.image, gen_w, gen_h)
        self.still = still
        end_still = resize_cover(end_image, gen_w, gen_h) if end_image is not None else None
        t1 = time.perf_counter()
        gen, anchor_gen = self.generate_timeline(plan, limits, still, end_still, gen_w, gen_h, gen_fps, steps)
        self.summary["pipeline_seconds"] = round(time.perf_counter() - t1, 3)
        plan.left = anchor_gen
        plan.right = len(gen) - 1 - anchor_gen
        t2 = time.perf_counter()
        frames = self.conform(gen, plan)
        self.summary["conform_seconds"] = round(time.perf_counter() - t2, 3)
        self.summary.update({"generated_frames": len(gen), "generated_fps": round(gen_fps, 4),
                             "generated_size": [gen_w, gen_h], "steps": steps})
        return frames, self.summary

    def generation_fps(self, fps: float, limits: Constraints) -> float:
        return generation_fps(self.family, fps)

    def generate_timeline(self, plan: TimelinePlan, limits: Constraints, still: np.ndarray,
                          end_still: np.ndarray | None, width: int, height: int, gen_fps: float,
                          steps: int) -> tuple[list[np.ndarray], int]:
        """Generated frames covering the plan, and the index of the still among them.

        One segment when it fits (index conditioning places the still at start / end / middle); otherwise a
        chain outward from the still: forward segments conditioned on the previous one's last frames, and
        backward segments conditioned at their end (index-capable models) or generated forward and reversed.
        """
        seed = self.request.seed
        single = self._single_segment(plan, limits)
        if single is not None:
            length, anchor_gen = single
            conditions = [Condition(still[None], anchor_gen, 1.0)]
            if end_still is not None:
                conditions.append(Condition(end_still[None], length - 1, 1.0))
            segment = SegmentJob(length, width, height, gen_fps, conditions, seed, steps, "segment 1/1",
                                 times=self._times(np.arange(length) - anchor_gen, plan))
            self._total_steps = steps
            self.music_schedule(segment)
            return self.run_segment(segment), anchor_gen
        right_lengths = chain_lengths(plan.right + 1, limits) if plan.right > 0 or plan.left == 0 else []
        left_lengths = chain_lengths(plan.left + 1, limits) if plan.left > 0 else []
        count = len(right_lengths) + len(left_lengths)
        self._total_steps = steps * count
        done = 0
        right: list[np.ndarray] = []
        for i, length in enumerate(right_lengths):
            done += 1
            origin = 0 if i == 0 else len(right) - limits.overlap
            if i == 0:
                conditions = [Condition(still[None], 0, 1.0)]
            else:
                conditions = [Condition(np.stack(right[-limits.overlap:]), 0, 1.0)]
            if i == len(right_lengths) - 1 and end_still is not None:
                conditions.append(Condition(end_still[None], length - 1, 1.0))
            segment = SegmentJob(length, width, height, gen_fps, conditions, seed + 7919 * i, steps,
                                 f"segment {done}/{count}", times=self._times(origin + np.arange(length), plan))
            self.music_schedule(segment)
            frames = self.run_segment(segment)
            right = frames if i == 0 else blend_overlap(right, frames, limits.overlap)
        backward: list[np.ndarray] = []  # reverse time order: backward[0] is the still
        for i, length in enumerate(left_lengths):
            done += 1
            if self.family.supports_index:
                origin = 0 if i == 0 else len(backward) - limits.overlap
                if i == 0:
                    conditions = [Condition(still[None], length - 1, 1.0)]
                else:
                    conditions = [Condition(np.stack(backward[-limits.overlap:][::-1]), length - limits.overlap)]
                offsets = -(origin + (length - 1 - np.arange(length)))
            else:
                origin = 0 if i == 0 else len(backward) - 1
                conditions = [Condition((still if i == 0 else backward[-1])[None], 0, 1.0)]
                offsets = -(origin + np.arange(length))
            segment = SegmentJob(length, width, height, gen_fps, conditions, seed + 104729 * (i + 1), steps,
                                 f"segment {done}/{count}", times=self._times(offsets, plan))
            self.music_schedule(segment)
            frames = self.run_segment(segment)
            if self.family.supports_index:
                frames = frames[::-1]
            overlap = limits.overlap if self.family.supports_index else 1
            backward = frames if i == 0 else blend_overlap(backward, frames, overlap)
        if not backward:
            return right, 0
        return backward[::-1] + right[1:], len(backward) - 1

    def _single_segment(self, plan: TimelinePlan, limits: Constraints) -> tuple[int, int] | None:
        """(frames, still index) when one pipeline call covers the plan, else None."""
        one = legal_frames(plan.total, limits)
        if one < plan.total:
            return None
        if plan.left == 0:
            return one, 0
        if not self.family.supports_index:
            return None
        if plan.right == 0:
            return one, one - 1
        t = limits.temporal
        anchor_gen = int(math.ceil(plan.left / t) * t)
        one = legal_frames(anchor_gen + plan.right + 1, limits)
        return (one, anchor_gen) if one >= anchor_gen + plan.right + 1 else None

    def _times(self, offsets: np.ndarray, plan: TimelinePlan) -> np.ndarray:
        """Timeline seconds of generated frames `offsets` frames away from the still (at the base speed)."""
        return (plan.anchor_out + np.asarray(offsets, dtype=np.float64) / plan.ratio) / float(self.request.fps)

    def music_schedule(self, segment: SegmentJob) -> None:
        """Per-segment conditioning from the music (families override; default: nothing to schedule)."""

    def segment_level(self, segment: SegmentJob) -> float:
        """The music's drive (0..1) over the output frames a segment covers."""
        fps = float(self.request.fps)
        first = int(np.floor(max(0.0, float(segment.times.min())) * fps))
        last = int(np.ceil(max(0.0, float(segment.times.max())) * fps)) + 1
        return segment_level(self.job.drive, first, last)

    def level_at(self, seconds: float) -> float:
        """The music's drive (0..1) at one moment of the timeline (a quarter-second window)."""
        fps = float(self.request.fps)
        frame = int(round(seconds * fps))
        half = max(1, int(round(0.125 * fps)))
        return segment_level(self.job.drive, frame - half, frame + half + 1)

    def conform(self, gen: list[np.ndarray], plan: TimelinePlan) -> list[np.ndarray]:
        """The request's exact frames from the generated ones, retimed onto the beats (retime.conform_frames)."""
        frames, beat_sync = conform_frames(gen, plan, self.request, self.options, self.job.beat_times,
                                           self.keyframes, self.job.image, self.job.end_image)
        if beat_sync is not None:
            self.summary["beat_sync"] = beat_sync
        return frames


def latent_projection(latents: Any, side: int = 96) -> np.ndarray | None:
    """A cheap latent → RGB preview: one latent frame (C×H×W) projected on its top three principal axes."""
    import torch

    x = latents.detach().float().cpu()
    if x.ndim != 3:
        return None
    c, h, w = x.shape
    flat = x.reshape(c, -1)
    flat = flat - flat.mean(dim=1, keepdim=True)
    k = min(3, c)
    u, _, _ = torch.linalg.svd(flat @ flat.T)
    rgb = (u[:, :k].T @ flat).reshape(k, h, w)
    if k < 3:
        rgb = torch.cat([rgb, rgb[:1].expand(3 - k, h, w)])
    lo = rgb.amin(dim=(1, 2), keepdim=True)
    hi = rgb.amax(dim=(1, 2), keepdim=True)
    image = ((rgb - lo) / (hi - lo).clamp_min(1e-6) * 255).byte().permute(1, 2, 0).numpy()
    scale = side / max(h, w)
    return cv2.resize(np.ascontiguousarray(image), (max(2, round(w * scale)), max(2, round(h * scale))),
                      interpolation=cv2.INTER_NEAREST)


def to_uint8_frames(video: Any) -> list[np.ndarray]:
    """A pipeline's output (np float 0..1, F×H×W×3, possibly batched) → list of uint8 RGB frames."""
    array = np.asarray(video)
    if array.ndim == 5:
        array = array[0]
    if array.dtype != np.uint8:
        array = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(f[..., :3]) for f in array]


def pil_image(frame: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(frame[..., :3]))


def kernel_class(device: str) -> dict[str, Any]:
    """What decides the exact bits of a diffusion render besides the request (GPU kernels differ by device model,
    compute capability and library builds): recorded with every clip, see docs/cluster.md."""
    import torch

    # plain str and int only: a TorchVersion in the summary would import torch in the parent when unpickled
    kernels: dict[str, Any] = {"device": device, "torch": str(torch.__version__), "threads": int(torch.get_num_threads())}
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.cuda.current_device()
        kernels.update(gpu=torch.cuda.get_device_name(index),
                       capability=".".join(map(str, torch.cuda.get_device_capability(index))),
                       cuda=str(torch.version.cuda), cudnn=int(torch.backends.cudnn.version() or 0))
    return kernels
