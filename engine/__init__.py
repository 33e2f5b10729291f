"""StillMotion's engine: audio analysis, motion schedules, backends, QC and encoding.

Qt-free and host-free: `ui` and `plugin` build on it, never the reverse.
"""

from __future__ import annotations

__version__ = "0.1.0"
