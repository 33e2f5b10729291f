"""The QC building blocks on hand-made inputs: AV-Align, beat hits, peaks, thresholds, reports, streaming."""

from __future__ import annotations

import json
import tracemalloc
from fractions import Fraction

import cv2
import numpy as np
import pytest
import qc_fixtures as fx
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.qc import ALL_GATES, QCAccumulator, QCReport, QCThresholds, measures


def test_av_align_is_tempotokens_iou():
    fps = 24.0
    # audio 0.5 matches video 0.52 (within one frame); audio 1.0 has no video peak near; video 2.0 unmatched
    assert measures.av_align(np.array([0.5, 1.0]), np.array([0.52, 2.0]), fps) == pytest.approx(1 / 3)
    # exactly one frame apart is not a match (TempoTokens uses a strict inequality)
    assert measures.av_align(np.array([1.0]), np.array([1.0 + 1 / fps]), fps) == 0.0
    assert measures.av_align(np.array([0.25, 0.75]), np.array([0.25, 0.75]), fps) == 1.0
    assert measures.av_align(np.array([]), np.array([]), fps) is None
    assert measures.av_align(np.array([0.5]), np.array([]), fps) == 0.0


def test_local_maxima_and_prominence():
    curve = np.array([0, 1, 0, 0.2, 0.18, 0.21, 0, 3, 3, 0])
    assert measures.local_maxima(curve).tolist() == [1, 3, 5]  # strict: the plateau at 7-8 is not a peak
    assert measures.prominence(curve, 3) == pytest.approx(0.02)
    assert measures.prominence(curve, 5) == pytest.approx(0.21)
    assert measures.local_maxima(curve, floor=0.5).tolist() == [1]
    assert measures.local_maxima(curve, min_prominence=0.1).tolist() == [1, 5]


def test_beat_hits_within_one_frame_only():
    energy = np.full(60, 0.1)
    beats = np.array([6, 18, 30, 42, 54])
    for beat, offset in zip(beats, [0, 1, -1, 2, 4], strict=True):
        energy[beat + offset] = 1.5
    hits = measures.beat_hits(energy, beats, floor=0.05, contrast=1.5)
    assert hits.tolist() == [True, True, True, False, False]
    # steady motion has no peaks: no beat is "hit" by it
    assert not measures.beat_hits(np.full(60, 2.0), beats, floor=0.05, contrast=1.5).any()
    # tiny wiggles below the noise floor do not count either
    assert not measures.beat_hits(np.where(np.arange(60) % 12 == 6, 0.04, 0.0), beats, 0.05, 1.5).any()


def test_global_fit_recovers_a_similarity():
    sampler = measures.GridSampler(144, 256)
    ys, xs = np.mgrid[0:144, 0:256].astype(np.float32)
    angle, scale, tx, ty = np.radians(2.0), 1.03, 1.5, -0.8
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    flow = np.dstack([a * xs - b * ys + tx - xs, b * xs + a * ys + ty - ys]).astype(np.float32)
    fit = sampler.fit(flow)
    assert fit.valid and fit.explained > 0.999
    assert fit.matrix == pytest.approx(np.array([[a, -b, tx], [b, a, ty]]), abs=1e-3)
    # the same field with a region moving on its own: the fit ignores it, and the region's extra energy is
    # what stays unexplained (measured inside the 12-px edge band, 8 % of the short side)
    flow[40:80, 100:160] += (6.0, 0.0)
    local = sampler.fit(flow)
    assert local.matrix == pytest.approx(fit.matrix, abs=1e-3)
    unexplained = 6.0**2 * (40 * 60) / ((144 - 24) * (256 - 24))
    assert local.explained == pytest.approx(1 - unexplained / local.total_energy, abs=0.01)


def test_thresholds_json_round_trip_and_validation():
    t = QCThresholds(max_global_motion_share=0.8, gates=("frozen", "sync"))
    data = json.loads(json.dumps(t.to_json()))
    assert QCThresholds.from_json(data) == t
    assert QCThresholds.from_json({"gates": "drift, frozen"}).gates == ("frozen", "drift")
    assert QCThresholds.from_json({}).gates == ALL_GATES
    assert QCThresholds.from_json({"gates": []}).gates == ()
    with pytest.raises(BadInputError, match="unknown QC threshold 'max_drift'"):
        QCThresholds.from_json({"max_drift": 0.2})
    with pytest.raises(BadInputError, match="unknown QC gate 'blur'"):
        QCThresholds(gates=("blur",))
    with pytest.raises(BadInputError, match="≥ 0"):
        QCThresholds(max_flicker=-1)
    with pytest.raises(BadInputError, match="must be a number"):
        QCThresholds.from_json({"max_flicker": "high"})


def _run(name: str, thresholds: QCThresholds | None = None, **kwargs) -> QCReport:
    accumulator = QCAccumulator(fx.FPS, thresholds=thresholds, **kwargs)
    for frame in fx.frames(name):
        accumulator.add(frame)
    return accumulator.finish()


