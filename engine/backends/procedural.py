"""The weight-free engine: animates the still itself with non-rigid warps driven by the motion channels.

What moves, and why it does not read as a Ken Burns pan:

* the subject *breathes*: a local radial swell centred on the salient region, fading to zero before the frame
  edges, kicked on every beat and springing back (the spring lives in the motion schedule's envelopes);
* textured regions (hair, foliage, water, fabric) *sway*: smooth random vector fields, weighted by local
  gradient energy, combined as a travelling wave so the motion ripples across the picture instead of wobbling
  in place; a finer, faster *shimmer* rides on the highs;
* a foreground *layer* (from a saliency / depth proxy) slides against the background for parallax; the strip of
  background it uncovers is filled from an inpainted background plate (disocclusion fill);
* camera fields (push, drift, shake, orbit) exist but only presets or users that ask for them move them.

Everything is a sum of fixed displacement *basis fields* computed once at low resolution, each scaled per frame
by a coefficient. The anchor frame has all coefficients zero and is the still exactly. Per frame the cost is a
tiny low-resolution sum, one upsample, and one `cv2.remap` of the full-size picture; a producer thread computes
warps while the caller encodes (OpenCV and libx264 release the GIL), so warping and encoding overlap.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .. import warmup
from ..motion import AMPLITUDE
from ..opencv_threads import single_threaded
from .base import Backend, CancelToken, EventSink, Preview, Progress, RenderInputs
from .still_cache import StillAnalysis, cached_analysis

#: Long side of the basis fields; motion is smooth, so fields need little resolution.
FIELD_LONG_SIDE = 256
#: Uncovered strips thinner than this (full pixels) keep the still: a sliver of plate reads as a sparkle.
SLIVER_PX = 3
_SLIVER_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (SLIVER_PX, SLIVER_PX))
#: Send a preview every this many frames.
PREVIEW_EVERY = 12
#: Frames computed ahead of the encoder (bounded, so memory stays constant for any clip length).
QUEUE_DEPTH = 3
#: Motion eases out of (and into) the anchor frame over this long, so the still is left and reached gently.
ANCHOR_EASE_SECONDS = 0.35
#: A foreground layer must cover between these shares of the frame to be used for layered parallax.
LAYER_AREA = (0.03, 0.65)


def _normalise(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, 2), np.percentile(a, 98)
    return np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def analyse_still(small_rgb: np.ndarray) -> StillAnalysis:
    """Texture, depth proxy, foreground layer and subject centre from a low-resolution copy of the still."""
    h, w = small_rgb.shape[:2]
    gray = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    sigma = max(h, w) / 40
    texture = _normalise(cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), sigma))
    # Saliency: colour distinctness from the frame's border colours (Lab) plus detail, with a mild centre prior.
    lab = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate([lab[0], lab[: 2 * h // 3, 0], lab[: 2 * h // 3, -1]])  # the bottom is often subject
    distinct = np.linalg.norm(cv2.GaussianBlur(lab, (0, 0), sigma) - np.median(border, axis=0), axis=2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre_prior = np.exp(-(((xx - w / 2) / (0.6 * w)) ** 2 + ((yy - h / 2) / (0.6 * h)) ** 2))
    saliency = _normalise(0.6 * _normalise(distinct) + 0.4 * texture) * (0.4 + 0.6 * centre_prior)
    depth = _normalise(cv2.GaussianBlur(saliency, (0, 0), 2 * sigma))
    weights = depth ** 3 + 1e-6
    cx = float((weights * xx).sum() / weights.sum())
    cy = float((weights * yy).sum() / weights.sum())
    spread = math.sqrt(float((weights * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / weights.sum()))
    radius = float(np.clip(spread, 0.12 * min(h, w), 0.3 * max(h, w)))
    # Near layer: GrabCut seeded by saliency (likely subject) and the top / side borders (likely background),
    # then the largest blob, softened by ~1 field pixel. GrabCut follows real colour edges, which a blurred
    # saliency map cannot.
    sharp = (_normalise(cv2.GaussianBlur(saliency, (0, 0), sigma / 2)) * 255).astype(np.uint8)
    level, _ = cv2.threshold(sharp, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    seeds = np.where(sharp >= level, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[sharp >= min(250, level + 0.6 * (255 - level))] = cv2.GC_FGD
    edge = max(1, min(h, w) // 40)
    seeds[:edge, :] = cv2.GC_BGD
    seeds[: 2 * h // 3, :edge] = cv2.GC_BGD
    seeds[: 2 * h // 3, -edge:] = cv2.GC_BGD
    hard = (sharp >= level).astype(np.uint8) * 255
    if min(h, w) >= 16 and (seeds == cv2.GC_FGD).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's GMM init uses OpenCV's RNG: fixed, so the layer is deterministic
        cv2.grabCut(np.ascontiguousarray(small_rgb[..., :3]), seeds, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
        hard = np.where((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    hard = cv2.morphologyEx(cv2.morphologyEx(hard, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hard)
    if count > 1:  # keep the largest blob: one subject, no confetti
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        hard = np.where(labels == biggest, 255, 0).astype(np.uint8)
    foreground = cv2.GaussianBlur(hard.astype(np.float32) / 255.0, (0, 0), 1.0)
    area = float((foreground > 0.5).mean())
    layered = LAYER_AREA[0] <= area <= LAYER_AREA[1] and min(h, w) >= 16
    if not layered:
        foreground = np.zeros_like(foreground)
    return StillAnalysis(texture=texture, depth=depth, foreground=foreground, layered=layered,
                         center=(cx, cy), radius=radius)


def _noise_field(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random 2-D vector field with unit RMS, features about `scale` field pixels across."""
    h, w = shape
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    coarse = rng.standard_normal((gh, gw, 2)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field = cv2.GaussianBlur(field, (0, 0), max(scale / 4, 0.5))
    return field / max(float(np.sqrt((field ** 2).mean())), 1e-6)


def _wave_pair(noise: np.ndarray, wavelength: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two fields whose combination a·cos(ωt) + b·sin(ωt) is `noise` carried by a wave travelling across the
    frame: each place sways a little after its upwind neighbour, like wind through leaves."""
    h, w = noise.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    heading = rng.uniform(0, 2 * math.pi)
    phase = 2 * math.pi * (xx * math.cos(heading) + yy * math.sin(heading)) / max(wavelength, 1.0)
    return noise * np.cos(phase)[..., None], noise * np.sin(phase)[..., None]


def basis_fields(analysis: StillAnalysis, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Displacement fields (HxWx2, in units of the frame's shorter side) that motion coefficients scale.

    The foreground layer's own translation is not a field: it is applied per frame with the layer mask moved
    along (see `FrameWarper`), so the layer keeps a crisp edge and uncovers background.
    """
    h, w = analysis.texture.shape
    short = float(min(h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = analysis.center
    dx, dy = (xx - cx), (yy - cy)
    r2 = (dx * dx + dy * dy) / (analysis.radius ** 2)
    falloff = np.exp(-r2)  # a local swell that fades out: the subject breathes, the frame edges do not move
    subject = (0.3 + 0.7 * analysis.foreground) if analysis.layered else np.ones_like(falloff)
    radial = np.dstack([dx, dy]) * (falloff * subject)[..., None] / analysis.radius
    texture_mask = (0.2 + 0.8 * analysis.texture)[..., None]
    sway = _noise_field((h, w), short / 3, rng) * np.array([1.0, 0.55], np.float32) * texture_mask
    shimmer = _noise_field((h, w), short / 12, rng) * texture_mask
    fields: dict[str, np.ndarray] = {"pulse": radial}
    fields["sway_a"], fields["sway_b"] = _wave_pair(sway, 1.5 * max(h, w), rng)
    fields["shimmer_a"], fields["shimmer_b"] = _wave_pair(shimmer, 0.5 * max(h, w), rng)
    # Far layer: deeper parts of the background move a little against the foreground (depth-graded, so it is
    # not one rigid translation). Without a layer, the depth proxy itself carries the parallax, smoothly.
    if analysis.layered:
        far = (-0.3 * (1.0 - analysis.depth) * (1.0 - analysis.foreground))
    else:
        far = analysis.depth - float(analysis.depth.mean())
    zeros = np.zeros((h, w), np.float32)
    fields["parallax_x"] = np.dstack([far, zeros])
    fields["parallax_y"] = np.dstack([zeros, far])
    ones = np.ones((h, w), np.float32)
    fields["cam_x"] = np.dstack([ones, zeros])
    fields["cam_y"] = np.dstack([zeros, ones])
    fields["cam_zoom"] = np.dstack([xx - w / 2, yy - h / 2]) / (0.5 * short)
    fields["cam_rot"] = np.dstack([-(yy - h / 2), xx - w / 2]) / (0.5 * short)
    return {k: v.astype(np.float32) for k, v in fields.items()}


def _loop_period(duration: float, target: float) -> float:
    """A period near `target` seconds that fits a whole number of times into the clip (so it loops)."""
    return duration / max(1, round(duration / target))


def coefficients(channels: dict[str, np.ndarray], frames: int, fps: float, tempo: float | None,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame weights of each basis field, plus the foreground layer's offset ('layer_x', 'layer_y'), from
    the channel levels; all in shorter-side units. Without a tempo every oscillator fits a whole number of
    cycles into the clip, so a silent clip loops."""
    t = np.arange(frames) / fps
    duration = max(frames / fps, 1e-6)
    zero = np.zeros(frames)
    beat = 60.0 / tempo if tempo else None
    coef: dict[str, np.ndarray] = {}
    # Sway: one cycle per two beats with music, a whole number of ~3-s cycles without.
    period = 2 * beat if beat else _loop_period(duration, 3.0)
    theta = 2 * math.pi * t / period + rng.uniform(0, 2 * math.pi)
    sway = channels.get("sway", zero) * AMPLITUDE["sway"]
    coef["sway_a"], coef["sway_b"] = sway * np.cos(theta), sway * np.sin(theta)
    shimmer = channels.get("shimmer", zero) * AMPLITUDE["shimmer"]
    theta_s = 2 * math.pi * t / (period / 4) + rng.uniform(0, 2 * math.pi)
    coef["shimmer_a"], coef["shimmer_b"] = shimmer * np.cos(theta_s), shimmer * np.sin(theta_s)
    coef["pulse"] = channels.get("pulse", zero) * AMPLITUDE["pulse"]
    # Parallax: the near layer travels a slow ellipse (8 beats, or ~6 s looping); the far layer counters it.
    psi = 2 * math.pi * t / (8 * beat if beat else _loop_period(duration, 6.0)) + rng.uniform(0, 2 * math.pi)
    parallax = channels.get("parallax", zero) * AMPLITUDE["parallax"]
    layer_x, layer_y = parallax * np.cos(psi), 0.5 * parallax * np.sin(psi)
    # Orbit: the camera circles the subject, so the layers slide against each other on a circle.
    orbit = channels.get("orbit", zero) * AMPLITUDE["orbit"]
    if orbit.any():
        phi = 2 * math.pi * t / _loop_period(duration, 8.0) + rng.uniform(0, 2 * math.pi)
        layer_x, layer_y = layer_x + orbit * np.cos(phi), layer_y + 0.6 * orbit * np.sin(phi)
    coef["layer_x"], coef["layer_y"] = layer_x, layer_y
    coef["parallax_x"], coef["parallax_y"] = layer_x, layer_y
    # Camera moves, only when asked for.
    push = channels.get("push", zero) * AMPLITUDE["push"]
    drift = channels.get("drift", zero)
    heading = rng.uniform(0, 2 * math.pi)
    cam_x, cam_y, cam_zoom, cam_rot = zero.copy(), zero.copy(), push.copy(), zero.copy()
    if drift.any():
        travel = np.cumsum(np.abs(drift))
        travel = travel / max(float(travel[-1]), 1e-9)
        if not beat:  # no music to travel with: out and back, so a silent clip loops
            travel = np.sin(np.pi * travel) ** 2
        travel = travel * float(np.abs(drift).max()) * AMPLITUDE["drift"]
        cam_x, cam_y = travel * math.cos(heading), travel * math.sin(heading)
        cam_zoom = cam_zoom + 0.3 * travel
    shake = channels.get("shake", zero) * AMPLITUDE["shake"]
    if shake.any():
        # One random direction per hit, held while the hit's spring rings down, so the jolt lands on the beat.
        hits = np.diff(np.abs(shake), prepend=0.0) > 0.1 * float(np.abs(shake).max())
        directions = rng.standard_normal((frames, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        held = directions[np.maximum.accumulate(np.where(hits, np.arange(frames), 0))]
        cam_x, cam_y = cam_x + shake * held[:, 0], cam_y + shake * held[:, 1]
        cam_rot = cam_rot + 0.5 * shake * held[:, 2]
    coef["cam_x"], coef["cam_y"], coef["cam_zoom"], coef["cam_rot"] = cam_x, cam_y, cam_zoom, cam_rot
    return coef


def anchored(coef: dict[str, np.ndarray], anchor: int, fps: float, looping: bool = False) -> dict[str, np.ndarray]:
    """Coefficients relative to the anchor frame (which becomes the still exactly), easing in and out of it.

    Camera coefficients are offset as a whole, so with `--anchor end` the camera travels *into* the still's
    framing; local motion is offset and eased near the anchor so the clip leaves / reaches the still gently
    rather than snapping; beat accents are never eased. `looping` (no music): every coefficient is a loop, and
    is offset as a whole so the clip still loops.
    """
    frames = next(iter(coef.values())).size
    distance = np.abs(np.arange(frames) - anchor) / max(ANCHOR_EASE_SECONDS * fps, 1e-6)
    ease = np.clip(distance, 0, 1)
    ease = 0.25 + 0.75 * ease * ease * (3 - 2 * ease)
    fade = np.exp(-np.abs(np.arange(frames) - anchor) / max(ANCHOR_EASE_SECONDS * fps, 1e-6))
    out = {}
    for name, values in coef.items():
        if name == "pulse" and not looping:  # accents: not eased (a beat near the anchor still lands); the
            out[name] = values - values[anchor] * fade  # anchor's own level fades instead of offsetting the clip
        elif name.startswith("cam_"):
            out[name] = values - values[anchor]
        else:
            out[name] = (values - values[anchor]) * ease
    return out


class FrameWarper:
    """Per-still state for warping frames: full-size sampling grid, the atlas (still + disocclusion plate), and
    the low-resolution basis fields. `frame(weights)` makes one output frame."""

    def __init__(self, source: np.ndarray, analysis: StillAnalysis, fields: dict[str, np.ndarray],
                 names: list[str], max_shift_px: float) -> None:
        self.height, self.width = source.shape[:2]
        self.source = source
        self.analysis = analysis
        self.names = names
        self.flat = np.stack([fields[k] for k in names], axis=0).reshape(len(names), -1)  # K x (fh*fw*2)
        fh, fw = analysis.texture.shape
        self.field_shape = (fh, fw)
        self.scale = self.width / fw, self.height / fh  # full pixels per field pixel (x, y)
        self.short = float(min(self.width, self.height))
        sgx, sgy = np.meshgrid(np.arange(fw, dtype=np.float32), np.arange(fh, dtype=np.float32))
        self.small_grid_x, self.small_grid_y = sgx, sgy
        # Full-frame coordinates of the field pixels' centres (cv2.resize's half-pixel convention). Resizing is
        # linear, so resize(centres - d) == grid - resize(d) inside the frame: the full-size sampling map comes
        # from ONE upsample, with no full-size grid to subtract. Only the outermost ~scale/2 rows and columns,
        # where resize clamps, differ; `_edges` holds the exact correction there.
        self.centres = np.dstack([(sgx + 0.5) * self.scale[0] - 0.5, (sgy + 0.5) * self.scale[1] - 0.5])
        self.pad = int(min(self.height, math.ceil(max_shift_px) + 4))
        self.plate_offset = float(self.height + 2 * self.pad) if analysis.layered else 0.0
        # The edge corrections, the atlas and the plate's inpainting are built by the first frame that moves
        # (`_prepare`), not here: the anchor frame is the still itself, so the first frame (and its preview)
        # leaves without waiting for them, and a clip never pays for what it does not use.
        self._prepared = False

    def _prepare(self) -> None:
        """Build what moving frames need: edge corrections, the atlas (still + disocclusion plate), buffers."""
        source = self.source
        self._edges = self._edge_corrections()
        # Atlas: [still; reflected bottom rows; reflected top rows of plate; plate] so one remap samples both
        # the still and, where the foreground uncovered background, the inpainted plate.
        self.atlas = source
        if self.analysis.layered:
            plate = self._background_plate(source)
            rows = [source]
            if self.pad:
                rows += [source[::-1][: self.pad], plate[: self.pad][::-1]]
            rows.append(plate)
            self.atlas = np.ascontiguousarray(np.vstack(rows))
        # OpenCV's bilinear remap has SIMD paths for 1- and 4-channel 8-bit images but not for 3 channels: an
        # RGBX atlas remaps ~2.5x faster, and dropping X afterwards costs ~1 ms at 1080p.
        self._drop_x = self.atlas.shape[2] == 3
        if self._drop_x:
            self.atlas = cv2.cvtColor(self.atlas, cv2.COLOR_RGB2RGBA)
        self._map = np.empty((self.height, self.width, 2), np.float32)
        self._warped = np.empty((self.height, self.width, self.atlas.shape[2]), np.uint8) if self._drop_x else None
        self._prepared = True

    def _edge_corrections(self) -> list[tuple[tuple[slice, slice, int], np.ndarray]]:
        """(region, grid - resize(centres)) for the border strips where cv2.resize clamps instead of extending
        the centres' linear ramp; zero (to float precision) everywhere else."""
        gx, gy = np.meshgrid(np.arange(self.width, dtype=np.float32), np.arange(self.height, dtype=np.float32))
        upsampled = cv2.resize(self.centres, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        error_x = np.abs(gx - upsampled[..., 0]).max(axis=0) > 1e-3  # per column
        error_y = np.abs(gy - upsampled[..., 1]).max(axis=1) > 1e-3  # per row
        regions: list[tuple[slice, slice, int]] = []
        for bad, axis in ((error_x, 0), (error_y, 1)):
            index = np.flatnonzero(bad)
            if index.size == 0:
                continue
            # contiguous runs: a leading strip and a trailing strip (or the whole axis for tiny frames)
            runs = np.split(index, np.flatnonzero(np.diff(index) > 1) + 1)
            for run in runs:
                span = slice(int(run[0]), int(run[-1]) + 1)
                regions.append((slice(None), span, 0) if axis == 0 else (span, slice(None), 1))
        grid = (gx, gy)
        return [(region, np.ascontiguousarray(grid[region[2]][region[:2]] - upsampled[region])) for region in regions]

    def _background_plate(self, source: np.ndarray) -> np.ndarray:
        """The still with the foreground layer (grown by the largest layer shift) inpainted away."""
        fh, fw = self.field_shape
        small = cv2.resize(source, (fw, fh), interpolation=cv2.INTER_AREA)
        grow = 3 + 2 * math.ceil(self.pad / min(self.scale))
        hole = cv2.dilate((self.analysis.foreground > 0.2).astype(np.uint8) * 255,
                          cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
        channels = [cv2.inpaint(np.ascontiguousarray(small[..., :3]), hole, 5, cv2.INPAINT_TELEA)]
        if source.shape[2] == 4:
            channels.append(cv2.inpaint(np.ascontiguousarray(small[..., 3]), hole, 5, cv2.INPAINT_TELEA)[..., None])
        filled = cv2.resize(np.dstack(channels), (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(hole, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        plate = source.copy()
        cv2.copyTo(filled.reshape(source.shape), mask, plate)  # np.where at 1080p costs ~4x as much
        return plate

    def _shift_small(self, image: np.ndarray, dx: np.ndarray | float, dy: np.ndarray | float) -> np.ndarray:
        """Low-resolution backward warp: out(p) = image(p - d)."""
        return cv2.remap(image, (self.small_grid_x - dx).astype(np.float32),
                         (self.small_grid_y - dy).astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def _weighted_sum(self, weights: np.ndarray) -> np.ndarray:
        """sum(weights[k] * fields[k]) without BLAS: `weights @ flat` is tiny, but OpenBLAS's worker threads
        spin after every call and burn a core the encoder needs (≈10 ms CPU per frame on 2 cores)."""
        total = np.zeros(self.flat.shape[1], np.float32)
        scaled = np.empty_like(total)
        for k in np.flatnonzero(weights):
            np.multiply(self.flat[k], np.float32(weights[k]), out=scaled)
            total += scaled
        return total

    def _offset_revealed(self, mapping: np.ndarray, revealed: np.ndarray) -> None:
        """Send the sampling positions of the uncovered strip down to the plate. `revealed` (field pixels) is
        interpolated to full resolution and thresholded there: the strip is as wide as the layer moved (often a
        few pixels, under one field pixel), and thresholding field pixels instead turned a thin strip along a
        slanted layer edge into a dotted line of 7-pixel blocks of plate."""
        positive = revealed > 0
        rows = np.flatnonzero(positive.any(axis=1))
        if rows.size == 0:
            return
        cols = np.flatnonzero(positive.any(axis=0))
        sx, sy = self.scale
        # full pixels whose bilinear neighbourhood holds a positive field pixel: one field pixel around them
        y0, y1 = max(0, math.floor((rows[0] - 0.5) * sy)), min(self.height, math.ceil((rows[-1] + 1.5) * sy))
        x0, x1 = max(0, math.floor((cols[0] - 0.5) * sx)), min(self.width, math.ceil((cols[-1] + 1.5) * sx))
        # full pixel (x, y) of the box sits at field position ((x0 + x + 0.5) / sx - 0.5, ...), cv2.resize's
        # half-pixel convention, so the box lines up with the map it edits
        to_field = np.array([[1 / sx, 0, (x0 + 0.5) / sx - 0.5], [0, 1 / sy, (y0 + 0.5) / sy - 0.5]])
        margin = cv2.warpAffine(revealed, to_field, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        block = cv2.morphologyEx(cv2.compare(margin, 0.0, cv2.CMP_GT), cv2.MORPH_OPEN, _SLIVER_KERNEL)
        # the strips trail the layer's outline, a few per cent of a box that often spans half the frame: moving
        # just their rows down to the plate costs 0.17 ms at 1080p where a masked add over the box took 1.25
        points = cv2.findNonZero(block)
        if points is not None:
            points = points.reshape(-1, 2)
            mapping[points[:, 1] + y0, points[:, 0] + x0, 1] += np.float32(self.plate_offset)

    def frame(self, weights: np.ndarray, layer: tuple[float, float]) -> np.ndarray:
        """The still warped by sum(weights * fields) with the foreground layer shifted by `layer` (shorter-side
        units). All-zero motion returns the still itself, exactly."""
        if not np.any(weights) and layer == (0.0, 0.0):
            return self.source.copy()
        if not self._prepared:
            self._prepare()
        to_field = np.array([self.short / self.scale[0], self.short / self.scale[1]], np.float32)
        fh, fw = self.field_shape
        small = self._weighted_sum(weights).reshape(fh, fw, 2) * to_field  # field pixels
        revealed = None
        if self.analysis.layered and layer != (0.0, 0.0):
            vx, vy = float(layer[0] * to_field[0]), float(layer[1] * to_field[1])
            fg = self.analysis.foreground
            moved = self._shift_small(fg, vx, vy)  # where the layer is now, in output coordinates
            under = self._shift_small(fg, small[..., 0], small[..., 1])  # layer at the background's source
            small[..., 0] += moved * vx
            small[..., 1] += moved * vy
            # > 0 where the layer has left this place and the background's source lies under the layer: the
            # strip the layer uncovered, which the plate fills (a signed margin, so it can be interpolated)
            revealed = np.minimum(0.5 - moved, under - 0.5)
        # Field pixels -> full pixels, then sampling positions, all at low resolution (resizing is linear).
        small *= np.array(self.scale, np.float32)
        mapping = cv2.resize(self.centres - small, (self.width, self.height), dst=self._map,
                             interpolation=cv2.INTER_LINEAR)
        for region, correction in self._edges:
            mapping[region] += correction
        if revealed is not None:
            self._offset_revealed(mapping, revealed)
        # The RGBX intermediate reuses one buffer (fresh 8-MB arrays per frame cost page faults); the frame
        # handed out is always a new array, since callers may keep it.
        warped = cv2.remap(self.atlas, mapping, None, cv2.INTER_LINEAR, dst=self._warped,
                           borderMode=cv2.BORDER_REFLECT101)
        return cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB) if self._drop_x else warped


@dataclass
class Plan:
    """Everything decided before the first frame: the warper and per-frame weights."""

    warper: FrameWarper
    weights: np.ndarray  # frames x K
    layer: np.ndarray    # frames x 2


def field_copy(image: np.ndarray) -> np.ndarray:
    """The still at the basis fields' size (long side FIELD_LONG_SIDE): what its analysis looks at."""
    height, width = image.shape[:2]
    scale = min(1.0, FIELD_LONG_SIDE / max(width, height))
    fw, fh = max(8, round(width * scale)), max(8, round(height * scale))
    return cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA)


class StillAnalysisAhead:
    """The still's analysis, started on a thread of its own as soon as the still is fitted.

    The analysis (GrabCut above all: 0.1-1.8 s of one core at the field size, docs/procedural.md) needs only the
    fitted still, yet the render used to start it after the music's analysis, the QC set-up and the encoder's
    open: on a first render of a still every frame after the anchor waited for all of them in turn. Started
    here it runs on the second core meanwhile. Same pixels, same function: the same analysis (and cache entry)
    as when `plan` computes it itself.
    """

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self._analysis: StillAnalysis | None = None
        self._error: BaseException | None = None
        # not a daemon: a process ending while OpenCV is inside GrabCut would abort in C++ (see warmup.start)
        self._thread = threading.Thread(target=self._run, name="stillmotion-still-analysis", daemon=False)
        self._thread.start()

    def _run(self) -> None:
        try:
            warmup.wait()  # the saliency converts to Lab
            with single_threaded():  # as in the frame loop, which holds OpenCV at one thread too
                self._analysis = cached_analysis(field_copy(self.image), analyse_still)
        except BaseException as exc:  # noqa: BLE001 - re-raised by `result`, in the thread that needs it
            self._error = exc

    def result(self) -> StillAnalysis:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._analysis is not None
        return self._analysis


def plan(inputs: RenderInputs, analysis: StillAnalysis | None = None) -> Plan:
    """Build fields and per-frame weights (deterministic for the request's seed) from the still's `analysis`,
    analysing the still here when it was not started ahead."""
    request = inputs.request
    image = inputs.image
    height, width = image.shape[:2]
    frames, fps = request.frames, float(request.fps)
    rng = np.random.default_rng(request.seed)
    if analysis is None:
        analysis = cached_analysis(field_copy(image), analyse_still)
    fields = basis_fields(analysis, rng)
    tempo = getattr(inputs.features, "tempo", None)
    coef = anchored(coefficients(inputs.channels, frames, fps, tempo, rng), request.anchor_frame(), fps,
                    looping=tempo is None)
    names = [k for k in fields if k in coef]
    weights = np.stack([coef[k] for k in names], 1).astype(np.float32)
    layer = np.stack([coef["layer_x"], coef["layer_y"]], 1) if analysis.layered else np.zeros((frames, 2))
    short = float(min(width, height))
    max_shift = float(np.abs(layer).max()) * short if frames else 0.0
    return Plan(FrameWarper(_still_frame(inputs), analysis, fields, names, max_shift), weights, layer)


def _still_frame(inputs: RenderInputs) -> np.ndarray:
    """The fitted still as a frame (RGBA when the clip keeps its alpha): what the anchor frame shows."""
    return inputs.image if inputs.alpha is None else np.dstack([inputs.image, inputs.alpha])


def _preview_image(frame: np.ndarray) -> np.ndarray:
    """A quarter-size RGB copy of a frame for the panel."""
    height, width = frame.shape[:2]
    return cv2.resize(frame[..., :3], (max(2, width // 4), max(2, height // 4)))


class ProceduralBackend(Backend):
    name = "procedural"
    needs_weights = False

    def __init__(self) -> None:
        self._ahead: StillAnalysisAhead | None = None

    def prepare(self, image: np.ndarray) -> None:
        """Start the still's analysis now (render_clip calls this once the still is fitted)."""
        self._ahead = StillAnalysisAhead(image)

    def _analysis_ahead(self, image: np.ndarray) -> StillAnalysis | None:
        """The analysis `prepare` started, when it was for this very array (else `plan` analyses)."""
        return self._ahead.result() if self._ahead is not None and self._ahead.image is image else None

    def render(self, inputs: RenderInputs, on_event: EventSink, cancel: CancelToken) -> Iterator[np.ndarray]:
        frames = inputs.request.frames
        # With the anchor on the first frame, frame 0 is the still itself (`anchored` zeroes every coefficient
        # there): its preview goes out and the frame itself is handed on (to the encoder and QC) while the warp
        # thread analyses the still on the other core, so the panel shows the clip at once and the analysis
        # overlaps frame 0's encode and QC set-up instead of preceding them.
        early_frame = inputs.request.anchor_frame() == 0
        if early_frame:
            on_event(Preview(0, _preview_image(inputs.image)))
        ready: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        stop = threading.Event()
        failed: list[BaseException] = []

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                work = plan(inputs, self._analysis_ahead(inputs.image))
                if early_frame and (np.any(work.weights[0]) or np.any(work.layer[0])):
                    raise RuntimeError("the anchor frame moved: frame 0 was sent as the still")
                for k in range(1 if early_frame else 0, frames):
                    if stop.is_set() or cancel.cancelled:
                        return
                    layer = (float(work.layer[k, 0]), float(work.layer[k, 1]))
                    if not put(work.warper.frame(work.weights[k], layer)):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which re-raises it
                failed.append(exc)
                put(exc)

        producer = threading.Thread(target=produce, name="stillmotion-warp", daemon=True)
        producer.start()
        try:
            for k in range(frames):
                cancel.raise_if_cancelled()
                if k == 0 and early_frame:
                    on_event(Progress(1, frames))
                    yield _still_frame(inputs).copy()  # a new array, like every frame handed out
                    continue
                while True:
                    try:
                        frame = ready.get(timeout=0.2)
                        break
                    except queue.Empty:
                        cancel.raise_if_cancelled()
                        if not producer.is_alive() and ready.empty():
                            raise RuntimeError("the warp thread stopped early") from None
                if isinstance(frame, BaseException):
                    raise frame
                if k % PREVIEW_EVERY == 0:
                    on_event(Preview(k, _preview_image(frame)))
                on_event(Progress(k + 1, frames))
                yield frame
            producer.join()
            if failed:  # a one-frame clip never reads the queue: the warp thread's failure still surfaces
                raise failed[0]
        finally:
            stop.set()
            producer.join()
