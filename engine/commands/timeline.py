"""`stillmotion timeline`: animate every still of an editor's timeline to its music, write it back as a track."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import BadInputError
from ..jobs.batch import EXECUTORS
from ..timeline.pipeline import DEFAULT_TRACK, TimelineSettings, process_timeline
from ._render_options import add_render_options, render_settings

NAME = "timeline"
HELP = "animate a timeline's stills to its music and add them back as a new track"
DESCRIPTION = """\
Read IN (.otio, .otioz, Final Cut Pro 7 .xml from Premiere/Resolve/Hiero, .fcpxml or .fcpxmld, CMX 3600 .edl, .kdenlive,
.aaf), find the stills (clips whose media is an image: png jpg jpeg tif tiff exr webp bmp, or a one-frame image
sequence; with --from-video also the frame at each video clip's in-point), find the music under each one (audio
clips overlapping its record range, honouring trims and gaps), render one clip per still for exactly its record
duration at the timeline's rate, and write OUT with a new video track above the others ("StillMotion") holding
each generated clip at exactly its still's record range, with provenance in the clip's metadata.

A marker on a still named "hit", "cue" or "accent" is a cue: that clip's biggest motion lands on its frame.
With --beats-from-markers the markers on the music (or the timeline) are the beats; otherwise the tracker's,
corrected by --bpm / --tempo-range / --beats / --beat-offset. The grid used is stored with each clip.

OUT's format follows its extension (.otio, .otioz, .xml, .fcpxml, .fcpxmld, .kdenlive). OUT in IN's own format
(.xml, .fcpxml, .fcpxmld, .kdenlive) is IN's document with the new track added and nothing else changed; an .edl
(one video track) or .aaf OUT is written as .otio, with a note. Rendered clips go to a folder beside OUT named
after it (edit.xml -> edit_stillmotion/). IN is never
modified unless --in-place (which keeps IN.bak). Problems with single clips (missing media, zero length, offline
audio, nested sequences, time warps) are reported on stderr and those clips skipped; exit 2 when nothing could
be done.

examples:
  stillmotion timeline edit.xml -o edit_animated.xml
  stillmotion timeline cut.kdenlive -o cut_sm.kdenlive --clips "poster.png,title card" --preset calm --seed 7
  stillmotion timeline reel.edl --rate 29.97 -o reel.otio --json
"""


def _names(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="timeline file to read")
    parser.add_argument("-o", "--output", metavar="OUT", help="timeline file to write (format from extension)")
    parser.add_argument("--track", default=DEFAULT_TRACK, metavar="NAME",
                        help=f"name of the new video track (default {DEFAULT_TRACK!r})")
    parser.add_argument("--clips", metavar="NAME,...", help="animate only these clips (by clip name)")
    parser.add_argument("--from-video", action="store_true",
                        help="also animate video clips, from the frame at their in-point")
    parser.add_argument("--audio-track", type=int, metavar="N",
                        help="take the music from audio track N only (1 = first; default: all audio tracks)")
    parser.add_argument("--rate", metavar="FPS",
                        help="timeline frame rate where the file has none (EDL; default 24, or 29.97 when the "
                             "EDL says DROP FRAME)")
    parser.add_argument("--relink", action="append", default=[], metavar="DIR",
                        help="search DIR (repeatable) by file name for media whose recorded path does not exist "
                             "here (another machine's C:/... or /Users/... path, a moved project); OUT keeps the "
                             "editor's own paths")
    parser.add_argument("--width", type=int, metavar="W",
                        help="rendered width (even; default: the sequence's, see --size)")
    parser.add_argument("--height", type=int, metavar="H",
                        help="rendered height (even; default: the sequence's, see --size)")
    parser.add_argument("--size", choices=("sequence", "image"), default="sequence",
                        help="size of the generated clips without --width/--height: the sequence's frame size "
                             "where the timeline says (FCP7 XML, FCPXML, Kdenlive; default), or each image's own")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="where clips render: local worker processes, or Ray tasks (see docs/cluster.md)")
    parser.add_argument("--workers", type=int,
                        help="clips rendered at once (default: one per core; diffusion engines one per GPU)")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="join this Ray cluster (default with --executor ray: a private local one)")
    parser.add_argument("--shared-storage", action="store_true",
                        help="Ray nodes see the same paths as this machine (else media travel as bytes)")
    parser.add_argument("--partial", action="store_true",
                        help="write OUT with the clips that rendered even if some failed (default: only when all "
                             "are done; rerunning the same command resumes)")
    parser.add_argument("--reuse-stale", action="store_true",
                        help="keep finished clips made by other StillMotion code (shown as 'other code' by "
                             "`stillmotion jobs`) instead of rendering them again")
    parser.add_argument("--in-place", action="store_true", help="write IN itself (keeps a backup IN.bak)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT and rendered clips if they exist")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    parser.add_argument("--beats-from-markers", action="store_true",
                        help="use the timeline's markers (on the music clips, audio tracks or the timeline) as "
                             "beats; markers named 'downbeat', 'bar' or '1' are downbeats")
    add_render_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.beats_from_markers and args.beats:
        raise BadInputError("--beats-from-markers and --beats both give the beats: choose one")
    render = render_settings(args)
    settings = TimelineSettings(
        engine=render.pop("engine"), model=render.pop("model"), preset=render.pop("preset"),
        seed=render.pop("seed"), render=render, width=args.width,
        height=args.height, clips=_names(args.clips), from_video=args.from_video, audio_track=args.audio_track,
        track_name=args.track, executor=args.executor, workers=args.workers, rate=args.rate,
        ray_address=args.ray_address, shared_storage=args.shared_storage, partial=args.partial,
        beats_from_markers=args.beats_from_markers,
        relink=list(args.relink), size=args.size,
        reuse_stale=args.reuse_stale,
    )
    summary = process_timeline(args.input, args.output, settings, overwrite=args.overwrite, in_place=args.in_place)
    if args.json:
        json.dump(summary.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for item in summary.rendered:
            print(f"{item['clip']}: {item['frames']} frames at {summary.rate} -> {item['output']}")
        print(f"wrote {summary.output} (track {summary.track!r}, {len(summary.rendered)} clip(s), "
              f"{len(summary.problems)} problem(s))")
    return 0
