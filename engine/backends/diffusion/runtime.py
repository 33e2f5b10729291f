"""What every diffusion engine shares: finding and vetting local weights, memory settings, fitting the model's
size / frame-count constraints to the timeline, chaining segments, and conforming the generated frames back to
exactly the requested frames — retimed so motion peaks land on the beats.

Module level is torch-free (the parent process imports it to resolve weights and start the worker); everything
that needs torch / diffusers runs inside `DiffusionRuntime` methods, which only the worker process calls.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import BadInputError, MissingWeightsError, StillMotionError
from ...request import RenderRequest
from ..base import Backend, CancelToken, EventSink, Preview, Progress, RenderInputs, Result

#: Checkpoint formats that unpickle (and so can run code) when loaded.
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
#: Component libraries a diffusers folder may name; anything else would need remote code.
TRUSTED_LIBRARIES = ("diffusers", "transformers")
#: Environment variable naming a folder of model folders (also `stillmotion models --model-dir`).
MODELS_ENV = "STILLMOTION_MODELS"
#: Largest speed change the beat retiming may apply (output speed within [1/x, x] of the generated speed).
DEFAULT_MAX_SPEED_CHANGE = 1.5
#: Long side of the frames used to measure motion energy for retiming.
ENERGY_SIDE = 128
DTYPES = ("auto", "bf16", "fp16", "fp32")
OFFLOAD_MODES = ("auto", "none", "model", "sequential")


# --------------------------------------------------------------------------------------------- engine families
@dataclass(frozen=True)
class Family:
    """One model family: the pipelines that can load its folders, where its weights usually come from, defaults."""

    name: str
    label: str
    pipeline_classes: tuple[str, ...]
    repo_ids: tuple[str, ...]
    default_steps: int
    max_area: int            # generation size is capped at this many pixels (the model's native area)
    max_segment_frames: int  # longest single generation before chaining
    native_fps: float | None  # None: generate at the timeline's rate (the model is told the rate)
    supports_index: bool     # can condition any frame index (LTX condition pipelines)
    supports_end_image: bool


FAMILIES: dict[str, Family] = {
    "ltx": Family("ltx", "LTX-Video", ("LTXConditionPipeline", "LTXImageToVideoPipeline", "LTXPipeline"),
                  ("Lightricks/LTX-Video-0.9.7-dev", "Lightricks/LTX-Video-0.9.7-distilled",
                   "Lightricks/LTX-Video-0.9.5", "Lightricks/LTX-Video"),
                  default_steps=30, max_area=768 * 512, max_segment_frames=121, native_fps=None,
                  supports_index=True, supports_end_image=True),
    "ltx2": Family("ltx2", "LTX-2", ("LTX2ConditionPipeline", "LTX2ImageToVideoPipeline", "LTX2Pipeline"),
                   ("Lightricks/LTX-2",),
                   default_steps=30, max_area=768 * 512, max_segment_frames=121, native_fps=None,
                   supports_index=True, supports_end_image=True),
    "svd": Family("svd", "Stable Video Diffusion", ("StableVideoDiffusionPipeline",),
                  ("stabilityai/stable-video-diffusion-img2vid-xt-1-1",
                   "stabilityai/stable-video-diffusion-img2vid-xt", "stabilityai/stable-video-diffusion-img2vid"),
                  default_steps=25, max_area=1024 * 576, max_segment_frames=25, native_fps=None,
                  supports_index=False, supports_end_image=False),
    "wan": Family("wan", "Wan image-to-video", ("WanImageToVideoPipeline",),
                  ("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
                   "Wan-AI/Wan2.2-I2V-A14B-Diffusers"),
                  default_steps=40, max_area=832 * 480, max_segment_frames=81, native_fps=16.0,
                  supports_index=False, supports_end_image=True),
}


# ------------------------------------------------------------------------------------------------ local weights
@dataclass
class Weights:
    """A vetted local diffusers folder."""

    path: str
    pipeline_class: str
    repo_id: str | None = None
    pickle_files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "pipeline_class": self.pipeline_class, "repo_id": self.repo_id,
                "pickle_files": list(self.pickle_files)}


def hf_cache_dir() -> Path:
    """The local Hugging Face hub cache, following the hub's own environment variables."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def cached_snapshot(repo_id: str, cache: Path | None = None) -> Path | None:
    """The snapshot folder of `repo_id` in the local cache (refs/main first, else the newest), or None."""
    root = (cache or hf_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text(encoding="utf-8").strip()
        if (candidate / "model_index.json").is_file():
            return candidate
    found = sorted((p for p in snapshots.iterdir() if (p / "model_index.json").is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0] if found else None


def _is_diffusers_pipeline_module(name: str) -> bool:
    """Whether a component library like 'ltx2' names a module shipped inside diffusers.pipelines (found on disk,
    without importing diffusers)."""
    import importlib.util

    if not name.isidentifier():
        return False
    spec = importlib.util.find_spec("diffusers")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(root) / "pipelines" / name).is_dir() or (Path(root) / "pipelines" / f"{name}.py").is_file()
               for root in spec.submodule_search_locations)


