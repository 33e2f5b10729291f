"""A seeded generator of labelled clips for the QC gates: `clip_spec(seed)` draws a clip, `render_clip` makes it.

Every clip is one photo (of eight kinds, see PHOTOS) seen through a virtual camera, with local motion in soft
regions and, for some, an identity change. Its labels come from the parameters it was drawn with, by the class
boundaries in docs/qc.md ("Generated set"); a clip whose parameters fall in the ambiguous band around a boundary
gets the label None for that gate and is not scored on it. All speeds are in px @ 256 (pixels at a 256-pixel
short side) per frame, like the QC measures, so a spec renders the same motion at 256x144 and at 1920x1080.

Cheap to import (numpy + OpenCV); rendering a 2.5-s 256x144 clip takes ≈ 0.1 s. `cached_clip` encodes it through
the project's H.264 writer once and keeps it on disk, so QC sees real codec artefacts.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "resources" / "demo"
EXTRA = HERE / "data" / "qc_photos"

#: name -> (kind, file, how it is prepared). Licences: resources/LICENSES.md and tests/data/ATTRIBUTION.md.
PHOTOS: dict[str, tuple[str, Path, str]] = {
    "astronaut": ("portrait", DEMO / "astronaut.png", "as is"),
    "chelsea": ("animal / fur", DEMO / "chelsea.png", "as is"),
    "coffee": ("product", DEMO / "coffee.png", "as is"),
    "rocket": ("landscape", DEMO / "rocket.jpg", "as is"),
    "hubble": ("night", EXTRA / "hubble_deep_field.jpg", "darkened to a night exposure (x0.6)"),
    "horse": ("illustration", EXTRA / "horse.png", "clip-art silhouette coloured flat: brown on sky / grass"),
    "coffee_defocused": ("texture-poor", DEMO / "coffee.png", "defocused (Gaussian σ = 2 % of width), contrast x0.5"),
    "camera": ("greyscale photo", EXTRA / "camera.png", "as is (grey as RGB)"),
}
PHOTO_NAMES = tuple(PHOTOS)
KINDS = ("frozen", "local", "camera", "local_drift", "drift")
LOCAL_TYPES = ("sway", "breathing", "blink", "travel", "rotate")
CAMERA_TYPES = ("pan", "zoom", "rotate", "dolly")
DRIFT_TYPES = ("dissolve", "colour", "morph", "swap")

# ---------------------------------------------------------------------------------------- class boundaries
#: A clip is dynamic (not frozen) when some region of ≥ 2 % of the frame moves at ≥ 0.5 px @ 256 per frame with
#: visible structure in ≥ 0.25 % of the frame (pixels of gradient ≥ 3 levels/px at 256x144: a patch of clear sky that
#: slides over itself shows nothing), or the camera moves at ≥ CAMERA_DRIFT_MAX. Frozen clips have no motion at
#: all (codec, sensor noise, flicker). A moving region with less structure is ambiguous.
MIN_REGION_AREA, MIN_REGION_SPEED, MIN_VISIBLE_AREA = 0.02, 0.5, 0.0025
#: Round 4, visible motion: the local motion must also *change what a viewer sees*. Rendered clean (no camera,
#: codec, noise, flicker or identity change, see `motion_visibility`), in some frame it changes the luminance by
#: ≥ VISIBLE_LEVELS against the unmoved still over ≥ MIN_VISIBLE_AREA of the frame. 3 levels is the Weber fraction
#: of luminance discrimination (≈ 2 %) at mid-grey, 128 x 0.02 = 2.6, rounded up to whole levels; the area is the
#: boundary above. Chosen on that principle, not fitted to any gate; a moving region below it is ambiguous.
VISIBLE_LEVELS = 3.0
#: Ken Burns: the camera moves at ≥ KB_CAMERA_SPEED px @ 256 per frame (at the frame's corners) AND its share of
#: the motion energy is ≥ KB_SHARE. Not Ken Burns: camera ≤ CAMERA_DRIFT_MAX, or share ≤ NOT_KB_SHARE. Between:
#: ambiguous, not scored.
KB_CAMERA_SPEED, CAMERA_DRIFT_MAX = 0.3, 0.15
KB_SHARE, NOT_KB_SHARE = 0.8, 0.55
#: Identity drift: at the end of the clip ≥ DRIFT_MIN of the picture is another picture (dissolve / morph weight,
#: or swapped area x weight ≥ SWAP_MIN_AREA), or the grade moved ≥ COLOUR_MIN (hue degrees + 1° per level of
#: warm/cool shift). Clips without an identity change are "no drift"; none are drawn in between.
DRIFT_MIN, SWAP_MIN_AREA, COLOUR_MIN = 0.6, 0.5, 25.0
#: A morph turns the picture into its mirror image: when the mirror image is nearly the picture itself
#: (correlation of the blurred luminance ≥ MIRROR_SAME, at 256x144) the end of the morph looks like its start —
#: the defocused coffee cup, symmetric and soft, correlates 0.75 with its mirror, and no editor would call that an
#: identity change. Such a morph is ambiguous, not "drift". (Added in round 2 after viewing dev seed 34; the
#: other photos correlate ≤ 0.60.)
MIRROR_SAME = 0.7


@dataclass
class Region:
    kind: str  # one of LOCAL_TYPES
    cx: float  # centre, frame fractions
    cy: float
    area: float  # share of the frame inside the ellipse
    aspect: float  # rx / ry
    speed: float  # peak speed, px @ 256 per frame
    freq: float  # Hz (sway, breathing), or blink times for blink (in `times`)
    angle: float  # direction of sway / travel, radians
    times: list[float] = field(default_factory=list)


@dataclass
class ClipSpec:
    seed: int
    kind: str
    photo: str
    fps: int
    seconds: float
    crf: int
    noise: float = 0.0  # sensor noise σ, 8-bit levels, fresh every frame
    flicker: float = 0.0  # brightness jitter amplitude, levels
    camera: str = ""  # one of CAMERA_TYPES, or "" for a still camera
    camera_speed: float = 0.0  # px @ 256 per frame at the frame's corners (pan: everywhere)
    camera_angle: float = 0.0  # pan direction, radians; sign of zoom / rotation
    parallax: float = 1.0  # dolly: foreground speed / background speed
    regions: list[Region] = field(default_factory=list)
    drift: str = ""  # one of DRIFT_TYPES, or ""
    drift_amount: float = 0.0  # final weight (dissolve, morph, swap) or colour shift in degrees
    drift_area: float = 0.0  # swap: share of the frame replaced
    other: str = ""  # the other photo (dissolve, morph, swap)

    @property
    def name(self) -> str:
        parts = [self.kind, self.photo]
        parts += [self.camera] if self.camera else []
        parts += ["+".join(r.kind for r in self.regions)] if self.regions else []
        parts += [self.drift] if self.drift else []
        return f"{self.seed:05d}-" + "-".join(parts)

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    # ------------------------------------------------------------------------------------------- labels
    def local_energy(self) -> float:
        """Mean squared local flow over the frame (px @ 256 per frame)², from the drawn parameters."""
        duty = {"sway": 0.5, "breathing": 0.25, "travel": 1.0, "rotate": 0.5}
        energy = 0.0
        for r in self.regions:
            share = duty.get(r.kind)
            if share is None:  # blink: the lid moves only while blinking (≈ 0.3 s each), at half its peak
                share = 0.25 * min(1.0, len(r.times) * BLINK_SECONDS / self.seconds)
            energy += r.area * share * r.speed**2
        if self.camera == "dolly":  # the foreground layer's extra speed is not the camera's similarity
            energy += 0.3 * ((self.parallax - 1) * self.camera_speed) ** 2
        return energy

    def camera_energy(self) -> float:
        factor = 1.0 if self.camera in ("pan", "dolly") else 1 / 3  # zoom / rotation: corner speed, mean r² = R²/3
        return factor * self.camera_speed**2

    def global_share(self) -> float:
        camera, local = self.camera_energy(), self.local_energy()
        return camera / (camera + local) if camera + local > 0 else 0.0

    def label_frozen(self, visible_change: bool = True) -> bool | None:
        """Frozen label; `visible_change=False` gives round 3's labelling (no check of the clean render)."""
        if self.camera_speed >= CAMERA_DRIFT_MAX:
            return False
        moving = any(r.area >= MIN_REGION_AREA and r.speed >= MIN_REGION_SPEED
                     and visible_area(self.photo, r) >= MIN_VISIBLE_AREA for r in self.regions)
        if moving and (not visible_change or motion_visibility(self) >= MIN_VISIBLE_AREA):
            return False
        if not self.regions and self.camera_speed == 0 and self.drift in ("", "colour"):
            return True
        return None  # a cross-fade (dissolve, swap, morph) without motion is neither motion nor a still

    def label_ken_burns(self) -> bool | None:
        if self.camera_speed <= CAMERA_DRIFT_MAX or self.global_share() <= NOT_KB_SHARE:
            return False
        if self.camera_speed >= KB_CAMERA_SPEED and self.global_share() >= KB_SHARE:
            return True
        return None

    def label_drift(self) -> bool | None:
        if not self.drift:
            return False
        if self.drift == "colour":
            return True if self.drift_amount >= COLOUR_MIN else None
        if self.drift == "swap":
            return True if self.drift_area * self.drift_amount >= SWAP_MIN_AREA else None
        if self.drift == "morph" and mirror_similarity(self.photo) >= MIRROR_SAME:
            return None
        return True if self.drift_amount >= DRIFT_MIN else None

    def labels(self) -> dict[str, bool | None]:
        """The scored labels, plus "frozen_r3": the frozen label without the visible-change check (round 3)."""
        return {"frozen": self.label_frozen(), "ken_burns": self.label_ken_burns(), "drift": self.label_drift(),
                "frozen_r3": self.label_frozen(visible_change=False)}


