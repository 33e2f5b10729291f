"""Benchmark the weight-free engine: speed against ffmpeg's zoompan, peak memory, and motion quality per preset.

    .venv/bin/python bench/bench_procedural.py             # speed ratio, RSS (60 s 1080p), per-preset QC table
    .venv/bin/python bench/bench_procedural.py --long      # also a 10-minute render (small size): constant memory
    .venv/bin/python bench/bench_procedural.py --quick     # skip the 60-s RSS run

Speed: render + encode a 10-s 1080p 24-fps clip (`render_clip`, QC off, then QC on) and, in the same run and
interleaved with it, a plain 10-s Ken Burns clip of the same still and size made by ffmpeg's `zoompan` filter with
libx264 `veryfast` at the same CRF (16) our writer uses. The machine is shared, so each is run `--repeats` times
alternately and the ratio of medians is reported, for wall time (the target) and for CPU time (user + sys of all
threads; less sensitive to other jobs on the machine). Our writer adds `video.X264_SPEED_PARAMS` to the preset; a
third row renders with the plain preset (exactly ffmpeg's encoder settings) so the encoder's share is visible.
Quality: each preset rendered at 512x288 for 8 s over a click track at 120 BPM (beats known exactly), measured by
engine/qc: global-motion share (one similarity transform per frame pair; Ken Burns ≈ 1), beat-hit rate (beats
whose motion-energy peak is within ±1 frame), AV-Align (TempoTokens IoU, ±1 frame). The zoompan clip is measured
too, for contrast.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from media_fixtures import photo, write_click_track  # noqa: E402
from stillmotion.engine import video  # noqa: E402
from stillmotion.engine.images import fit_image, load_image  # noqa: E402
from stillmotion.engine.motion import PRESETS  # noqa: E402
from stillmotion.engine.qc import QCThresholds, qc_video  # noqa: E402
from stillmotion.engine.render import render_clip  # noqa: E402
from stillmotion.engine.request import AudioSegment, RenderRequest  # noqa: E402

CRF = 16


def zoompan(image: Path, out: Path, width: int, height: int, seconds: int, fps: int = 24) -> tuple[float, float]:
    """ffmpeg's own Ken Burns: a slow centred zoom to 1.3x; returns (wall seconds, CPU seconds)."""
    frames = seconds * fps
    graph = (f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},"
             f"zoompan=z='min(zoom+{0.3 / frames:.6f},1.3)':d={frames}:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
             f":s={width}x{height}:fps={fps}")
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(image), "-filter_complex", graph,
                    "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-crf", str(CRF),
                    "-pix_fmt", "yuv420p", str(out)], check=True)
    return time.perf_counter() - started, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def _timed_render(req: RenderRequest) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) for one render_clip."""
    started, cpu = time.perf_counter(), time.process_time()
    render_clip(req)
    return time.perf_counter() - started, time.process_time() - cpu


def request(image: Path, out: Path, width: int, height: int, seconds: float, song: Path | None,
            preset: str = "pulse", qc: bool = False, fps: int = 24) -> RenderRequest:
    frames = round(seconds * fps)
    audio = [AudioSegment(path=str(song), duration=Fraction(frames, fps))] if song else []
    return RenderRequest(image=str(image), output=str(out), fps=Fraction(fps), frames=frames, width=width,
                         height=height, audio=audio, preset=preset, qc=qc, overwrite=True,
                         options={"qc_retries": 0})


def bench_speed(tmp: Path, song: Path, repeats: int) -> None:
    image = photo("landscape")
    runs: dict[str, list[tuple[float, float]]] = {"zoompan": [], "off": [], "on": [], "plain": []}
    load_start = _load()
    for _ in range(repeats):
        runs["zoompan"].append(zoompan(image, tmp / "zoompan.mp4", 1920, 1080, 10))
        runs["off"].append(_timed_render(request(image, tmp / "ours.mp4", 1920, 1080, 10, song)))
        runs["on"].append(_timed_render(request(image, tmp / "ours_qc.mp4", 1920, 1080, 10, song, qc=True)))
        speed_params, video.X264_SPEED_PARAMS = video.X264_SPEED_PARAMS, ""  # the plain preset, as ffmpeg's
        try:
            runs["plain"].append(_timed_render(request(image, tmp / "ours_plain.mp4", 1920, 1080, 10, song)))
        finally:
            video.X264_SPEED_PARAMS = speed_params
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
    print(f"speed, 1920x1080 24 fps 10 s ({repeats} alternating runs, medians; load average {load_start:.1f} at "
          f"start, {_load():.1f} at end, on {os.cpu_count()} cores):")
    labels = {"zoompan": f"ffmpeg zoompan + libx264 veryfast crf {CRF}",
              "off": "stillmotion render, QC off",
              "on": "stillmotion render, QC on (default)",
              "plain": "stillmotion, QC off, plain veryfast x264"}
    for key, label in labels.items():
        ratio = "" if key == "zoompan" else (f"   wall ratio {wall[key] / wall['zoompan']:.2f}   "
                                             f"CPU ratio {cpu[key] / cpu['zoompan']:.2f}")
        print(f"  {label:42s} wall {wall[key]:6.2f} s {_fmt([r[0] for r in runs[key]])}   "
              f"CPU {cpu[key]:6.2f} s{ratio}")


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def _load() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def peak_rss(tmp: Path, song: Path | None, seconds: float, width: int, height: int) -> tuple[float, float]:
    """Render in a fresh process; return (peak RSS MB, wall seconds)."""
    song_arg = f"Path({str(song)!r})" if song else "None"
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_procedural as b;"
        "from pathlib import Path; from stillmotion.engine.render import render_clip;"
        f"render_clip(b.request(b.photo('landscape'), Path({str(tmp / 'rss.mp4')!r}), {width}, {height}, "
        f"{seconds}, {song_arg}, qc=True))"
    )
    started = time.perf_counter()
    process = psutil.Popen([sys.executable, "-c", code], cwd=str(ROOT))
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    if process.returncode:
        raise RuntimeError(f"render subprocess failed with {process.returncode}")
    return peak / 2**20, time.perf_counter() - started


def bench_quality(tmp: Path) -> None:
    song = tmp / "click120.wav"
    write_click_track(song, 9.0, bpm=120)
    thresholds = QCThresholds()
    rows = []
    stills = {"portrait": photo("portrait"), "landscape": photo("landscape"), "product": photo("product")}
    for preset in PRESETS:
        for kind, image in stills.items():
            out = tmp / f"{preset}_{kind}.mp4"
            result = render_clip(request(image, out, 512, 288, 8.0, song, preset=preset, qc=True))
            qc = result.qc or {}
            rows.append((preset, kind, qc.get("global_motion_share"), qc.get("beat_hit_rate"), qc.get("av_align"),
                         qc.get("identity_drift"), qc.get("dynamic_degree"), qc.get("verdict")))
    zp = tmp / "zoompan_small.mp4"
    zoompan(stills["landscape"], zp, 512, 288, 8)
    still = fit_image(load_image(stills["landscape"]).rgb, 512, 288)[0]
    report = qc_video(zp, reference_image=still, beat_times=[0.25 + 0.5 * k for k in range(16)],
                      thresholds=thresholds)
    rows.append(("zoompan (Ken Burns)", "landscape", report.global_motion_share, report.beat_hit_rate,
                 report.av_align, report.identity_drift, report.dynamic_degree, report.verdict))
    print("quality, 512x288 24 fps 8 s over a 120-BPM click track (QC measures from engine/qc):")
    print(f"  {'preset':20s} {'still':10s} {'global share':>12s} {'beat hit':>9s} {'AV-Align':>9s} "
          f"{'drift':>6s} {'dynamic':>8s}  verdict")
    for preset, kind, share, hit, align, drift, dynamic, verdict in rows:
        print(f"  {preset:20s} {kind:10s} {_num(share):>12s} {_num(hit):>9s} {_num(align):>9s} {_num(drift):>6s} "
              f"{_num(dynamic):>8s}  {verdict}")
    by_preset: dict[str, list] = {}
    for row in rows[:-1]:
        by_preset.setdefault(row[0], []).append(row)
    print("  per preset (mean over the three stills): " + json.dumps({
        p: {"share": round(statistics.mean(r[2] for r in rs), 2), "beat_hit": round(statistics.mean(r[3] for r in rs), 2),
            "av_align": round(statistics.mean(r[4] for r in rs), 2)} for p, rs in by_preset.items()}))


def contact_sheets(folder: Path, tmp: Path) -> None:
    """One sheet per still: for each preset a row of frames, and under it a row of |frame - first| heatmaps
    (so a reader sees *where* it moves: local motion lights up the subject and textures, a pan lights up all)."""
    import cv2
    import numpy as np
    from stillmotion.engine.contact import _label, sample_frames

    song = tmp / "click_sheet.wav"
    write_click_track(song, 5.0, bpm=120)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("portrait", "landscape", "product"):
        image = photo(kind)
        size = load_image(image)
        width = 320
        height = max(2, round(width * size.height / size.width / 2) * 2)
        rows = []
        for preset in PRESETS:
            out = tmp / f"sheet_{kind}_{preset}.mp4"
            render_clip(request(image, out, width, height, 4.0, song, preset=preset))
            frames = sample_frames(out, 6, max_side=width)
            first = frames[0].astype(np.int16)
            tiles, heat = [], []
            for i, frame in enumerate(frames):
                tiles.append(_label(frame, f"{preset} #{i}" if i == 0 else f"#{i}"))
                diff = np.abs(frame.astype(np.int16) - first).max(axis=2).astype(np.float32)
                scaled = np.clip(diff * 8, 0, 255).astype(np.uint8)  # x8: 32 levels of change is full scale
                coloured = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
                heat.append(_label(coloured, "|f - f0| x8" if i == 0 else f"mean {diff.mean():.1f}"))
            for row in (tiles, heat):
                rows.append(np.hstack([np.pad(t, ((2, 2), (2, 2), (0, 0))) for t in row]))
        sheet = np.vstack(rows)
        ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        assert ok
        (folder / f"{kind}.png").write_bytes(data.tobytes())
        print(f"wrote {folder / f'{kind}.png'}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the 60-s 1080p RSS run")
    parser.add_argument("--long", action="store_true", help="also render 10 minutes at 640x360 (constant memory)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--contact-sheets", metavar="DIR", help="only write per-preset contact sheets to DIR")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.contact_sheets:
            contact_sheets(Path(args.contact_sheets), tmp)
            return
        song = tmp / "click.wav"
        write_click_track(song, 61.0, bpm=120)
        if not args.skip_speed:
            bench_speed(tmp, song, args.repeats)
        if not args.quick:
            rss, wall = peak_rss(tmp, song, 60.0, 1920, 1080)
            print(f"peak RSS, 60-s 1920x1080 render with audio and QC: {rss:.0f} MB (budget 1024), {wall:.1f} s")
        if args.long:
            for seconds in (60.0, 600.0):
                rss, wall = peak_rss(tmp, None, seconds, 640, 360)
                print(f"peak RSS, {seconds / 60:.0f}-min 640x360 render, no audio, QC on: {rss:.0f} MB, {wall:.1f} s")
        if not args.skip_quality:
            bench_quality(tmp)


if __name__ == "__main__":
    main()
