"""Host integrations: one `HostAdapter` interface and its implementations (files, Blender, Resolve).

The only package where a host module (`bpy`, Resolve's scripting module) may be imported.
"""

from __future__ import annotations
