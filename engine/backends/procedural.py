"""The weight-free engine: animates the still itself with non-rigid warps driven by the motion channels.

The picture moves as a sum of fixed displacement *basis fields* computed once from the still (a subject pulse
with falloff, texture-masked sway and shimmer noise, depth-layer parallax, and camera fields that only presets
asking for camera moves use), each scaled per frame by a motion coefficient. Subtracting the anchor frame's
coefficients makes that frame exactly the still. Fields live at low resolution; each frame costs one upsample and
one remap of the full-size image.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..motion import AMPLITUDE
from .base import Backend, CancelToken, EventSink, Preview, Progress, RenderInputs

#: Long side of the basis fields; motion is smooth, so fields need little resolution.
FIELD_LONG_SIDE = 256
#: Send a preview every this many frames.
PREVIEW_EVERY = 12


@dataclass
class StillAnalysis:
    """What the engine learns from the still once: where the subject is, what is textured, what is near."""

    texture: np.ndarray   # 0..1, local gradient energy (hair, foliage, water move most)
    depth: np.ndarray     # 0..1 proxy, 1 = near (salient, centred, detailed)
    center: tuple[float, float]  # subject centre in field pixels (x, y)
    radius: float          # subject size in field pixels


def _normalise(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, 2), np.percentile(a, 98)
    return np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def analyse_still(small_rgb: np.ndarray) -> StillAnalysis:
    """Texture, depth proxy and subject centre from a low-resolution copy of the still."""
    h, w = small_rgb.shape[:2]
    gray = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    sigma = max(h, w) / 40
    texture = _normalise(cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), sigma))
    # Saliency: colour distinctness from the frame's mean (Lab) plus detail, with a mild centre prior.
    lab = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    distinct = np.linalg.norm(cv2.GaussianBlur(lab, (0, 0), sigma) - lab.reshape(-1, 3).mean(0), axis=2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre_prior = np.exp(-(((xx - w / 2) / (0.6 * w)) ** 2 + ((yy - h / 2) / (0.6 * h)) ** 2))
    saliency = _normalise(0.5 * _normalise(distinct) + 0.5 * texture) * (0.4 + 0.6 * centre_prior)
    depth = _normalise(cv2.GaussianBlur(saliency, (0, 0), 2 * sigma))
    weights = depth ** 3 + 1e-6
    cx = float((weights * xx).sum() / weights.sum())
    cy = float((weights * yy).sum() / weights.sum())
    spread = math.sqrt(float((weights * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / weights.sum()))
    radius = float(np.clip(spread * 1.2, 0.15 * min(h, w), 0.45 * max(h, w)))
    return StillAnalysis(texture=texture, depth=depth, center=(cx, cy), radius=radius)


def _noise_field(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random 2-D vector field with unit RMS, features about `scale` field pixels across."""
    h, w = shape
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    coarse = rng.standard_normal((gh, gw, 2)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field = cv2.GaussianBlur(field, (0, 0), scale / 4)
    return field / max(float(np.sqrt((field ** 2).mean())), 1e-6)


def basis_fields(analysis: StillAnalysis, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Displacement fields (HxWx2, in units of the frame's shorter side) that motion coefficients scale."""
    h, w = analysis.texture.shape
    short = float(min(h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = analysis.center
    dx, dy = (xx - cx), (yy - cy)
    r2 = (dx * dx + dy * dy) / (analysis.radius ** 2)
    falloff = np.exp(-r2)  # a local zoom that fades out: the subject breathes, the frame edges do not move
    radial = np.dstack([dx, dy]) * falloff[..., None] / analysis.radius
    texture_mask = (0.25 + 0.75 * analysis.texture)[..., None]
    fields = {
        "pulse": radial,
        "sway_a": _noise_field((h, w), short / 3, rng) * texture_mask,
        "sway_b": _noise_field((h, w), short / 3, rng) * texture_mask,
        "shimmer_a": _noise_field((h, w), short / 12, rng) * texture_mask,
        "shimmer_b": _noise_field((h, w), short / 12, rng) * texture_mask,
    }
    layer = (analysis.depth - float(analysis.depth.mean()))[..., None]  # near and far move opposite ways
    fields["parallax_x"] = np.dstack([layer[..., 0], np.zeros_like(layer[..., 0])])
    fields["parallax_y"] = np.dstack([np.zeros_like(layer[..., 0]), layer[..., 0]])
    ones, zeros = np.ones((h, w), np.float32), np.zeros((h, w), np.float32)
    fields["cam_x"] = np.dstack([ones, zeros])
    fields["cam_y"] = np.dstack([zeros, ones])
    fields["cam_zoom"] = np.dstack([xx - w / 2, yy - h / 2]) / (0.5 * short)
    return {k: v.astype(np.float32) for k, v in fields.items()}


def coefficients(channels: dict[str, np.ndarray], frames: int, fps: float, tempo: float | None,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame weights of each basis field from the channel levels (in shorter-side units)."""
    t = np.arange(frames) / fps
    duration = max(frames / fps, 1e-6)
    zero = np.zeros(frames)
    coef: dict[str, np.ndarray] = {}
    # Sway oscillates: one cycle per two beats with music, a whole number of ~3-s cycles without (loops cleanly).
    period = 120.0 / tempo if tempo else duration / max(1, round(duration / 3.0))
    theta = 2 * math.pi * t / period + rng.uniform(0, 2 * math.pi)
    sway = channels.get("sway", zero) * AMPLITUDE["sway"]
    coef["sway_a"], coef["sway_b"] = sway * np.sin(theta), sway * np.cos(theta)
    shimmer = channels.get("shimmer", zero) * AMPLITUDE["shimmer"]
    theta_s = 4.0 * theta + rng.uniform(0, 2 * math.pi)
    coef["shimmer_a"], coef["shimmer_b"] = shimmer * np.sin(theta_s), shimmer * np.cos(theta_s)
    coef["pulse"] = channels.get("pulse", zero) * AMPLITUDE["pulse"]
    psi = 2 * math.pi * t / max(period * 4, 1e-6) + rng.uniform(0, 2 * math.pi)
    parallax = channels.get("parallax", zero) * AMPLITUDE["parallax"]
    coef["parallax_x"], coef["parallax_y"] = parallax * np.cos(psi), 0.5 * parallax * np.sin(psi)
    push = channels.get("push", zero) * AMPLITUDE["push"]
    drift = channels.get("drift", zero)
    progress = np.cumsum(drift) / max(float(drift.sum()), 1e-6) if drift.any() else zero
    heading = rng.uniform(0, 2 * math.pi)
    coef["cam_zoom"] = push + 0.5 * AMPLITUDE["drift"] * progress * (drift.max() if drift.any() else 0)
    coef["cam_x"] = AMPLITUDE["drift"] * progress * math.cos(heading) * (drift.max() if drift.any() else 0)
    coef["cam_y"] = AMPLITUDE["drift"] * progress * math.sin(heading) * (drift.max() if drift.any() else 0)
    shake = channels.get("shake", zero) * AMPLITUDE["shake"]
    if shake.any():
        jitter = rng.standard_normal((frames, 2))
        coef["cam_x"] = coef["cam_x"] + shake * jitter[:, 0]
        coef["cam_y"] = coef["cam_y"] + shake * jitter[:, 1]
    return coef


class ProceduralBackend(Backend):
    name = "procedural"
    needs_weights = False

    def render(self, inputs: RenderInputs, on_event: EventSink, cancel: CancelToken) -> Iterator[np.ndarray]:
        request = inputs.request
        image, alpha = inputs.image, inputs.alpha
        height, width = image.shape[:2]
        frames, fps = request.frames, float(request.fps)
        rng = np.random.default_rng(request.seed)
        scale = min(1.0, FIELD_LONG_SIDE / max(width, height))
        fw, fh = max(8, round(width * scale)), max(8, round(height * scale))
        small = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA)
        fields = basis_fields(analyse_still(small), rng)
        tempo = getattr(inputs.features, "tempo", None)
        coef = coefficients(inputs.channels, frames, fps, tempo, rng)
        anchor = request.anchor_frame()
        names = [k for k in fields if k in coef]
        stacked = np.stack([fields[k] for k in names], axis=0)           # K x fh x fw x 2
        weights = np.stack([coef[k] - coef[k][anchor] for k in names], 1)  # frames x K
        pixels = float(min(width, height))
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        source = image if alpha is None else np.dstack([image, alpha])
        for k in range(frames):
            cancel.raise_if_cancelled()
            w_k = weights[k]
            if not np.any(w_k):
                frame = source.copy()
            else:
                small_disp = np.tensordot(w_k.astype(np.float32), stacked, axes=1) * pixels
                disp = cv2.resize(small_disp, (width, height), interpolation=cv2.INTER_LINEAR)
                # Backward map: output pixel p shows the still at p - displacement.
                map_x = grid_x - disp[..., 0]
                map_y = grid_y - disp[..., 1]
                frame = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
            if k % PREVIEW_EVERY == 0:
                on_event(Preview(k, cv2.resize(frame[..., :3], (max(2, width // 4), max(2, height // 4)))))
            on_event(Progress(k + 1, frames))
            yield frame
