"""A labelled set of clips made from real photos, for validating the QC gates (tests and bench/bench_qc.py).

The photos are the project's demo stills in resources/demo. Each clip moves a virtual camera over one (pan,
zoom, rotation) and/or deforms regions of it (local motion), and some change its colours or content over time.
Sizes and motions are fractions of the frame, so the same label renders at 256x192 for tests and at 1920x1080
for the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from stillmotion.engine.video import VideoWriter

FPS = Fraction(24)
SECONDS = 2.5
SIZE = (256, 192)  # width, height
#: Beats at 120 BPM, inside the clip with room for a window on each side.
BEATS = np.array([0.25, 0.75, 1.25, 1.75, 2.25])


DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
#: The photos the labelled set is made from: a portrait and a cat (fur, whiskers, a soft background).
PHOTOS = ("astronaut", "chelsea")
SUFFIXES = {"astronaut": ".png", "chelsea": ".png", "coffee": ".png", "rocket": ".jpg"}


def photo(name: str = PHOTOS[0]) -> np.ndarray:
    """A real demo photo as HxWx3 uint8 RGB."""
    path = DEMO / f"{name}{SUFFIXES[name]}"
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def second_photo() -> np.ndarray:
    """A different real picture (a cup of coffee), for a wrong reference image."""
    return photo("coffee")


@dataclass(frozen=True)
class Label:
    """What a clip is, and what QC must say about it (None: that gate does not apply)."""

    name: str
    description: str
    frozen: bool
    ken_burns: bool
    drift: bool
    flicker: bool = False
    sync_ok: bool | None = None


LABELS = [
    Label("static", "the still, unchanged", frozen=True, ken_burns=False, drift=False),
    Label("static_noise", "the still with fresh sensor noise (σ = 4 levels) every frame", True, False, False),
    Label("zoom", "pure zoom-in to 1.35x about the centre", False, True, False),
    Label("pan", "pure pan by 22 % of the width", False, True, False),
    Label("rotation", "pure rotation by 10°", False, True, False),
    Label("local", "two regions sway (centre and lower right), camera fixed", False, False, False),
    Label("local_drift", "the same local motion over a slow pan (7 % of the width)", False, False, False),
    Label("colour_change", "local motion while the grade drifts (hue +35°, warmer, more saturated)",
          False, False, True),
    Label("identity_change", "local motion while the picture morphs into its mirror image", False, False, True),
    Label("beat_on", "a region kicks on every beat (120 BPM)", False, False, False, sync_ok=True),
    Label("beat_off", "the same kicks half a beat late", False, False, False, sync_ok=False),
    Label("flicker", "local motion with brightness alternating ±4 levels", False, False, False, flicker=True),
]
LABELS_BY_NAME = {label.name: label for label in LABELS}


class Scene:
    """The photo on a canvas 1.5x the frame, seen through a camera (out→canvas similarity)."""

    def __init__(self, width: int, height: int, photo_name: str = PHOTOS[0]) -> None:
        self.width, self.height = width, height
        canvas_w, canvas_h = int(width * 1.5), int(height * 1.5)
        image = photo(photo_name)
        scale = max(canvas_w / image.shape[1], canvas_h / image.shape[0])
        resized = cv2.resize(image, (math.ceil(image.shape[1] * scale), math.ceil(image.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        y0 = int((resized.shape[0] - canvas_h) * 0.1)  # keep the top (faces) in view
        x0 = (resized.shape[1] - canvas_w) // 2
        self.canvas = np.ascontiguousarray(resized[y0 : y0 + canvas_h, x0 : x0 + canvas_w])
        self.canvas_w, self.canvas_h = canvas_w, canvas_h
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.xs, self.ys = xs, ys

    def camera(self, pan_x: float = 0.0, zoom: float = 1.0, angle_deg: float = 0.0) -> np.ndarray:
        """2x3 matrix mapping output pixels to canvas pixels (pan in output-width fractions)."""
        cx, cy = self.width / 2, self.height / 2
        a = math.radians(angle_deg)
        cos_a, sin_a = math.cos(a) / zoom, math.sin(a) / zoom
        tx = self.canvas_w / 2 + pan_x * self.width
        ty = self.canvas_h / 2
        return np.array([[cos_a, -sin_a, tx - cos_a * cx + sin_a * cy],
                         [sin_a, cos_a, ty - sin_a * cx - cos_a * cy]], dtype=np.float32)

    def render(self, camera: np.ndarray, source: np.ndarray | None = None,
               bumps: list[tuple[float, float, float, float, float]] = ()) -> np.ndarray:
        """Look at `source` (default: the canvas) through `camera`, displaced locally by Gaussian bumps.

        A bump (cx, cy, sigma, dx, dy), in frame fractions, moves the picture around (cx, cy) by (dx, dy) x
        width, fading out over sigma x width: a region that sways or deforms while the rest stays put.
        """
        src = self.canvas if source is None else source
        map_x = camera[0, 0] * self.xs + camera[0, 1] * self.ys + camera[0, 2]
        map_y = camera[1, 0] * self.xs + camera[1, 1] * self.ys + camera[1, 2]
        for cx, cy, sigma, dx, dy in bumps:
            px, py, s = cx * self.width, cy * self.height, sigma * self.width
            weight = np.exp(-((self.xs - px) ** 2 + (self.ys - py) ** 2) / (2 * s * s))
            map_x = map_x - dx * self.width * weight
            map_y = map_y - dy * self.width * weight
        return cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _sway(t: float) -> list[tuple[float, float, float, float, float]]:
    """Two regions swaying at different rates: the centre (a face, in the portrait) and the lower right."""
    return [
        (0.48, 0.45, 0.11, 0.028 * math.sin(2 * math.pi * 1.1 * t), 0.012 * math.sin(2 * math.pi * 0.7 * t)),
        (0.78, 0.80, 0.08, 0.020 * math.sin(2 * math.pi * 1.6 * t + 1.0), 0.0),
    ]


def _kicks(t: float, beats: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """A region that jumps on each beat and settles back: the fastest motion is the beat frame itself."""
    amount = sum(math.exp(-(t - b) / 0.12) for b in beats if t >= b - 1e-9)
    return [(0.5, 0.45, 0.12, 0.035 * amount, 0.015 * amount)]


def _grade(frame: np.ndarray, progress: float) -> np.ndarray:
    """Shift hue, warm up and saturate progressively (a colour-drift failure)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + 17.5 * progress) % 180  # OpenCV hue is 0..180: 17.5 = 35°
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + 0.5 * progress), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out[..., 0] += 18 * progress
    out[..., 2] -= 18 * progress
    return np.clip(out, 0, 255).astype(np.uint8)


