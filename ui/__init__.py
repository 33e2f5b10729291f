"""StillMotion's PySide6 panel: view-models with observable state, widgets bound to them, and a controller
between them and `stillmotion.engine`. Never imports torch; never imports `stillmotion.plugin`."""

from __future__ import annotations
