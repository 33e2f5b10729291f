"""The plan of a generation, before any model runs: memory placement from free VRAM, the model's size and
frame-count constraints, how the generated frames map onto the timeline, and the segments a long clip is chained
from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import BadInputError
from .families import Family

DTYPES = ("auto", "bf16", "fp16", "fp32")
OFFLOAD_MODES = ("auto", "none", "model", "sequential")


@dataclass
class MemoryPlan:
    """How the pipeline is placed: device, precision, offloading and VAE tiling / slicing."""

    device: str
    dtype: str
    offload: str
    vae_tiling: bool
    vae_slicing: bool

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype, "offload": self.offload,
                "vae_tiling": self.vae_tiling, "vae_slicing": self.vae_slicing}


def plan_memory(options: dict[str, Any], free_vram_gb: float | None, bf16_supported: bool = True) -> MemoryPlan:
    """Settings from the user's options, with defaults chosen by free VRAM (None: no GPU → CPU, fp32).

    ≥ 24 GB: everything on the GPU; 12-24 GB: model CPU offload plus VAE tiling; below: sequential offload,
    tiling and slicing. bf16 where the GPU supports it, else fp16.
    """
    dtype = str(options.get("dtype", "auto"))
    offload = str(options.get("offload", "auto"))
    if dtype not in DTYPES:
        raise BadInputError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if offload not in OFFLOAD_MODES:
        raise BadInputError(f"offload {offload!r} is not one of {', '.join(OFFLOAD_MODES)}")
    tiling, slicing = options.get("vae_tiling"), options.get("vae_slicing")
    if free_vram_gb is None:
        if dtype in ("fp16",):
            raise BadInputError("fp16 needs a GPU; on the CPU use fp32 or bf16")
        return MemoryPlan("cpu", "fp32" if dtype == "auto" else dtype, "none",
                          bool(tiling) if tiling is not None else False,
                          bool(slicing) if slicing is not None else False)
    if dtype == "auto":
        dtype = "bf16" if bf16_supported else "fp16"
    if offload == "auto":
        offload = "none" if free_vram_gb >= 24 else "model" if free_vram_gb >= 12 else "sequential"
    return MemoryPlan("cuda", dtype, offload,
                      bool(tiling) if tiling is not None else free_vram_gb < 24,
                      bool(slicing) if slicing is not None else free_vram_gb < 12)


@dataclass
class Constraints:
    """What a loaded pipeline accepts: sizes in multiples of `spatial`, frame counts temporal*k+1 (or one of
    `fixed_frames`), and how many frames a chained segment shares with the previous one."""

    spatial: int
    temporal: int
    max_frames: int
    fixed_frames: tuple[int, ...] = ()
    overlap: int = 1


def fit_size(width: int, height: int, multiple: int, max_area: int) -> tuple[int, int]:
    """Generation size: the request's aspect, no larger than `max_area` nor the request, in `multiple`s."""
    scale = min(1.0, math.sqrt(max_area / float(width * height)))
    gw = max(multiple, int(round(width * scale / multiple)) * multiple)
    gh = max(multiple, int(round(height * scale / multiple)) * multiple)
    return gw, gh


def legal_frames(needed: int, constraints: Constraints) -> int:
    """Smallest frame count ≥ `needed` the model accepts (capped at its maximum)."""
    if constraints.fixed_frames:
        fitting = [n for n in sorted(constraints.fixed_frames) if n >= needed]
        return fitting[0] if fitting else max(constraints.fixed_frames)
    t = constraints.temporal
    frames = t * max(1, math.ceil((needed - 1) / t)) + 1
    return min(frames, constraints.max_frames)


def chain_lengths(total: int, constraints: Constraints) -> list[int]:
    """Segment lengths (each legal) whose chain, sharing `overlap` frames at each join, covers `total` frames."""
    first = legal_frames(total, constraints)
    if first >= total:
        return [first]
    lengths = [first]
    covered = first
    while covered < total:
        need = total - covered + constraints.overlap
        seg = legal_frames(max(need, constraints.overlap + 2), constraints)
        lengths.append(seg)
        covered += seg - constraints.overlap
    return lengths


@dataclass
class Condition:
    """Frames pinned at a generated-frame index with a strength (1 = exact)."""

    frames: np.ndarray  # n x H x W x 3 uint8
    index: int
    strength: float = 1.0


@dataclass
class SegmentJob:
    """One pipeline call."""

    frames: int
    width: int
    height: int
    fps: float
    conditions: list[Condition]
    seed: int
    steps: int
    label: str
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # timeline seconds of each frame
    schedule: dict[str, Any] = field(default_factory=dict)  # per-segment music conditioning (SVD, LTX)


@dataclass
class TimelinePlan:
    """How generated frames map onto the timeline: generated rate, count and the anchor's generated index."""

    gen_fps: float
    ratio: float        # generated frames per output frame
    left: int           # generated frames before the anchor
    right: int          # generated frames after the anchor
    anchor_out: int

    @property
    def total(self) -> int:
        return self.left + self.right + 1

    def base_positions(self, frames: int) -> np.ndarray:
        """Generated position of each output frame at constant speed, the anchor frame exactly on the still."""
        return self.left + (np.arange(frames, dtype=np.float64) - self.anchor_out) * self.ratio


def generation_fps(family: Family, fps: float, segment_seconds: float | None = None) -> float:
    """The rate frames are generated at: the model's native one, else the timeline's (halved above 30 fps)."""
    if family.native_fps is not None:
        return family.native_fps
    rate = fps
    while rate > 30.0:
        rate /= 2.0
    return rate


def plan_timeline(frames: int, fps: float, anchor_out: int, gen_fps: float) -> TimelinePlan:
    ratio = gen_fps / fps
    left = math.ceil(anchor_out * ratio - 1e-9)
    right = math.ceil((frames - 1 - anchor_out) * ratio - 1e-9)
    return TimelinePlan(gen_fps=gen_fps, ratio=ratio, left=left, right=right, anchor_out=anchor_out)


def anchor_index(anchor: str, frames: int) -> int:
    return {"start": 0, "end": frames - 1, "middle": (frames - 1) // 2}[anchor]
