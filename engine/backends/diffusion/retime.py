"""From generated frames to exactly the requested ones, in time with the music: the music's drive, motion-aware
in-betweens (DIS optical flow), the beat-aligned time warp, anchor correction and segment joins. Pure numpy /
OpenCV (the QC module measures motion), so all of it runs and is tested without torch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .plan import TimelinePlan

if TYPE_CHECKING:
    from ...request import RenderRequest

#: Largest speed change the beat retiming may apply (output speed within [1/x, x] of the generated speed).
DEFAULT_MAX_SPEED_CHANGE = 1.5
#: Long side of the frames used to measure motion energy for retiming.
ENERGY_SIDE = 128


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



def conform_frames(gen: list[np.ndarray], plan: TimelinePlan, request: RenderRequest, options: dict[str, Any],
                   beat_times: np.ndarray | None, keyframes: list[dict[str, Any]], still: np.ndarray,
                   end_still: np.ndarray | None) -> tuple[list[np.ndarray], dict[str, Any] | None]:
    """Exactly request.frames at request.fps and size: resample the generated timeline (motion-aware
    in-betweens), warped so keyframes sit on their downbeats and motion peaks land on beats when that raises
    the beat-hit rate. Returns the frames and the beat-sync report (None without beats); each keyframe's "time"
    is replaced by the output "frame" it landed on."""
    fps = float(request.fps)
    base = plan.base_positions(request.frames)
    positions = base
    beats = beat_times
    beat_sync: dict[str, Any] | None = None
    retime = bool(options.get("retime", True))
    max_change = float(options.get("max_speed_change", DEFAULT_MAX_SPEED_CHANGE))
    # Keyframes were generated at a multiple of the model's temporal ratio, up to half of it away from their
    # downbeat: pin each one onto its downbeat's output frame.
    pins = {int(round(k["downbeat"] * fps)): plan.left + (k["time"] * fps - plan.anchor_out) * plan.ratio
            for k in keyframes} if retime else {}
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
        beat_sync = {
            "beat_hit_rate_before": before, "beat_hit_rate_after": after,
            "retimed": positions is not base, "speed_range": [round(float(speed.min()), 3),
                                                              round(float(speed.max()), 3)]}
    elif pins:
        positions = beat_aligned_positions(base, np.zeros(len(gen)), np.zeros(0, dtype=int), plan.anchor_out,
                                           len(gen), max_change, pins=pins)
    for key in keyframes:  # where each keyframe ended up: the output frame showing its generated frame
        where = plan.left + (key["time"] * fps - plan.anchor_out) * plan.ratio
        key["frame"] = int(np.argmin(np.abs(positions - where)))
        key.pop("time")
    interp = FlowInterpolator(gen)
    frames = [resize_cover(interp.at(float(p)), request.width, request.height) for p in positions]
    targets = {plan.anchor_out: still}
    if end_still is not None:
        targets[request.frames - 1] = end_still
    if options.get("exact_anchor", True):
        anchor_correction(frames, targets, fps)
    return frames, beat_sync