# ------------------------------------------------------------------------------------------------ drawing
def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


#: A blink closes and opens the lid in this long (s); blinks start at least BLINK_GAP apart, so the lid rests open
#: for one 1/8-s sampling step between two blinks (round 4: dev 218 drew blinks 0.05 s apart, one event, not two).
BLINK_SECONDS = 0.3
BLINK_GAP = BLINK_SECONDS + 0.125


def _separate_blinks(times: list[float], low: float, high: float) -> list[float]:
    """Sorted blink start times moved apart to at least BLINK_GAP, kept inside [low, high] (no new random draws,
    so clips without overlapping blinks are unchanged). Three blinks fit: the shortest range is 1.35 s, and
    moving a blink earlier never takes it below `low` (the last is clamped to `high` ≥ low + 2 gaps)."""
    spaced = list(times)
    for i in range(1, len(spaced)):
        spaced[i] = max(spaced[i], spaced[i - 1] + BLINK_GAP)
    spaced[-1] = min(spaced[-1], high)
    for i in range(len(spaced) - 2, -1, -1):
        spaced[i] = min(spaced[i], spaced[i + 1] - BLINK_GAP)
    return spaced


def _regions(rng: np.random.Generator, total: tuple[float, float], speed: tuple[float, float],
             seconds: float, count: int | None = None) -> list[Region]:
    count = count or int(rng.integers(1, 4))
    area_total = _log_uniform(rng, *total)
    weights = rng.dirichlet(np.ones(count)) * 0.6 + 0.4 / count
    regions = []
    for share in weights:
        kind = str(rng.choice(LOCAL_TYPES))
        area = max(MIN_REGION_AREA if not regions else total[0] * 0.5, float(area_total * share))
        times = []
        if kind == "blink":  # at least two blinks, so at least two 1/8-s steps see one at any frame rate
            n = int(rng.integers(2, 4))
            times = _separate_blinks(sorted(float(t) for t in rng.uniform(0.2, seconds - 0.45, n)),
                                     0.2, seconds - 0.45)
        regions.append(Region(kind=kind, cx=float(rng.uniform(0.25, 0.75)), cy=float(rng.uniform(0.25, 0.75)),
                              area=area, aspect=float(rng.uniform(0.6, 1.6)), speed=_log_uniform(rng, *speed),
                              freq=float(rng.uniform(0.4, 1.5)), angle=float(rng.uniform(0, 2 * math.pi)),
                              times=times))
    return regions