def frames(name: str, width: int = SIZE[0], height: int = SIZE[1], fps: Fraction = FPS,
           seconds: float = SECONDS, seed: int = 0, photo_name: str = PHOTOS[0]) -> Iterator[np.ndarray]:
    """The frames of labelled clip `name` made from demo photo `photo_name`, one at a time (RGB uint8)."""
    scene = Scene(width, height, photo_name)
    rng = np.random.default_rng(seed)
    count = round(seconds * fps)
    still = scene.camera()
    mirrored = np.ascontiguousarray(scene.canvas[:, ::-1])
    beat_on = BEATS
    beat_off = BEATS + 0.25
    for k in range(count):
        t = k / float(fps)
        p = k / max(1, count - 1)
        if name == "static":
            frame = scene.render(still)
        elif name == "static_noise":
            frame = scene.render(still).astype(np.float32) + rng.normal(0, 4, (height, width, 3))
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        elif name == "zoom":
            frame = scene.render(scene.camera(zoom=1 + 0.35 * p))
        elif name == "pan":
            frame = scene.render(scene.camera(pan_x=-0.11 + 0.22 * p))
        elif name == "rotation":
            frame = scene.render(scene.camera(angle_deg=-5 + 10 * p))
        elif name == "local":
            frame = scene.render(still, bumps=_sway(t))
        elif name == "local_drift":
            frame = scene.render(scene.camera(pan_x=-0.035 + 0.07 * p), bumps=_sway(t))
        elif name == "colour_change":
            frame = _grade(scene.render(still, bumps=_sway(t)), p)
        elif name == "identity_change":
            original = scene.render(still, bumps=_sway(t)).astype(np.float32)
            other = scene.render(still, source=mirrored, bumps=_sway(t)).astype(np.float32)
            frame = np.clip((1 - p) * original + p * other, 0, 255).astype(np.uint8)
        elif name == "beat_on":
            frame = scene.render(still, bumps=_kicks(t, beat_on))
        elif name == "beat_off":
            frame = scene.render(still, bumps=_kicks(t, beat_off))
        elif name == "flicker":
            frame = scene.render(still, bumps=_sway(t)).astype(np.int16) + (4 if k % 2 else -4)
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        else:
            raise KeyError(name)
        yield frame


