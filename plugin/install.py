"""Writing the host add-ons into the hosts' user folders (`stillmotion install-host`).

Each host gets a tiny entry file with the venv's location baked in (CONFIG): the real code stays in the
installed `stillmotion.plugin` package, so updating the venv updates the add-on. Writes are atomic.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stillmotion.engine import __version__
from stillmotion.engine.atomic import write_text
from stillmotion.engine.errors import BadInputError, OutputError

from .blender import ADDON_ID

HOSTS = ("blender", "resolve")
#: First Blender whose add-ons are extensions (blender_manifest.toml in extensions/user_default).
EXTENSIONS_SINCE = (4, 2)
RESOLVE_SCRIPT_NAME = "StillMotion.py"
_PLUGIN_DIR = Path(__file__).resolve().parent
_CONFIG_LINE = re.compile(r"^CONFIG: dict = \{\}$", re.MULTILINE)

MANIFEST = """\
schema_version = "1.0.0"

id = "{id}"
version = "{version}"
name = "StillMotion"
tagline = "Animate image strips in sync with the music under them"
maintainer = "StillMotion"
type = "add-on"
tags = ["Sequencer"]
blender_version_min = "4.2.0"
license = ["SPDX:Apache-2.0"]

[permissions]
files = "Reads stills and music, writes the rendered clips"
"""


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    text: str


def environment_config(python: str | None = None) -> dict:
    """Where the add-ons find StillMotion: this venv's interpreter, site-packages and plugin folder."""
    return {
        "python": python or sys.executable,
        "python_version": list(sys.version_info[:2]),
        "site_packages": [p for p in site.getsitepackages() if Path(p).is_dir()],
        "plugin_dir": str(_PLUGIN_DIR),
        "stillmotion_version": __version__,
    }


def with_config(source: Path, config: dict) -> str:
    """`source` with its `CONFIG: dict = {}` line holding `config` (a plain literal: strings, lists, ints)."""
    text = source.read_text(encoding="utf-8")
    if not _CONFIG_LINE.search(text):
        raise OutputError(f"{source.name} has no CONFIG line to fill in")
    return _CONFIG_LINE.sub(lambda _: f"CONFIG: dict = {config!r}", text, count=1)


# ------------------------------------------------------------------------------------------------------- blender
def blender_config_root() -> Path:
    """Blender's per-user folder: ~/.config/blender (Linux), ~/Library/Application Support/Blender (macOS),
    %APPDATA%\\Blender Foundation\\Blender (Windows)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Blender"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Blender Foundation" / "Blender"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "blender"


def parse_blender_version(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\s*", text)
    if not match:
        raise BadInputError(f"Blender version {text!r} must look like 3.4 or 4.2")
    return int(match[1]), int(match[2])


def detect_blender_version() -> tuple[int, int]:
    """`blender --version` when Blender is on PATH, else the newest version folder in Blender's user folder."""
    executable = shutil.which("blender")
    if executable:
        try:
            out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        match = re.search(r"Blender (\d+)\.(\d+)", out)
        if match:
            return int(match[1]), int(match[2])
    root = blender_config_root()
    found = sorted(parse_blender_version(p.name) for p in root.glob("*.*") if re.fullmatch(r"\d+\.\d+", p.name))
    if found:
        return found[-1]
    raise BadInputError("cannot tell which Blender to install for: put blender on PATH or pass "
                        "--blender-version X.Y (or --target DIR)")


def blender_target(version: tuple[int, int]) -> Path:
    """scripts/addons before 4.2, extensions/user_default from 4.2 on."""
    folder = blender_config_root() / f"{version[0]}.{version[1]}"
    return folder / ("extensions/user_default" if version >= EXTENSIONS_SINCE else "scripts/addons")


def blender_plan(target: Path, config: dict) -> list[PlannedFile]:
    folder = target / ADDON_ID
    return [PlannedFile(folder / "__init__.py", with_config(_PLUGIN_DIR / "blender" / "bootstrap.py", config)),
            PlannedFile(folder / "blender_manifest.toml", MANIFEST.format(id=ADDON_ID, version=__version__))]


# ------------------------------------------------------------------------------------------------------- resolve
def resolve_target() -> Path:
    """Resolve's per-user Utility scripts folder (listed under Workspace > Scripts)."""
    if sys.platform == "darwin":
        return (Path.home() / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve"
                / "Fusion" / "Scripts" / "Utility")
    if sys.platform == "win32":
        return (Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Blackmagic Design"
                / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts" / "Utility")
    return Path.home() / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Utility"


def resolve_plan(target: Path, config: dict) -> list[PlannedFile]:
    return [PlannedFile(target / RESOLVE_SCRIPT_NAME, with_config(_PLUGIN_DIR / "resolve" / "launcher.py", config))]


# ------------------------------------------------------------------------------------------------------- both
def plan(host: str, target: str | Path | None = None, blender_version: str | None = None,
         python: str | None = None) -> tuple[Path, list[PlannedFile]]:
    """The folder and files `install-host HOST` writes."""
    if host not in HOSTS:
        raise BadInputError(f"host {host!r} is not one of {', '.join(HOSTS)}")
    if python is not None and not Path(python).is_file():
        raise BadInputError(f"--python {python} does not exist")
    config = environment_config(python)
    if host == "blender":
        if target is None:
            version = parse_blender_version(blender_version) if blender_version else detect_blender_version()
            folder = blender_target(version)
        else:
            folder = Path(target)
        return folder, blender_plan(folder, config)
    folder = Path(target) if target is not None else resolve_target()
    return folder, resolve_plan(folder, config)


def write_plan(files: list[PlannedFile]) -> list[Path]:
    """Create the folders and write every file atomically (replacing an earlier install)."""
    written = []
    for planned in files:
        if planned.path.parent.exists() and not planned.path.parent.is_dir():
            raise OutputError(f"{planned.path.parent} exists and is not a folder")
        try:
            planned.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {planned.path.parent}: {exc.strerror or exc}") from None
        write_text(planned.path, planned.text, overwrite=True)
        written.append(planned.path)
    return written


def enable_hint(host: str, folder: Path) -> str:
    if host == "resolve":
        return "open Resolve, then Workspace > Scripts > StillMotion"
    if "extensions" in folder.parts:
        return ("restart Blender, then Edit > Preferences > Get Extensions > Installed: enable StillMotion "
                "(or: blender --command extension list)")
    return (f"enable it: blender -b --python-expr \"import bpy; bpy.ops.preferences.addon_enable(module="
            f"'{ADDON_ID}'); bpy.ops.wm.save_userpref()\"  (or Edit > Preferences > Add-ons > StillMotion)")
