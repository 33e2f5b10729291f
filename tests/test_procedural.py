"""The weight-free engine: exact anchor frames, determinism per seed, beats landing on known beats, local (not
Ken Burns) motion for every preset, no identity drift, looping ambient motion without audio, and frames that
stream in constant memory. Real OpenCV, ffmpeg/libx264 and the real QC measures; small sizes, short clips."""

from __future__ import annotations

import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from media_fixtures import photo, write_click_track
from PIL import Image
from stillmotion.engine.backends import get_backend
from stillmotion.engine.backends.base import CancelToken, RenderInputs, ignore_events
from stillmotion.engine.backends.procedural import analyse_still, plan
from stillmotion.engine.images import fit_image, load_image
from stillmotion.engine.motion import PRESETS, Envelope, MotionSchedule
from stillmotion.engine.qc import qc_video
from stillmotion.engine.render import render_clip
from stillmotion.engine.request import AudioSegment, RenderRequest

#: Worst identity drift (engine/qc DriftMeter: max of Lab-histogram distance and 1 - median block correlation
#: after undoing global motion) a clip may show. QC fails a clip at 0.3, where its labelled set's real colour /
#: identity changes start (docs/qc.md); our clips measure 0.03-0.10, so 0.15 keeps half QC's margin for noise
#: while still catching a warp that tears or recolours the subject.
MAX_DRIFT = 0.15
BPM = 120.0


def _inputs(name: str, width: int, height: int, frames: int, preset: str = "pulse", seed: int = 0,
            anchor: str = "start", intensity: float = 1.0) -> RenderInputs:
    fitted, _ = fit_image(load_image(photo(name)).rgb, width, height)
    schedule = MotionSchedule(preset=preset, seed=seed, intensity=intensity)
    request = RenderRequest(image=str(photo(name)), output="unused.mp4", fps=Fraction(24), frames=frames,
                            width=width, height=height, seed=seed, anchor=anchor, preset=preset)
    return RenderInputs(request, fitted, None, schedule, schedule.channels(None, frames, 24.0), None)


def _frames(inputs: RenderInputs) -> list[np.ndarray]:
    return list(get_backend("procedural").render(inputs, ignore_events, CancelToken()))


@pytest.fixture(scope="module")
def click(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("music") / "click.wav"
    beats = write_click_track(path, 5.0, bpm=BPM)
    return path, beats


def _render(image: Path, out: Path, preset: str, seconds: float, song: Path | None, width: int = 256,
            height: int = 144, anchor: str = "start") -> None:
    frames = round(seconds * 24)
    audio = [AudioSegment(path=str(song), duration=Fraction(frames, 24))] if song else []
    render_clip(RenderRequest(image=str(image), output=str(out), fps=Fraction(24), frames=frames, width=width,
                              height=height, audio=audio, preset=preset, qc=False, anchor=anchor))


def test_spring_envelope_jumps_on_the_accent_and_follows_through() -> None:
    drive = np.zeros(48)
    drive[[6, 30]] = 1.0
    out = Envelope(attack=0.0, release=0.25, spring_hz=1.2).apply(drive, 24.0)
    speed = np.abs(np.diff(out, prepend=0.0))
    assert out[5] == 0 and out[6] == pytest.approx(1.0)
    assert int(np.argmax(speed[:30])) == 6  # fastest change on the accent frame itself
    assert out[6:30].min() < -0.05  # swings through rest (follow-through), then settles
    assert abs(out[29]) < 0.1


def test_schedule_round_trips_through_json_with_springs() -> None:
    schedule = MotionSchedule(preset="dance", seed=7, gains={"orbit": 0.5},
                              envelopes={"pulse": Envelope(0.0, 0.2, 2.0)})
    again = MotionSchedule.from_json(schedule.to_json())
    assert again == schedule
    assert "orbit" in again.specs()


@pytest.mark.parametrize("anchor", ["start", "end", "middle"])
def test_anchor_frame_is_the_still_exactly(anchor: str) -> None:
    inputs = _inputs("portrait", 128, 96, 25, preset="dance", anchor=anchor, intensity=2.0)
    frames = _frames(inputs)
    index = inputs.request.anchor_frame()
    assert np.array_equal(frames[index], inputs.image)
    others = [k for k in (0, 12, 24) if k != index]
    assert all(not np.array_equal(frames[k], inputs.image) for k in others)


def test_end_anchor_arrives_into_the_still() -> None:
    """With --anchor end the motion settles into the still: the distance to it shrinks over the last frames."""
    inputs = _inputs("landscape", 160, 96, 48, preset="drift", anchor="end")
    frames = _frames(inputs)
    distance = [float(np.abs(f.astype(int) - inputs.image).mean()) for f in frames]
    assert distance[-1] == 0
    assert distance[-2] < distance[-4] < distance[-8]
    assert max(distance[:40]) > 0.5  # it moved before it arrived


def test_same_seed_same_frames_different_seed_different() -> None:
    first = _frames(_inputs("product", 128, 96, 12, seed=3))
    again = _frames(_inputs("product", 128, 96, 12, seed=3))
    other = _frames(_inputs("product", 128, 96, 12, seed=4))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(first[1:], other[1:], strict=True))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_silent_clip_moves_and_loops(preset: str) -> None:
    """No audio: ambient motion, never frozen, and the last frame nearly matches the first so it loops."""
    inputs = _inputs("portrait", 128, 96, 72, preset=preset)
    frames = _frames(inputs)
    distance = np.array([np.abs(f.astype(int) - inputs.image).mean() for f in frames])
    assert distance.max() > 1.0  # visibly moving
    still_steps = np.array([np.abs(frames[k].astype(int) - frames[k - 1]).mean() for k in range(1, 72)])
    assert (still_steps > 0.02).mean() > 0.9  # moves on (nearly) every frame, not in bursts
    assert distance[-1] < 0.3 * distance.max()  # comes back round to the start


