"""Stable Video Diffusion (`StableVideoDiffusionPipeline`): 14 or 25 frames from the first frame, chained from the
last frame for longer clips; the music sets `motion_bucket_id` and `noise_aug_strength` per segment."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import DiffusionBackend
from .families import FAMILIES
from .plan import Constraints, SegmentJob
from .runtime import DiffusionRuntime, latent_projection, pil_image, to_uint8_frames

#: SVD's fps conditioning was trained on roughly this range; a clip is generated at a rate inside it.
MIN_FPS, MAX_FPS = 6.0, 12.0


def motion_bucket(level: float, intensity: float) -> int:
    """Music drive 0..1 → SVD's motion_bucket_id (1..255, 127 = its default amount of motion)."""
    return int(np.clip(round((60 + 140 * level) * intensity), 1, 255))


def noise_augmentation(level: float) -> float:
    """More noise on the conditioning frame lets louder passages depart further from the still."""
    return round(0.02 + 0.06 * level, 4)


class SVDRuntime(DiffusionRuntime):
    family = FAMILIES["svd"]

    def load(self) -> Any:
        from diffusers import StableVideoDiffusionPipeline

        return self.place(self.from_pretrained(StableVideoDiffusionPipeline))

    def constraints(self) -> Constraints:
        pipe = self.pipe
        spatial = pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
        frames = int(pipe.unet.config.num_frames or 25)
        return Constraints(spatial=spatial, temporal=1, max_frames=frames, fixed_frames=(frames,), overlap=1)

    def generation_fps(self, fps: float, limits: Constraints) -> float:
        """Fit the clip in one generation when it can be done at ≥ 6 fps; otherwise chain at 7 fps."""
        duration = self.request.frames / fps
        span = {"start": 1.0, "end": 1.0, "middle": 0.5}[self.request.anchor]
        rate = (limits.max_frames - 1) / max(duration * span, 1e-6)
        if rate >= MIN_FPS:
            return min(MAX_FPS, rate, fps)
        return 7.0

    def music_schedule(self, segment: SegmentJob) -> None:
        """Motion conditioning from the music's drive over the timeline span this segment covers."""
        level = self.segment_level(segment)
        segment.schedule["motion_bucket_id"] = motion_bucket(level, self.request.intensity)
        segment.schedule["noise_aug_strength"] = noise_augmentation(level)
        span = [round(max(0.0, float(segment.times.min())), 4), round(max(0.0, float(segment.times.max())), 4)]
        self.summary.setdefault("segments", []).append({**segment.schedule, "level": round(level, 4),
                                                        "seconds": span})

    def run_segment(self, segment: SegmentJob) -> list[np.ndarray]:
        image = segment.conditions[0].frames[-1]
        output = self.pipe(
            image=pil_image(image), height=segment.height, width=segment.width, num_frames=segment.frames,
            num_inference_steps=segment.steps, fps=max(1, int(math.floor(segment.fps))),
            motion_bucket_id=segment.schedule.get("motion_bucket_id", 127),
            noise_aug_strength=segment.schedule.get("noise_aug_strength", 0.02),
            decode_chunk_size=int(self.options.get("decode_chunk_size", 8)),
            generator=self.generator(segment.seed), output_type="np",
            callback_on_step_end=self.step_callback(segment))
        return to_uint8_frames(output.frames)[: segment.frames]

    def preview_from_latents(self, latents: Any, segment: SegmentJob) -> np.ndarray | None:
        return latent_projection(latents[0, latents.shape[1] // 2])  # B, F, C, H, W


RUNTIME = SVDRuntime


class SVDBackend(DiffusionBackend):
    name = "svd"
    family_name = "svd"
