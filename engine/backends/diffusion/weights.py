"""Local weights: find model folders (--model-dir, $STILLMOTION_MODELS, the user's data folder, the Hugging Face
cache), vet them without running code (pickles, remote-code components, missing shards) and pick the one a render
loads. Never touches the network; what `stillmotion models` and engine/models.py survey."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import BadInputError, MissingWeightsError, StillMotionError
from .families import FAMILIES, Family

#: Checkpoint formats that unpickle (and so can run code) when loaded.
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
#: Component libraries a diffusers folder may name; anything else would need remote code.
TRUSTED_LIBRARIES = ("diffusers", "transformers")
#: Environment variable naming a folder of model folders (also `stillmotion models --model-dir`).
MODELS_ENV = "STILLMOTION_MODELS"


@dataclass
class Weights:
    """A vetted local diffusers folder."""

    path: str
    pipeline_class: str
    repo_id: str | None = None
    pickle_files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "pipeline_class": self.pipeline_class, "repo_id": self.repo_id,
                "pickle_files": list(self.pickle_files)}


def hf_cache_dir() -> Path:
    """The local Hugging Face hub cache, following the hub's own environment variables."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def cached_snapshot(repo_id: str, cache: Path | None = None) -> Path | None:
    """The snapshot folder of `repo_id` in the local cache (refs/main first, else the newest), or None."""
    root = (cache or hf_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text(encoding="utf-8").strip()
        if (candidate / "model_index.json").is_file():
            return candidate
    found = sorted((p for p in snapshots.iterdir() if (p / "model_index.json").is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0] if found else None


def _is_diffusers_pipeline_module(name: str) -> bool:
    """Whether a component library like 'ltx2' names a module shipped inside diffusers.pipelines (found on disk,
    without importing diffusers)."""
    import importlib.util

    if not name.isidentifier():
        return False
    spec = importlib.util.find_spec("diffusers")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(root) / "pipelines" / name).is_dir() or (Path(root) / "pipelines" / f"{name}.py").is_file()
               for root in spec.submodule_search_locations)


def _model_index(path: Path) -> dict[str, Any]:
    index = path / "model_index.json"
    if not index.is_file():
        raise MissingWeightsError(f"{path} is not a diffusers model folder (no model_index.json)")
    try:
        return json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingWeightsError(f"{index} is unreadable ({exc}); download the model again") from exc