def reference(width: int = SIZE[0], height: int = SIZE[1], photo_name: str = PHOTOS[0]) -> np.ndarray:
    """The still as the renderer would have fitted it: the first frame of the static camera."""
    scene = Scene(width, height, photo_name)
    return scene.render(scene.camera())


def write_clip(path: Path, name: str, width: int = SIZE[0], height: int = SIZE[1], fps: Fraction = FPS,
               seconds: float = SECONDS, crf: int = 18, photo_name: str = PHOTOS[0],
               on_frame: Callable[[np.ndarray], None] | None = None) -> Path:
    """Encode labelled clip `name` to H.264 (so QC sees real compression artefacts)."""
    with VideoWriter(path, width, height, fps, crf=crf) as writer:
        for frame in frames(name, width, height, fps, seconds, photo_name=photo_name):
            writer.write(frame)
            if on_frame is not None:
                on_frame(frame)
    return path


def click_track(path: Path, beat_times: np.ndarray, seconds: float, sample_rate: int = 44100) -> Path:
    """A drum-like click (noise burst + low thump) at each beat time: music whose beats are known exactly."""
    import soundfile

    samples = np.zeros(int(seconds * sample_rate), dtype=np.float64)
    rng = np.random.default_rng(7)
    burst = int(0.05 * sample_rate)
    thump_t = np.arange(int(0.15 * sample_rate)) / sample_rate
    thump = 0.6 * np.sin(2 * np.pi * 60 * thump_t) * np.exp(-thump_t / 0.04)
    for beat in beat_times:
        i = int(round(beat * sample_rate))
        if i + thump.size > samples.size:
            continue
        samples[i : i + burst] += rng.normal(0, 0.5, burst) * np.exp(-np.arange(burst) / (0.01 * sample_rate))
        samples[i : i + thump.size] += thump
    soundfile.write(str(path), samples.astype(np.float32), sample_rate)
    return path


#: (gate, report attribute, threshold attribute, +1 when a value above the threshold fails, label predicate)
GATE_TABLE = [
    ("frozen", "region_motion", "dynamic_threshold", -1, lambda label: label.frozen),
    ("ken_burns", "global_motion_share", "max_global_motion_share", +1, lambda label: label.ken_burns),
    ("drift", "identity_drift", "max_identity_drift", +1, lambda label: label.drift),
    ("sync", "beat_hit_rate", "min_beat_hit_rate", -1, lambda label: label.sync_ok is False),
    ("flicker", "flicker", "max_flicker", +1, lambda label: label.flicker),
]


@dataclass
class Margin:
    """How far the labelled set's worst cases sit from one threshold (both positive when every label is right)."""

    gate: str
    measure: str
    threshold: float
    worst_pass: tuple[str, float]  # the clip that must pass, closest to the threshold
    worst_fail: tuple[str, float]  # the clip that must fail, closest to the threshold
    pass_margin: float
    fail_margin: float


def label_reports(folder: Path, photo_name: str = PHOTOS[0]) -> list[tuple[Label, object]]:
    """Encode every labelled clip of one photo into `folder` and QC it (beats only where sync is labelled)."""
    from stillmotion.engine.qc import qc_video

    reports = []
    ref = reference(photo_name=photo_name)
    for label in LABELS:
        path = write_clip(folder / f"{photo_name}_{label.name}.mp4", label.name, photo_name=photo_name)
        beats = BEATS if label.sync_ok is not None else None
        reports.append((label, qc_video(path, reference_image=ref, beat_times=beats, onset_times=beats)))
    return reports


def margins(reports: list[tuple[Label, object]], thresholds: object) -> list[Margin]:
    """Margins of every gate's threshold on the labelled set (`reports` pairs each label with its QCReport)."""
    rows = []
    for gate, measure, attribute, direction, fails in GATE_TABLE:
        threshold = getattr(thresholds, attribute)
        values = [(label, getattr(report, measure)) for label, report in reports]
        values = [(label, v) for label, v in values if v is not None]
        good = [(v, label.name) for label, v in values if not fails(label)]
        bad = [(v, label.name) for label, v in values if fails(label)]
        worst_good = max(good) if direction > 0 else min(good)
        worst_bad = min(bad) if direction > 0 else max(bad)
        rows.append(Margin(gate, measure, threshold, (worst_good[1], worst_good[0]), (worst_bad[1], worst_bad[0]),
                           (threshold - worst_good[0]) * direction, (worst_bad[0] - threshold) * direction))
    return rows