def clip_spec(seed: int) -> ClipSpec:
    """The clip drawn by `seed`: kinds and photos cycle with the seed (balanced), the rest is random."""
    rng = np.random.default_rng([15, seed])
    kind = KINDS[seed % len(KINDS)]
    photo = PHOTO_NAMES[(seed // len(KINDS)) % len(PHOTO_NAMES)]
    fps = int(rng.choice([12, 15, 24]))
    seconds = float(rng.choice([2.0, 2.5, 3.0]))
    spec = ClipSpec(seed=seed, kind=kind, photo=photo, fps=fps, seconds=seconds, crf=int(rng.integers(16, 31)))
    frames = round(fps * seconds)
    if kind == "frozen":
        variant = rng.integers(0, 4)  # exact + codec, sensor noise, flicker, both
        spec.noise = float(rng.uniform(1.0, 6.0)) if variant in (1, 3) else 0.0
        spec.flicker = float(rng.uniform(0.5, 5.0)) if variant in (2, 3) else 0.0
    elif kind == "local":
        spec.regions = _regions(rng, (0.02, 0.4), (MIN_REGION_SPEED, 8.0), seconds)
    elif kind == "local_drift":
        spec.regions = _regions(rng, (0.02, 0.4), (MIN_REGION_SPEED, 8.0), seconds)
        spec.camera = str(rng.choice(["pan", "zoom", "rotate"]))
        spec.camera_speed = float(rng.uniform(0.02, CAMERA_DRIFT_MAX))
        spec.camera_angle = float(rng.uniform(0, 2 * math.pi))
    elif kind == "camera":
        spec.camera = str(rng.choice(CAMERA_TYPES))
        # fast moves are bounded by the canvas: the picture may travel ≈ 30 % of the frame's width
        fastest = min(4.0, 0.3 * 455 / frames) if spec.camera in ("pan", "dolly") else min(4.0, 0.35 * 261 / (frames / 2))
        spec.camera_speed = _log_uniform(rng, KB_CAMERA_SPEED, max(KB_CAMERA_SPEED * 1.5, fastest))
        spec.camera_angle = float(rng.uniform(0, 2 * math.pi))
        if spec.camera == "dolly":
            spec.parallax = float(rng.uniform(1.4, 2.2))
        if rng.random() < 0.5:  # with a little local motion
            spec.regions = _regions(rng, (0.02, 0.06), (MIN_REGION_SPEED, 1.2), seconds, count=1)
    else:  # drift, with or without motion
        spec.drift = str(rng.choice(DRIFT_TYPES))
        spec.other = str(rng.choice([p for p in PHOTO_NAMES if p != photo and not p.startswith(photo)]))
        if spec.drift == "colour":
            spec.drift_amount = float(rng.uniform(COLOUR_MIN, 70.0))
        elif spec.drift == "swap":
            spec.drift_area = float(rng.uniform(SWAP_MIN_AREA, 0.8))
            spec.drift_amount = 1.0
        else:
            spec.drift_amount = float(rng.uniform(DRIFT_MIN, 1.0))
        motion = rng.integers(0, 3)  # none, local, local + slow drift
        if motion >= 1:
            spec.regions = _regions(rng, (0.02, 0.3), (MIN_REGION_SPEED, 5.0), seconds)
        if motion == 2:
            spec.camera = "pan"
            spec.camera_speed = float(rng.uniform(0.02, CAMERA_DRIFT_MAX))
            spec.camera_angle = float(rng.uniform(0, 2 * math.pi))
    return spec


# ---------------------------------------------------------------------------------------------- rendering
_PHOTO_CACHE: dict[str, np.ndarray] = {}


def load_photo(name: str) -> np.ndarray:
    """Photo `name` as HxWx3 uint8 RGB, prepared as PHOTOS says."""
    if name in _PHOTO_CACHE:
        return _PHOTO_CACHE[name]
    _, path, _ = PHOTOS[name]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if name == "hubble":
        rgb = (rgb.astype(np.float32) * 0.6).astype(np.uint8)
    elif name == "horse":
        silhouette = rgb[..., 0] < 128
        out = np.empty_like(rgb)
        horizon = int(0.72 * rgb.shape[0])
        out[:horizon] = (142, 190, 230)
        out[horizon:] = (96, 160, 72)
        out[silhouette] = (120, 72, 40)
        rgb = out
    elif name == "coffee_defocused":
        rgb = cv2.GaussianBlur(rgb, (0, 0), 0.02 * rgb.shape[1]).astype(np.float32)
        rgb = np.clip(rgb.mean(axis=(0, 1)) + 0.5 * (rgb - rgb.mean(axis=(0, 1))), 0, 255).astype(np.uint8)
    _PHOTO_CACHE[name] = rgb
    return rgb


_STRUCTURE_CACHE: dict[str, np.ndarray] = {}


def visible_area(photo: str, region: Region) -> float:
    """Share of the frame inside `region` (its core ellipse) that has visible structure: gradient ≥ 3 levels/px
    on the still at 256x144 (what a viewer could see move)."""
    if photo not in _STRUCTURE_CACHE:
        gray = cv2.cvtColor(_Stage(photo, 256, 144).view(), cv2.COLOR_RGB2GRAY)
        smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
        gradient = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3),
                                 cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)) / 8
        _STRUCTURE_CACHE[photo] = gradient >= 3.0
    structure = _STRUCTURE_CACHE[photo]
    height, width = structure.shape
    ys, xs = np.mgrid[0:height, 0:width]
    ry = math.sqrt(region.area * width * height / (math.pi * region.aspect))
    rx = region.aspect * ry
    inside = ((xs - region.cx * width) / rx) ** 2 + ((ys - region.cy * height) / ry) ** 2 <= 1.0
    return float(np.count_nonzero(inside & structure)) / structure.size