def test_layer_and_plate_on_a_portrait() -> None:
    """The portrait's foreground layer is a sensible subject, and the plate fills where the layer was."""
    fitted, _ = fit_image(load_image(photo("portrait")).rgb, 256, 256)
    analysis = analyse_still(fitted)
    assert analysis.layered
    assert 0.1 < float((analysis.foreground > 0.5).mean()) < 0.6
    assert analysis.foreground[-10:, 100:156].mean() > 0.5  # the suit at the bottom centre is foreground
    assert analysis.foreground[:10, :].mean() < 0.1          # the top edge is background
    work = plan(_inputs("portrait", 256, 256, 48))
    assert work.warper.plate_offset > 256
    frames = [work.warper.frame(work.weights[k], tuple(work.layer[k])) for k in range(0, 48, 8)]
    assert all(f.shape == fitted.shape for f in frames)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_beats_land_and_motion_is_local(tmp_path: Path, click: tuple[Path, np.ndarray], preset: str) -> None:
    """On a click track with known beats: ≥ 90 % of beats have the motion-energy peak within ±1 frame, the
    global similarity transform explains ≤ 50 % of the flow, and identity drift stays under MAX_DRIFT."""
    song, beats = click
    out = tmp_path / f"{preset}.mp4"
    _render(photo("portrait"), out, preset, 4.0, song)
    reference = fit_image(load_image(photo("portrait")).rgb, 256, 144)[0]
    report = qc_video(out, reference_image=reference, beat_times=beats[beats < 4.0], onset_times=beats[beats < 4.0])
    assert report.beat_hit_rate is not None and report.beat_hit_rate >= 0.9, report.beat_hit
    assert report.global_motion_share <= 0.5
    assert report.identity_drift <= MAX_DRIFT
    assert not report.frozen


def test_a_ken_burns_clip_scores_near_one(tmp_path: Path) -> None:
    """The contrast the share measure must show: ffmpeg's zoompan is nearly all one global transform."""
    out = tmp_path / "zoompan.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(photo("landscape")), "-filter_complex",
                    "scale=256:144:force_original_aspect_ratio=increase,crop=256:144,zoompan=z='min(zoom+0.004,1.3)'"
                    ":d=72:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=256x144:fps=24", "-frames:v", "72",
                    "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", str(out)], check=True)
    assert qc_video(out).global_motion_share > 0.8


