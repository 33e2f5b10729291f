"""Conforming generated frames to the request, without torch or a model: retime.conform_frames on synthetic
generated clips (a disk that jumps on chosen frames), as the diffusion runtime calls it after generation."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
from stillmotion.engine.backends.diffusion.plan import plan_timeline
from stillmotion.engine.backends.diffusion.retime import conform_frames
from stillmotion.engine.request import RenderRequest


def _generated(count: int, jumps: set[int], size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    """A disk drifting right that jumps on `jumps` frames (motion-energy peaks), at a generation size."""
    w, h = size
    frames, x = [], 20.0
    for j in range(count):
        x += 6.0 if j in jumps else 0.4
        frame = np.full((h, w, 3), 90, np.uint8)
        cv2.circle(frame, (int(round(x % (w - 16) + 8)), h // 2), 8, (250, 250, 250), -1, cv2.LINE_AA)
        frames.append(frame)
    return frames


def _request(frames: int, fps: int, anchor: str = "start") -> RenderRequest:
    return RenderRequest(image="still.png", output="out.mp4", fps=Fraction(fps), frames=frames, width=120,
                         height=80, anchor=anchor)


def test_conform_gives_exactly_the_requested_frames_with_the_still_exact() -> None:
    request = _request(37, 24, anchor="middle")
    plan = plan_timeline(request.frames, float(request.fps), request.anchor_frame(), gen_fps=12.0)
    gen = _generated(plan.total, set())
    still = np.full((80, 120, 3), 200, np.uint8)
    frames, beat_sync = conform_frames(gen, plan, request, {}, None, [], still, None)
    assert len(frames) == 37 and beat_sync is None
    assert all(f.shape == (80, 120, 3) and f.dtype == np.uint8 for f in frames)
    assert np.array_equal(frames[request.anchor_frame()], still)  # exact_anchor: the still itself
    # Anchor correction spreads into neighbours and fades out: far frames stay as generated (resized).
    assert not np.array_equal(frames[0], still)


def test_conform_moves_motion_peaks_onto_beats_and_reports_it() -> None:
    fps = 24
    request = _request(60, fps)
    plan = plan_timeline(request.frames, float(fps), 0, gen_fps=float(fps))
    gen = _generated(plan.total, {6, 18, 30, 42, 54})  # each jump two frames before a beat
    beats = np.array([8, 20, 32, 44, 56]) / fps
    still = gen[0].copy()
    frames, beat_sync = conform_frames(gen, plan, request, {"exact_anchor": False}, beats, [], still, None)
    assert len(frames) == 60
    assert beat_sync is not None and beat_sync["retimed"]
    assert beat_sync["beat_hit_rate_after"] > beat_sync["beat_hit_rate_before"]
    low, high = beat_sync["speed_range"]
    assert 1 / 1.5 - 1e-6 <= low <= high <= 1.5 + 1e-6  # the default speed bound holds
    # Off: the same clip at constant speed, no warp reported as applied.
    _, plain = conform_frames(gen, plan, request, {"exact_anchor": False, "retime": False}, beats, [], still, None)
    assert plain is not None and not plain["retimed"] and plain["speed_range"] == [1.0, 1.0]


def test_conform_pins_a_keyframe_onto_its_downbeat() -> None:
    fps = 24
    request = _request(48, fps)
    plan = plan_timeline(request.frames, float(fps), 0, gen_fps=float(fps))
    gen = _generated(plan.total, set())
    # A keyframe generated at frame 24 (1.0 s at the base speed) whose downbeat is at 0.875 s (output frame 21).
    keyframes = [{"downbeat": 0.875, "index": 24, "strength": 0.4, "time": 1.0}]
    still = cv2.resize(gen[0], (request.width, request.height))  # the job's still is at the request's size
    conform_frames(gen, plan, request, {}, None, keyframes, still, None)
    assert keyframes[0]["frame"] == 21 and "time" not in keyframes[0]


def test_parent_side_of_diffusion_loads_no_torch() -> None:
    """Weights, plan, retime, the backends and the family modules import in the parent without torch."""
    code = (
        "import sys\n"
        "from stillmotion.engine.backends import get_backend\n"
        "import stillmotion.engine.models, stillmotion.engine.backends.diffusion.retime\n"
        "[get_backend(n) for n in ('ltx', 'ltx2', 'svd', 'wan')]\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', "
        "'transformers', 'accelerate'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
