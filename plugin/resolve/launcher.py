"""StillMotion for DaVinci Resolve: the script shown under Workspace > Scripts > StillMotion.

`stillmotion install-host resolve` copies this file as `StillMotion.py` into Resolve's Fusion/Scripts/Utility
folder with CONFIG filled in. When Resolve's Python matches the venv's, the panel opens in this script's process
(Resolve hands it `resolve`); otherwise it starts the panel in the venv's Python, which connects to Resolve
through DaVinciResolveScript (Resolve Studio, or external scripting set to Local in Preferences).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys

#: Written by `stillmotion install-host`: the venv's python, site-packages and Python version.
CONFIG: dict = {}


def _resolve_object():  # noqa: ANN202 - Resolve's objects have no Python types
    """The `resolve` global Resolve gives its menu scripts (or `bmd.scriptapp` / `app.GetResolve()`)."""
    scope = globals()
    if scope.get("resolve") is not None:
        return scope["resolve"]
    if scope.get("bmd") is not None:
        return scope["bmd"].scriptapp("Resolve")
    if scope.get("app") is not None:
        return scope["app"].GetResolve()
    return None


def main() -> int:
    if not CONFIG:
        print("StillMotion is not configured: run `stillmotion install-host resolve`", file=sys.stderr)
        return 2
    os.environ.setdefault("STILLMOTION_PYTHON", CONFIG["python"])
    resolve = _resolve_object()
    if resolve is not None and tuple(sys.version_info[:2]) == tuple(CONFIG.get("python_version", ())):
        for folder in CONFIG.get("site_packages", []):
            if folder not in sys.path and os.path.isdir(folder):
                site.addsitedir(folder)
        from PySide6.QtWidgets import QApplication
        from stillmotion.plugin.panel import open_host_panel
        from stillmotion.plugin.resolve.adapter import ResolveHost

        window = open_host_panel(ResolveHost(resolve))
        window.raise_()
        return QApplication.instance().exec()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    subprocess.Popen([CONFIG["python"], "-m", "stillmotion.plugin.resolve.app"], env=env)
    return 0


if __name__ == "__main__" or "resolve" in globals() or "bmd" in globals():
    main()
