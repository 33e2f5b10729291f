"""Local model weights: which engines exist and which weights each would use (never the network).

One survey serves the `stillmotion models` command and the panel's model picker.
"""

from __future__ import annotations

from typing import Any

from .backends import engine_names
from .backends.diffusion.families import FAMILIES
from .backends.diffusion.weights import local_candidates, search_folders, validate_weights
from .errors import StillMotionError


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


def usable_weights(engine: str, model_dirs: list[str] | None = None) -> list[str]:
    """Folders a render with `engine` could load, best first (empty for engines without weights)."""
    for entry in survey(model_dirs or []):
        if entry["engine"] == engine:
            return [item["path"] for item in entry["weights"] if item.get("usable")]
    return []
