"""LTX-Video through diffusers' `LTXConditionPipeline` (loads LTXPipeline / LTXImageToVideoPipeline folders too,
the components are the same): the still at any frame index, chained segments conditioned on the previous
segment's last frames, and the still re-imposed at partial strength on downbeats (music-scheduled keyframes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import DiffusionBackend
from .families import FAMILIES
from .plan import Condition, Constraints, SegmentJob
from .runtime import DiffusionRuntime, latent_projection, pil_image, to_uint8_frames

#: Strength of a downbeat keyframe in quiet music; loud passages loosen it (more freedom to move).
KEYFRAME_STRENGTH = 0.4


def keyframe_strength(base: float, level: float) -> float:
    """Strength of a downbeat keyframe: `base` in silence, down to 0.4·base at full drive."""
    return round(base * (1.0 - 0.6 * level), 3)


class LTXRuntime(DiffusionRuntime):
    family = FAMILIES["ltx"]
    pipeline_class = "LTXConditionPipeline"

    def load(self) -> Any:
        import diffusers

        pipe = self.from_pretrained(getattr(diffusers, self.pipeline_class))
        return self.place(pipe)

    def constraints(self) -> Constraints:
        pipe = self.pipe
        spatial = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        temporal = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        max_frames = (self.family.max_segment_frames - 1) // temporal * temporal + 1
        return Constraints(spatial=spatial, temporal=temporal, max_frames=max_frames, overlap=temporal + 1)

    def music_schedule(self, segment: SegmentJob) -> None:
        """Keyframes of the still on downbeats: a condition at the downbeat's frame index (rounded to the model's
        temporal ratio, as LTX keyframes must be; conform then pins it back onto the downbeat) whose strength falls
        as the music gets louder, so the picture breathes away from and back to the still bar by bar."""
        if not self.options.get("keyframes", True) or self.job.downbeat_times is None:
            return
        t = self.constraints().temporal
        taken = [c.index for c in segment.conditions]
        base = float(self.options.get("keyframe_strength", KEYFRAME_STRENGTH))
        keys: list[dict[str, Any]] = []
        for when in np.asarray(self.job.downbeat_times, dtype=float):
            j = int(np.argmin(np.abs(segment.times - when)))
            if abs(segment.times[j] - when) > 1.0 / max(segment.fps, 1e-6):
                continue
            j = int(round(j / t) * t)
            if j < t or j > segment.frames - 1 - t or any(abs(j - k) < 2 * t for k in taken):
                continue
            level = self.level_at(float(when))
            strength = keyframe_strength(base, level)
            segment.conditions.append(Condition(self.still[None], j, strength))
            taken.append(j)
            key = {"downbeat": round(float(when), 4), "index": j, "strength": strength, "level": round(level, 4),
                   "time": float(segment.times[j])}
            keys.append(key)
            self.keyframes.append(key)
        segment.schedule["keyframes"] = keys
        self.summary.setdefault("keyframes", []).append(keys)

    def pipeline_conditions(self, segment: SegmentJob) -> list[Any]:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        out = []
        for condition in segment.conditions:
            if len(condition.frames) == 1:
                out.append(LTXVideoCondition(image=pil_image(condition.frames[0]), frame_index=condition.index,
                                             strength=condition.strength))
            else:
                out.append(LTXVideoCondition(video=[pil_image(f) for f in condition.frames],
                                             frame_index=condition.index, strength=condition.strength))
        return out

    def call_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"guidance_scale": float(self.options.get("guidance", 3.0)),
                                  "max_sequence_length": int(self.options.get("max_sequence_length", 128))}
        if getattr(self.pipe.vae.config, "timestep_conditioning", False):
            kwargs.update(decode_timestep=0.05, decode_noise_scale=0.025)
        return kwargs

    def run_segment(self, segment: SegmentJob) -> list[np.ndarray]:
        prompt, negative = self.prompts()
        output = self.pipe(
            conditions=self.pipeline_conditions(segment), prompt=prompt, negative_prompt=negative,
            height=segment.height, width=segment.width, num_frames=segment.frames, frame_rate=segment.fps,
            num_inference_steps=segment.steps, generator=self.generator(segment.seed), output_type="np",
            callback_on_step_end=self.step_callback(segment), **self.call_kwargs())
        return to_uint8_frames(output.frames)[: segment.frames]

    #: Where the video tokens sit in the packed latents: LTX prepends condition tokens, LTX-2 appends keyframes.
    video_tokens_last = True

    def preview_from_latents(self, latents: Any, segment: SegmentJob) -> np.ndarray | None:
        pipe = self.pipe
        frames = (segment.frames - 1) // pipe.vae_temporal_compression_ratio + 1
        height = segment.height // pipe.vae_spatial_compression_ratio
        width = segment.width // pipe.vae_spatial_compression_ratio
        p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        tokens = (frames // pt) * (height // p) * (width // p)
        base = latents[:, -tokens:] if self.video_tokens_last else latents[:, :tokens]
        video = pipe._unpack_latents(base, frames, height, width, p, pt)
        return latent_projection(video[0, :, frames // 2])


RUNTIME = LTXRuntime


class LTXBackend(DiffusionBackend):
    name = "ltx"
    family_name = "ltx"
