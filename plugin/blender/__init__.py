"""Blender's video sequencer as a StillMotion host.

`snapshot` reads the sequencer into plain data (bpy only), `convert` turns that into OTIO (no bpy, so it runs
and is tested anywhere), `worker` renders a snapshot's stills in the project's Python, `adapter` is the
`HostAdapter`, `operators` the add-on's operators and menu, and `bootstrap` the file installed into Blender.
Importing this package imports neither bpy nor OpenTimelineIO.
"""

from __future__ import annotations

#: The add-on's module / extension id (its folder name in Blender's add-ons or extensions folder).
ADDON_ID = "stillmotion_vse"