_VISIBILITY_CACHE: dict[str, float] = {}


def motion_visibility(spec: ClipSpec) -> float:
    """The largest share of the frame whose luminance the clip's local motion changes by ≥ VISIBLE_LEVELS against
    the unmoved still, over its frames, rendered clean at 256x144: the same regions, with no camera, codec, noise,
    flicker or identity change (what the motion alone shows a viewer)."""
    key = spec.key()
    if key not in _VISIBILITY_CACHE:
        clean = ClipSpec(seed=spec.seed, kind=spec.kind, photo=spec.photo, fps=spec.fps, seconds=spec.seconds,
                         crf=spec.crf, regions=spec.regions)
        unmoved = ClipSpec(seed=spec.seed, kind="frozen", photo=spec.photo, fps=spec.fps, seconds=1.0 / spec.fps,
                           crf=spec.crf)
        still = cv2.cvtColor(render_frames(unmoved)[0], cv2.COLOR_RGB2GRAY).astype(np.int16)
        shares = [np.count_nonzero(np.abs(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.int16) - still)
                                   >= VISIBLE_LEVELS) / still.size for frame in render_frames(clean)]
        _VISIBILITY_CACHE[key] = float(max(shares, default=0.0))
    return _VISIBILITY_CACHE[key]


_MIRROR_CACHE: dict[str, float] = {}


