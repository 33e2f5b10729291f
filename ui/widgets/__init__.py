"""The panel's widgets. Each binds to the view-model and reports user actions as named signals."""

from __future__ import annotations
