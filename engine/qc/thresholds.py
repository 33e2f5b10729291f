"""QC thresholds: documented defaults (see docs/qc.md for the margin each has on the labelled set), user-tunable.

Pixel quantities are in "pixels at a 256-pixel short side" so one threshold holds for any resolution.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import BadInputError

#: Every gate QC knows, in report order.
ALL_GATES = ("frozen", "ken_burns", "drift", "sync", "flicker")


@dataclass
class QCThresholds:
    """When a clip fails. A gate not in `gates` is measured and reported but never fails the clip."""

    #: Rate at which frame pairs are sampled for dynamic degree, global motion and drift (VBench: ≈ 8 fps).
    sample_fps: float = 8.0
    #: A sampled pair "moves" when its region motion (the fastest coherent 1 % of the frame, locally averaged
    #: flow, px @ 256 per frame) exceeds this. Calibrated on the generated set's dev seeds (docs/qc.md).
    dynamic_threshold: float = 0.025  # round 5: middle of the dev plateau 0.015-0.035 with the changes below
    #: ... or when at least this share of the frame changes visibly (≥ 8 levels of the original picture, locally
    #: averaged, brightness-matched; 0: off). 0.05 % is ≈ 18 px at 256x144 (round 5, docs/qc.md).
    min_visible_change: float = 0.0005
    #: frozen when fewer than this many sampled pairs move (one glitch pair, e.g. a keyframe, is no motion) ...
    min_moving_pairs: float = 2.0
    #: ... or when fewer than this share of sampled pairs move (0: off; a blink twice in 3 s is motion).
    min_dynamic_degree: float = 0.0
    #: ken_burns when more than this share of the flow energy is one pan / zoom / rotation of the frame.
    max_global_motion_share: float = 0.67  # middle of the dev plateau 0.64-0.70 (round 2)
    #: ... and only when the fitted camera moves at least this fast (px @ 256 per frame at the corners): a slower
    #: drift under local motion is not Ken Burns (docs/qc.md, "Generated set").
    min_camera_speed: float = 0.27
    #: Below this mean flow (px @ 256 per sampled pair) a pair is too still to say what kind of motion it has.
    min_motion_for_share: float = 0.25
    #: drift when the worst identity drift (0 = none, 1 = unrelated picture) exceeds this.
    max_identity_drift: float = 0.5
    #: sync fails when fewer than this share of the clip's beats have a motion peak within ±1 frame.
    min_beat_hit_rate: float = 0.5
    #: sync also fails when AV-Align (onsets vs motion peaks, IoU) is below this (0 disables).
    min_av_align: float = 0.0
    #: σ of the Beat Alignment Score, in frames (σ² = 9 frames², as in the music-to-dance literature).
    beat_alignment_sigma: float = 3.0
    #: A motion-energy peak counts only above this (px @ 256 per frame): below it is encoder noise.
    peak_floor: float = 0.05
    #: ... and only when it is this many times the median energy around the beat.
    peak_contrast: float = 1.5
    #: flicker when the mean frame-to-frame luminance jump not explained by a smooth trend exceeds this
    #: (8-bit levels).
    max_flicker: float = 1.5
    gates: tuple[str, ...] = field(default_factory=lambda: ALL_GATES)

    def __post_init__(self) -> None:
        self.gates = tuple(self.gates)
        unknown = [g for g in self.gates if g not in ALL_GATES]
        if unknown:
            raise BadInputError(f"unknown QC gate {unknown[0]!r} (gates: {', '.join(ALL_GATES)})")
        for f in fields(self):
            if f.name == "gates":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise BadInputError(f"QC threshold {f.name} must be a number, got {value!r}")
            if value < 0:
                raise BadInputError(f"QC threshold {f.name} must be ≥ 0, got {value}")
            setattr(self, f.name, float(value))
        if self.sample_fps <= 0:
            raise BadInputError("QC threshold sample_fps must be > 0")

    def enabled(self, gate: str) -> bool:
        return gate in self.gates

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["gates"] = list(self.gates)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QCThresholds:
        """Build from a (possibly partial) dict; unknown keys are an error so typos do not pass silently."""
        if not isinstance(data, dict):
            raise BadInputError("QC thresholds must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInputError(f"unknown QC threshold {unknown[0]!r} (known: {', '.join(sorted(known))})")
        values = dict(data)
        if "gates" in values:
            gates = values["gates"]
            if isinstance(gates, str):
                gates = [g.strip() for g in gates.split(",") if g.strip()]
            if not isinstance(gates, list | tuple | set):
                raise BadInputError("QC gates must be a list of gate names")
            values["gates"] = tuple(g for g in ALL_GATES if g in set(gates)) + tuple(
                g for g in gates if g not in ALL_GATES)
        return cls(**values)

    @classmethod
    def from_overrides(cls, gates: str | None = None, overrides: list[str] | None = None,
                       file: str | None = None) -> QCThresholds:
        """Defaults, then a JSON file, then NAME=VALUE overrides, then a comma-separated gate list ('none' turns
        every gate off) — what the command-line options --gates / --threshold / --thresholds say."""
        data: dict[str, Any] = {}
        if file:
            try:
                data = json.loads(Path(file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadInputError(f"cannot read thresholds {file}: {exc}") from None
            if not isinstance(data, dict):
                raise BadInputError(f"thresholds {file} must hold a JSON object")
        for item in overrides or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise BadInputError(f"--threshold {item!r} must look like NAME=VALUE")
            try:
                data[name.strip()] = float(value)
            except ValueError:
                raise BadInputError(f"--threshold {item!r}: {value!r} is not a number") from None
        if gates is not None:
            names = [g.strip() for g in gates.split(",") if g.strip()]
            data["gates"] = [] if names == ["none"] else names
        return cls.from_json(data)
