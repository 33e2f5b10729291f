"""`stillmotion models`: which engines exist and which local weights each would use (never the network)."""

from __future__ import annotations

import argparse
import json
import sys

from ..backends.diffusion.weights import MODELS_ENV, hf_cache_dir, search_folders
from ..models import survey

NAME = "models"
HELP = "list the engines and the local model weights found for each"
DESCRIPTION = f"""\
List every engine and, for the diffusion engines, the local weights found: folders under --model-dir and
${MODELS_ENV} (each a diffusers folder with model_index.json, up to two levels deep) and known repositories in
the Hugging Face cache ({hf_cache_dir()}). Nothing is downloaded; each folder is checked (complete, safetensors,
no remote code). A render uses --model DIR, else the first usable folder listed.

examples:
  stillmotion models
  stillmotion models --model-dir ~/models --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", action="append", default=[], metavar="DIR",
                        help=f"a folder of model folders to scan (repeatable; also ${MODELS_ENV})")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def run(args: argparse.Namespace) -> int:
    engines = survey(args.model_dir)
    if args.json:
        print(json.dumps({"engines": engines, "hf_cache": str(hf_cache_dir()),
                          "model_dirs": [str(p) for p in search_folders(args.model_dir)]}, indent=2))
        return 0
    out = sys.stdout
    for entry in engines:
        if not entry["needs_weights"]:
            print(f"{entry['engine']:<11} built in (no weights needed)", file=out)
            continue
        if not entry["weights"]:
            print(f"{entry['engine']:<11} {entry['label']}: no local weights (e.g. hf download "
                  f"{entry['known_repos'][0]}, or --model DIR)", file=out)
            continue
        print(f"{entry['engine']:<11} {entry['label']}:", file=out)
        for item in entry["weights"]:
            state = "ok" if item["usable"] else f"unusable: {item['problem']}"
            source = f" [{item['repo_id']}]" if item["repo_id"] else ""
            print(f"{'':<13}{item['path']}{source}: {state}", file=out)
    return 0
