"""`stillmotion analyze`: tempo, beats, downbeats, onsets, sections and per-frame features of a music file."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from typing import Any

NAME = "analyze"
HELP = "analyse music: tempo, beats, downbeats, onsets, sections and per-frame features as JSON (and a plot)"
DESCRIPTION = """\
Analyse an audio file (WAV, AIFF, FLAC, OGG, MP3, M4A/AAC, ...; mono to 5.1) and write its musical features.

The whole file is analysed once (a mono mix) and cached by content hash in the StillMotion cache folder
(override with STILLMOTION_CACHE_DIR); --start/--duration choose the range whose per-frame features are written.
Frame k covers exactly [start + k/fps, start + (k+1)/fps).

JSON output:
  tempo                 BPM of the range (null when no steady beat, e.g. silence), tempo_confidence 0..1
  meter                 3 or 4 beats per bar (null without beats)
  beats, downbeats      seconds, absolute in the file, inside the range
  beat_positions        1..meter for each beat
  onsets, onset_strengths
  sections              [{start, end, label}] with label low / mid / high intensity
  beat_grid             the editor's grid options used (--bpm, --tempo-range, --beats, --beat-offset), if any
  fps, fps_exact        frame rate as a number and as an exact fraction ("24000/1001")
  frames                count, start, and per-frame arrays energy, onset, low, mid, high, flux (0..1,
                        independent of the song's loudness), beat_phase (0 on a beat's frame rising towards 1),
                        beat and downbeat (1 on the frame containing one)

Exit status: 0 on success (also for silence), 2 for bad input or an existing output without --overwrite.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", metavar="AUDIO", help="audio file to analyse")
    parser.add_argument("--fps", default="24", help="frame rate of the grid: 24, 25, 23.976, 29.97, 24000/1001 "
                        "(default 24)")
    parser.add_argument("--start", default="0", help="start of the range in the file, seconds (default 0)")
    parser.add_argument("--duration", default=None,
                        help="length of the range, seconds (default: to the end of the file); a range past the "
                        "end is silence")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="where to write the features")
    parser.add_argument("--plot", metavar="OUT.png", help="also draw waveform, onsets, bands, tempo, beats and "
                        "sections into this PNG")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    from ._render_options import add_grid_options

    add_grid_options(parser)


def build_report(analysis: Any, features: Any, start: Fraction, duration: Fraction) -> dict[str, Any]:
    """The JSON document: file-level facts restricted to the range, plus per-frame arrays."""
    end = float(start + duration)
    lo = float(start)

    def within(values: Any) -> list[float]:
        return [round(float(v), 5) for v in values if lo <= v < end]

    in_range = (analysis.beats >= lo) & (analysis.beats < end)
    sections = [{"start": max(a, lo), "end": min(b, end), "label": label}
                for a, b, label in analysis.sections if b > lo and a < end]
    onset_mask = (analysis.onsets >= lo) & (analysis.onsets < end)
    frames = features.to_json()
    return {
        "file": analysis.path,
        "file_duration": round(analysis.duration, 6),
        "range": {"start": round(lo, 6), "duration": round(float(duration), 6)},
        "tempo": None if features.tempo is None else round(float(features.tempo), 3),
        "file_tempo": None if analysis.tempo is None else round(float(analysis.tempo), 3),
        "tempo_confidence": round(float(analysis.tempo_confidence), 4),
        "meter": analysis.meter,
        "beats": within(analysis.beats),
        "beat_positions": [int(p) for p in analysis.beat_positions[in_range]],
        "downbeats": within(analysis.downbeats),
        "onsets": within(analysis.onsets),
        "onset_strengths": [round(float(v), 4) for v in analysis.onset_strengths[onset_mask]],
        "sections": sections,
        "fps": round(float(features.fps), 6),
        "fps_exact": str(features.fps),
        "frames": {"count": features.count, "start": round(lo, 6), **frames["frames"]},
    }


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_path, check_output, write_text
    from ..audio import audio_info, frame_features
    from ..audio.grid import analysis_for
    from ..rates import FrameGrid, frame_count, parse_fps, parse_seconds
    from ._render_options import grid_settings

    fps = parse_fps(args.fps)
    start = parse_seconds(args.start, "start", allow_zero=True)
    duration = None if args.duration is None else parse_seconds(args.duration, "duration")
    beat_grid = grid_settings(args)
    check_output(args.json, args.overwrite)
    if args.plot:
        check_output(args.plot, args.overwrite)
    info = audio_info(args.audio)
    analysis = analysis_for(args.audio, beat_grid)
    if duration is None:
        file_length = Fraction(analysis.duration).limit_denominator(info.sample_rate or 1)
        duration = max(file_length - start, Fraction(1, info.sample_rate or 1))
    grid = FrameGrid(fps=fps, count=frame_count(duration, fps), start=start)
    features = frame_features(analysis, grid)
    report = build_report(analysis, features, start, duration)
    if beat_grid is not None:
        report["beat_grid"] = beat_grid.to_json()
    write_text(args.json, json.dumps(report, indent=1) + "\n", overwrite=args.overwrite)
    if args.plot:
        from ..audio.plot import plot_analysis

        with atomic_path(args.plot, overwrite=args.overwrite) as tmp:
            plot_analysis(analysis, args.audio, tmp, start=start, duration=duration)
    tempo = "no steady beat" if report["tempo"] is None else f"{report['tempo']:.1f} BPM"
    meter = f", {analysis.meter}/4" if analysis.meter else ""
    print(f"{args.audio}: {tempo}{meter}, {len(report['beats'])} beats, {len(report['onsets'])} onsets, "
          f"{len(report['sections'])} sections, {grid.count} frames at {report['fps']:g} fps -> {args.json}")
    return 0
