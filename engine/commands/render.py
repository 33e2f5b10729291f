"""`stillmotion render`: one still (plus a song) in, one synchronised clip out."""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

from ..backends.base import Event, Progress
from ..errors import BadInputError
from ..images import default_size, load_image
from ..rates import fps_label, frame_count, parse_fps, parse_seconds
from ..render import render_clip
from ..request import AudioSegment, RenderRequest
from ._render_options import add_render_options, render_settings

NAME = "render"
HELP = "animate one still for an exact duration, driven by the music"
DESCRIPTION = """\
Animate IMAGE for exactly round(duration x fps) frames and write an H.264 MP4 (AAC audio when --audio is given).

The still is fitted to WxH ('cover' scales to fill and centre-crops, 'letterbox' fits inside on black bars);
the default size is the image's own, capped at 1920 on the long side, rounded to even. The audio segment
[audio-start, audio-start + duration) is muxed in and drives the motion. Rates: 24, 25, 30, 50, 60, 23.976,
29.97, 59.94 or fractions such as 24000/1001 (23.976 means 24000/1001 exactly).

examples:
  stillmotion render still.jpg --audio song.mp3 --audio-start 12.5 --duration 4 --fps 23.976 -o shot.mp4
  stillmotion render still.png --duration 3 --fps 25 --preset calm --anchor end -o shot.mp4 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="the still to animate (PNG, JPEG, TIFF, WebP, ...)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="output video file")
    parser.add_argument("--audio", metavar="AUDIO", help="music to sync to and mux in (WAV, FLAC, MP3, M4A, ...)")
    parser.add_argument("--audio-start", default="0", metavar="SECONDS",
                        help="where in AUDIO the clip starts (default 0)")
    parser.add_argument("--duration", required=True, metavar="SECONDS", help="clip length in seconds")
    parser.add_argument("--fps", required=True, metavar="FPS", help="frame rate, e.g. 24, 23.976, 30000/1001")
    parser.add_argument("--width", type=int, metavar="W", help="output width (even; default from the image)")
    parser.add_argument("--height", type=int, metavar="H", help="output height (even; default from the image)")
    parser.add_argument("--end-image", metavar="IMAGE",
                        help="two-still mode (diffusion engines): the clip moves from IMAGE to this still")
    parser.add_argument("--alpha", action="store_true",
                        help="keep the still's alpha: writes ProRes 4444 (use a .mov output)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    add_render_options(parser)


def build_request(args: argparse.Namespace) -> RenderRequest:
    """Turn parsed arguments into a validated request (all bad input fails here, before any work)."""
    fps = parse_fps(args.fps)
    duration = parse_seconds(args.duration)
    audio_start = parse_seconds(args.audio_start, "audio start", allow_zero=True)
    frames = frame_count(duration, fps)
    if frames > 24 * 3600 * 3:
        raise BadInputError(f"{frames} frames is absurd for one clip")
    still = load_image(args.image, hand_over=True)  # fails early on a bad image; the render takes this decode
    width, height = default_size((still.width, still.height), args.width, args.height)
    audio: list[AudioSegment] = []
    if args.audio:
        if not Path(args.audio).is_file():
            raise BadInputError(f"audio {args.audio} does not exist")
        audio = [AudioSegment(path=str(Path(args.audio).resolve()), source_start=audio_start,
                              duration=Fraction(frames) / fps)]
    if args.alpha and Path(args.output).suffix.lower() != ".mov":
        raise BadInputError("--alpha writes ProRes 4444: give an output ending in .mov")
    settings = render_settings(args)
    if "beat_grid" in settings["options"]:
        if not audio:
            raise BadInputError("--bpm, --tempo-range, --beats and --beat-offset need --audio")
        from ..audio import audio_info
        from ..audio.grid import BeatGrid

        BeatGrid.from_json(settings["options"]["beat_grid"]).check_duration(
            audio_info(args.audio).duration, Path(args.audio).name)
    if args.alpha:
        settings["options"]["alpha"] = True
    end_image = None
    if args.end_image:
        end_image = str(Path(load_image(args.end_image).path).resolve())  # fails early on a bad image
    return RenderRequest(
        image=str(Path(args.image).resolve()), output=str(Path(args.output)), fps=fps, frames=frames,
        width=width, height=height, audio=audio, end_image=end_image, overwrite=args.overwrite, **settings,
    )


class TerminalProgress:
    """A tqdm bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int) -> None:
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", file=sys.stderr, leave=False)

    def __call__(self, event: Event) -> None:
        if self.bar is not None and isinstance(event, Progress) and event.stage == "render":
            if event.step == 1:
                self.bar.reset()
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    request = build_request(args)
    progress = TerminalProgress(request.frames)
    try:
        result = render_clip(request, on_event=progress)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        qc = result.qc or {}
        verdict = f", QC {qc.get('verdict', 'off')}" if qc else ""
        print(f"wrote {result.output}: {result.frames} frames at {fps_label(result.fps)} fps, "
              f"{result.width}x{result.height}{verdict}", file=sys.stderr)
    return 0
