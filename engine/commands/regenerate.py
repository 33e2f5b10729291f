"""`stillmotion regenerate`: render one generated clip of a timeline again, from its provenance alone."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..timeline.regenerate import regenerate

NAME = "regenerate"
HELP = "re-render one StillMotion clip of a written timeline (optionally with a new seed)"
DESCRIPTION = """\
Re-render the generated clip NAME of OUT (a timeline written by `stillmotion timeline`) from its recorded
provenance alone (still, music segments, engine, preset, seed, exact frame count), replace its media file
atomically, and record the new seed, motion schedule and QC scores. NAME is the generated clip's name or the
name of the still it came from. The original timeline is not needed. With the recorded seed the clip is
rendered bit for bit again; the command says whether the new clip is identical to the stored one (and if not,
why: a new seed, or other StillMotion code).

examples:
  stillmotion regenerate edit_animated.otio --clip poster.png --seed 12
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="OUT", help="timeline written by `stillmotion timeline`")
    parser.add_argument("--clip", required=True, metavar="NAME", help="generated clip (or its still) to redo")
    parser.add_argument("--seed", type=int, help="new random seed (default: the recorded one)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")


def describe_comparison(comparison: dict[str, Any]) -> str:
    """One line: whether the new clip is the stored one."""
    if comparison["identical_bytes"]:
        return "identical to the stored clip (same bytes)"
    if comparison["identical_frames"]:
        return "identical to the stored clip (same decoded frames; the file's bytes differ)"
    if not comparison["stored"]:
        return f"not compared: {comparison['why']}"
    return (f"differs from the stored clip: {comparison['frames_differing']} frame(s), the first at frame "
            f"{comparison['first_difference']} ({comparison['why']})")


def run(args: argparse.Namespace) -> int:
    summary = regenerate(args.output, args.clip, args.seed)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{summary['clip']}: {summary['frames']} frames at {summary['rate']}, seed {summary['seed']} "
              f"-> {summary['output']}")
        print(describe_comparison(summary["comparison"]))
    return 0
