"""`stillmotion demo`: animate the bundled demo timeline and show where the results are."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..contact import contact_sheet
from ..resources import demo_timeline
from ..timeline.pipeline import TimelineSettings, process_timeline

NAME = "demo"
HELP = "render the bundled demo: four stills animated to the demo track, written back as a timeline"
DESCRIPTION = """\
Animate the four stills of resources/demo/demo.otio to the music under them with the procedural engine, write
the timeline back with a new "StillMotion" track, and make a contact sheet of the results.

Results go to OUTPUT_DIR (default ./stillmotion-demo): demo_stillmotion.otio, its media folder, contact_sheet.png.
The demo owns that folder: results of an earlier demo run there are replaced.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="stillmotion-demo", metavar="DIR",
                        help="where to write the results (default ./stillmotion-demo)")
    parser.add_argument("--width", type=int, default=960, help="clip width (default 960)")
    parser.add_argument("--height", type=int, default=720, help="clip height (default 720)")
    parser.add_argument("--preset", default="pulse", help="motion preset (default pulse)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    folder = Path(args.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "demo_stillmotion.otio"
    settings = TimelineSettings(preset=args.preset, seed=args.seed, width=args.width, height=args.height)
    summary = process_timeline(demo_timeline(), out, settings, overwrite=True)
    clips = [(Path(item["output"]).stem, item["output"]) for item in summary.rendered]
    sheet = contact_sheet(clips, folder / "contact_sheet.png", frames_per_clip=6, tile_side=200)
    result = summary.to_json() | {"contact_sheet": str(sheet), "seconds": round(time.perf_counter() - started, 2)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"StillMotion demo: {len(clips)} clips rendered in {result['seconds']} s", file=sys.stderr)
        print(f"  timeline with the new track: {out.resolve()}")
        print(f"  rendered clips:              {Path(summary.media_folder).resolve()}")
        print(f"  contact sheet:               {sheet.resolve()}")
    return 0
