"""The labelled-clip generator (tests/qc_generator.py), a small fixed subset of it through QC, the Beat Alignment
Score, and the procedural engine's presets against the frozen gate. The full dev / fresh evaluation is
bench/bench_qc.py --generated (hundreds of clips; not a test)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import qc_generator as gen
from media_fixtures import PHOTOS as DEMO_STILLS
from media_fixtures import write_click_track
from stillmotion.engine.motion import PRESETS
from stillmotion.engine.qc import QCAccumulator, qc_video
from stillmotion.engine.qc.measures import beat_alignment_score
from stillmotion.engine.render import render_clip
from stillmotion.engine.request import AudioSegment, RenderRequest

#: The fixed subset the fast test scores (dev seeds: the thresholds were calibrated on 0..599).
SUBSET = range(0, 20)


def test_specs_are_seeded_balanced_and_labelled_by_their_parameters() -> None:
    assert gen.clip_spec(41) == gen.clip_spec(41) and gen.clip_spec(41) != gen.clip_spec(42)
    specs = [gen.clip_spec(seed) for seed in range(80)]
    assert {s.kind for s in specs} == set(gen.KINDS)
    assert len({gen.PHOTOS[s.photo][0] for s in specs}) >= 6  # portrait, landscape, product, night, ...
    for s in specs:
        labels = s.labels()
        if s.kind == "frozen":
            assert labels == {"frozen": True, "ken_burns": False, "drift": False, "frozen_r3": True}
        if s.kind in ("local", "local_drift"):
            assert labels["ken_burns"] is False and labels["drift"] is False
            visible = any(gen.visible_area(s.photo, r) >= gen.MIN_VISIBLE_AREA for r in s.regions)
            assert labels["frozen_r3"] is (False if visible or s.camera_speed >= gen.CAMERA_DRIFT_MAX else None)
            changes_pixels = gen.motion_visibility(s) >= gen.MIN_VISIBLE_AREA
            assert labels["frozen"] is (False if (visible and changes_pixels) or s.camera_speed >= gen.CAMERA_DRIFT_MAX
                                        else None)
            assert 0.02 <= sum(r.area for r in s.regions) <= 0.45
            assert all(0.5 <= r.speed <= 8.0 for r in s.regions)
        if s.kind == "local_drift":
            assert s.camera_speed <= gen.CAMERA_DRIFT_MAX
        if s.kind == "camera":
            assert s.camera_speed >= gen.KB_CAMERA_SPEED and labels["ken_burns"] in (True, None, False)
            assert labels["ken_burns"] is (True if s.global_share() >= gen.KB_SHARE else labels["ken_burns"])
        if s.kind == "drift":  # a morph into a near-identical mirror image is ambiguous (docs/qc.md)
            symmetric = s.drift == "morph" and gen.mirror_similarity(s.photo) >= gen.MIRROR_SAME
            assert labels["drift"] is (None if symmetric else True)


def test_blinks_are_separate_events_and_visibility_sees_only_the_motion() -> None:
    """Blinks start ≥ BLINK_GAP apart inside the drawing range (dev 218 drew two 0.05 s apart); a clip's
    visible change is 0 without regions, and the clean render ignores camera, noise and flicker."""
    blinks = [(s, r) for s in map(gen.clip_spec, range(300)) for r in s.regions if r.kind == "blink"]
    assert len(blinks) >= 20
    for s, r in blinks:
        assert all(b - a >= gen.BLINK_GAP - 1e-9 for a, b in zip(r.times, r.times[1:], strict=False))
        assert 0.2 - 1e-9 <= r.times[0] and r.times[-1] <= s.seconds - 0.45 + 1e-9
    still = gen.clip_spec(0)
    assert still.kind == "frozen" and gen.motion_visibility(still) == 0.0
    sway = gen.ClipSpec(seed=1, kind="local", photo="astronaut", fps=12, seconds=1.0, crf=20,
                        regions=[gen.Region("sway", 0.5, 0.4, 0.1, 1.0, 3.0, 0.8, 0.0)])
    noisy = gen.ClipSpec(**{**sway.__dict__, "noise": 5.0, "flicker": 4.0, "camera": "pan", "camera_speed": 0.1})
    assert gen.motion_visibility(sway) == gen.motion_visibility(noisy) > gen.MIN_VISIBLE_AREA


def test_rendered_motion_matches_the_drawn_speed() -> None:
    """A pan drawn at v px @ 256 per frame moves the picture v px @ 256 per frame, at two sizes."""
    spec = next(s for s in map(gen.clip_spec, range(200)) if s.camera == "pan" and s.kind == "camera"
                and not s.regions)
    for width, height in ((256, 144), (640, 360)):
        frames = gen.render_frames(spec, width, height)
        import cv2

        a, b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in (frames[0], frames[1]))
        (dx, dy), _ = cv2.phaseCorrelate(a, b)
        speed = math.hypot(dx, dy) * 256 / min(width, height)
        assert speed == pytest.approx(spec.camera_speed, rel=0.1), (width, speed, spec.camera_speed)


@pytest.fixture(scope="module")
def subset_reports(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    folder = tmp_path_factory.mktemp("qc_generated")
    rows = []
    for seed in SUBSET:
        spec = gen.clip_spec(seed)
        report = qc_video(gen.cached_clip(spec, folder), reference_image=gen.reference_image(spec))
        rows.append((spec, spec.labels(), report))
    return rows


def test_a_fixed_subset_is_judged_right(subset_reports: list[tuple]) -> None:
    """Every gate right on ≥ 85 % of the subset's scored clips (dev accuracy is ≈ 90–98 %, docs/qc.md; the bench
    holds the real targets)."""
    flags = {"frozen": lambda r: r.frozen, "ken_burns": lambda r: r.ken_burns,
             "drift": lambda r: r.identity_drift > r.thresholds.max_identity_drift}
    for gate, flag in flags.items():
        scored = [(spec.name, labels[gate], flag(report)) for spec, labels, report in subset_reports
                  if labels[gate] is not None]
        wrong = [name for name, label, got in scored if label != got]
        assert len(scored) >= 15 and len(wrong) <= 0.15 * len(scored), (gate, wrong)


def test_local_motion_in_a_small_region_is_not_frozen(tmp_path: Path) -> None:
    """The issue's case: on a portrait, one region of ~10 % of the frame sways a few px per frame while the rest
    is still (alone, and under a slow dissolve): not frozen, and not Ken Burns."""
    for drift in ("", "dissolve"):
        spec = gen.ClipSpec(seed=0, kind="local", photo="astronaut", fps=24, seconds=2.5, crf=23, drift=drift,
                            drift_amount=0.3 if drift else 0.0, other="coffee",
                            regions=[gen.Region("sway", 0.5, 0.35, 0.10, 1.0, 3.0, 0.8, 0.3)])
        report = qc_video(gen.cached_clip(spec, tmp_path), reference_image=gen.reference_image(spec))
        assert not report.frozen and not report.ken_burns, (drift, report.region_motion, report.reasons)
        assert report.region_motion > 3 * report.thresholds.dynamic_threshold


def test_beat_alignment_score() -> None:
    assert beat_alignment_score(np.array([10, 20]), np.array([10, 20])) == 1.0
    assert beat_alignment_score(np.array([10]), np.array([13, 40])) == pytest.approx(math.exp(-0.5))
    assert beat_alignment_score(np.array([10]), np.array([])) == 0.0
    assert beat_alignment_score(np.array([]), np.array([3])) is None
    # it sits in the report and its JSON beside AV-Align and the beat-hit rate, with its σ named
    accumulator = QCAccumulator(Fraction(24), beat_times=np.array([0.5, 1.0]), onset_times=np.array([0.5, 1.0]))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (72, 128, 3), dtype=np.uint8)
    for k in range(36):
        accumulator.add(np.roll(base, 2 * (k in (12, 24)) * k // 12, axis=1))
    data = accumulator.finish().to_json()
    assert data["beat_alignment"] is not None and data["beat_alignment_sigma_frames"] == 3.0
    assert {"av_align", "beat_hit_rate"} <= set(data)


@pytest.fixture(scope="module")
def click(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("music") / "click.wav"
    write_click_track(path, 2.0, bpm=120.0)
    return path


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_procedural_preset_passes_the_frozen_gate(tmp_path: Path, click: Path, preset: str) -> None:
    """What the engine makes is motion: every preset on every demo still, first attempt (small, 1 s)."""
    frames = 24
    for name, still in DEMO_STILLS.items():
        out = tmp_path / f"{name}.mp4"
        render_clip(RenderRequest(image=str(still), output=str(out), fps=Fraction(24), frames=frames, width=192,
                                  height=108, audio=[AudioSegment(path=str(click), duration=Fraction(frames, 24))],
                                  preset=preset, qc=False))
        report = qc_video(out)
        assert not report.frozen, (preset, name, report.region_motion, report.reasons)
