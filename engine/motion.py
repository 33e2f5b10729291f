"""Motion schedules: how the music moves the picture.

A `MotionSchedule` is a small, JSON-serialisable recipe (preset, intensity, band routing, envelopes, seed). Applied
to per-frame audio features it yields per-frame motion *channels* (pulse, sway, parallax, shimmer, camera push /
drift / shake) that any backend can read: the procedural engine turns them into warps, diffusion engines into
conditioning strengths. The same schedule and features always give the same channels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import BadInputError

#: Audio sources a channel can follow (names of FrameFeatures arrays).
SOURCES = ("beat", "downbeat", "onset", "energy", "low", "mid", "high", "flux")
#: Motion channels. Local (non-rigid) ones first; camera ones only move when a preset or the user asks.
LOCAL_CHANNELS = ("pulse", "sway", "parallax", "shimmer")
CAMERA_CHANNELS = ("push", "drift", "shake", "orbit")
CHANNELS = LOCAL_CHANNELS + CAMERA_CHANNELS


@dataclass
class Envelope:
    """Attack / release in seconds: how fast a channel follows its source up, and how slowly it lets go.

    With `spring_hz` > 0 the channel is a damped spring instead: every rise of the source (an accent) kicks it,
    it jumps on that frame and then swings back through rest at `spring_hz`, decaying with time constant
    `release`: the follow-through after a hit that makes motion read as physical rather than mechanical.
    """

    attack: float = 0.0
    release: float = 0.3
    spring_hz: float = 0.0

    def apply(self, signal: np.ndarray, fps: float) -> np.ndarray:
        """One-pole follower; attack 0 jumps on the frame (so accents peak on the beat frame itself)."""
        up = 1.0 if self.attack <= 0 else 1.0 - math.exp(-1.0 / (self.attack * fps))
        down = 0.0 if self.release <= 0 else math.exp(-1.0 / (self.release * fps))
        out = np.empty_like(signal, dtype=np.float64)
        level = 0.0
        for k, value in enumerate(signal):
            level = level + (value - level) * up if value > level else max(value, level * down)
            out[k] = level
        if self.spring_hz > 0:
            out = self._spring(out, fps)
        return out

    def _spring(self, level: np.ndarray, fps: float) -> np.ndarray:
        """Kick a damped oscillator with every rise of `level`: impulse response r^n cos(theta n), so the
        response jumps on the accent frame (peak speed there) and overshoots below rest once or twice."""
        kicks = np.maximum(np.diff(level, prepend=0.0), 0.0)
        r = 0.0 if self.release <= 0 else math.exp(-1.0 / (self.release * fps))
        theta = 2 * math.pi * self.spring_hz / fps
        b1, a1, a2 = -r * math.cos(theta), 2 * r * math.cos(theta), -r * r
        out = np.empty_like(level)
        y1 = y2 = x1 = 0.0
        for k, x in enumerate(kicks):
            y = x + b1 * x1 + a1 * y1 + a2 * y2
            out[k] = y
            x1, y2, y1 = x, y1, y
        return out


@dataclass
class ChannelSpec:
    """One channel of a preset: its gain, which audio source drives it, and its envelope."""

    gain: float = 0.0
    source: str = "energy"
    envelope: Envelope = field(default_factory=Envelope)
    #: Share of the channel that moves even in silence (ambient motion keeps clips from freezing).
    ambient: float = 0.0


def _spec(gain: float, source: str, attack: float = 0.0, release: float = 0.3, ambient: float = 0.0,
          spring_hz: float = 0.0) -> ChannelSpec:
    return ChannelSpec(gain=gain, source=source, envelope=Envelope(attack, release, spring_hz), ambient=ambient)


PRESETS: dict[str, dict[str, ChannelSpec]] = {
    # Subject breathes out on every beat and springs back (follow-through); textures sway with the mids; the
    # foreground layer nudges with the bass.
    "pulse": {
        "pulse": _spec(1.0, "beat", 0.0, 0.25, spring_hz=1.2),
        "sway": _spec(0.45, "mid", 0.05, 0.6, ambient=0.5),
        "parallax": _spec(0.35, "low", 0.0, 0.35, ambient=0.3),
        "shimmer": _spec(0.3, "high", 0.0, 0.12),
    },
    # Foliage / hair / water / fabric motion led by the mids; beats only add a gentle push.
    "sway": {
        "pulse": _spec(0.45, "beat", 0.0, 0.3, spring_hz=1.4),
        "sway": _spec(1.0, "mid", 0.08, 0.8, ambient=0.6),
        "parallax": _spec(0.4, "low", 0.05, 0.5, ambient=0.4),
        "shimmer": _spec(0.3, "high", 0.0, 0.15),
    },
    # A slow camera drift asked for by name, with parallax so it reads as depth, not a flat pan.
    "drift": {
        "pulse": _spec(0.5, "beat", 0.0, 0.3, spring_hz=1.4),
        "sway": _spec(0.45, "mid", 0.05, 0.6, ambient=0.5),
        "parallax": _spec(0.8, "low", 0.1, 0.6, ambient=0.7),
        "drift": _spec(0.35, "energy", 0.5, 1.5, ambient=1.0),
    },
    # Camera shake on hits (the user asked for it), over a living picture.
    "shake": {
        "pulse": _spec(0.7, "beat", 0.0, 0.2, spring_hz=2.0),
        "sway": _spec(0.4, "mid", 0.05, 0.6, ambient=0.4),
        "parallax": _spec(0.3, "low", 0.0, 0.3, ambient=0.3),
        "shake": _spec(0.6, "beat", 0.0, 0.12),
    },
    # Everything on the beat: strong pulses with a bouncy follow-through, downbeat sways, busy textures.
    "dance": {
        "pulse": _spec(1.3, "beat", 0.0, 0.22, spring_hz=1.6),
        "sway": _spec(0.7, "downbeat", 0.0, 0.5, ambient=0.4),
        "parallax": _spec(0.6, "low", 0.0, 0.25, ambient=0.3),
        "shimmer": _spec(0.6, "high", 0.0, 0.1),
    },
    # Gentle and slow: ambient sway and breathing, touched by the beat only lightly.
    "calm": {
        "pulse": _spec(0.45, "beat", 0.0, 0.5, spring_hz=1.0),
        "sway": _spec(0.85, "energy", 0.3, 1.5, ambient=0.8),
        "parallax": _spec(0.35, "low", 0.3, 1.2, ambient=0.6),
    },
    # The camera circles the subject: near and far layers slide against each other on a loop.
    "orbit": {
        "pulse": _spec(0.5, "beat", 0.0, 0.3, spring_hz=1.4),
        "sway": _spec(0.45, "mid", 0.05, 0.6, ambient=0.5),
        "orbit": _spec(1.0, "energy", 0.5, 1.5, ambient=1.0),
    },
}
DEFAULT_PRESET = "pulse"

#: Sources whose channels are accents (a cue marker puts their biggest kick on its frame).
TRANSIENT_SOURCES = frozenset({"beat", "downbeat", "onset", "flux"})
#: A cue's accent, above any beat (sources are 0..1), and the seconds either side of it kept clear of other
#: accents, so the biggest motion of the clip lands exactly on the cue's frame.
CUE_ACCENT = 1.6
CUE_CLEARANCE = 0.4

#: Peak displacement of each channel at gain 1 and intensity 1, as a fraction of the frame's shorter side.
AMPLITUDE = {
    "pulse": 0.035, "sway": 0.010, "parallax": 0.012, "shimmer": 0.0035,
    "push": 0.06, "drift": 0.05, "shake": 0.005, "orbit": 0.02,
}


@dataclass
class MotionSchedule:
    """A preset plus the user's overrides; `channels()` turns audio features into per-frame motion."""

    preset: str = DEFAULT_PRESET
    intensity: float = 1.0
    seed: int = 0
    routing: dict[str, str] = field(default_factory=dict)
    envelopes: dict[str, Envelope] = field(default_factory=dict)
    gains: dict[str, float] = field(default_factory=dict)
    #: Frames (clip time) where the editor put a cue marker ("hit"): the strongest accent of the clip.
    cues: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if any(not isinstance(c, int) or c < 0 for c in self.cues):
            raise BadInputError(f"cue frames must be whole numbers ≥ 0, got {self.cues}")
        if self.preset not in PRESETS:
            raise BadInputError(f"unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        if not (0.0 <= self.intensity <= 4.0) or math.isnan(self.intensity):
            raise BadInputError(f"intensity {self.intensity} is out of range [0, 4]")
        for channel, source in self.routing.items():
            if channel not in CHANNELS:
                raise BadInputError(f"unknown motion channel {channel!r} (choose from {', '.join(CHANNELS)})")
            if source not in SOURCES:
                raise BadInputError(f"unknown audio source {source!r} (choose from {', '.join(SOURCES)})")
        for channel, gain in {**self.gains, **{k: 0.0 for k in self.envelopes}}.items():
            if channel not in CHANNELS:
                raise BadInputError(f"unknown motion channel {channel!r} (choose from {', '.join(CHANNELS)})")
            if not (-4.0 <= float(gain) <= 4.0) or math.isnan(float(gain)):
                raise BadInputError(f"gain {gain} for {channel} is out of range [-4, 4]")

    def specs(self) -> dict[str, ChannelSpec]:
        """The preset's channels with this schedule's overrides applied."""
        out: dict[str, ChannelSpec] = {}
        for name, base in PRESETS[self.preset].items():
            out[name] = ChannelSpec(
                gain=self.gains.get(name, base.gain),
                source=self.routing.get(name, base.source),
                envelope=self.envelopes.get(name, base.envelope),
                ambient=base.ambient,
            )
        for name, gain in self.gains.items():  # channels the preset does not use but the user asked for
            if name not in out:
                out[name] = ChannelSpec(gain=gain, source=self.routing.get(name, "energy"),
                                        envelope=self.envelopes.get(name, Envelope(0.3, 1.0)), ambient=0.5)
        return out

    def channels(self, features: Any | None, frames: int, fps: float) -> dict[str, np.ndarray]:
        """Per-frame channel levels, about [-0.5, 1.5] (springs swing below rest after a hit): audio-driven
        envelope plus ambient motion.

        `features` is a FrameFeatures (or None for no audio). Ambient motion is a slow loop whose period divides
        the clip, so a silent clip loops seamlessly instead of freezing.
        """
        rng = np.random.default_rng(self.seed)
        t = np.arange(frames, dtype=np.float64) / fps
        duration = max(frames / fps, 1e-6)
        cycles = max(1, round(duration / 4.0))  # about one breath every 4 s, a whole number per clip
        out: dict[str, np.ndarray] = {}
        for name, spec in self.specs().items():
            if spec.gain == 0:
                continue
            drive = np.zeros(frames)
            if features is not None:
                src = np.asarray(getattr(features, spec.source), dtype=np.float64)[:frames]
                drive[: len(src)] = src
            if self.cues and spec.source in TRANSIENT_SOURCES:
                drive = cue_drive(drive, self.cues, fps)
            level = spec.envelope.apply(drive, fps)
            phase = rng.uniform(0, 2 * math.pi)
            ambient = 0.5 - 0.5 * np.cos(2 * math.pi * cycles * t / duration + phase)
            silent = features is None or not np.any(drive > 0)
            ambient_share = max(spec.ambient, 0.35 if silent else 0.0)
            out[name] = spec.gain * self.intensity * ((1 - spec.ambient) * level + ambient_share * ambient)
        return out

    def to_json(self) -> dict[str, Any]:
        data = {
            "preset": self.preset,
            "intensity": self.intensity,
            "seed": self.seed,
            "routing": dict(self.routing),
            "envelopes": {k: asdict(v) for k, v in self.envelopes.items()},
            "gains": dict(self.gains),
        }
        if self.cues:  # only when there are some: schedules without cues keep their old JSON (and job ids)
            data["cues"] = list(self.cues)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MotionSchedule:
        return cls(
            preset=data.get("preset", DEFAULT_PRESET),
            intensity=float(data.get("intensity", 1.0)),
            seed=int(data.get("seed", 0)),
            routing=dict(data.get("routing", {})),
            envelopes={k: Envelope(**v) for k, v in data.get("envelopes", {}).items()},
            gains={k: float(v) for k, v in data.get("gains", {}).items()},
            cues=[int(c) for c in data.get("cues", [])],
        )


def cue_drive(drive: np.ndarray, cues: list[int], fps: float) -> np.ndarray:
    """An accent source with each cue's frame the strongest accent and no other accent close to it."""
    out = drive.copy()
    clear = max(1, round(CUE_CLEARANCE * fps))
    top = max(1.0, float(out.max(initial=0.0)))
    for cue in cues:
        if 0 <= cue < out.size:
            out[max(0, cue - clear):cue + clear + 1] = 0.0
    for cue in cues:
        if 0 <= cue < out.size:
            out[cue] = CUE_ACCENT * top
    return out


def parse_routing(text: str | None) -> dict[str, str]:
    """'pulse=low,sway=high' → {'pulse': 'low', 'sway': 'high'} (validated by MotionSchedule)."""
    if not text:
        return {}
    routing: dict[str, str] = {}
    for item in text.split(","):
        if "=" not in item:
            raise BadInputError(f"band routing {item!r} must look like channel=source (e.g. pulse=low)")
        channel, source = (part.strip() for part in item.split("=", 1))
        routing[channel] = source
    return routing