def test_identity_drift_at_high_intensity(tmp_path: Path, click: tuple[Path, np.ndarray]) -> None:
    """Even at intensity 2 (the QC retry ceiling is 4, users rarely pass 2) the subject stays itself."""
    song, beats = click
    out = tmp_path / "strong.mp4"
    frames = 72
    render_clip(RenderRequest(image=str(photo("product")), output=str(out), fps=Fraction(24), frames=frames,
                              width=256, height=144, preset="dance", intensity=2.0, qc=False,
                              audio=[AudioSegment(path=str(song), duration=Fraction(frames, 24))]))
    reference = fit_image(load_image(photo("product")).rgb, 256, 144)[0]
    assert qc_video(out, reference_image=reference).identity_drift <= 2 * MAX_DRIFT


def test_alpha_is_kept_in_prores_4444(tmp_path: Path) -> None:
    rgba = Image.open(photo("product")).convert("RGBA")
    alpha = Image.new("L", rgba.size, 0)
    alpha.paste(255, (100, 60, rgba.width - 100, rgba.height - 60))
    rgba.putalpha(alpha)
    still = tmp_path / "cutout.png"
    rgba.save(still)
    out = tmp_path / "clip.mov"
    render_clip(RenderRequest(image=str(still), output=str(out), fps=Fraction(24), frames=12, width=192,
                              height=128, qc=False, options={"alpha": True}))
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgba") for f in container.decode(video=0)]
    assert len(decoded) == 12
    expected = fit_image(np.asarray(rgba)[..., :3], 192, 128, alpha=np.asarray(rgba)[..., 3])[1]
    assert np.abs(decoded[0][..., 3].astype(int) - expected).mean() < 2
    assert decoded[-1][..., 3].min() == 0 and decoded[-1][..., 3].max() == 255  # still a cut-out


