"""Settings that persist between sessions, through QSettings (JSON values, so types survive every backend).

Tests and hosts pass their own QSettings (an INI file in a temporary folder); the standalone app uses the user's
StillMotion/panel settings.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QSettings

from .viewmodel import PanelViewModel

GROUP = "panel"


def default_settings() -> QSettings:
    """The user's settings store (per user, per machine)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "StillMotion", "panel")


class PanelSettings:
    """Loads the view-model's persistent properties at start and writes each one as it changes."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else default_settings()

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.store.value(f"{GROUP}/{key}")
        if raw is None:
            return default
        try:
            return json.loads(str(raw))
        except json.JSONDecodeError:
            return default

    def set(self, key: str, value: Any) -> None:
        self.store.setValue(f"{GROUP}/{key}", json.dumps(value))

    def restore(self, vm: PanelViewModel) -> None:
        """Put saved values into the view-model; a value that no longer fits (an old preset name) is skipped."""
        for key in vm.settings_keys():
            value = self.get(key)
            if value is None:
                continue
            try:
                setattr(vm, key, tuple(value) if key == "qc_gates" else value)
            except (TypeError, ValueError):
                continue

    def track(self, vm: PanelViewModel) -> None:
        """Write every persistent property whenever it changes."""
        for key in vm.settings_keys():
            signal = getattr(vm, f"{key}_changed")
            signal.connect(lambda value, key=key: self.set(key, list(value) if isinstance(value, tuple)
                                                           else value))

    def sync(self) -> None:
        self.store.sync()
