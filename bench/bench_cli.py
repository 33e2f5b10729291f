"""Benchmark the `stillmotion render` command as a user meets it: one whole process, start-up included.

    .venv/bin/python bench/bench_cli.py                    # 10-s 1080p24 + audio + QC vs ffmpeg, fixed cost
    .venv/bin/python bench/bench_cli.py --repeats 5 --rss  # more runs; also peak RSS of a 60-s 1080p render
    .venv/bin/python bench/bench_cli.py --baseline /other/venv/bin/python   # the same command from another install

Material: a 512x600 portrait (resources/demo/astronaut.png resized, saved as JPEG) and the demo song
(resources/demo/demo_music.flac decoded to WAV), rendered to 1920x1080 at 24 fps for 10 s with QC on (the
default). Reference, in the same run and alternating with it: ffmpeg's own Ken Burns (`zoompan`, a slow centred zoom
to 1.3x) with libx264 `veryfast` at the same CRF (16) and the same song muxed as AAC 192 kb/s. The machine is
shared, so every figure is the median of `--repeats` alternating runs and the target is the ratio of medians.
Fixed cost: the same command for a 1-frame clip (start-up, still and music analysis, encoder and QC set-up),
beside `python -c "import numpy, cv2, av"` as the floor no Python CLI of this stack can go under. Wall time is
`time.perf_counter` around `subprocess`; CPU and peak RSS come from `os.wait4`'s rusage of that child alone.
The still-analysis cache (engine/backends/still_cache.py) is cleared before each "cold" 1-frame run and left warm
for the "warm" ones (an editor re-rendering the same still); before a "new" run the whole cache goes (a still and a
song never rendered before: the music is analysed too). The children run with bytecode writing allowed (the
untimed first render compiles it), as in an installed package, whatever PYTHONDONTWRITEBYTECODE the shell has.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo"
CRF = 16
FPS = 24


def make_material(folder: Path) -> tuple[Path, Path]:
    """The issue's material: a 512x600 portrait JPEG and a WAV song."""
    import soundfile as sf
    from PIL import Image

    still = folder / "still.jpg"
    Image.open(DEMO / "astronaut.png").convert("RGB").resize((512, 600), Image.LANCZOS).save(still, quality=92)
    song = folder / "song.wav"
    data, rate = sf.read(str(DEMO / "demo_music.flac"), dtype="float32")
    sf.write(str(song), data, rate)
    return still, song


def ours(python: str, still: Path, song: Path, out: Path, seconds: str, width: int = 1920,
         height: int = 1080) -> list[str]:
    return [python, "-m", "stillmotion.engine", "render", str(still), "--audio", str(song), "--duration", seconds,
            "--fps", str(FPS), "--width", str(width), "--height", str(height), "-o", str(out), "--overwrite",
            "--json"]


def zoompan(still: Path, song: Path, out: Path, seconds: int, width: int = 1920, height: int = 1080) -> list[str]:
    frames = seconds * FPS
    graph = (f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},"
             f"zoompan=z='min(zoom+{0.3 / frames:.6f},1.3)':d={frames}:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
             f":s={width}x{height}:fps={FPS}")
    return ["ffmpeg", "-v", "error", "-y", "-i", str(still), "-i", str(song), "-filter_complex", f"[0:v]{graph}[v]",
            "-map", "[v]", "-map", "1:a", "-frames:v", str(frames), "-t", str(seconds), "-c:v", "libx264",
            "-preset", "veryfast", "-crf", str(CRF), "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k",
            str(out)]