def validate_weights(path: str | Path, family: Family, allow_pickle: bool = False,
                     repo_id: str | None = None) -> Weights:
    """Check a folder holds a complete, safe-to-load pipeline of `family` (no network, no code execution).

    Refuses pickle checkpoints unless `allow_pickle`, components from libraries other than diffusers /
    transformers (they would need remote code), and missing or partially downloaded weight shards.
    """
    folder = Path(path).expanduser().resolve()
    index = _model_index(folder)
    class_name = index.get("_class_name")
    if not isinstance(class_name, str) or class_name not in family.pipeline_classes:
        raise BadInputError(f"{folder} holds a {class_name!r} pipeline, not {family.label} "
                            f"(expected one of {', '.join(family.pipeline_classes)})")
    pickles: list[str] = []
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        library, _ = spec
        if library not in TRUSTED_LIBRARIES and not _is_diffusers_pipeline_module(library):
            raise BadInputError(f"{folder}: component {component!r} comes from {library!r}, which would need "
                                "remote code; StillMotion never runs trust_remote_code")
        sub = folder / component
        if not sub.is_dir():
            raise MissingWeightsError(f"{folder}: component folder {component}/ is missing (incomplete download?)")
        files = [p for p in sub.iterdir() if p.is_file()]
        safetensors = [p for p in files if p.name.endswith(".safetensors")]
        pickled = [p for p in files if p.suffix in PICKLE_SUFFIXES]
        is_model = (sub / "config.json").is_file() and not any(
            (sub / n).is_file() for n in ("scheduler_config.json", "preprocessor_config.json"))
        for shard_index in sub.glob("*.safetensors.index.json"):
            try:
                shards = set(json.loads(shard_index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError) as exc:
                raise MissingWeightsError(f"{shard_index} is unreadable ({exc})") from exc
            missing = sorted(s for s in shards if not (sub / s).is_file())
            if missing:
                raise MissingWeightsError(f"{sub}: weight shard {missing[0]} is missing (incomplete download?)")
        if safetensors:
            continue
        if pickled:
            if not allow_pickle:
                raise BadInputError(f"{sub} only has pickle checkpoints ({pickled[0].name}), which can run code "
                                    "when loaded: convert them to .safetensors or pass --allow-pickle if you "
                                    "trust the source")
            pickles += [str(p) for p in pickled]
        elif is_model and not any(p.name.endswith(".gguf") for p in files):
            raise MissingWeightsError(f"{sub} has a config but no weights (incomplete download?)")
    return Weights(path=str(folder), pipeline_class=class_name, repo_id=repo_id, pickle_files=pickles)


def search_folders(extra: list[str] | None = None) -> list[Path]:
    """Folders scanned for model folders: --model-dir values, $STILLMOTION_MODELS (os.pathsep-separated), then
    `models/` in the user's StillMotion data folder."""
    from platformdirs import user_data_dir

    folders = [Path(p).expanduser() for p in (extra or [])]
    folders += [Path(p).expanduser() for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    folders.append(Path(user_data_dir("stillmotion")) / "models")
    return [p for p in folders if p.is_dir()]


def local_candidates(family: Family, folders: list[Path] | None = None) -> list[tuple[Path, str | None]]:
    """(folder, repo id or None) of every local folder that claims to hold `family` weights, best first."""
    found: list[tuple[Path, str | None]] = []
    for root in folders if folders is not None else search_folders():
        for index in sorted([*root.glob("model_index.json"), *root.glob("*/model_index.json"),
                             *root.glob("*/*/model_index.json")]):
            try:
                class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
            except (OSError, ValueError):
                continue
            if class_name in family.pipeline_classes:
                found.append((index.parent, None))
    for repo_id in family.repo_ids:
        snapshot = cached_snapshot(repo_id)
        if snapshot is not None:
            found.append((snapshot, repo_id))
    return found


def _how_to_get(family: Family) -> str:
    return (f"download it once, e.g. `hf download {family.repo_ids[0]}` (into the Hugging Face cache) or "
            f"`hf download {family.repo_ids[0]} --local-dir DIR` and pass --model DIR")


def resolve_weights(family_name: str, model: str | None, allow_pickle: bool = False,
                    folders: list[Path] | None = None) -> Weights:
    """The weights a render will load: `model` (a folder or a cached repo id) or the first local candidate.

    Never touches the network: a missing model is one MissingWeightsError naming what was expected and how
    to get it.
    """
    family = FAMILIES[family_name]
    if model:
        path = Path(model).expanduser()
        if path.exists():
            return validate_weights(path, family, allow_pickle)
        if model.count("/") == 1 and not model.startswith((".", "/", "~")):
            snapshot = cached_snapshot(model)
            if snapshot is None:
                raise MissingWeightsError(f"{model} is not in the local Hugging Face cache ({hf_cache_dir()}); "
                                          f"StillMotion never downloads: run `hf download {model}` first, "
                                          "or pass --model DIR")
            return validate_weights(snapshot, family, allow_pickle, repo_id=model)
        raise MissingWeightsError(f"--model {model}: no such folder; expected a diffusers folder with "
                                  f"model_index.json holding {family.label} ({_how_to_get(family)})")
    candidates = local_candidates(family, folders)
    errors: list[str] = []
    for path, repo_id in candidates:
        try:
            return validate_weights(path, family, allow_pickle, repo_id)
        except StillMotionError as exc:
            errors.append(str(exc))
    looked = [str(p) for p in (folders if folders is not None else search_folders())] + [str(hf_cache_dir())]
    detail = f"; rejected: {errors[0]}" if errors else ""
    raise MissingWeightsError(f"no {family.label} weights found (looked in {', '.join(looked)} for "
                              f"{' or '.join(family.repo_ids[:2])}): {_how_to_get(family)}{detail}")
