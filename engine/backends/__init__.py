"""Backends by name. The procedural engine is built in; diffusion engines are looked up lazily so torch is only
imported when one is used (and then only inside its worker process)."""

from __future__ import annotations

import importlib

from ..errors import BadInputError
from .base import Backend

#: name → "module:Class" (modules relative to this package).
REGISTRY: dict[str, str] = {
    "procedural": "procedural:ProceduralBackend",
    "ltx": "diffusion.ltx:LTXBackend",
    "ltx2": "diffusion.ltx2:LTX2Backend",
    "svd": "diffusion.svd:SVDBackend",
    "wan": "diffusion.wan:WanBackend",
}


def engine_names() -> list[str]:
    return list(REGISTRY)


def get_backend(name: str) -> Backend:
    """Instantiate the backend registered as `name`."""
    if name not in REGISTRY:
        raise BadInputError(f"unknown engine {name!r} (available: {', '.join(REGISTRY)})")
    module_name, class_name = REGISTRY[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()
