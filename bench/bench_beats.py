"""Beat-tracking benchmark on songs nobody tuned on: a fixed development seed range, a fresh range, real recordings.

Songs come from the seeded generator in tests/musicgen.py (MIDI ground truth, rendered with fluidsynth; cached
on disk by seed + generator version so reruns only re-analyse). Tune ONLY on the development range (seeds
0..DEV-1); the fresh range is drawn anew every run (printed, so a run can be repeated with --fresh-start).
Real recordings: madmom's annotated sample in ../shared/fixtures/audio (CC BY-NC-SA, read in place, never copied),
and with --real-dir DIR the recordings of bench/real_beats_sources.md (or any audio + NAME.beats); the ones the
tracker was tuned on (`tuned_on`) are scored apart from the held-out rest, which the target is judged on.

Measures (mir_eval, 70 ms, untrimmed — a 3-s clip needs its first beats right): beat F-measure, CMLt, AMLt,
the correct-metrical-level rate (tracked tempo within 4 % of the notated one: median inter-beat intervals of the
estimate vs the ground truth), downbeat F. Ours is the default tracker (the trained network + decoder,
engine/audio/beat_model.py, trained on development seeds 0..599 only by bench/train_beat_model.py); the DSP
tracker (engine/audio/beats.py) runs beside it. Plain `librosa.beat.beat_track` runs beside ours on the same audio;
madmom's downbeat tracker and its beat-only tracker too when madmom is importable, or when --madmom-python names
an interpreter of another venv that has it (bench/madmom_reference.py runs there; bench reference only: its models
are CC BY-NC-SA).

    .venv/bin/python bench/bench_beats.py [--dev 40] [--fresh 40] [--fresh-start N] [--cache DIR] [--no-librosa]
                                          [--no-dsp] [--no-madmom] [--madmom-python PY] [--real-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = REPO.parent / "shared" / "fixtures" / "audio"
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from stillmotion.engine.audio import analyze, analyze_samples, load_audio  # noqa: E402  (sets NUMBA_CACHE_DIR)
from stillmotion.engine.audio.grid import read_beat_file  # noqa: E402

#: Targets on the fresh range (issue 14).
TARGETS = {"mean_f": 0.97, "min_f": 0.90, "level": 0.95, "down_f": 0.90, "real_f": 0.95, "three_min_s": 1.0}


def check_mir_eval_reproduction() -> list[str]:
    """Recompute mir_eval's expected beat F-measures from its fixture pairs; return mismatches."""
    import mir_eval

    problems: list[str] = []
    folder = SHARED_AUDIO / "mir_eval" / "beat"
    if not folder.is_dir():
        return ["mir_eval fixtures missing (skipped)"]
    for expected_path in sorted(folder.glob("output*.json")):
        idx = expected_path.stem[len("output"):]
        ref = mir_eval.io.load_events(str(folder / f"ref{idx}.txt"))
        est = mir_eval.io.load_events(str(folder / f"est{idx}.txt"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = mir_eval.beat.evaluate(ref, est)["F-measure"]
        want = json.loads(expected_path.read_text())["F-measure"]
        if abs(got - want) > 1e-6:
            problems.append(f"beat{idx}: expected {want:.4f}, got {got:.4f}")
    return problems


def _median_bpm(beats: np.ndarray) -> float:
    return float(60.0 / np.median(np.diff(beats))) if len(beats) > 2 else float("nan")


def measures(ref_beats, est_beats, ref_down=None, est_down=None) -> dict[str, float]:
    """mir_eval beat measures (70 ms, untrimmed) plus the metrical-level flag and downbeat F."""
    import mir_eval

    ref, est = np.asarray(ref_beats, float), np.asarray(est_beats, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=0.07))
        if est.size > 1:
            _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
        else:
            cmlt = amlt = 0.0
        down = float("nan")
        if ref_down is not None and len(ref_down) and est_down is not None:
            down = float(mir_eval.beat.f_measure(np.asarray(ref_down, float), np.asarray(est_down, float),
                                                 f_measure_threshold=0.07))
    est_bpm, ref_bpm = _median_bpm(est), _median_bpm(ref)
    level = bool(np.isfinite(est_bpm) and abs(est_bpm / ref_bpm - 1.0) <= 0.04)
    return {"f": f, "cmlt": float(cmlt), "amlt": float(amlt), "level": float(level), "down": down,
            "bpm": est_bpm, "ref_bpm": ref_bpm}


def librosa_beats(path: str) -> np.ndarray:
    """Plain librosa, out of the box: load at 22.05 kHz mono, beat_track defaults."""
    import librosa

    y, sr = librosa.load(path)
    _, frames = librosa.beat.beat_track(y=y, sr=sr)
    return librosa.frames_to_time(frames, sr=sr)


def madmom_reference(paths: list[str], python: str | None = None) -> dict[str, dict[str, np.ndarray]] | None:
    """{path: {"beats", "downbeats", "beat_only"}} from madmom's downbeat tracker and its beat-only tracker
    (bench/madmom_reference.py): in this interpreter when madmom is importable, else run by `python` (another venv
    that has madmom); None when neither can."""
    if python:
        done = subprocess.run([python, str(REPO / "bench" / "madmom_reference.py")], input=json.dumps(paths),
                              capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"bench_beats: madmom through {python} failed: {last}")
        found = json.loads(done.stdout)
    else:
        try:
            import madmom  # noqa: F401
        except ImportError:
            return None
        import madmom_reference  # beside this file: the script's own folder is on sys.path

        found = {p: madmom_reference.track(p) for p in paths}
    return {p: {k: np.asarray(v, float) for k, v in found[p].items()} for p in paths}


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


def read_beat_annotation(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(beats, downbeats) of an annotation: a `.beats` file (time [position] per line; position 1 = downbeat)
    through the engine's own beat-file reader, or a CSV whose first numeric column is the beat time (after a
    pandas index column, as JTD's are) and whose last, when integral, is the position in the bar."""
    if path.suffix != ".csv":
        return read_beat_file(path)
    rows = []
    for line in path.read_text().splitlines():
        cells = [c for c in line.replace(",", " ").replace("\t", " ").split() if c]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            continue  # a header
        if values:
            rows.append(values)
    if path.suffix == ".csv" and rows and len(rows[0]) > 2:
        rows = [r[1:] for r in rows]  # a pandas index column first
    beats = np.array([r[0] for r in rows])
    positions = np.array([r[-1] if len(r) > 1 else 0.0 for r in rows])
    downbeats = beats[positions == 1] if np.all(positions == np.round(positions)) and positions.any() else beats[:0]
    return beats, downbeats


def real_tracks(real_dir: str | None = None) -> list[dict]:
    """Real recordings with manual beat annotations on this machine, read in place: madmom's sample in ../shared,
    plus every audio file in `real_dir` with an annotation beside it (NAME.beats, NAME.csv or NAME.beats.csv).
    Third-party recordings whose licence forbids copying stay outside the repo; see docs/audio.md."""
    tracks = []
    sample = SHARED_AUDIO / "madmom" / "sample.wav"
    if sample.is_file():
        beats = np.loadtxt(SHARED_AUDIO / "madmom" / "sample.beats", comments="#", ndmin=2)[:, 0]
        tracks.append({"name": "madmom_sample", "wav": str(sample), "beats": beats.tolist(), "downbeats": []})
    for audio in sorted(Path(real_dir).iterdir()) if real_dir else []:
        if audio.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        notes = [audio.with_suffix(s) for s in (".beats", ".csv", ".beats.csv") if audio.with_suffix(s).is_file()]
        if not notes:
            continue
        beats, downbeats = read_beat_annotation(notes[0])
        if beats.size >= 4:
            tracks.append({"name": audio.stem[:24], "wav": str(audio), "beats": beats.tolist(),
                           "downbeats": downbeats.tolist()})
    return tracks


#: Real recordings the shipped tracker was tuned on (version 10's tempo-head weight, version 11's network / DSP
#: choice: docs/audio.md):
#: the even-numbered GTZAN clips and the Ballroom waltz of bench/real_beats_sources.md. They are scored apart,
#: and the real-music target is judged on the rest (odd GTZAN clips, madmom's sample, anything new) only.
def tuned_on(track: dict) -> bool:
    name = track["name"]
    if name.startswith("ballroom_"):
        return True
    number = name.rsplit("_", 1)[-1]
    return name.startswith("gtzan_") and number.isdigit() and int(number) % 2 == 0


def run_set(label: str, tracks: list[dict], use_librosa: bool, use_madmom: bool, use_dsp: bool = True,
            madmom_python: str | None = None) -> dict:
    if not tracks:
        return {k: float("nan") for k in ("mean_f", "min_f", "cmlt", "amlt", "level", "down_f")}
    print(f"\n== {label} ({len(tracks)} songs) ==")
    print(f"{'song':24s} {'ref bpm':>7s} | {'F':>5s} {'CMLt':>5s} {'AMLt':>5s} {'lvl':>3s} {'down':>5s} {'bpm':>6s}"
          + (" | DSP F  lvl  down" if use_dsp else "")
          + (" | librosa F  lvl   bpm" if use_librosa else "") + (" | madmom F  down  beat F" if use_madmom else ""))
    rows, dsp_rows, lib_rows, mm_rows, seconds = [], [], [], [], 0.0
    madmom = madmom_reference([t["wav"] for t in tracks], madmom_python) if use_madmom else None
    mm_beat_rows = []
    for track in tracks:
        t0 = time.perf_counter()
        result = analyze(track["wav"], use_cache=False)
        seconds += time.perf_counter() - t0
        m = measures(track["beats"], result.beats, track.get("downbeats"), result.downbeats)
        rows.append(m)
        line = (f"{track['name']:24s} {m['ref_bpm']:7.1f} | {m['f']:5.3f} {m['cmlt']:5.3f} {m['amlt']:5.3f} "
                f"{'ok' if m['level'] else 'NO':>3s} {m['down']:5.3f} {m['bpm']:6.1f}")
        if use_dsp:
            dr = analyze(track["wav"], use_cache=False, tracker="dsp")
            dm = measures(track["beats"], dr.beats, track.get("downbeats"), dr.downbeats)
            dsp_rows.append(dm)
            line += f" | {dm['f']:5.3f} {'ok' if dm['level'] else 'NO':>4s} {dm['down']:5.3f}"
        if use_librosa:
            lm = measures(track["beats"], librosa_beats(track["wav"]))
            lib_rows.append(lm)
            line += f" | {lm['f']:9.3f} {'ok' if lm['level'] else 'NO':>4s} {lm['bpm']:5.1f}"
        if madmom is not None:
            got = madmom[track["wav"]]
            mm = measures(track["beats"], got["beats"], track.get("downbeats"), got["downbeats"])
            mm_rows.append(mm)
            mm_beat_rows.append(measures(track["beats"], got["beat_only"]))
            line += f" | {mm['f']:8.3f} {mm['down']:5.3f} {mm_beat_rows[-1]['f']:6.3f}"
        print(line)
    summary = summarise(rows)
    print(f"{'ours':24s} mean F {summary['mean_f']:.3f}  min F {summary['min_f']:.3f}  CMLt {summary['cmlt']:.3f}  "
          f"AMLt {summary['amlt']:.3f}  level {summary['level']:.1%}  downbeat F {summary['down_f']:.3f}  "
          f"({seconds:.1f} s)")
    if dsp_rows:
        ds = summarise(dsp_rows)
        summary["dsp"] = ds
        print(f"{'DSP tracker':24s} mean F {ds['mean_f']:.3f}  min F {ds['min_f']:.3f}  CMLt {ds['cmlt']:.3f}  "
              f"AMLt {ds['amlt']:.3f}  level {ds['level']:.1%}  downbeat F {ds['down_f']:.3f}")
    if lib_rows:
        ls = summarise(lib_rows)
        summary["librosa"] = ls
        print(f"{'librosa':24s} mean F {ls['mean_f']:.3f}  min F {ls['min_f']:.3f}  CMLt {ls['cmlt']:.3f}  "
              f"AMLt {ls['amlt']:.3f}  level {ls['level']:.1%}")
    if mm_rows:
        ms = summarise(mm_rows)
        summary["madmom"] = ms
        print(f"{'madmom':24s} mean F {ms['mean_f']:.3f}  min F {ms['min_f']:.3f}  CMLt {ms['cmlt']:.3f}  "
              f"AMLt {ms['amlt']:.3f}  level {ms['level']:.1%}  downbeat F {ms['down_f']:.3f}")
        mb = summarise(mm_beat_rows)
        summary["madmom_beat"] = mb
        print(f"{'madmom beat tracker':24s} mean F {mb['mean_f']:.3f}  min F {mb['min_f']:.3f}  CMLt {mb['cmlt']:.3f}  "
              f"AMLt {mb['amlt']:.3f}  level {mb['level']:.1%}")
    elif use_madmom:
        print("madmom: not importable here and no --madmom-python (bench reference only), skipped")
    return summary


def summarise(rows: list[dict]) -> dict:
    f = np.array([r["f"] for r in rows])
    down = np.array([r["down"] for r in rows])
    return {"mean_f": float(f.mean()), "min_f": float(f.min()), "cmlt": float(np.mean([r["cmlt"] for r in rows])),
            "amlt": float(np.mean([r["amlt"] for r in rows])), "level": float(np.mean([r["level"] for r in rows])),
            "down_f": float(np.nanmean(down)) if np.isfinite(down).any() else float("nan")}


def three_minutes_warm(songs: list[dict]) -> tuple[float, float]:
    """(seconds for our analysis of 3 minutes of music, warm; librosa beat_track on the same signal)."""
    from stillmotion.engine.audio import spectral

    parts, total = [], 0
    for song in songs:
        clip = load_audio(song["wav"], sample_rate=spectral.SAMPLE_RATE, mono=True).samples[0]
        parts.append(clip)
        total += clip.size
        if total >= 180 * spectral.SAMPLE_RATE:
            break
    y = np.concatenate(parts)[: 180 * spectral.SAMPLE_RATE].astype(np.float32)
    analyze_samples(y[: 20 * spectral.SAMPLE_RATE])  # warm: imports, filterbanks
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        analyze_samples(y)
        times.append(time.perf_counter() - t0)
    import librosa

    librosa.beat.beat_track(y=y[: 20 * spectral.SAMPLE_RATE], sr=spectral.SAMPLE_RATE)  # JIT warm-up
    t0 = time.perf_counter()
    librosa.beat.beat_track(y=y, sr=spectral.SAMPLE_RATE)
    return float(np.median(times)), time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=int, default=60, help="development seeds 0..N-1 scored (the network was trained on 0..599, validated on 600..639; the DSP level scorer fit on 0..399)")
    parser.add_argument("--fresh", type=int, default=40, help="fresh seeds drawn this run")
    parser.add_argument("--fresh-start", type=int, help="repeat a run's fresh range (printed by that run)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "stillmotion-bench" / "musicgen"),
                        help="rendered songs, keyed by seed + generator version")
    parser.add_argument("--no-librosa", action="store_true")
    parser.add_argument("--no-madmom", action="store_true")
    parser.add_argument("--madmom-python", metavar="PY",
                        help="an interpreter of another venv that has madmom (docs/audio.md): runs the reference there")
    parser.add_argument("--no-dsp", action="store_true", help="skip the DSP tracker's column")
    parser.add_argument("--real-dir", help="more real recordings: audio files with NAME.beats / NAME.csv beside "
                                           "them, read in place (third-party material is never copied)")
    args = parser.parse_args()
    from musicgen import GEN_VERSION, render_song

    problems = check_mir_eval_reproduction()
    print("mir_eval reproduction:", "ok" if not problems else problems)
    os.environ.setdefault("STILLMOTION_CACHE_DIR", str(Path(args.cache).parent / "analysis-cache"))
    start = args.fresh_start if args.fresh_start is not None else 1_000_000 + secrets.randbelow(10**9)
    dev_seeds = list(range(args.dev))
    fresh_seeds = list(range(start, start + args.fresh))
    print(f"generator v{GEN_VERSION}; dev seeds 0..{args.dev - 1}; fresh seeds {start}..{start + args.fresh - 1} "
          f"(repeat with --fresh-start {start})")
    t0 = time.perf_counter()
    dev = [render_song(s, Path(args.cache)) for s in dev_seeds]
    fresh = [render_song(s, Path(args.cache)) for s in fresh_seeds]
    print(f"rendered / loaded {len(dev) + len(fresh)} songs in {time.perf_counter() - t0:.1f} s")
    madmom, lib, dsp = not args.no_madmom, not args.no_librosa, not args.no_dsp
    results = {"dev": run_set("DEV (tuned / trained on)", dev, lib, madmom, dsp, args.madmom_python),
               "fresh": run_set("FRESH (never tuned on)", fresh, lib, madmom, dsp, args.madmom_python)}
    real = real_tracks(args.real_dir)
    tuned = [t for t in real if tuned_on(t)]
    held = [t for t in real if not tuned_on(t)]
    if tuned:
        results["real_tuned"] = run_set("REAL recordings, tuned on (not the target)", tuned, lib, madmom, dsp,
                                          args.madmom_python)
    if held:
        results["real"] = run_set("REAL recordings, held out", held, lib, madmom, dsp, args.madmom_python)
    ours_s, lib_s = three_minutes_warm(fresh or dev)
    print(f"\n3 minutes analysed, warm: ours {ours_s:.2f} s (median of 3; beats, onsets, sections, envelopes), "
          f"librosa beat_track {lib_s:.2f} s; ratio {ours_s / lib_s:.2f}")
    fr = results["fresh"]
    checks = [("fresh mean beat F", fr["mean_f"], TARGETS["mean_f"]), ("fresh min beat F", fr["min_f"],
              TARGETS["min_f"]), ("fresh correct level", fr["level"], TARGETS["level"]),
              ("fresh downbeat F", fr["down_f"], TARGETS["down_f"])]
    if "real" in results:
        checks.append(("real held-out mean F", results["real"]["mean_f"], TARGETS["real_f"]))
    print("\nTargets (fresh range):")
    ok = True
    for name, value, target in checks:
        met = value >= target
        ok &= met
        print(f"  {name:22s} {value:6.3f}  target >= {target:.2f}  {'met' if met else 'NOT met'}")
    met = ours_s <= TARGETS["three_min_s"]
    ok &= met
    print(f"  {'3 min warm (s)':22s} {ours_s:6.2f}  target <= {TARGETS['three_min_s']:.1f}  {'met' if met else 'NOT met'}")
    return 0 if ok and not [p for p in problems if "skipped" not in p] else 1


if __name__ == "__main__":
    sys.exit(main())
