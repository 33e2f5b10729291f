"""`stillmotion panel`: the panel as a standalone window on a timeline file (or an offscreen screenshot of it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stillmotion.engine.errors import BadInputError

NAME = "panel"
HELP = "open the StillMotion panel in a window on a timeline file"
DESCRIPTION = """\
Open the StillMotion panel (the same one the editor plugins dock) in its own window. With TIMELINE, the panel
shows its tracks and stills; select stills, set the motion, queue renders, compare attempts and insert the one
you like. Every change is saved through the timeline round trip into a new file beside TIMELINE
(edit.otio -> edit_animated.otio, rendered clips in edit_animated_stillmotion/); TIMELINE itself is never
written unless you choose "save in place" (which keeps TIMELINE.bak). The panel's settings and attempt history
are kept in the saved timeline's metadata["stillmotion"]["panel"]; your preferences persist between sessions.

Needs PySide6 (pip install 'stillmotion[ui]').

examples:
  stillmotion panel resources/demo/demo.otio
  stillmotion panel edit.xml --output edit_sm.xml
  stillmotion panel demo.otio --screenshot panel.png      # offscreen, for docs and checks
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("timeline", nargs="?", metavar="TIMELINE",
                        help="timeline file to open (.otio, .otioz, .xml, .fcpxml, .edl, .kdenlive, .aaf)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="where Save / Insert write the timeline (default: TIMELINE_animated.EXT beside it)")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="render the loaded panel offscreen to this PNG and exit (no window opens)")
    parser.add_argument("--size", metavar="WxH", help="window size, e.g. 1180x760 (default: last used)")


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BadInputError(f"--size {text!r} must look like 1180x760") from None
    if not (200 <= w <= 10000 and 200 <= h <= 10000):
        raise BadInputError(f"--size {text} is out of range (200..10000 per side)")
    return w, h


def run(args: argparse.Namespace) -> int:
    size = _size(args.size)
    if args.timeline and not Path(args.timeline).is_file():
        raise BadInputError(f"timeline {args.timeline} does not exist")
    if args.screenshot and Path(args.screenshot).suffix.lower() != ".png":
        raise BadInputError(f"--screenshot {args.screenshot}: give a .png file name")
    from .app import run_window  # Qt is imported only when the command runs

    return run_window(args.timeline, screenshot=args.screenshot, output=args.output, size=size)