def test_report_json_is_strict_json_and_round_trips():
    report = _run("beat_on", beat_times=fx.BEATS, onset_times=fx.BEATS, reference=fx.reference())
    data = report.to_json()
    text = json.dumps(data, allow_nan=False)
    for key in ("frozen", "dynamic_degree", "ken_burns", "global_motion_share", "identity_drift", "av_align",
                "beat_hit_rate", "verdict", "reasons", "flicker", "jitter", "score"):
        assert key in data
    assert len(data["curves"]["motion_energy"]) == report.frames == 60
    assert data["curves"]["drift_frames"][0] == 0 and data["curves"]["drift_frames"][-1] == 59
    back = QCReport.from_json(json.loads(text))
    assert back.to_json() == data
    assert "curves" not in report.to_json(curves=False)


def test_score_prefers_passing_and_wider_margins():
    good = _run("local")
    frozen = _run("static")
    panned = _run("pan")
    assert good.verdict == "pass" and frozen.verdict == "fail" and panned.verdict == "fail"
    assert good.score() > max(frozen.score(), panned.score())
    assert int(good.score()) == len(good.gate_margins())  # every gate passed


def test_ken_burns_margin_agrees_with_the_gate_when_the_camera_is_too_slow_to_see():
    """The gate fails only for a high global share AND a visible camera speed; its margin says so (a slow,
    frame-wide drift passes, and its margin is the camera's distance below the speed line, not the share's)."""
    from dataclasses import replace

    panned = _run("pan")
    t = panned.thresholds
    assert panned.ken_burns and panned.gate_margins()["ken_burns"] < 0
    slow = replace(panned, camera_speed=0.5 * t.min_camera_speed, ken_burns=False)
    assert slow.global_motion_share > t.max_global_motion_share
    assert slow.gate_margins()["ken_burns"] == pytest.approx(0.5)
    for report in (panned, slow):
        assert (report.gate_margins()["ken_burns"] < 0) == report.ken_burns


def test_disabled_gates_are_measured_but_never_fail():
    report = _run("static", thresholds=QCThresholds(gates=("drift",)))
    assert report.frozen and report.verdict == "pass" and report.reasons == []
    failing = _run("static", thresholds=QCThresholds.from_json({"gates": ["frozen"]}))
    assert failing.verdict == "fail" and failing.reasons[0].startswith("frozen:")


def test_full_hd_frames_are_analysed_small():
    accumulator = QCAccumulator(Fraction(30000, 1001))
    assert accumulator.interval == 4  # 29.97 fps sampled every 4th frame ≈ 7.5 fps
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[::7, ::5] = 200
    for _ in range(16):  # ≥ 0.5 s, long enough to be judged frozen
        accumulator.add(frame)
    report = accumulator.finish()
    assert report.analysis_size == (240, 135)
    assert report.frozen and report.frames == 16


def test_memory_does_not_grow_with_the_clip():
    accumulator = QCAccumulator(fx.FPS, reference=fx.reference())
    clip = list(fx.frames("local", seconds=1.0))
    for frame in clip:
        accumulator.add(frame)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(4):
        for frame in clip:
            accumulator.add(frame)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    frame_bytes = clip[0].nbytes
    assert grown < frame_bytes  # 96 more frames kept less than one frame's worth of memory
    assert accumulator.finish().frames == 24 * 5


def test_short_and_odd_inputs():
    one = QCAccumulator(fx.FPS)
    one.add(fx.reference())
    report = one.finish()
    assert report.verdict == "pass" and not report.frozen
    assert any(s.startswith("frozen:") for s in report.skipped)
    two = QCAccumulator(fx.FPS, beat_times=np.array([5.0]))  # beat after the clip's end
    for frame in list(fx.frames("pan"))[:2]:
        two.add(frame)
    short = two.finish()
    assert short.sampled_frames.tolist() == [1] and short.beat_hit_rate is None
    assert "sync: no beats inside the clip" in short.skipped
    with pytest.raises(BadInputError, match="no frames"):
        QCAccumulator(fx.FPS).finish()
    accumulator = QCAccumulator(fx.FPS)
    with pytest.raises(ValueError, match="uint8"):
        accumulator.add(np.zeros((192, 256, 3), np.float32))
    accumulator.add(np.zeros((192, 256, 3), np.uint8))
    with pytest.raises(ValueError, match="started at"):
        accumulator.add(np.zeros((100, 256, 3), np.uint8))
    accumulator.finish()
    with pytest.raises(RuntimeError):
        accumulator.add(np.zeros((192, 256, 3), np.uint8))


