"""The render parameters the controls ask for: the engine's usable models, the quality preset's size, the seed
each new attempt gets, the motion schedule and the parameters a job card shows."""

from __future__ import annotations

import importlib
import random
from typing import Any

from stillmotion.engine.backends import REGISTRY
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.images import DEFAULT_LONG_SIDE, default_size
from stillmotion.engine.models import usable_weights
from stillmotion.engine.motion import PRESETS, MotionSchedule

from .timeline_session import TimelineSession
from .viewmodel import QUALITY_PRESETS, PanelViewModel


def engine_needs_weights(name: str) -> bool:
    """Whether engine `name` is a diffusion engine (weights, prompts), without instantiating it."""
    module_name, class_name = REGISTRY[name].split(":")
    module = importlib.import_module(f"stillmotion.engine.backends.{module_name}")
    return bool(getattr(getattr(module, class_name), "needs_weights", False))


class RenderParameters:
    """Reads the view-model's controls into what a render needs; keeps engine, model and size consistent."""

    def __init__(self, vm: PanelViewModel, session: TimelineSession) -> None:
        self.vm = vm
        self.session = session

    def fix_choices(self) -> None:
        """After settings are restored: a saved engine or preset that no longer exists falls back to a default."""
        vm = self.vm
        if vm.engine not in vm.engines:
            vm.engine = vm.engines[0]
        if vm.preset not in PRESETS:
            vm.preset = "pulse"
        self.on_engine(vm.engine)

    def schedule(self) -> MotionSchedule:
        vm = self.vm
        return MotionSchedule(preset=vm.preset, intensity=vm.intensity, seed=vm.seed,
                              routing={k: v for k, v in vm.routing.items() if k in PRESETS[vm.preset]})

    def on_engine(self, engine: str) -> None:
        diffusion = engine_needs_weights(engine)
        self.vm.diffusion = diffusion
        self.vm.models = usable_weights(engine) if diffusion else []
        if self.vm.model not in self.vm.models:
            self.vm.model = self.vm.models[0] if self.vm.models else ""

    def on_quality(self, quality: str) -> None:
        side = QUALITY_PRESETS.get(quality, ("", None))[1]
        if side is not None:
            self.vm.long_side = side

    def output_size(self, key: str) -> tuple[int, int]:
        """Rendered size for a still from the quality preset (even sides, the still's aspect)."""
        sizes = self.session.image_sizes
        size = sizes.get(key)
        if size is None:
            from PIL import Image

            with Image.open(self.session.stills[key].image) as img:
                size = img.size
            sizes[key] = size
        vm = self.vm
        long_side = DEFAULT_LONG_SIDE if vm.quality == "full" else vm.long_side
        if vm.quality == "full":
            long_side = min(DEFAULT_LONG_SIDE, max(size))
        if not 16 <= long_side <= 8192:
            raise BadInputError(f"long side {long_side} px is out of range (16..8192)")
        return default_size(size, long_side=long_side)

    def random_seed(self) -> None:
        self.vm.seed = random.randrange(0, 2**31 - 1)

    def next_seed(self) -> int:
        vm = self.vm
        if vm.seed_mode == "random":
            vm.seed = random.randrange(0, 2**31 - 1)
        seed = vm.seed
        if vm.seed_mode == "increment":
            vm.seed = seed + 1
        return seed

    def job_params(self, seed: int, size: tuple[int, int]) -> dict[str, Any]:
        """The parameters of a new attempt, as its card shows them (and regenerate repeats them)."""
        vm = self.vm
        return {"engine": vm.engine, "model": vm.model or None, "preset": vm.preset,
                "intensity": round(vm.intensity, 3), "seed": seed, "routing": dict(vm.routing),
                "quality": vm.quality, "size": f"{size[0]}x{size[1]}", "qc": vm.qc_enabled,
                "gates": list(vm.qc_gates), "prompt": vm.prompt if vm.diffusion else "",
                "negative_prompt": vm.negative_prompt if vm.diffusion else ""}
