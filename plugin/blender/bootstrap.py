"""StillMotion for Blender's video sequencer: the add-on's entry module.

`stillmotion install-host blender` copies this file as `stillmotion_vse/__init__.py` into Blender's add-ons
folder (Blender 3.x-4.1, read through `bl_info`) or extensions folder (4.2+, beside a `blender_manifest.toml`),
with CONFIG filled in. Blender's Python lacks StillMotion's dependencies, so this links the project's venv:
when Blender's Python version matches the venv's, the venv's site-packages are appended to sys.path (after
Blender's own, so Blender's numpy wins) and the panel can open inside Blender; otherwise only StillMotion's
own pure-Python plugin package is loaded and rendering still works (it always runs in the venv's Python, in a
child process). Nothing heavy is imported here.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import site
import sys
import types

bl_info = {
    "name": "StillMotion",
    "author": "StillMotion",
    "version": (0, 1, 0),
    "blender": (3, 0, 0),
    "location": "Sequencer > Strip > Animate Stills to the Music",
    "description": "Animate image strips for exactly their duration, in sync with the music under them",
    "category": "Sequencer",
}

#: Written by `stillmotion install-host`: the venv's python, site-packages, Python version and plugin folder.
CONFIG: dict = {}

_operators = None


def link_environment(config: dict) -> str:
    """Make `stillmotion.plugin` importable; return "full" (venv linked) or "plugin-only" (version mismatch)."""
    python = config.get("python", "")
    if python:
        os.environ.setdefault("STILLMOTION_PYTHON", python)
    wanted = tuple(config.get("python_version", ()))
    if wanted and tuple(sys.version_info[:2]) == wanted:
        for folder in config.get("site_packages", []):
            if folder not in sys.path and os.path.isdir(folder):
                site.addsitedir(folder)  # runs the venv's .pth files (the editable install's finder)
        return "full"
    if "stillmotion.plugin" not in sys.modules:
        plugin_dir = config["plugin_dir"]
        if "stillmotion" not in sys.modules:
            namespace = types.ModuleType("stillmotion")
            namespace.__path__ = []  # type: ignore[attr-defined]
            sys.modules["stillmotion"] = namespace
        spec = importlib.util.spec_from_file_location(
            "stillmotion.plugin", os.path.join(plugin_dir, "__init__.py"), submodule_search_locations=[plugin_dir])
        module = importlib.util.module_from_spec(spec)
        sys.modules["stillmotion.plugin"] = module
        spec.loader.exec_module(module)
    return "plugin-only"


def register() -> None:
    global _operators
    if not CONFIG:
        raise RuntimeError("StillMotion add-on is not configured: run `stillmotion install-host blender`")
    link_environment(CONFIG)
    _operators = importlib.import_module("stillmotion.plugin.blender.operators")
    _operators.register()


def unregister() -> None:
    if _operators is not None:
        _operators.unregister()
