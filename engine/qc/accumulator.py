"""Streaming QC: frames go in one at a time as they are encoded, a `QCReport` comes out at the end.

Memory is constant in the clip's length (a handful of analysis-size frames plus a few floats per frame). Per
frame the cost is one area downscale and one DIS flow at ≈256 px; every 1/8 s (VBench's sampling) one more flow
for dynamic degree and global motion; every 1/2 s two registrations for identity drift (≈ 1.7 ms a 1080p frame in
all, on one thread: docs/qc.md, "Speed").
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadInputError
from ..opencv_threads import single_threaded
from ..video import VideoInfo, read_frames
from . import measures
from .report import QCReport
from .thresholds import QCThresholds

#: Pixel unit of every reported flow quantity: pixels at a 256-pixel short side.
UNIT_SHORT_SIDE = 256.0
#: Analysis frames are at least this big on the short side (tiny clips are enlarged).
MIN_ANALYSIS_SIDE = 32
#: Rate at which identity drift is measured: it builds up over seconds, and the last frame is always measured
#: too. Two registrations per measurement cost ≈ 4 ms at 1080p, so 2 per second (was 4) halves drift's share.
DRIFT_FPS = 2.0

#: Shorter clips are not judged frozen: motion eases out of the anchor frame, and a few 1/8-s steps are no
#: evidence either way (a 4-frame clip has none).
MIN_SECONDS_FOR_FROZEN = 0.5

#: Run QC's OpenCV calls on one thread. At analysis size OpenCV's thread pool buys little wall time for twice the
#: CPU (DIS ultrafast: 0.21 ms wall / 0.41 ms CPU on two threads, 0.28 / 0.28 on one), and in a render the
#: other core belongs to the renderer and the encoder (a render holds the same setting for its whole frame loop,
#: so these blocks nest inside it and switch nothing).
SINGLE_THREADED = True


def _opencv_for_qc() -> contextlib.AbstractContextManager[None]:
    return single_threaded() if SINGLE_THREADED else contextlib.nullcontext()


def _second_highest(values: np.ndarray) -> float:
    """The clip's second-highest sampled pair (the only one when there is one, 0 with none): one glitch pair
    (a keyframe, a dropped frame) is not motion."""
    return float(np.sort(values)[-2]) if values.size >= 2 else float(values.max(initial=0.0))


def _times(values: np.ndarray | list[float] | None) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=float).ravel()
    return np.sort(array[np.isfinite(array)])


class QCAccumulator:
    """Measures a clip while it streams: call `add(frame)` per frame in order, then `finish()` once."""

    def __init__(self, fps: Fraction, reference: np.ndarray | None = None, beat_times: np.ndarray | None = None,
                 onset_times: np.ndarray | None = None, thresholds: QCThresholds | None = None,
                 analysis_side: int = 256) -> None:
        self.fps = Fraction(fps)
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if analysis_side < 32:
            raise ValueError(f"analysis_side must be ≥ 32, got {analysis_side}")
        self.thresholds = thresholds or QCThresholds()
        self.analysis_side = int(analysis_side)
        self.beat_times = _times(beat_times)
        self.onset_times = _times(onset_times)
        if reference is not None:
            reference = np.asarray(reference)
            if reference.ndim == 2:
                reference = np.repeat(reference[..., None], 3, axis=2)
            if reference.ndim != 3 or reference.shape[2] < 3 or reference.dtype != np.uint8:
                raise ValueError(f"reference must be HxWx3 uint8 RGB, got {reference.shape} {reference.dtype}")
            reference = reference[..., :3]
        self._reference_full = reference
        #: Pairs are sampled every `interval` frames so they are ≈ 1/sample_fps apart (VBench: 8 fps).
        self.interval = max(1, round(float(self.fps) / self.thresholds.sample_fps))
        self._flow = measures.make_flow()
        self._pair_flow = measures.make_flow(fast=True)
        #: Drift changes slowly: it is measured every `drift_interval` frames (≈ DRIFT_FPS).
        self.drift_interval = self.interval * max(1, round(self.thresholds.sample_fps / DRIFT_FPS))
        self._count = 0
        self._finished = False
        self._elapsed = 0.0
        # per frame
        self._energy: list[float] = []
        self._luma: list[float] = []
        self._global_motion: list[np.ndarray] = []
        # per sampled pair
        self._sampled_frames: list[int] = []
        self._sampled_motion: list[float] = []
        self._region_motion: list[float] = []
        self._visible_change: list[float] = []
        self._camera_speed: list[float] = []
        self._share: list[float] = []
        self._share_total = 0.0
        self._share_residual = 0.0
        # drift
        self._drift_frames: list[int] = []
        self._drift_first: list[float] = []
        self._drift_reference: list[float] = []

    # ----------------------------------------------------------------------------------------------- streaming
    def add(self, frame: np.ndarray) -> None:
        """Measure one HxWx3 uint8 RGB frame (any size; the first frame fixes the size)."""
        if self._finished:
            raise RuntimeError("QCAccumulator.add() after finish()")
        started = time.perf_counter()
        if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {frame.shape} {frame.dtype}")
        if self._count > 0 and frame.shape[:2] != self._full_shape:
            raise ValueError(f"frame {self._count} is {frame.shape[:2]}, the clip started at {self._full_shape}")
        with _opencv_for_qc():
            self._add(frame)
        self._count += 1
        self._elapsed += time.perf_counter() - started

    def _add(self, frame: np.ndarray) -> None:
        if self._count == 0:
            self._start(frame)
        small = self._shrink(frame[..., :3])
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        index = self._count
        self._luma.append(float(cv2.mean(gray)[0]))
        if index == 0:
            self._first_small, self._first_gray = small, gray
            self._last_sampled_gray = gray
            self._last_sampled_index = 0
            self._first_meter = measures.DriftMeter(small, self._sampler, self._flow)
            self._measure_drift(0, small, gray)
        else:
            flow = self._pair_flow.calc(self._prev_gray, gray, None)
            self._energy.append(float(cv2.mean(measures.flow_magnitude(flow))[0]) * self._unit)
            matrix = self._sampler.fit_matrix(flow)  # jitter needs the camera motion only, not what it explains
            self._global_motion.append(self._sampler.motion_vector(matrix) * self._unit)
            if index % self.interval == 0:
                self._sampled_pair(index, self._last_sampled_gray, gray)
                if index % self.drift_interval == 0:
                    self._measure_drift(index, small, gray)
                self._last_sampled_gray = gray
                self._last_sampled_index = index
        self._prev_small, self._prev_gray = small, gray

    def _start(self, frame: np.ndarray) -> None:
        self._full_shape = frame.shape[:2]
        self._factor = measures.analysis_factor(frame.shape[0], frame.shape[1], self.analysis_side)
        height, width = frame.shape[0] // self._factor, frame.shape[1] // self._factor
        self._stretch: tuple[int, int] | None = None
        if min(height, width) < MIN_ANALYSIS_SIDE:  # tiny clips: enlarge so every measure has room to work
            scale = MIN_ANALYSIS_SIDE / min(height, width)
            height, width = max(MIN_ANALYSIS_SIDE, round(height * scale)), max(MIN_ANALYSIS_SIDE, round(width * scale))
            self._stretch = (width, height)
        self._small_shape = (height, width)
        self._unit = UNIT_SHORT_SIDE / min(height, width)
        self._sampler = measures.GridSampler(height, width)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._grid = (xs, ys)
        self._reference_meter: measures.DriftMeter | None = None
        if self._reference_full is not None:
            reference_small = self._shrink(self._reference_full) \
                if self._reference_full.shape[:2] == self._full_shape else \
                measures.cover_fit(self._reference_full, height, width)
            self._reference_meter = measures.DriftMeter(reference_small, self._sampler, self._flow)

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        """A full-size frame at analysis size (a reference image of the clip's size goes the same way, so a
        still clip compares equal to its still)."""
        small = measures.downscale(frame, self._factor)
        if self._stretch is not None:
            small = cv2.resize(small, self._stretch, interpolation=cv2.INTER_LINEAR)
        return small

    def _sampled_pair(self, index: int, first: np.ndarray, second: np.ndarray) -> None:
        """Flow of one sampled pair (brightness-matched, contrast-normalised) and its measures."""
        matched = measures.match_brightness(first, second)
        gain = measures.contrast_gain(first)
        if gain > 1.0:
            mean = float(cv2.mean(first)[0])
            first, matched = measures.normalise_contrast(first, gain, mean), measures.normalise_contrast(matched, gain, mean)
        pair_flow = self._flow.calc(first, matched, None)
        gradient = measures.gradient_magnitude(first)
        explained, visible = measures.explained_by_flow(first, matched, pair_flow, self._grid, gain=gain)
        self._visible_change.append(visible)
        self._measure_sampled_pair(index, pair_flow, measures.texture_mask(first, gradient=gradient),
                                   measures.structure_mask(gradient) & explained)

    def _measure_sampled_pair(self, index: int, flow: np.ndarray, texture: np.ndarray | None,
                              structure: np.ndarray) -> None:
        magnitude = measures.flow_magnitude(flow)
        self._sampled_frames.append(index)
        self._sampled_motion.append(measures.top_mean(magnitude, mask=texture) * self._unit)
        frames_apart = max(1, index - self._last_sampled_index)
        self._region_motion.append(measures.region_motion(flow, structure) * self._unit / frames_apart)
        if float(cv2.mean(magnitude)[0]) * self._unit < self.thresholds.min_motion_for_share:
            self._share.append(math.nan)
            self._camera_speed.append(0.0)
            return
        fit = self._sampler.fit(flow, texture=texture)
        camera = self._sampler.motion_vector(fit.matrix) * self._unit / frames_apart if fit.valid else np.zeros(4)
        self._camera_speed.append(float(np.hypot(*camera[:2]) + np.hypot(*camera[2:])))
        self._share.append(fit.explained)
        self._share_total += fit.total_energy
        self._share_residual += fit.total_energy * (1.0 - fit.explained)

    def _measure_drift(self, index: int, small: np.ndarray, gray: np.ndarray) -> None:
        self._drift_frames.append(index)
        self._drift_first.append(0.0 if index == 0 else self._first_meter.measure(small, gray).value)
        if self._reference_meter is not None:
            self._drift_reference.append(self._reference_meter.measure(small, gray).value)

    # ------------------------------------------------------------------------------------------------- result
    def finish(self) -> QCReport:
        """Close the clip and judge it against the thresholds."""
        if self._finished:
            raise RuntimeError("QCAccumulator.finish() called twice")
        self._finished = True
        started = time.perf_counter()
        n = self._count
        if n == 0:
            raise BadInputError("QC got no frames")
        last = n - 1
        with _opencv_for_qc():
            if n >= 2 and not self._sampled_frames:  # clip shorter than one sampling interval: use its ends
                self._sampled_pair(last, self._first_gray, self._prev_gray)
            if last > 0 and self._drift_frames[-1] != last:  # drift is usually worst at the end: always look there
                self._measure_drift(last, self._prev_small, self._prev_gray)
            report = self._judge(n)
        self._elapsed += time.perf_counter() - started
        report.seconds = self._elapsed
        return report

    def _judge(self, n: int) -> QCReport:
        t = self.thresholds
        fps = float(self.fps)
        energy = np.asarray(([self._energy[0]] + self._energy) if self._energy else [0.0], dtype=float)
        sampled_motion = np.asarray(self._sampled_motion, dtype=float)
        skipped: list[str] = []
        reasons: list[str] = []

        region = np.asarray(self._region_motion, dtype=float)
        visible = np.asarray(self._visible_change, dtype=float)
        # a pair moves when a region moves (flow) or a visible part of the picture changes (round 5); evidence 1
        # is the line: the larger of the two measures relative to its threshold
        evidence = np.maximum(region / t.dynamic_threshold, visible / t.min_visible_change) \
            if t.min_visible_change > 0 else region / t.dynamic_threshold
        moving_pairs = int(np.count_nonzero(evidence > 1.0))
        dynamic_degree = moving_pairs / region.size if region.size else 0.0
        region_motion, motion_evidence = _second_highest(region), _second_highest(evidence)
        long_enough = n / fps >= MIN_SECONDS_FOR_FROZEN
        needed = min(t.min_moving_pairs, float(region.size))
        frozen = n >= 2 and long_enough and (moving_pairs < needed or dynamic_degree < t.min_dynamic_degree)
        share = 1.0 - self._share_residual / self._share_total if self._share_total > 0 else 0.0
        camera = np.asarray(self._camera_speed, dtype=float)
        camera_speed = float(np.median(camera)) if camera.size else 0.0
        ken_burns = share > t.max_global_motion_share and camera_speed >= t.min_camera_speed
        if n < 2:
            skipped += ["frozen: one frame has no motion", "ken_burns: one frame has no motion"]
        elif not long_enough:
            skipped.append(f"frozen: a {n / fps:.2f}-s clip is too short to judge (needs {MIN_SECONDS_FOR_FROZEN} s)")

        drift_first = np.asarray(self._drift_first, dtype=float)
        drift_reference = np.asarray(self._drift_reference, dtype=float) if self._drift_reference else None
        drift_curve = drift_first if drift_reference is None else np.maximum(drift_first, drift_reference)
        identity_drift = float(drift_curve.max()) if drift_curve.size else 0.0
        drifted = identity_drift > t.max_identity_drift
        if n < 2 and drift_reference is None:
            skipped.append("drift: one frame and no reference image")

        luma = np.asarray(self._luma, dtype=float)
        flicker = float(np.mean(np.abs(luma[1:-1] - 0.5 * (luma[:-2] + luma[2:])))) if n >= 3 else 0.0
        flickering = flicker > t.max_flicker
        if n < 3:
            skipped.append("flicker: needs 3 frames")
        motion = np.asarray(self._global_motion, dtype=float)
        jitter = float(np.sqrt(np.mean(np.sum(np.diff(motion, axis=0) ** 2, axis=1)))) if len(motion) >= 2 else 0.0

        # TempoTokens counts every strict local maximum; encoder noise and the wobbly tails of real motion make
        # many tiny ones, which match onsets by chance. Here a peak must stand `peak_floor` above its troughs
        # and be `peak_contrast` times the clip's median motion (the beat-hit rate uses the same two numbers).
        peak_height = max(t.peak_floor, t.peak_contrast * float(np.median(energy))) if n >= 2 else t.peak_floor
        peaks = measures.local_maxima(energy, floor=peak_height, min_prominence=t.peak_floor)
        clip_end = n / fps
        beats = onsets = np.zeros(0)
        beat_hit = np.zeros(0, dtype=bool)
        beat_hit_rate: float | None = None
        beat_alignment: float | None = None
        av_align: float | None = None
        if self.beat_times is not None:
            beats = self.beat_times[(self.beat_times >= 0) & (self.beat_times < clip_end)]
            beat_frames = np.round(beats * fps).astype(int)
            inside = (beat_frames >= 1) & (beat_frames <= n - 1)
            beats, beat_frames = beats[inside], beat_frames[inside]
            if beat_frames.size and n >= 3:
                beat_hit = measures.beat_hits(energy, beat_frames, t.peak_floor, t.peak_contrast)
                beat_hit_rate = float(beat_hit.mean())
                beat_alignment = measures.beat_alignment_score(beat_frames, peaks, t.beat_alignment_sigma)
        if self.onset_times is not None:
            onsets = self.onset_times[(self.onset_times >= 0) & (self.onset_times < clip_end)]
            if onsets.size:
                av_align = measures.av_align(onsets, peaks / fps, fps)
        if t.enabled("sync") and beat_hit_rate is None:
            skipped.append("sync: no beats inside the clip" if self.beat_times is not None else "sync: no beats given")
        sync_failed = beat_hit_rate is not None and (
            beat_hit_rate < t.min_beat_hit_rate or (av_align is not None and av_align < t.min_av_align))

        if t.enabled("frozen") and frozen:
            reasons.append(f"frozen: no region moves visibly (fastest coherent region {region_motion:.2f} px/frame; "
                           f"{moving_pairs} of {region.size} 1/8-s steps above {t.dynamic_threshold:g} or changing "
                           f"{t.min_visible_change:.2%} of the frame visibly, needs {needed:g})")
        if t.enabled("ken_burns") and ken_burns:
            reasons.append(f"ken_burns: {share:.0%} of the motion is one pan/zoom/rotation of the whole frame "
                           f"(limit {t.max_global_motion_share:.0%}), camera at {camera_speed:.2f} px/frame "
                           f"(min {t.min_camera_speed:g})")
        if t.enabled("drift") and drifted:
            reasons.append(f"drift: identity drift {identity_drift:.2f} > {t.max_identity_drift:g} "
                           "(the subject or its colours change)")
        if t.enabled("sync") and sync_failed:
            parts = [f"beat-hit rate {beat_hit_rate:.2f} (min {t.min_beat_hit_rate:g})"]
            if av_align is not None:
                parts.append(f"AV-Align {av_align:.2f} (min {t.min_av_align:g})")
            reasons.append(f"sync: motion misses the beats: {', '.join(parts)}")
        if t.enabled("flicker") and flickering:
            reasons.append(f"flicker: brightness jumps {flicker:.2f} levels per frame (limit {t.max_flicker:g})")

        return QCReport(
            frozen=bool(frozen), dynamic_degree=dynamic_degree, ken_burns=bool(ken_burns),
            global_motion_share=float(share), identity_drift=identity_drift, av_align=av_align,
            beat_hit_rate=beat_hit_rate, flicker=flicker, jitter=jitter,
            verdict="fail" if reasons else "pass", reasons=reasons,
            motion_energy=energy if n >= 2 else np.zeros(n), drift_curve=drift_curve,
            drift_frames=np.asarray(self._drift_frames, dtype=int),
            global_share_curve=np.asarray(self._share, dtype=float), sampled_motion=sampled_motion,
            sampled_frames=np.asarray(self._sampled_frames, dtype=int), fps=self.fps, frames=n,
            thresholds=t, identity_drift_to_first=float(drift_first.max()) if drift_first.size else 0.0,
            identity_drift_to_reference=None if drift_reference is None else float(drift_reference.max()),
            flickering=bool(flickering), sync_failed=bool(sync_failed), beat_times=beats, onset_times=onsets,
            beat_hit=beat_hit, video_peak_frames=peaks, skipped=skipped,
            analysis_size=(self._small_shape[1], self._small_shape[0]),
            region_motion=region_motion, region_motion_curve=region, visible_change_curve=visible,
            motion_evidence=motion_evidence, camera_speed=camera_speed,
            camera_speed_curve=camera, beat_alignment=beat_alignment, beat_alignment_sigma=t.beat_alignment_sigma,
        )


def qc_video(path: str | Path, reference_image: np.ndarray | None = None, beat_times: np.ndarray | None = None,
             onset_times: np.ndarray | None = None, thresholds: QCThresholds | None = None,
             analysis_side: int = 256) -> QCReport:
    """QC a video file: decode it (downscaled in the decoder, so 1080p costs little) and measure every frame.

    Decoding runs in a second thread a few frames ahead: FFmpeg and OpenCV both release the GIL, so on two
    cores the file takes about as long as the slower of the two rather than their sum.
    """
    info = VideoInfo(path)
    if info.fps <= 0:
        raise BadInputError(f"{path} has no usable frame rate")
    accumulator = QCAccumulator(info.fps, reference=reference_image, beat_times=beat_times,
                                onset_times=onset_times, thresholds=thresholds, analysis_side=analysis_side)
    with _opencv_for_qc():  # once for the file: a switch per frame rebuilds OpenCV's pool whenever it ran
        for frame in _read_ahead(read_frames(path, max_side=analysis_side)):
            accumulator.add(frame)
        return accumulator.finish()


_DONE = object()


def _read_ahead(frames: Iterator[np.ndarray], depth: int = 8) -> Iterator[np.ndarray]:
    """Yield `frames`, produced by a helper thread up to `depth` frames ahead; its errors re-raise here."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            buffer.put(exc)

    worker = threading.Thread(target=produce, name="qc-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            with contextlib.suppress(queue.Empty):
                buffer.get_nowait()
            worker.join(timeout=0.05)
