"""Wan image-to-video (`WanImageToVideoPipeline`, Wan 2.1 / 2.2 I2V): first frame (and optionally last frame,
for two-still mode) conditioning at Wan's native 16 fps, 4k+1 frames, chained from the last frame for long
clips. Music sync comes from beat-aligned retiming (Wan has no per-frame conditioning to schedule)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import DiffusionBackend
from .families import FAMILIES
from .plan import Constraints, SegmentJob
from .runtime import DiffusionRuntime, pil_image, to_uint8_frames


class WanRuntime(DiffusionRuntime):
    family = FAMILIES["wan"]

    def load(self) -> Any:
        from diffusers import WanImageToVideoPipeline

        return self.place(self.from_pretrained(WanImageToVideoPipeline))

    def constraints(self) -> Constraints:
        pipe = self.pipe
        patch = pipe.transformer.config.patch_size
        spatial = pipe.vae_scale_factor_spatial * int(patch[1])
        temporal = pipe.vae_scale_factor_temporal
        max_frames = (self.family.max_segment_frames - 1) // temporal * temporal + 1
        return Constraints(spatial=spatial, temporal=temporal, max_frames=max_frames, overlap=1)

    def run_segment(self, segment: SegmentJob) -> list[np.ndarray]:
        first = [c for c in segment.conditions if c.index == 0]
        last = [c for c in segment.conditions if c.index == segment.frames - 1 and c.index > 0]
        prompt, negative = self.prompts()
        output = self.pipe(
            image=pil_image(first[0].frames[-1]),
            last_image=pil_image(last[0].frames[0]) if last else None,
            prompt=prompt, negative_prompt=negative,
            height=segment.height, width=segment.width, num_frames=segment.frames,
            num_inference_steps=segment.steps, guidance_scale=float(self.options.get("guidance", 5.0)),
            generator=self.generator(segment.seed), output_type="np",
            max_sequence_length=int(self.options.get("max_sequence_length", 128)),
            callback_on_step_end=self.step_callback(segment))
        return to_uint8_frames(output.frames)[: segment.frames]


RUNTIME = WanRuntime


class WanBackend(DiffusionBackend):
    name = "wan"
    family_name = "wan"
