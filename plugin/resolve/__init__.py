"""DaVinci Resolve as a StillMotion host, through Resolve's scripting module (`DaVinciResolveScript`).

Tested only against `tests/fake_resolve/`, a fake of the documented API subset used here (Resolve cannot run in
CI); see docs/hosts.md.
"""

from __future__ import annotations
