"""What QC found for one clip: the measures, the gate verdict with its reasons, the curves, and one score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .thresholds import QCThresholds


def _num(value: float | None, digits: int = 4) -> float | None:
    """JSON-safe rounded float (NaN and inf become None)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _curve(values: np.ndarray, digits: int = 4) -> list[float | None]:
    return [_num(v, digits) for v in np.asarray(values, dtype=float)]


def _array(values: Any) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in (values or [])], dtype=float)


@dataclass
class QCReport:
    """The result of QC on one clip. Flags are always computed; only enabled gates decide `verdict`."""

    frozen: bool
    dynamic_degree: float
    ken_burns: bool
    global_motion_share: float
    identity_drift: float
    av_align: float | None
    beat_hit_rate: float | None
    flicker: float
    jitter: float
    verdict: str
    reasons: list[str]
    #: Mean optical-flow magnitude per frame (px @ 256 per frame); [i] is the motion from frame i-1 to i,
    #: [0] repeats [1] as in TempoTokens.
    motion_energy: np.ndarray
    #: Identity drift at the frames in `drift_frames` (worst of: vs first frame, vs reference).
    drift_curve: np.ndarray
    drift_frames: np.ndarray
    #: Share of flow energy explained by one global transform, per sampled pair ending at `sampled_frames`
    #: (NaN where the pair was too still to tell).
    global_share_curve: np.ndarray
    #: Mean of the top 5 % flow magnitudes per sampled pair (px @ 256), the dynamic-degree statistic.
    sampled_motion: np.ndarray
    sampled_frames: np.ndarray
    fps: Fraction
    frames: int
    thresholds: QCThresholds
    identity_drift_to_first: float = 0.0
    identity_drift_to_reference: float | None = None
    flickering: bool = False
    sync_failed: bool = False
    beat_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    onset_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beat_hit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    video_peak_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    skipped: list[str] = field(default_factory=list)
    #: Region-aware frozen measure (px @ 256 per frame): speed of the fastest coherent 1 % of the frame, per
    #: sampled pair; `region_motion` is the clip's second-highest pair (one glitch pair is not motion).
    region_motion: float = 0.0
    region_motion_curve: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Share of the frame that visibly changes (≥ 8 levels, locally averaged) per sampled pair (round 5).
    visible_change_curve: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: The frozen gate's evidence: per sampled pair the larger of region motion / `dynamic_threshold` and visible
    #: change / `min_visible_change`; the clip's second-highest pair (1 = the line, above = moving).
    motion_evidence: float = 0.0
    #: Speed of the fitted camera motion (pan + zoom/rotation at the corners, px @ 256 per frame), median over
    #: sampled pairs; the ken_burns gate needs it above `min_camera_speed`.
    camera_speed: float = 0.0
    camera_speed_curve: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Beat Alignment Score: mean over beats of exp(-d²/2σ²), d = frames from the beat to the nearest motion peak.
    beat_alignment: float | None = None
    beat_alignment_sigma: float = 3.0
    analysis_size: tuple[int, int] = (0, 0)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def gate_margins(self) -> dict[str, float]:
        """Signed distance of each enabled, measurable gate from its threshold, relative to the threshold.

        Positive passes, negative fails; 1.0 means "a whole threshold away on the good side".
        """
        t = self.thresholds
        margins: dict[str, float] = {}

        def rel(good_minus_bad: float, scale: float) -> float:
            return good_minus_bad / max(scale, 0.05)

        skipped = {s.split(":", 1)[0] for s in self.skipped}
        if t.enabled("frozen") and "frozen" not in skipped:
            margins["frozen"] = self.motion_evidence - 1.0
        if t.enabled("ken_burns") and "ken_burns" not in skipped:
            # the gate fails only when the share is too high AND the camera moves fast enough to see: it
            # passes by whichever of the two is further on the good side
            margins["ken_burns"] = max(rel(t.max_global_motion_share - self.global_motion_share,
                                           t.max_global_motion_share),
                                       rel(t.min_camera_speed - self.camera_speed, t.min_camera_speed))
        if t.enabled("drift") and "drift" not in skipped:
            margins["drift"] = rel(t.max_identity_drift - self.identity_drift, t.max_identity_drift)
        if t.enabled("sync") and self.beat_hit_rate is not None:
            margin = rel(self.beat_hit_rate - t.min_beat_hit_rate, t.min_beat_hit_rate)
            if self.av_align is not None and t.min_av_align > 0:
                margin = min(margin, rel(self.av_align - t.min_av_align, t.min_av_align))
            margins["sync"] = margin
        if t.enabled("flicker") and "flicker" not in skipped:
            margins["flicker"] = rel(t.max_flicker - self.flicker, t.max_flicker)
        return margins

    def score(self) -> float:
        """One number to pick the best of several attempts: more gates passed always wins, then wider margins.

        score = gates passed + 0.999 × mean over gates of (clip(margin, -1, 1) + 1) / 2.
        """
        margins = self.gate_margins()
        if not margins:
            return 0.0
        passed = sum(1 for name, m in margins.items() if m >= 0 and not self._gate_failed(name))
        closeness = float(np.mean([(min(1.0, max(-1.0, m)) + 1.0) / 2.0 for m in margins.values()]))
        return passed + 0.999 * closeness

    def _gate_failed(self, name: str) -> bool:
        return any(reason.startswith(f"{name}:") for reason in self.reasons)

    def to_json(self, curves: bool = True) -> dict[str, Any]:
        """JSON for the CLI, the job store and the clip's metadata (`curves=False` keeps it small)."""
        data: dict[str, Any] = {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "skipped": list(self.skipped),
            "score": _num(self.score()),
            "frozen": bool(self.frozen),
            "dynamic_degree": _num(self.dynamic_degree),
            "region_motion": _num(self.region_motion),
            "motion_evidence": _num(self.motion_evidence),
            "ken_burns": bool(self.ken_burns),
            "global_motion_share": _num(self.global_motion_share),
            "camera_speed": _num(self.camera_speed),
            "identity_drift": _num(self.identity_drift),
            "identity_drift_to_first": _num(self.identity_drift_to_first),
            "identity_drift_to_reference": _num(self.identity_drift_to_reference),
            "av_align": _num(self.av_align),
            "beat_hit_rate": _num(self.beat_hit_rate),
            "beat_alignment": _num(self.beat_alignment),
            "beat_alignment_sigma_frames": _num(self.beat_alignment_sigma),
            "flicker": _num(self.flicker),
            "flickering": bool(self.flickering),
            "sync_failed": bool(self.sync_failed),
            "jitter": _num(self.jitter),
            "frames": self.frames,
            "fps": str(self.fps),
            "analysis_size": list(self.analysis_size),
            "seconds": _num(self.seconds),
            "thresholds": self.thresholds.to_json(),
        }
        if curves:
            data["curves"] = {
                "motion_energy": _curve(self.motion_energy),
                "drift_frames": [int(f) for f in self.drift_frames],
                "drift": _curve(self.drift_curve),
                "sampled_frames": [int(f) for f in self.sampled_frames],
                "global_share": _curve(self.global_share_curve),
                "sampled_motion": _curve(self.sampled_motion),
                "region_motion": _curve(self.region_motion_curve),
                "visible_change": _curve(self.visible_change_curve, 6),
                "camera_speed": _curve(self.camera_speed_curve),
                "video_peak_frames": [int(f) for f in self.video_peak_frames],
                "beat_times": _curve(self.beat_times, 5),
                "beat_hit": [bool(h) for h in self.beat_hit],
                "onset_times": _curve(self.onset_times, 5),
            }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QCReport:
        """Rebuild a report written by `to_json` (curves come back empty when they were left out)."""
        curves = data.get("curves", {})
        return cls(
            frozen=bool(data["frozen"]),
            dynamic_degree=float(data["dynamic_degree"]),
            ken_burns=bool(data["ken_burns"]),
            global_motion_share=float(data["global_motion_share"]),
            identity_drift=float(data["identity_drift"]),
            av_align=data.get("av_align"),
            beat_hit_rate=data.get("beat_hit_rate"),
            flicker=float(data.get("flicker") or 0.0),
            jitter=float(data.get("jitter") or 0.0),
            verdict=data["verdict"],
            reasons=list(data.get("reasons", [])),
            motion_energy=_array(curves.get("motion_energy")),
            drift_curve=_array(curves.get("drift")),
            drift_frames=np.asarray(curves.get("drift_frames", []), dtype=int),
            global_share_curve=_array(curves.get("global_share")),
            sampled_motion=_array(curves.get("sampled_motion")),
            sampled_frames=np.asarray(curves.get("sampled_frames", []), dtype=int),
            fps=Fraction(data["fps"]),
            frames=int(data["frames"]),
            thresholds=QCThresholds.from_json(data.get("thresholds", {})),
            identity_drift_to_first=float(data.get("identity_drift_to_first") or 0.0),
            identity_drift_to_reference=data.get("identity_drift_to_reference"),
            flickering=bool(data.get("flickering", False)),
            sync_failed=bool(data.get("sync_failed", False)),
            beat_times=_array(curves.get("beat_times")),
            onset_times=_array(curves.get("onset_times")),
            beat_hit=np.asarray(curves.get("beat_hit", []), dtype=bool),
            video_peak_frames=np.asarray(curves.get("video_peak_frames", []), dtype=int),
            skipped=list(data.get("skipped", [])),
            analysis_size=tuple(data.get("analysis_size", (0, 0))),
            seconds=float(data.get("seconds") or 0.0),
            region_motion=float(data.get("region_motion") or 0.0),
            region_motion_curve=_array(curves.get("region_motion")),
            visible_change_curve=_array(curves.get("visible_change")),
            motion_evidence=float(data.get("motion_evidence") or 0.0),
            camera_speed=float(data.get("camera_speed") or 0.0),
            camera_speed_curve=_array(curves.get("camera_speed")),
            beat_alignment=data.get("beat_alignment"),
            beat_alignment_sigma=float(data.get("beat_alignment_sigma_frames") or 3.0),
        )
