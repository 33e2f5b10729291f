"""The diffusion model families StillMotion drives: the pipelines that load each one's folders, where its weights
usually come from, and the generation limits and abilities the plan and the runtime read."""

from __future__ import annotations

from dataclasses import dataclass


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