def timed(command: list[str], env: dict[str, str] | None = None) -> dict[str, float | str]:
    """Run one command; wall seconds, CPU seconds (user + sys) and peak RSS (MB) of that process alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=str(ROOT))
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage (Popen.wait would discard it)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode:
        raise RuntimeError(f"{command[0]} ... failed ({process.returncode}): {stderr.decode()[-400:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "stdout": stdout.decode()}


def _verdict(run: dict[str, float | str]) -> str:
    try:
        summary = json.loads(str(run["stdout"]))
    except json.JSONDecodeError:
        return "?"
    qc = summary.get("qc") or {}
    return f"{qc.get('verdict', 'off')}/{len(summary.get('attempts', []))} attempt(s)"


def _median(runs: list[dict[str, float | str]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _spread(runs: list[dict[str, float | str]], key: str = "wall") -> str:
    return "[" + ", ".join(f"{float(r[key]):.2f}" for r in runs) + "]"


def _load() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def _clear_cache(env: dict[str, str], kind: str = "") -> None:
    """Forget the still analyses ("stills") or, with no kind, everything (the songs' analyses too)."""
    shutil.rmtree(Path(env["STILLMOTION_CACHE_DIR"]) / kind, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each command (default 3)")
    parser.add_argument("--rss", action="store_true", help="also a 60-s 1080p render: peak RSS (budget 600 MB)")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also time the same command run by this interpreter (another install of stillmotion)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        still, song = make_material(tmp)
        env = dict(os.environ, STILLMOTION_CACHE_DIR=str(tmp / "cache"))
        # an installed package has its bytecode (pip compiles it); a shell that says not to write it would time
        # the compiler on every run instead (~0.3 s of the fixed cost)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        pythons = {"ours": sys.executable}
        if args.baseline:
            pythons["baseline"] = args.baseline
        # one untimed render per install: fills the song's analysis cache (a user's second render onwards)
        for python in pythons.values():
            timed(ours(python, still, song, tmp / "warm.mp4", "1"), env)
        runs: dict[str, list[dict[str, float | str]]] = {"zoompan": [], "floor": []}
        for name in pythons:
            runs.update({f"{name} 10 s": [], f"{name} 1 frame new": [], f"{name} 1 frame cold": [],
                         f"{name} 1 frame warm": []})
        load_start = _load()
        one_frame = f"{1 / FPS:.4f}"
        for _ in range(args.repeats):
            runs["zoompan"].append(timed(zoompan(still, song, tmp / "zoompan.mp4", 10)))
            for name, python in pythons.items():
                runs[f"{name} 10 s"].append(timed(ours(python, still, song, tmp / f"{name}.mp4", "10"), env))
            runs["floor"].append(timed([sys.executable, "-c", "import numpy, cv2, av"]))
            for name, python in pythons.items():
                _clear_cache(env)
                runs[f"{name} 1 frame new"].append(timed(ours(python, still, song, tmp / "one.mp4", one_frame), env))
                _clear_cache(env, "stills")
                runs[f"{name} 1 frame cold"].append(timed(ours(python, still, song, tmp / "one.mp4", one_frame), env))
                runs[f"{name} 1 frame warm"].append(timed(ours(python, still, song, tmp / "one.mp4", one_frame), env))
        reference = _median(runs["zoompan"], "wall")
        print(f"whole process, 512x600 portrait -> 1920x1080 24 fps, song muxed, QC on ({args.repeats} alternating "
              f"runs, medians; load average {load_start:.1f} at start, {_load():.1f} at end, {os.cpu_count()} cores):")
        for name, group in runs.items():
            wall, cpu, rss = _median(group, "wall"), _median(group, "cpu"), _median(group, "rss")
            ratio = f"  wall ratio {wall / reference:.2f}x" if name.endswith("10 s") else ""
            verdict = f"  QC {_verdict(group[0])}" if name.endswith("10 s") else ""
            print(f"  {name:24s} wall {wall:6.2f} s {_spread(group):28s} CPU {cpu:6.2f} s  RSS {rss:5.0f} MB"
                  f"{ratio}{verdict}")
        print("  target: 10 s render <= 1.0x zoompan (stretch 0.8x); 1-frame render (fixed cost) <= 0.6 s")
        if args.rss:
            run = timed(ours(sys.executable, still, song, tmp / "rss.mp4", "60"), env)
            print(f"peak RSS, 60-s 1920x1080 render with audio and QC (whole process): {float(run['rss']):.0f} MB "
                  f"(budget 600), wall {float(run['wall']):.1f} s, QC {_verdict(run)}")


if __name__ == "__main__":
    main()