def test_read_ahead_passes_frames_in_order_and_reraises_decoder_errors():
    from stillmotion.engine.qc.accumulator import _read_ahead

    def decoder():
        for i in range(20):
            yield np.full((2, 2, 3), i, np.uint8)
        raise BadInputError("clip.mp4 is truncated or corrupt")

    seen = []
    with pytest.raises(BadInputError, match="truncated"):
        for frame in _read_ahead(decoder(), depth=3):
            seen.append(int(frame[0, 0, 0]))
    assert seen == list(range(20))
    # a consumer that stops early does not leave the decoding thread hanging
    early = _read_ahead((np.zeros((2, 2, 3), np.uint8) for _ in range(100)), depth=2)
    next(early)
    early.close()


def test_tiny_frames_are_enlarged_not_refused():
    accumulator = QCAccumulator(fx.FPS, reference=np.full((2, 2, 3), 90, np.uint8))
    for k in range(14):  # ≥ 0.5 s, long enough to be judged frozen
        accumulator.add(np.full((2, 2, 3), 90 + (k % 2), np.uint8))
    report = accumulator.finish()
    assert report.analysis_size == (32, 32) and report.frozen and report.identity_drift < 0.3


def test_clips_too_short_to_judge_are_not_called_frozen():
    accumulator = QCAccumulator(fx.FPS)
    for _ in range(6):  # 0.25 s of a still picture
        accumulator.add(np.full((64, 64, 3), 90, np.uint8))
    report = accumulator.finish()
    assert not report.frozen and any(s.startswith("frozen:") for s in report.skipped)


def test_large_frames_are_averaged_over_two_rows_per_block():
    """The fast downscale (2 rows of each 8x8 block at 1080p) stays within a level or two of a full area
    average on a real photo; odd factors keep the full area average."""
    import cv2

    frame = fx.reference(1920, 1080)
    fast = measures.downscale(frame, 8).astype(int)
    full = cv2.resize(frame, (240, 135), interpolation=cv2.INTER_AREA).astype(int)
    assert fast.shape == full.shape == (135, 240, 3)
    assert np.abs(fast - full).mean() < 1.5
    odd = fx.reference(640, 480)
    assert np.array_equal(measures.downscale(odd, 3),
                          cv2.resize(odd[:, :639], (213, 160), interpolation=cv2.INTER_AREA))


def test_a_still_clip_matches_its_own_full_size_reference_and_opencv_threads_are_restored():
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        still = fx.reference(1920, 1080)
        accumulator = QCAccumulator(fx.FPS, reference=still)
        for _ in range(13):
            accumulator.add(still)
            assert cv2.getNumThreads() == 2  # QC runs OpenCV on one thread only inside add()
        report = accumulator.finish()
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(previous)
    # the reference is downscaled exactly like the frames, so a still clip is identical to it
    assert report.identity_drift_to_reference == pytest.approx(0.0, abs=1e-6)
    assert report.drift_frames.tolist() == [0, 12]  # 2 drift measurements a second at 24 fps, and the last frame


def test_region_motion_counts_missing_pixels_of_the_region_as_still():
    """Round 5: a mask smaller than 1 % of the frame is not a 1-% region moving at its pixels' speed."""
    flow = np.zeros((144, 256, 2), np.float32)
    flow[40:100, 60:180, 0] = 2.0  # 7200 px (19.5 % of the frame) moving 2 px one way
    everywhere = np.zeros((144, 256), bool)
    everywhere[40:100, 60:180] = True
    assert measures.region_motion(flow, everywhere) == pytest.approx(2.0, rel=1e-3)
    tiny = np.zeros((144, 256), bool)
    tiny[70, 100:120] = True  # 20 flow pixels, 5 % of the 1-% target (368 px)
    assert measures.region_motion(flow, tiny) == pytest.approx(2.0 * 20 / int(144 * 256 * 0.01), rel=1e-3)
    assert measures.region_motion(flow, np.zeros((144, 256), bool)) == 0.0


def test_visible_change_is_measured_in_the_original_contrast():
    rng = np.random.default_rng(3)
    first = rng.integers(100, 140, (144, 256)).astype(np.uint8)
    first = cv2.GaussianBlur(first, (0, 0), 2.0)
    second = first.copy()
    second[50:80, 100:140] = np.clip(second[50:80, 100:140].astype(int) + 12, 0, 255).astype(np.uint8)
    ys, xs = np.mgrid[0:144, 0:256].astype(np.float32)
    still = np.zeros((144, 256, 2), np.float32)
    _, visible = measures.explained_by_flow(first, second, still, (xs, ys))
    assert 0.01 < visible < 0.05  # the 12-level patch (3.3 % of the frame, softened at its edges by the window)
    _, stretched = measures.explained_by_flow(first, second, still, (xs, ys), gain=2.0)
    assert stretched == 0.0  # the same numbers after a 2x contrast stretch are 6 levels of the picture
    _, none = measures.explained_by_flow(first, first.copy(), still, (xs, ys))
    assert none == 0.0
