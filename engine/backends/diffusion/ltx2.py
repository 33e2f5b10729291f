"""LTX-2 through diffusers' `LTX2ConditionPipeline` (audio + video jointly): the still at any frame index, chained
segments like LTX-Video, and the clip's music held in the audio stream while the video is denoised.

The diffusers pipelines take `audio_latents` but no raw audio, and they re-noise those latents fully at the start
(noise_scale = 1), so passing the music alone would not condition anything. We encode the music with the
pipeline's own audio VAE (log-mel in the VAE's layout [B, channels, frames, mel_bins]) and install an audio
scheduler that, after every step, puts the audio latents back on the music's own noising trajectory
((1 - σ) · music + σ · noise): the joint transformer then attends to the real music at every noise level while
the video is generated (the "known modality" inpainting used by audio-to-video models). The generated audio is
discarded; the output keeps the user's music. See docs/diffusion.md for what this cannot guarantee.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from .backend import DiffusionBackend
from .families import FAMILIES
from .ltx import LTXRuntime
from .plan import Constraints, SegmentJob
from .runtime import pil_image, to_uint8_frames

#: Log-mel settings of LTX-2's audio preprocessing (STFT size and window; hop and bins come from the VAE config).
MEL_FFT = 1024
MEL_FLOOR = 1e-5


def log_mel(samples: np.ndarray, sample_rate: int, hop: int, bins: int) -> np.ndarray:
    """channels × samples float audio → channels × frames × bins log-mel (magnitude, Slaney mel, log floor)."""
    import librosa

    mels = [librosa.feature.melspectrogram(y=np.asarray(ch, dtype=np.float32), sr=sample_rate, n_fft=MEL_FFT,
                                           hop_length=hop, win_length=MEL_FFT, n_mels=bins, fmin=0.0,
                                           fmax=sample_rate / 2, power=1.0, htk=False, norm="slaney")
            for ch in samples]
    return np.log(np.maximum(np.stack(mels), MEL_FLOOR)).transpose(0, 2, 1).astype(np.float32)


class LTX2Runtime(LTXRuntime):
    family = FAMILIES["ltx2"]
    pipeline_class = "LTX2ConditionPipeline"

    def constraints(self) -> Constraints:
        limits = super().constraints()
        if self.options.get("two_stage"):  # the latent upsampler doubles the size: stage one at half size
            limits.spatial *= 2
        return limits

    def pipeline_conditions(self, segment: SegmentJob) -> list[Any]:
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        out = []
        for condition in segment.conditions:
            frames = [pil_image(f) for f in condition.frames]
            out.append(LTX2VideoCondition(frames=frames[0] if len(frames) == 1 else frames, index=condition.index,
                                          strength=condition.strength))
        return out

    def call_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"guidance_scale": float(self.options.get("guidance", 3.0)),
                                  "max_sequence_length": int(self.options.get("max_sequence_length", 128))}
        for name in ("stg_scale", "modality_scale", "audio_guidance_scale", "audio_stg_scale",
                     "audio_modality_scale"):
            if name in self.options:  # the pipeline's own guidance knobs (each costs a transformer pass)
                kwargs[name] = float(self.options[name])
        return kwargs

    def music_latents(self, segment: SegmentJob) -> Any | None:
        """The music under the segment, encoded by the pipeline's audio VAE: [1, C, L, M] (unnormalised)."""
        import torch

        from ... import audio

        request = self.request
        if not request.audio or not self.options.get("audio_condition", True):
            return None
        vae = self.pipe.audio_vae
        config = vae.config
        start = Fraction(max(0.0, float(segment.times.min()))).limit_denominator(100000)
        seconds = Fraction(segment.frames / segment.fps).limit_denominator(100000)
        shifted = [replace(a, record_start=a.record_start - start) for a in request.audio]
        samples = audio.render_segments(shifted, seconds, config.sample_rate, channels=config.in_channels)
        mel = log_mel(samples, config.sample_rate, config.mel_hop_length, config.mel_bins)
        tensor = torch.from_numpy(mel)[None].to(device=vae.device, dtype=vae.dtype)
        with torch.no_grad():
            latents = vae.encode(tensor).latent_dist.mode()
        self.summary.setdefault("audio_latents", []).append(list(latents.shape))
        return latents

    def hold_music(self, latents: Any, seed: int) -> None:
        """Install an audio scheduler that keeps the audio stream on the music's noising trajectory."""
        import torch
        from diffusers import FlowMatchEulerDiscreteScheduler

        pipe = self.pipe
        packed = pipe._pack_audio_latents(latents.float())
        clean = pipe._normalize_audio_latents(packed, pipe.audio_vae.latents_mean.float(),
                                              pipe.audio_vae.latents_std.float())
        noise = torch.randn(clean.shape, generator=torch.Generator("cpu").manual_seed(seed + 1)).to(clean.device)

        class MusicHoldScheduler(FlowMatchEulerDiscreteScheduler):
            def step(self, model_output: Any, timestep: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
                out = super().step(model_output, timestep, sample, *args, **kwargs)
                sigma = self.sigmas[min(self.step_index, len(self.sigmas) - 1)].to(clean.device)
                held = ((1 - sigma) * clean + sigma * noise).to(sample.dtype)
                if isinstance(out, tuple):
                    return (held,) + tuple(out[1:])
                out.prev_sample = held
                return out

        pipe.audio_scheduler = MusicHoldScheduler.from_config(pipe.scheduler.config)

    def run_segment(self, segment: SegmentJob) -> list[np.ndarray]:
        prompt, negative = self.prompts()
        music = self.music_latents(segment)
        self.pipe.audio_scheduler = None
        if music is not None:
            self.hold_music(music, segment.seed)
        try:
            output = self.pipe(
                conditions=self.pipeline_conditions(segment), prompt=prompt, negative_prompt=negative,
                height=segment.height, width=segment.width, num_frames=segment.frames, frame_rate=segment.fps,
                num_inference_steps=segment.steps, generator=self.generator(segment.seed), output_type="np",
                audio_latents=music, callback_on_step_end=self.step_callback(segment), **self.call_kwargs())
        finally:
            self.pipe.audio_scheduler = None
        return to_uint8_frames(output.frames)[: segment.frames]

    video_tokens_last = False  # keyframe tokens are appended after the video's


RUNTIME = LTX2Runtime


class LTX2Backend(DiffusionBackend):
    name = "ltx2"
    family_name = "ltx2"
