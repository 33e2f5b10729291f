"""Options every rendering command shares (`render`, `timeline`): engine and weights, motion, anchor, prompts,
quality gates. One definition, so a flag means the same thing everywhere."""

from __future__ import annotations

import argparse
from typing import Any

from ..audio.grid import BeatGrid, grid_from_options
from ..backends import engine_names
from ..errors import BadInputError
from ..images import FIT_POLICIES
from ..motion import PRESETS, MotionSchedule, parse_routing
from ..qc import ALL_GATES, QCThresholds
from ..render import ANCHORS


def add_render_options(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group("engine")
    engine.add_argument("--engine", choices=engine_names(), default="procedural", help="image-to-video engine")
    engine.add_argument("--model", metavar="DIR", help="local weights folder for diffusion engines")
    engine.add_argument("--prompt", default="", help="text prompt (diffusion engines)")
    engine.add_argument("--negative-prompt", default="", help="negative prompt (diffusion engines)")
    engine.add_argument("--steps", type=int, help="denoising steps (diffusion engines; default per engine)")
    engine.add_argument("--allow-pickle", action="store_true",
                        help="allow pickle checkpoints (.bin/.ckpt/.pt) in --model; only for weights you trust")
    motion = parser.add_argument_group("motion")
    motion.add_argument("--preset", choices=sorted(PRESETS), default="pulse", help="motion preset")
    motion.add_argument("--intensity", type=float, default=1.0, help="overall motion strength (0-4, default 1)")
    motion.add_argument("--routing", metavar="CH=SRC,...",
                        help="band routing overrides, e.g. pulse=low,sway=high (sources: beat downbeat onset "
                             "energy low mid high flux)")
    motion.add_argument("--anchor", choices=ANCHORS, default="start",
                        help="where the still appears exactly: first frame (default), last, or middle")
    motion.add_argument("--fit", choices=FIT_POLICIES, default="cover", help="how the still fills the frame")
    motion.add_argument("--seed", type=int, default=0, help="random seed (same seed, same clip)")
    gates = parser.add_argument_group("quality gates")
    gates.add_argument("--no-qc", action="store_true", help="skip the quality gates (frozen, Ken Burns, drift, sync)")
    gates.add_argument("--qc-retries", type=int, default=2, help="retries when a gate fails (default 2)")
    gates.add_argument("--qc-gates", metavar="LIST",
                       help=f"gates that can fail a clip (default all: {','.join(ALL_GATES)}; 'none' only measures)")
    gates.add_argument("--qc-threshold", metavar="NAME=VALUE", action="append", default=[],
                       help="override one QC threshold, e.g. max_global_motion_share=0.8 (repeatable; see docs/qc.md)")
    add_grid_options(parser)


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    """The editor's hand on the beat grid (render, timeline, analyze): a hint, a range, own beats, a shift."""
    grid = parser.add_argument_group("beat grid")
    grid.add_argument("--bpm", type=float, metavar="N",
                      help="tempo hint: the tracker keeps finding the phase and follows drift, at this metrical "
                           "level (e.g. 124 for a song read at 62)")
    grid.add_argument("--tempo-range", metavar="LO:HI", help="search the tempo only in LO..HI BPM, e.g. 100:140")
    grid.add_argument("--beats", metavar="FILE",
                      help="use these beat times (seconds in the song file): one per line, CSV (a second column "
                           "'1' or 'downbeat' marks downbeats), or the JSON `stillmotion analyze` writes")
    grid.add_argument("--beat-offset", type=float, metavar="SECONDS",
                      help="shift the whole beat grid by this many seconds (negative = earlier)")


def grid_settings(args: argparse.Namespace) -> BeatGrid | None:
    """The beat grid the options ask for (None: the tracker's), validated: bad files fail here, before any work."""
    return grid_from_options(bpm=args.bpm, tempo_range=args.tempo_range, beats_file=args.beats,
                             offset=args.beat_offset)


def render_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The RenderRequest fields these options set (validated: bad values fail here, before any work)."""
    if not 0 <= args.qc_retries <= 10:
        raise BadInputError(f"--qc-retries {args.qc_retries} is out of range (0..10)")
    schedule = MotionSchedule(preset=args.preset, intensity=args.intensity, seed=args.seed,
                              routing=parse_routing(args.routing))
    options: dict[str, Any] = {"qc_retries": args.qc_retries, "schedule": schedule.to_json()}
    if args.qc_gates is not None or args.qc_threshold:
        options["qc_thresholds"] = QCThresholds.from_overrides(args.qc_gates, args.qc_threshold).to_json()
    if args.allow_pickle:
        options["allow_pickle"] = True
    beat_grid = grid_settings(args)
    if beat_grid is not None:
        options["beat_grid"] = beat_grid.to_json()
    if args.steps is not None:
        if not 1 <= args.steps <= 500:
            raise BadInputError(f"--steps {args.steps} is out of range (1..500)")
        options["steps"] = args.steps
    return {
        "engine": args.engine, "model": args.model, "preset": args.preset, "intensity": args.intensity,
        "seed": args.seed, "fit": args.fit, "anchor": args.anchor, "prompt": args.prompt,
        "negative_prompt": args.negative_prompt, "qc": not args.no_qc, "options": options,
    }