def _model_index(path: Path) -> dict[str, Any]:
    index = path / "model_index.json"
    if not index.is_file():
        raise MissingWeightsError(f"{path} is not a diffusers model folder (no model_index.json)")
    try:
        return json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingWeightsError(f"{index} is unreadable ({exc}); download the model again") from exc


def validate_weights(path: str | Path, family: Family, allow_pickle: bool = False,
                     repo_id: str | None = None) -> Weights:
    """Check a folder holds a complete, safe-to-load pipeline of `family` (no network, no code execution).

    Refuses pickle checkpoints unless `allow_pickle`, components from libraries other than diffusers /
    transformers (they would need remote code), and missing or partially downloaded weight shards.
    """
    folder = Path(path).expanduser().resolve()
    index = _model_index(folder)
    class_name = index.get("_class_name")
    if not isinstance(class_name, str) or class_name not in family.pipeline_classes:
        raise BadInputError(f"{folder} holds a {class_name!r} pipeline, not {family.label} "
                            f"(expected one of {', '.join(family.pipeline_classes)})")
    pickles: list[str] = []
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        library, _ = spec
        if library not in TRUSTED_LIBRARIES and not _is_diffusers_pipeline_module(library):
            raise BadInputError(f"{folder}: component {component!r} comes from {library!r}, which would need "
                                "remote code; StillMotion never runs trust_remote_code")
        sub = folder / component
        if not sub.is_dir():
            raise MissingWeightsError(f"{folder}: component folder {component}/ is missing (incomplete download?)")
        files = [p for p in sub.iterdir() if p.is_file()]
        safetensors = [p for p in files if p.name.endswith(".safetensors")]
        pickled = [p for p in files if p.suffix in PICKLE_SUFFIXES]
        is_model = (sub / "config.json").is_file() and not any(
            (sub / n).is_file() for n in ("scheduler_config.json", "preprocessor_config.json"))
        for shard_index in sub.glob("*.safetensors.index.json"):
            try:
                shards = set(json.loads(shard_index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError) as exc:
                raise MissingWeightsError(f"{shard_index} is unreadable ({exc})") from exc
            missing = sorted(s for s in shards if not (sub / s).is_file())
            if missing:
                raise MissingWeightsError(f"{sub}: weight shard {missing[0]} is missing (incomplete download?)")
        if safetensors:
            continue
        if pickled:
            if not allow_pickle:
                raise BadInputError(f"{sub} only has pickle checkpoints ({pickled[0].name}), which can run code "
                                    "when loaded: convert them to .safetensors or pass --allow-pickle if you "
                                    "trust the source")
            pickles += [str(p) for p in pickled]
        elif is_model and not any(p.name.endswith(".gguf") for p in files):
            raise MissingWeightsError(f"{sub} has a config but no weights (incomplete download?)")
    return Weights(path=str(folder), pipeline_class=class_name, repo_id=repo_id, pickle_files=pickles)


def search_folders(extra: list[str] | None = None) -> list[Path]:
    """Folders scanned for model folders: --model-dir values, $STILLMOTION_MODELS (os.pathsep-separated), then
    `models/` in the user's StillMotion data folder."""
    from platformdirs import user_data_dir

    folders = [Path(p).expanduser() for p in (extra or [])]
    folders += [Path(p).expanduser() for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    folders.append(Path(user_data_dir("stillmotion")) / "models")
    return [p for p in folders if p.is_dir()]


def local_candidates(family: Family, folders: list[Path] | None = None) -> list[tuple[Path, str | None]]:
    """(folder, repo id or None) of every local folder that claims to hold `family` weights, best first."""
    found: list[tuple[Path, str | None]] = []
    for root in folders if folders is not None else search_folders():
        for index in sorted([*root.glob("model_index.json"), *root.glob("*/model_index.json"),
                             *root.glob("*/*/model_index.json")]):
            try:
                class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
            except (OSError, ValueError):
                continue
            if class_name in family.pipeline_classes:
                found.append((index.parent, None))
    for repo_id in family.repo_ids:
        snapshot = cached_snapshot(repo_id)
        if snapshot is not None:
            found.append((snapshot, repo_id))
    return found


def _how_to_get(family: Family) -> str:
    return (f"download it once, e.g. `hf download {family.repo_ids[0]}` (into the Hugging Face cache) or "
            f"`hf download {family.repo_ids[0]} --local-dir DIR` and pass --model DIR")


def resolve_weights(family_name: str, model: str | None, allow_pickle: bool = False,
                    folders: list[Path] | None = None) -> Weights:
    """The weights a render will load: `model` (a folder or a cached repo id) or the first local candidate.

    Never touches the network: a missing model is one MissingWeightsError naming what was expected and how
    to get it.
    """
    family = FAMILIES[family_name]
    if model:
        path = Path(model).expanduser()
        if path.exists():
            return validate_weights(path, family, allow_pickle)
        if model.count("/") == 1 and not model.startswith((".", "/", "~")):
            snapshot = cached_snapshot(model)
            if snapshot is None:
                raise MissingWeightsError(f"{model} is not in the local Hugging Face cache ({hf_cache_dir()}); "
                                          f"StillMotion never downloads: run `hf download {model}` first, "
                                          "or pass --model DIR")
            return validate_weights(snapshot, family, allow_pickle, repo_id=model)
        raise MissingWeightsError(f"--model {model}: no such folder; expected a diffusers folder with "
                                  f"model_index.json holding {family.label} ({_how_to_get(family)})")
    candidates = local_candidates(family, folders)
    errors: list[str] = []
    for path, repo_id in candidates:
        try:
            return validate_weights(path, family, allow_pickle, repo_id)
        except StillMotionError as exc:
            errors.append(str(exc))
    looked = [str(p) for p in (folders if folders is not None else search_folders())] + [str(hf_cache_dir())]
    detail = f"; rejected: {errors[0]}" if errors else ""
    raise MissingWeightsError(f"no {family.label} weights found (looked in {', '.join(looked)} for "
                              f"{' or '.join(family.repo_ids[:2])}): {_how_to_get(family)}{detail}")


# ------------------------------------------------------------------------------------------------------ memory
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


# ------------------------------------------------------------------------------------------- timeline fitting
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


#: Music features averaged into the drive that schedules diffusion conditioning (all 0..1, normalised per song).
DRIVE_FEATURES = ("energy", "onset", "flux", "high")
#: Level used when a clip has no music.
NEUTRAL_LEVEL = 0.3


def music_drive(features: Any | None, frames: int) -> np.ndarray | None:
    """Per-output-frame drive of the music (0..1): the mean of loudness, onset strength, spectral flux and
    brightness. A drum break or a quiet verse lowers it clearly, unlike the motion channels, whose seeded ambient
    loop and user intensity would otherwise leak into the conditioning (intensity is applied on its own)."""
    if features is None:
        return None
    rows = []
    for name in DRIVE_FEATURES:
        values = getattr(features, name, None)
        if values is None:
            continue
        row = np.zeros(frames, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)[:frames]
        row[: values.size] = values
        rows.append(row)
    if not rows:
        return None
    return np.clip(np.mean(rows, axis=0), 0.0, 1.0).astype(np.float32)


def segment_level(drive: np.ndarray | None, start: int, stop: int) -> float:
    """Music drive of output frames [start, stop) in 0..1 (NEUTRAL_LEVEL without music)."""
    if drive is None or np.asarray(drive).size == 0:
        return NEUTRAL_LEVEL
    drive = np.asarray(drive, dtype=np.float64)
    stop = max(stop, start + 1)
    window = drive[max(0, start):min(drive.size, stop)]
    if window.size == 0:
        return NEUTRAL_LEVEL
    return float(np.clip(window.mean(), 0.0, 1.0))


# --------------------------------------------------------------------------------------- conform and retiming
def resize_cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fill width×height and centre-crop (the generated aspect differs from the request's by rounding)."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(frame, (sw, sh), interpolation=interp)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(scaled[y0:y0 + height, x0:x0 + width])


class FlowInterpolator:
    """Motion-aware in-between frames: DIS flow both ways between neighbours, each warped part way, blended."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        h, w = frames[0].shape[:2]
        self._gx, self._gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def _flows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._cache:
            self._cache = {i: (self._flow.calc(self._gray[i], self._gray[i + 1], None),
                               self._flow.calc(self._gray[i + 1], self._gray[i], None))}
        return self._cache[i]

    def at(self, position: float) -> np.ndarray:
        last = len(self.frames) - 1
        position = min(max(float(position), 0.0), float(last))
        i = min(int(math.floor(position)), last)
        frac = float(position - i)
        if frac < 1e-3 or i == last:
            return self.frames[i]
        if frac > 1 - 1e-3:
            return self.frames[i + 1]
        forward, backward = self._flows(i)
        # Backward warps: pixel p of the in-between frame comes from i at p - frac*F and from i+1 at
        # p - (1-frac)*B (flows are smooth, so sampling them at p is a good approximation).
        a = cv2.remap(self.frames[i], self._gx - frac * forward[..., 0], self._gy - frac * forward[..., 1],
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        b = cv2.remap(self.frames[i + 1], self._gx - (1 - frac) * backward[..., 0],
                      self._gy - (1 - frac) * backward[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.addWeighted(a, 1.0 - frac, b, frac, 0.0)


def _small(frames: list[np.ndarray], side: int) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale >= 1.0:
        return frames
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def motion_report(frames: list[np.ndarray], fps: float, beat_times: np.ndarray | None) -> Any:
    """The QC module's own measurement of a frame sequence (motion energy per frame, beat-hit rate)."""
    from fractions import Fraction

    from ...qc import QCAccumulator

    qc = QCAccumulator(Fraction(fps).limit_denominator(100000), beat_times=beat_times,
                       analysis_side=max(32, max(frames[0].shape[:2])))
    for frame in frames:
        qc.add(frame)
    return qc.finish()


def beat_aligned_positions(base: np.ndarray, energy: np.ndarray, beat_frames: np.ndarray, anchor_out: int,
                           total: int, max_speed_change: float = DEFAULT_MAX_SPEED_CHANGE,
                           floor: float = 0.05, contrast: float = 1.2,
                           pins: dict[int, float] | None = None) -> np.ndarray:
    """A monotonic time warp of `base` (generated position per output frame) moving generated motion peaks onto
    beat frames, speed kept within [1/x, x] of the base speed, the anchor frame fixed, inside [0, total-1].

    Works outward from the anchor: each beat takes the strongest generated peak within half a beat that is
    reachable within the speed bound (and from which the clip's ends and the next pin stay reachable); beats with
    no such peak keep the running speed. `pins` (output frame → generated position, e.g. LTX keyframes placed on
    downbeats) are met exactly when the speed bound allows, else as closely as it allows.
    """
    n = base.size
    pins = {int(k): float(v) for k, v in (pins or {}).items() if 0 < int(k) < n - 1 and int(k) != anchor_out}
    if n < 3 or (beat_frames.size == 0 and not pins):
        return base.copy()
    ratio = float(base[1] - base[0]) if n > 1 else 1.0
    lo_speed, hi_speed = ratio / max_speed_change, ratio * max_speed_change
    peaks = np.flatnonzero((energy[1:-1] > energy[:-2]) & (energy[1:-1] >= energy[2:]) & (energy[1:-1] >= floor))
    peaks = peaks + 1
    if peaks.size:
        med = float(np.median(energy)) if energy.size else 0.0
        peaks = peaks[energy[peaks] >= contrast * med]
    if peaks.size == 0 and not pins:
        return base.copy()
    spacing = float(np.median(np.diff(beat_frames))) if beat_frames.size > 1 else 12.0
    reach = 0.5 * spacing * ratio
    points: dict[int, float] = {anchor_out: float(base[anchor_out])}
    events = sorted({int(b) for b in beat_frames if 0 < int(b) < n - 1} | set(pins))
    for direction in (1, -1):
        k0, p0 = anchor_out, float(base[anchor_out])
        ordered = [k for k in events if k > anchor_out] if direction > 0 else \
            [k for k in reversed(events) if k < anchor_out]
        for beat in ordered:
            steps = abs(beat - k0)
            natural = p0 + direction * steps * ratio
            lo = p0 + direction * steps * (lo_speed if direction > 0 else hi_speed)
            hi = p0 + direction * steps * (hi_speed if direction > 0 else lo_speed)
            lo, hi = min(lo, hi), max(lo, hi)
            rest = (n - 1 - beat) if direction > 0 else beat
            if direction > 0:
                hi = min(hi, total - 1 - rest * lo_speed)
            else:
                lo = max(lo, rest * lo_speed)
            later = [k for k in ordered if (k - beat) * direction > 0 and k in pins]
            if later and beat not in pins:  # the next pin must stay reachable from here
                gap = abs(later[0] - beat)
                target_pin = pins[later[0]]
                if direction > 0:
                    lo, hi = max(lo, target_pin - gap * hi_speed), min(hi, target_pin - gap * lo_speed)
                else:
                    lo, hi = max(lo, target_pin + gap * lo_speed), min(hi, target_pin + gap * hi_speed)
            if lo > hi:
                continue
            if beat in pins:
                target = float(np.clip(pins[beat], lo, hi))
            else:
                options = peaks[(peaks >= lo) & (peaks <= hi) & (np.abs(peaks - natural) <= reach)]
                if options.size == 0:
                    continue
                # The strongest reachable peak; among equals, the one needing the least speed change.
                score = energy[options] - 1e-3 * np.abs(options - natural)
                target = float(options[np.argmax(score)])
            points[beat] = target
            k0, p0 = beat, target
    keys = sorted(points)
    first_k, last_k = keys[0], keys[-1]
    p_first, p_last = points[first_k], points[last_k]
    # Ends: keep the base speed where possible, never leaving the generated range or the speed bound.
    if last_k < n - 1:
        span = n - 1 - last_k
        points[n - 1] = float(np.clip(p_last + span * ratio, p_last + span * lo_speed, total - 1))
    if first_k > 0:
        points[0] = float(np.clip(p_first - first_k * ratio, 0.0, p_first - first_k * lo_speed))
    keys = sorted(points)
    positions = np.interp(np.arange(n, dtype=np.float64), keys, [points[k] for k in keys])
    return np.clip(positions, 0.0, total - 1)


def anchor_correction(frames: list[np.ndarray], targets: dict[int, np.ndarray], fps: float,
                      falloff_seconds: float = 0.5) -> None:
    """Make each anchor frame exactly its still, spreading the (small) VAE reconstruction error into its
    neighbours with a smooth falloff so nothing pops. Modifies `frames` in place."""
    if not targets:
        return
    sigma = max(1.0, falloff_seconds * fps)
    residuals = {k: target.astype(np.float32) - frames[k].astype(np.float32) for k, target in targets.items()}
    for k in range(len(frames)):
        total = None
        for a, residual in residuals.items():
            weight = math.exp(-(((k - a) / sigma) ** 2))
            if weight < 0.01:
                continue
            total = residual * weight if total is None else total + residual * weight
        if total is not None:
            frames[k] = np.clip(frames[k].astype(np.float32) + total, 0, 255).astype(np.uint8)


def blend_overlap(previous: list[np.ndarray], nxt: list[np.ndarray], overlap: int) -> list[np.ndarray]:
    """Join two segments that share `overlap` frames: cross-fade across the shared frames, so motion energy has
    no seam (the new segment was conditioned on exactly those frames)."""
    if overlap <= 0:
        return previous + nxt
    shared = min(overlap, len(previous), len(nxt))
    joined = previous[: len(previous) - shared]
    for j in range(shared):
        w = (j + 1) / (shared + 1)
        joined.append(cv2.addWeighted(previous[len(previous) - shared + j], 1 - w, nxt[j], w, 0.0))
    return joined + nxt[shared:]


# ----------------------------------------------------------------------------------------------- worker side
#: The worker's last loaded pipeline (one at a time: a new model replaces it), reused by the next job.
_PIPELINE_CACHE: dict[str, Any] = {}


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


class DiffusionRuntime:
    """Per-family code that runs in the worker. Subclasses implement `load`, `constraints`, `run_segment`."""

    family: Family

    def __init__(self, job: DiffusionJob, channel: Any) -> None:
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
        """Exactly request.frames at request.fps and size: resample the generated timeline (motion-aware
        in-betweens), warped so keyframes sit on their downbeats and motion peaks land on beats when that raises
        the beat-hit rate."""
        request = self.request
        fps = float(request.fps)
        base = plan.base_positions(request.frames)
        positions = base
        beats = self.job.beat_times
        retime = bool(self.options.get("retime", True))
        max_change = float(self.options.get("max_speed_change", DEFAULT_MAX_SPEED_CHANGE))
        # Keyframes were generated at a multiple of the model's temporal ratio, up to half of it away from their
        # downbeat: pin each one onto its downbeat's output frame.
        pins = {int(round(k["downbeat"] * fps)): plan.left + (k["time"] * fps - plan.anchor_out) * plan.ratio
                for k in self.keyframes} if retime else {}
        if beats is not None and len(beats) and request.frames >= 3:
            small = _small(gen, ENERGY_SIDE)
            gen_report = motion_report(small, plan.gen_fps, None)
            energy = np.asarray(gen_report.motion_energy, dtype=float)
            beat_frames = np.round(np.asarray(beats, dtype=float) * fps).astype(int)
            beat_frames = beat_frames[(beat_frames >= 1) & (beat_frames <= request.frames - 2)]
            small_interp = FlowInterpolator(small)

            def hit_rate(candidate: np.ndarray) -> float | None:
                return motion_report([small_interp.at(p) for p in candidate], fps, np.asarray(beats)).beat_hit_rate

            before = hit_rate(base)
            after = before
            if retime and pins:
                positions = beat_aligned_positions(base, energy, np.zeros(0, dtype=int), plan.anchor_out, len(gen),
                                                   max_change, pins=pins)
                after = hit_rate(positions)
            if retime and beat_frames.size:
                warped = beat_aligned_positions(base, energy, beat_frames, plan.anchor_out, len(gen), max_change,
                                                pins=pins)
                warped_rate = hit_rate(warped)
                if warped_rate is not None and (after is None or warped_rate > after):
                    positions, after = warped, warped_rate
            speed = np.diff(positions) / plan.ratio if positions.size > 1 else np.ones(1)
            self.summary["beat_sync"] = {
                "beat_hit_rate_before": before, "beat_hit_rate_after": after,
                "retimed": positions is not base, "speed_range": [round(float(speed.min()), 3),
                                                                  round(float(speed.max()), 3)]}
        elif pins:
            positions = beat_aligned_positions(base, np.zeros(len(gen)), np.zeros(0, dtype=int), plan.anchor_out,
                                               len(gen), max_change, pins=pins)
        for key in self.keyframes:  # where each keyframe ended up: the output frame showing its generated frame
            where = plan.left + (key["time"] * fps - plan.anchor_out) * plan.ratio
            key["frame"] = int(np.argmin(np.abs(positions - where)))
            key.pop("time")
        interp = FlowInterpolator(gen)
        frames = [resize_cover(interp.at(float(p)), request.width, request.height) for p in positions]
        targets = {plan.anchor_out: self.job.image}
        if self.job.end_image is not None:
            targets[request.frames - 1] = self.job.end_image
        if self.options.get("exact_anchor", True):
            anchor_correction(frames, targets, fps)
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


# ----------------------------------------------------------------------------------------------- parent side
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
