"""`stillmotion models`: which engines exist and which local weights each would use (never the network)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..backends import engine_names
from ..backends.diffusion import (
    FAMILIES,
    MODELS_ENV,
    hf_cache_dir,
    local_candidates,
    search_folders,
    validate_weights,
)
from ..errors import StillMotionError

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


def survey(model_dirs: list[str]) -> list[dict[str, Any]]:
    """Every engine with the local weights found for it, each marked usable or not (and why)."""
    folders = search_folders(model_dirs)
    engines: list[dict[str, Any]] = []
    for name in engine_names():
        family = FAMILIES.get(name)
        entry: dict[str, Any] = {"engine": name, "needs_weights": family is not None, "weights": []}
        if family is not None:
            entry["label"] = family.label
            entry["known_repos"] = list(family.repo_ids)
            for path, repo_id in local_candidates(family, folders):
                item: dict[str, Any] = {"path": str(path), "repo_id": repo_id}
                try:
                    weights = validate_weights(path, family, allow_pickle=True, repo_id=repo_id)
                    item["pipeline_class"] = weights.pipeline_class
                    item["usable"] = not weights.pickle_files
                    if weights.pickle_files:
                        item["problem"] = "pickle checkpoints only (needs --allow-pickle)"
                except StillMotionError as exc:
                    item["usable"] = False
                    item["problem"] = str(exc)
                entry["weights"].append(item)
        engines.append(entry)
    return engines


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