def test_huge_image_is_downscaled_first(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.open(photo("landscape")).convert("RGB").resize((8000, 8000)).save(big, quality=60)
    loaded = load_image(big)
    assert max(loaded.width, loaded.height) <= 4096
    out = tmp_path / "big.mp4"
    _render(big, out, "pulse", 0.5, None, width=64, height=64)
    assert out.exists()


def _peak_rss(script: str) -> float:
    process = psutil.Popen([sys.executable, "-c", script])
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    assert process.returncode == 0
    return peak / 2**20


def test_frames_stream_in_constant_memory(tmp_path: Path) -> None:
    """A 10x longer render must not need more memory: frames go straight to the encoder and QC.
    At 320x240 each frame is 230 KB, so keeping 2 000 extra frames would add ~450 MB."""
    script = (
        "from fractions import Fraction; from stillmotion.engine.render import render_clip;"
        "from stillmotion.engine.request import RenderRequest;"
        f"render_clip(RenderRequest(image={str(photo('landscape'))!r}, output={str(tmp_path / 'm.mp4')!r},"
        " fps=Fraction(24), frames={frames}, width=320, height=240, overwrite=True, qc=True,"
        " options={{'qc_retries': 0}}))"
    )
    short = _peak_rss(script.format(frames=240))
    long = _peak_rss(script.format(frames=2400))
    assert long - short < 40, (short, long)


def test_warp_map_is_exact_up_to_the_frame_edges() -> None:
    """The sampling map is one upsample of low-resolution positions plus an edge correction: a uniform 1-px
    camera shift must move every column by exactly one pixel, the outermost ones included."""
    work = plan(_inputs("landscape", 640, 360, 4))  # fields are 256 px wide: 2.5 frame pixels per field pixel
    warper = work.warper
    weights = np.zeros(len(warper.names), np.float32)
    weights[warper.names.index("cam_x")] = 1.0 / warper.short  # shorter-side units: one pixel to the right
    moved = warper.frame(weights, (0.0, 0.0))
    still = warper.source
    assert np.array_equal(moved[:, 1:], still[:, :-1])
    assert np.array_equal(moved[:, 0], still[:, 1])  # reflected border


def test_yuv_conversion_matches_swscale() -> None:
    """The writer's own RGB -> I420 (OpenCV, ~3x faster) agrees with swscale's BT.601 conversion: luma within
    one level, chroma the 2x2 average (OpenCV's point-sampled chroma would differ by tens of levels here)."""
    from stillmotion.engine.video import rgb_to_yuv420p

    fitted, _ = fit_image(load_image(photo("product")).rgb, 320, 240)
    ours = rgb_to_yuv420p(fitted).astype(int)
    theirs = av.VideoFrame.from_ndarray(fitted, format="rgb24").reformat(format="yuv420p").to_ndarray().astype(int)
    assert ours.shape == theirs.shape == (360, 320)
    assert np.abs(ours[:240] - theirs[:240]).max() <= 1
    assert np.abs(ours[240:] - theirs[240:]).mean() < 0.6
    assert np.abs(ours[240:] - theirs[240:]).max() <= 8


@pytest.mark.parametrize("size", [(320, 240), (1002, 562), (34, 20)])
def test_yuv_frame_holds_the_planes_whatever_the_line_padding(size: tuple[int, int]) -> None:
    """The writer copies its I420 planes straight into a VideoFrame's buffers; widths whose lines FFmpeg pads
    (1002, 34) must come out as the same picture `from_ndarray` gives."""
    from stillmotion.engine.video import rgb_to_yuv420p, yuv420p_frame

    width, height = size
    fitted, _ = fit_image(load_image(photo("product")).rgb, width, height)
    planar = rgb_to_yuv420p(fitted)
    frame = yuv420p_frame(planar, width, height)
    assert (frame.width, frame.height, frame.format.name) == (width, height, "yuv420p")
    assert np.array_equal(frame.to_ndarray(), av.VideoFrame.from_ndarray(planar, format="yuv420p").to_ndarray())
    darker = rgb_to_yuv420p(fitted // 2)
    held = frame.to_ndarray()
    again = yuv420p_frame(darker, width, height, reuse=frame)  # refilled in place: the frame's old picture is gone
    assert np.array_equal(again.to_ndarray(), av.VideoFrame.from_ndarray(darker, format="yuv420p").to_ndarray())
    assert not np.array_equal(held, again.to_ndarray())


def test_still_analysis_cache_returns_the_same_analysis() -> None:
    """A cached still analysis is bit-identical to a fresh one (renders stay a pure function of the request)."""
    import cv2
    from stillmotion.engine.backends.still_cache import cached_analysis

    small = cv2.resize(load_image(photo("portrait")).rgb, (160, 160), interpolation=cv2.INTER_AREA)
    calls: list[int] = []

    def counting(image: np.ndarray):
        calls.append(1)
        return analyse_still(image)

    fresh = cached_analysis(small, counting)
    again = cached_analysis(small, counting)
    assert len(calls) == 1
    assert again.layered == fresh.layered and again.center == fresh.center and again.radius == fresh.radius
    for name in ("texture", "depth", "foreground"):
        assert np.array_equal(getattr(again, name), getattr(fresh, name))


@pytest.mark.parametrize("anchor", ["start", "end"])
def test_previews_are_the_frames_and_the_first_leaves_before_the_analysis(anchor: str, monkeypatch) -> None:
    """With the anchor on frame 0 the first preview is sent before the still is analysed (the panel's first
    look), and it is exactly frame 0's preview; every preview is the quarter-size copy of its frame."""
    import cv2
    from stillmotion.engine.backends import procedural

    order: list[object] = []
    real_plan = procedural.plan
    monkeypatch.setattr(procedural, "plan", lambda inputs, *ahead: (order.append("plan"), real_plan(inputs, *ahead))[1])
    inputs = _inputs("portrait", 320, 240, 26, anchor=anchor)
    previews: dict[int, np.ndarray] = {}

    def on_event(event: object) -> None:
        if isinstance(event, procedural.Preview):
            order.append(event.frame_index)
            previews[event.frame_index] = event.image

    frames = list(get_backend("procedural").render(inputs, on_event, CancelToken()))
    assert order == ([0, "plan", 12, 24] if anchor == "start" else ["plan", 0, 12, 24])
    for index, image in previews.items():
        assert np.array_equal(image, cv2.resize(frames[index][..., :3], (80, 60)))


def test_frame_zero_is_the_still_handed_on_while_the_warp_thread_analyses_it(monkeypatch) -> None:
    """With the anchor on frame 0 the still goes to the encoder while the analysis is still running (the plan
    below waits until frame 0 has been received), the later frames are the plan's, and a one-frame clip still
    reports the analysis failing instead of dropping it."""
    import threading

    from stillmotion.engine.backends import procedural

    frame_zero_received = threading.Event()
    real_plan = procedural.plan

    def gated_plan(inputs: RenderInputs, *ahead: object) -> procedural.Plan:
        assert frame_zero_received.wait(10), "frame 0 waited for the still's analysis"
        return real_plan(inputs, *ahead)

    monkeypatch.setattr(procedural, "plan", gated_plan)
    inputs = _inputs("portrait", 320, 240, 12)
    frames = get_backend("procedural").render(inputs, ignore_events, CancelToken())
    first = next(frames)
    frame_zero_received.set()
    assert np.array_equal(first, inputs.image) and first is not inputs.image
    rest = list(frames)
    assert len(rest) == 11
    work = real_plan(inputs)
    for k in (1, 6, 11):
        layer = (float(work.layer[k, 0]), float(work.layer[k, 1]))
        assert np.array_equal(rest[k - 1], work.warper.frame(work.weights[k], layer))

    def broken_plan(inputs: RenderInputs, *ahead: object) -> procedural.Plan:
        raise RuntimeError("analysis broke")

    monkeypatch.setattr(procedural, "plan", broken_plan)
    with pytest.raises(RuntimeError, match="analysis broke"):
        _frames(_inputs("portrait", 320, 240, 1))


def test_the_still_is_analysed_while_the_music_is(tmp_path: Path, click: tuple[Path, np.ndarray],
                                                   monkeypatch) -> None:
    """render_clip starts the still's analysis (on its own thread) before the music's analysis returns, once, and
    the clip is the same as when the warp thread analyses the still itself."""
    import threading

    from stillmotion.engine import render as render_module
    from stillmotion.engine.backends import procedural

    song, _ = click
    started = threading.Event()
    threads: list[str] = []
    real_analyse, real_features = procedural.analyse_still, render_module.audio.clip_features

    def analyse(small: np.ndarray) -> object:
        threads.append(threading.current_thread().name)
        started.set()
        return real_analyse(small)

    def features(*args: object, **kwargs: object) -> object:
        assert started.wait(10), "the still's analysis waited for the music's"
        return real_features(*args, **kwargs)

    def clip(name: str) -> bytes:
        monkeypatch.setenv("STILLMOTION_CACHE_DIR", str(tmp_path / f"cache-{name}"))  # the still not seen before
        out = tmp_path / f"{name}.mp4"
        render_clip(RenderRequest(image=str(photo("portrait")), output=str(out), fps=Fraction(24), frames=12,
                                  width=256, height=144, audio=[AudioSegment(path=str(song), duration=Fraction(1, 2))],
                                  qc=False))
        with av.open(str(out)) as container:
            return b"".join(frame.to_ndarray(format="rgb24").tobytes() for frame in container.decode(video=0))

    monkeypatch.setattr(procedural, "analyse_still", analyse)
    monkeypatch.setattr(render_module.audio, "clip_features", features)
    ahead = clip("ahead")
    assert threads == ["stillmotion-still-analysis"]
    monkeypatch.setattr(render_module.audio, "clip_features", real_features)
    monkeypatch.setattr(procedural.ProceduralBackend, "prepare", lambda self, image: None)
    threads.clear()
    assert clip("in-plan") == ahead and threads == ["stillmotion-warp"]


def test_an_analysis_started_ahead_is_used_only_for_its_own_still() -> None:
    """`prepare` for another array (another still, or a copy) leaves the render to analyse its own still."""
    inputs = _inputs("portrait", 256, 144, 8)
    other = _inputs("landscape", 256, 144, 8)
    expected = _frames(inputs)
    for prepared in (other.image, inputs.image.copy(), inputs.image):
        backend = get_backend("procedural")
        backend.prepare(prepared)
        frames = list(backend.render(inputs, ignore_events, CancelToken()))
        assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
    ahead = get_backend("procedural")
    ahead.prepare(other.image)
    assert not all(np.array_equal(a, b) for a, b in zip(list(ahead.render(other, ignore_events, CancelToken())),
                                                        expected, strict=True))


def test_a_render_runs_opencv_on_one_thread_and_restores_the_setting(tmp_path: Path, monkeypatch) -> None:
    """The frame loop (warp thread included) and the still's analysis ahead of it see one OpenCV thread; the
    caller's setting is back afterwards."""
    import cv2
    from stillmotion.engine.backends import procedural

    seen: list[tuple[str, int]] = []
    real_plan, real_analyse = procedural.plan, procedural.analyse_still
    monkeypatch.setattr(procedural, "plan", lambda inputs, *ahead: (seen.append(("plan", cv2.getNumThreads())),
                                                                     real_plan(inputs, *ahead))[1])
    monkeypatch.setattr(procedural, "analyse_still", lambda small: (seen.append(("analysis", cv2.getNumThreads())),
                                                                    real_analyse(small))[1])
    monkeypatch.setenv("STILLMOTION_CACHE_DIR", str(tmp_path / "cache"))  # a still not analysed before
    previous = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        render_clip(RenderRequest(image=str(photo("portrait")), output=str(tmp_path / "clip.mp4"), fps=Fraction(24),
                                  frames=12, width=256, height=144))
        assert sorted(seen) == [("analysis", 1), ("plan", 1)]
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(previous)


def _slanted_layer_warper(width: int = 960, height: int = 540):
    """A still whose right part (beyond a slanted edge) is a bright layer on a dark background, with the layer
    mask a crisp edge at field resolution (256x144: 3.75 frame pixels per field pixel)."""
    from stillmotion.engine.backends.procedural import FrameWarper
    from stillmotion.engine.backends.still_cache import StillAnalysis

    fw, fh = 256, 144
    xx, yy = np.meshgrid(np.arange(fw, dtype=np.float32), np.arange(fh, dtype=np.float32))
    # edge x = 100 + 0.4 y (field pixels), a one-field-pixel soft ramp across it
    foreground = np.clip(xx - (100 + 0.4 * yy) + 0.5, 0, 1).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(width), np.arange(height))
    sx, sy = width / fw, height / fh
    inside = (gx + 0.5) / sx - 0.5 > 100 + 0.4 * ((gy + 0.5) / sy - 0.5)
    still = np.where(inside[..., None], 200, 60).astype(np.uint8).repeat(3, axis=2)
    analysis = StillAnalysis(texture=np.zeros((fh, fw), np.float32), depth=foreground, foreground=foreground,
                             layered=True, center=(180.0, 72.0), radius=40.0)
    fields = {"sway": np.zeros((fh, fw, 2), np.float32)}
    return FrameWarper(still, analysis, fields, ["sway"], max_shift_px=20.0), inside


@pytest.mark.parametrize("shift_px", [6.0, 11.0])
def test_uncovered_strip_is_a_clean_band_along_a_slanted_layer_edge(shift_px: float) -> None:
    """The layer moves right by `shift_px`; behind its old edge the plate (the dark background, inpainted) shows
    in a band that wide in every row. Thresholding the uncovered area per field pixel made the band a staircase
    of 4-8-pixel blocks (0, 1 or 2 field pixels wide by row) along a slanted edge."""
    warper, inside = _slanted_layer_warper()
    frame = warper.frame(np.zeros(1, np.float32), (shift_px / warper.short, 0.0))
    height = inside.shape[0]
    for y in range(20, height - 20):
        edge = int(np.argmax(inside[y]))  # first layer column in the still
        row = frame[y, :, 0].astype(int)
        moved_edge = edge + shift_px
        assert np.all(row[:edge - 2] < 100)                          # the background, still
        assert np.all(row[edge + 2:int(moved_edge) - 1] < 100), y    # the plate (dark), not the layer's ghost
        assert np.all(row[int(np.ceil(moved_edge)) + 2:] > 150), y   # the layer itself, moved


def test_a_sliver_of_uncovered_background_keeps_the_still() -> None:
    """A layer moved by a couple of pixels uncovers a strip too thin to be worth the plate's guess (a sliver of
    it reads as a sparkle along the edge): no pixel samples the plate, the still shows through as before."""
    warper, inside = _slanted_layer_warper()
    frame = warper.frame(np.zeros(1, np.float32), (2.0 / warper.short, 0.0))
    rows_sampled = warper._map[..., 1]  # the atlas rows each pixel sampled: the plate starts at plate_offset
    assert rows_sampled.max() < inside.shape[0] + warper.pad
    wider = warper.frame(np.zeros(1, np.float32), (6.0 / warper.short, 0.0))
    assert warper._map[..., 1].max() > warper.plate_offset  # a band the plate fills, as the test above shows
    assert frame.shape == wider.shape
