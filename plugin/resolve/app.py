"""`python -m stillmotion.plugin.resolve.app`: the panel on Resolve's current timeline, in the project's Python,
connected to the running Resolve through DaVinciResolveScript (the Resolve menu script starts this when
Resolve's own Python cannot load the venv)."""

from __future__ import annotations

import sys


def main() -> int:
    from stillmotion.engine.errors import StillMotionError

    try:
        from stillmotion.plugin.panel import open_host_panel
        from stillmotion.plugin.resolve.adapter import ResolveHost

        host = ResolveHost()
        window = open_host_panel(host)
    except StillMotionError as exc:
        print(f"stillmotion: {exc}", file=sys.stderr)
        return exc.exit_code
    from PySide6.QtWidgets import QApplication

    window.raise_()
    return QApplication.instance().exec()


if __name__ == "__main__":
    sys.exit(main())
