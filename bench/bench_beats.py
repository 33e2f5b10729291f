"""Beat-tracking benchmark: mir_eval F-measure (70 ms window) per track, ours vs plain librosa.

Tracks: the synthetic set from tests/musicgen.py (MIDI ground truth, rendered with fluidsynth) plus madmom's
annotated sample from ../shared/fixtures/audio when present (CC BY-NC-SA: read in place, never copied).
First checks that our scoring reproduces mir_eval's own expected numbers on its reference/estimate pairs.

    .venv/bin/python bench/bench_beats.py [--keep DIR]

Scores are untrimmed (mir_eval.beat.evaluate drops the first 5 s; a 3-s clip needs its first beats right).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = REPO.parent / "shared" / "fixtures" / "audio"
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from stillmotion.engine.audio import analyze, load_audio  # noqa: E402  (sets NUMBA_CACHE_DIR first)


def check_mir_eval_reproduction() -> list[str]:
    """Recompute mir_eval's expected beat / onset F-measures from its fixture pairs; return mismatches."""
    import mir_eval

    problems: list[str] = []
    folder = SHARED_AUDIO / "mir_eval"
    if not folder.is_dir():
        return ["mir_eval fixtures missing (skipped)"]
    for kind, loader, evaluate in (("beat", mir_eval.io.load_events, mir_eval.beat.evaluate),
                                   ("onset", mir_eval.io.load_events, mir_eval.onset.evaluate)):
        for expected_path in sorted((folder / kind).glob("output*.json")):
            idx = expected_path.stem[len("output"):]
            ref = loader(str(folder / kind / f"ref{idx}.txt"))
            est = loader(str(folder / kind / f"est{idx}.txt"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = evaluate(ref, est)["F-measure"]
            want = json.loads(expected_path.read_text())["F-measure"]
            status = "ok" if abs(got - want) < 1e-6 else "MISMATCH"
            print(f"  mir_eval {kind} {idx}: expected F {want:.4f}, ours {got:.4f} {status}")
            if status != "ok":
                problems.append(f"{kind}{idx}")
    return problems


def score(ref: np.ndarray, est: np.ndarray) -> float:
    import mir_eval

    return float(mir_eval.beat.f_measure(np.asarray(ref, float), np.asarray(est, float), f_measure_threshold=0.07))


def librosa_beats(path: str) -> np.ndarray:
    """Plain librosa, out of the box: load at 22.05 kHz mono, beat_track defaults."""
    import librosa

    y, sr = librosa.load(path)
    _, frames = librosa.beat.beat_track(y=y, sr=sr)
    return librosa.frames_to_time(frames, sr=sr)


def load_tracks(workdir: Path) -> list[dict]:
    from musicgen import render_set

    tracks = [{"name": name, **info} for name, info in render_set(workdir).items()]
    sample = SHARED_AUDIO / "madmom" / "sample.wav"
    if sample.is_file():
        beats = np.loadtxt(SHARED_AUDIO / "madmom" / "sample.beats", comments="#", ndmin=2)[:, 0]
        tracks.append({"name": "madmom_sample", "wav": str(sample), "beats": beats.tolist(), "downbeats": []})
    return tracks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="render the synthetic set into this folder and keep it")
    args = parser.parse_args()
    print("mir_eval reproduction:")
    problems = check_mir_eval_reproduction()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STILLMOTION_CACHE_DIR", str(Path(tmp) / "cache"))
        workdir = Path(args.keep) if args.keep else Path(tmp) / "music"
        tracks = load_tracks(workdir)
        print(f"\n{'track':16s} {'ours':>6s} {'librosa':>8s} {'down':>6s} {'tempo ours':>10s} {'librosa':>8s}")
        ours_all, theirs_all = [], []
        ours_time = theirs_time = 0.0
        for track in tracks:
            t0 = time.perf_counter()
            result = analyze(track["wav"], use_cache=False)
            ours_time += time.perf_counter() - t0
            t0 = time.perf_counter()
            lib = librosa_beats(track["wav"])
            theirs_time += time.perf_counter() - t0
            f_ours, f_lib = score(track["beats"], result.beats), score(track["beats"], lib)
            down = score(track["downbeats"], result.downbeats) if len(track["downbeats"]) else float("nan")
            lib_tempo = 60.0 / np.median(np.diff(lib)) if lib.size > 1 else float("nan")
            tempo = f"{result.tempo:.1f}" if result.tempo else "-"
            print(f"{track['name']:16s} {f_ours:6.3f} {f_lib:8.3f} {down:6.3f} {tempo:>10s} {lib_tempo:8.1f}")
            ours_all.append(f_ours)
            theirs_all.append(f_lib)
        print(f"{'MEAN':16s} {np.mean(ours_all):6.3f} {np.mean(theirs_all):8.3f}")
        print(f"\nanalysis time: ours {ours_time:.2f} s, librosa {theirs_time:.2f} s "
              f"(librosa includes its numba JIT on a cold cache)")
        _ = load_audio  # imported first so NUMBA_CACHE_DIR is set before librosa
    if problems:
        print("mir_eval reproduction problems:", problems)
    return 0 if np.mean(ours_all) > np.mean(theirs_all) and not [p for p in problems if "skipped" not in p] else 1


if __name__ == "__main__":
    sys.exit(main())
