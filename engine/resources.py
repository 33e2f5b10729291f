"""Where the bundled resources (demo media, presets) live: `resources/` beside the installed packages."""

from __future__ import annotations

from pathlib import Path

from .errors import StillMotionError


def resources_dir() -> Path:
    """The repo's resources/ folder (the project installs editable, so it sits next to engine/)."""
    folder = Path(__file__).resolve().parents[1] / "resources"
    if not folder.is_dir():
        raise StillMotionError(f"bundled resources not found at {folder} (install StillMotion from its repository)")
    return folder


def demo_timeline() -> Path:
    return resources_dir() / "demo" / "demo.otio"
