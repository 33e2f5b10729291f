"""`stillmotion qc`: measure a rendered clip against the quality gates and write the report as JSON (and a plot)."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import check_output, write_text
from ..errors import BadInputError
from ..images import load_image
from ..qc import ALL_GATES, QCThresholds, qc_video
from ..rates import FrameGrid, parse_seconds
from ..request import AudioSegment
from ..video import VideoInfo

NAME = "qc"
HELP = "check a clip for frozen motion, Ken Burns, identity drift, off-beat motion and flicker"
DESCRIPTION = f"""\
Check a rendered clip against StillMotion's quality gates and write the measures as JSON.

Gates (all on by default; --gates picks some):
  frozen     no region of the picture moves visibly (fastest coherent 1 % of the frame, sampled at 8 fps)
  ken_burns  the motion is mostly one pan / zoom / rotation of the whole frame, and the camera visibly moves
  drift      the subject or its colours change (vs. the first frame and --image)
  sync       motion misses the music's beats (needs --audio)
  flicker    brightness jumps from frame to frame

The JSON holds verdict ("pass"/"fail"), reasons, frozen, region_motion, dynamic_degree, ken_burns,
global_motion_share, camera_speed, identity_drift (0 = none), av_align, beat_hit_rate, beat_alignment (Beat
Alignment Score, σ in beat_alignment_sigma_frames), flicker, jitter, the thresholds used and per-frame curves.
Thresholds and what they mean: docs/qc.md. Exit code 0 when QC ran (whatever the verdict), 3 with --strict when
the clip fails, 2 on bad input.

Thresholds (override with --threshold NAME=VALUE):
{chr(10).join(f"  {name} = {value}" for name, value in QCThresholds().to_json().items() if name != "gates")}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="the clip to check (any format FFmpeg reads)")
    parser.add_argument("--image", metavar="REF", help="the still the clip was made from (drift is also measured "
                        "against it; other aspect ratios are centre-cropped to the clip's)")
    parser.add_argument("--audio", metavar="AUDIO", help="the music under the clip: its beats and onsets are "
                        "checked against the motion (sync gate, AV-Align)")
    parser.add_argument("--audio-start", metavar="S", default="0",
                        help="seconds into AUDIO where the clip's first frame plays (default 0)")
    parser.add_argument("--json", metavar="OUT.json", required=True, help="where to write the report")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="also draw motion energy with beats and onsets, and the drift curve")
    parser.add_argument("--gates", metavar="LIST",
                        help=f"comma-separated gates that can fail the clip (default: all: {','.join(ALL_GATES)}); "
                        "'none' measures without judging")
    parser.add_argument("--threshold", metavar="NAME=VALUE", action="append", default=[],
                        help="override one threshold, e.g. max_global_motion_share=0.8 (repeatable)")
    parser.add_argument("--thresholds", metavar="FILE.json", help="read thresholds from a JSON object")
    parser.add_argument("--strict", action="store_true", help="exit with code 3 when the verdict is fail")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    from ._render_options import add_grid_options

    add_grid_options(parser)  # the sync gate then judges against the editor's corrected beat grid


def _thresholds(args: argparse.Namespace) -> QCThresholds:
    return QCThresholds.from_overrides(args.gates, args.threshold, args.thresholds)


def _music_times(audio: str, start: Fraction, info: VideoInfo, beat_grid: Any = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Beats and onsets of the music under the clip, in clip time."""
    from .. import audio as audio_analysis

    if not Path(audio).is_file():
        raise BadInputError(f"audio {audio} does not exist")
    grid = FrameGrid(info.fps, info.frames)
    segment = AudioSegment(path=audio, source_start=start, duration=grid.duration)
    features = audio_analysis.clip_features([segment], grid, beat_grid)
    return np.asarray(features.beat_times, dtype=float), np.asarray(features.onset_times, dtype=float)


def run(args: argparse.Namespace) -> int:
    if not Path(args.video).is_file():
        raise BadInputError(f"video {args.video} does not exist")
    check_output(args.json, args.overwrite)
    if args.plot:
        check_output(args.plot, args.overwrite)
    thresholds = _thresholds(args)
    from ._render_options import grid_settings

    beat_grid = grid_settings(args)
    if beat_grid is not None and not args.audio:
        raise BadInputError("--bpm, --tempo-range, --beats and --beat-offset need --audio")
    start = parse_seconds(args.audio_start, "--audio-start", allow_zero=True)
    info = VideoInfo(args.video)
    if not info.fps or info.fps <= 0:
        raise BadInputError(f"{args.video} has no usable frame rate")
    reference = load_image(args.image).rgb if args.image else None
    beats = onsets = None
    if args.audio:
        beats, onsets = _music_times(args.audio, start, info, beat_grid)
    report = qc_video(args.video, reference_image=reference, beat_times=beats, onset_times=onsets,
                      thresholds=thresholds)
    data = report.to_json()
    data["video"] = str(args.video)
    data["image"] = args.image
    data["audio"] = None if not args.audio else {"path": args.audio, "start": str(start)}
    if beat_grid is not None:
        data["beat_grid"] = beat_grid.to_json()
    write_text(args.json, json.dumps(data, indent=1) + "\n", overwrite=args.overwrite)
    if args.plot:
        from ..qc.plot import plot_report

        plot_report(report, args.plot, overwrite=args.overwrite, title=Path(args.video).name)
    summary = "; ".join(report.reasons) if report.reasons else "all gates passed"
    print(f"{report.verdict}: {summary} ({report.frames} frames, QC {report.seconds:.2f} s)")
    return 3 if args.strict and report.verdict == "fail" else 0