def mirror_similarity(photo: str) -> float:
    """Correlation of the photo's blurred luminance (as framed at 256x144) with its mirror image."""
    if photo not in _MIRROR_CACHE:
        gray = cv2.cvtColor(_Stage(photo, 256, 144).view(), cv2.COLOR_RGB2GRAY).astype(np.float32)
        smooth = cv2.GaussianBlur(gray, (0, 0), 2.0)
        _MIRROR_CACHE[photo] = float(np.corrcoef(smooth.ravel(), smooth[:, ::-1].ravel())[0, 1])
    return _MIRROR_CACHE[photo]


class _Stage:
    """A photo on a canvas 1.6x the frame, seen through a camera; local regions displace it."""

    CANVAS = 1.6

    def __init__(self, name: str, width: int, height: int, mirror: bool = False) -> None:
        self.width, self.height = width, height
        cw, ch = math.ceil(width * self.CANVAS), math.ceil(height * self.CANVAS)
        image = load_photo(name)
        scale = max(cw / image.shape[1], ch / image.shape[0])
        resized = cv2.resize(image, (math.ceil(image.shape[1] * scale), math.ceil(image.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        y0, x0 = (resized.shape[0] - ch) // 2, (resized.shape[1] - cw) // 2
        canvas = resized[y0 : y0 + ch, x0 : x0 + cw]
        self.canvas = np.ascontiguousarray(canvas[:, ::-1] if mirror else canvas)
        self.cw, self.ch = cw, ch

    def view(self) -> np.ndarray:
        """What the still camera sees (the centre of the canvas)."""
        y0, x0 = (self.ch - self.height) // 2, (self.cw - self.width) // 2
        return self.canvas[y0 : y0 + self.height, x0 : x0 + self.width]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def render_frames(spec: ClipSpec, width: int = 256, height: int = 144) -> list[np.ndarray]:
    """The clip's frames, HxWx3 uint8 RGB (uncompressed; `cached_clip` encodes them)."""
    unit = min(width, height) / 256.0  # px per px @ 256
    rng = np.random.default_rng([15, spec.seed, 1])
    stage = _Stage(spec.photo, width, height)
    other = _Stage(spec.other, width, height) if spec.drift in ("dissolve", "swap") else None
    if spec.drift == "morph":
        other = _Stage(spec.photo, width, height, mirror=True)
    count = round(spec.fps * spec.seconds)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2, height / 2
    half_diagonal = 0.5 * math.hypot(width, height)
    masks = []
    for r in spec.regions:
        ry = math.sqrt(r.area * width * height / (math.pi * r.aspect))
        rx = r.aspect * ry
        rho = np.sqrt(((xs - r.cx * width) / rx) ** 2 + ((ys - r.cy * height) / ry) ** 2)
        masks.append((_smoothstep((1.15 - rho) / 0.3), rx, ry))
    swap_mask = None
    if spec.drift == "swap":
        ry = math.sqrt(spec.drift_area * width * height / (math.pi * 1.2))
        rho = np.sqrt(((xs - cx) / (1.2 * ry)) ** 2 + ((ys - cy) / ry) ** 2)
        swap_mask = _smoothstep((1.1 - rho) / 0.2)[..., None]
    flicker = rng.uniform(-1, 1, count) * spec.flicker
    frames = []
    for k in range(count):
        t = k / spec.fps
        p = k / max(1, count - 1)
        # camera: output pixel -> canvas pixel
        travel = spec.camera_speed * unit * (k - (count - 1) / 2)  # corner displacement from the middle frame
        zoom, angle, pan_x, pan_y = 1.0, 0.0, 0.0, 0.0
        if spec.camera in ("pan", "dolly"):
            pan_x, pan_y = travel * math.cos(spec.camera_angle), travel * math.sin(spec.camera_angle)
        elif spec.camera == "zoom":
            zoom = 1.0 + math.copysign(1, math.cos(spec.camera_angle)) * travel / half_diagonal + 0.15
        elif spec.camera == "rotate":
            angle = math.copysign(1, math.cos(spec.camera_angle)) * travel / half_diagonal
        cos_a, sin_a = math.cos(angle) / zoom, math.sin(angle) / zoom
        map_x = cos_a * (xs - cx) - sin_a * (ys - cy) + stage.cw / 2 - pan_x
        map_y = sin_a * (xs - cx) + cos_a * (ys - cy) + stage.ch / 2 - pan_y
        if spec.camera == "dolly":  # a nearer layer (the lower part of the frame) moves faster
            near = _smoothstep((ys / height - 0.55) / 0.25)
            map_x -= near * (spec.parallax - 1) * pan_x
            map_y -= near * (spec.parallax - 1) * pan_y
        for r, (mask, rx, ry) in zip(spec.regions, masks, strict=True):
            v = r.speed * unit  # px per frame
            dx_dir, dy_dir = math.cos(r.angle), math.sin(r.angle)
            rcx, rcy = r.cx * width, r.cy * height
            if r.kind == "sway":
                amplitude = v * spec.fps / (2 * math.pi * r.freq)
                d = amplitude * math.sin(2 * math.pi * r.freq * t)
                map_x -= mask * d * dx_dir
                map_y -= mask * d * dy_dir
            elif r.kind == "breathing":
                radius = max(rx, ry)
                k_scale = v * spec.fps / (2 * math.pi * r.freq * radius)
                s = k_scale * math.sin(2 * math.pi * r.freq * t)
                map_x -= mask * s * (xs - rcx)
                map_y -= mask * s * (ys - rcy)
            elif r.kind == "blink":
                duration = BLINK_SECONDS
                k_scale = min(0.9, v * spec.fps * duration / (2 * ry))
                b = max((max(0.0, 1 - abs(t - (t0 + duration / 2)) / (duration / 2)) for t0 in r.times), default=0)
                map_y += mask * k_scale * b * (ys - rcy)
            elif r.kind == "travel":
                map_x -= mask * v * k * dx_dir
                map_y -= mask * v * k * dy_dir
            else:  # rotate: angular speed gives the peak speed at the region's rim
                omega = v / max(rx, ry) * k
                dxr, dyr = xs - rcx, ys - rcy
                c, s = math.cos(omega), math.sin(omega)
                map_x -= mask * ((c - 1) * dxr + s * dyr)
                map_y -= mask * (-s * dxr + (c - 1) * dyr)
        frame = cv2.remap(stage.canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if spec.drift in ("dissolve", "morph", "swap"):
            if spec.drift == "morph":  # the picture bends while it turns into its mirror image
                bend = 0.08 * width * p * spec.drift_amount
                warped_x = map_x + bend * np.sin(2 * math.pi * ys / height)
                second = cv2.remap(other.canvas, warped_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                frame = cv2.remap(stage.canvas, warped_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            else:
                second = cv2.remap(other.canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            weight = spec.drift_amount * _smoothstep(np.float32(p))
            alpha = weight * (swap_mask if swap_mask is not None else 1.0)
            frame = (frame * (1 - alpha) + second * alpha).astype(np.uint8)
        elif spec.drift == "colour":
            frame = _grade(frame, spec.drift_amount * p)
        if spec.noise or spec.flicker:
            out = frame.astype(np.float32) + flicker[k]
            if spec.noise:
                out += rng.normal(0, spec.noise, frame.shape).astype(np.float32)
            frame = np.clip(out, 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames


def _grade(frame: np.ndarray, degrees: float) -> np.ndarray:
    """Hue turned by `degrees`, and warmer by as many 8-bit levels / 2 (a grade that drifts)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    hue = (hsv[..., 0].astype(np.int16) + round(degrees / 2)) % 180
    hsv[..., 0] = hue.astype(np.uint8)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.int16)
    out[..., 0] += round(degrees / 2)
    out[..., 2] -= round(degrees / 2)
    return np.clip(out, 0, 255).astype(np.uint8)


def reference_image(spec: ClipSpec, width: int = 256, height: int = 144) -> np.ndarray:
    """The still the clip was made from, as the renderer would have fitted it (the still camera's view)."""
    still = ClipSpec(seed=spec.seed, kind="frozen", photo=spec.photo, fps=spec.fps, seconds=1.0 / spec.fps,
                     crf=spec.crf)
    if spec.camera == "zoom":  # the zoom runs through 1.15 mid-clip; the still is the middle frame's view
        return render_frames(ClipSpec(**{**asdict(still), "camera": "zoom", "camera_speed": 0.0}), width,
                             height)[0]
    return render_frames(still, width, height)[0]


def cached_clip(spec: ClipSpec, folder: Path, width: int = 256, height: int = 144) -> Path:
    """The clip encoded to H.264 (crf from the spec) in `folder`, made once and reused (keyed by its spec)."""
    from stillmotion.engine.video import VideoWriter

    path = Path(folder) / f"{spec.name}-{width}x{height}-{spec.key()}.mp4"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    with VideoWriter(partial, width, height, Fraction(spec.fps), crf=spec.crf) as writer:
        for frame in render_frames(spec, width, height):
            writer.write(frame)
    partial.replace(path)
    return path
