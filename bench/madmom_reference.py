"""madmom's trackers as a bench reference (never a runtime dependency: its models are CC BY-NC-SA): the RNN + DBN
downbeat tracker and the beat-only RNN + DBN beat tracker.

Imported by bench/bench_beats.py when madmom is importable in the project's interpreter; otherwise run as a
script by another interpreter that has madmom (`bench_beats.py --madmom-python PY`): audio paths as a JSON list on
stdin, {path: `track(path)`} as JSON on stdout. This file imports nothing of stillmotion, so it runs in a venv that
has only madmom and its dependencies.
"""

from __future__ import annotations

import json
import sys


def downbeats(path: str) -> tuple[list[float], list[float]]:
    """(beat times, downbeat times) in seconds."""
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    activation = RNNDownBeatProcessor()(path)
    out = DBNDownBeatTrackingProcessor(beats_per_bar=[2, 3, 4], fps=100)(activation)
    return out[:, 0].tolist(), out[out[:, 1] == 1, 0].tolist()


def beats(path: str) -> list[float]:
    """Beat times in seconds from the beat-only tracker (madmom's `DBNBeatTrackingProcessor`)."""
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor

    return DBNBeatTrackingProcessor(fps=100)(RNNBeatProcessor()(path)).tolist()


def track(path: str) -> dict[str, list[float]]:
    """Both trackers on one file: {"beats", "downbeats"} from the downbeat tracker, "beat_only" from the other."""
    beat_times, down = downbeats(path)
    return {"beats": beat_times, "downbeats": down, "beat_only": beats(path)}


def main() -> None:
    json.dump({path: track(path) for path in json.load(sys.stdin)}, sys.stdout)


if __name__ == "__main__":
    main()
