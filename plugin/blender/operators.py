"""The add-on's operators and menu entries (runs inside Blender).

`stillmotion.animate_strips` animates the selected image strips (every unmuted image strip when none is
selected) to the music of the sound strips under them: it snapshots the sequencer, renders in the project's
Python (`plugin.blender.worker`, a child process: torch never loads in Blender) and places one movie strip per
still in a free channel above them at the exact frames, as one undo step. It works headless (`blender -b`).
`stillmotion.open_panel` opens the Qt panel inside Blender, pumped by a `bpy.app.timers` timer; the panel
closes (saving its place and settings, cancelling its jobs) when Blender quits or loads another file.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import bpy

from .sequencer import PlacementError, place_clips
from .snapshot import snapshot_scene, strips_to_animate

#: Seconds between two Qt event pumps while the panel is open (50 Hz keeps it responsive, costs ~nothing idle).
PUMP_INTERVAL = 0.02
_PANELS: list[Any] = []


def default_output_dir() -> str:
    """Beside the .blend (`edit.blend` -> `edit_stillmotion/`), or a temp folder for an unsaved file."""
    if bpy.data.filepath:
        blend = Path(bpy.data.filepath)
        return str(blend.with_name(f"{blend.stem}_stillmotion"))
    return tempfile.mkdtemp(prefix="stillmotion-blender-")


def _even(value: int) -> int:
    return max(2, value - value % 2)


class STILLMOTION_OT_animate_strips(bpy.types.Operator):  # noqa: N801 - Blender's naming convention
    """Animate the selected image strips (all when none is selected) to the music under them"""

    bl_idname = "stillmotion.animate_strips"
    bl_label = "Animate Stills to the Music"
    bl_options = {"REGISTER", "UNDO"}

    output_dir: bpy.props.StringProperty(name="Output Folder", subtype="DIR_PATH", default="",  # type: ignore
                                         description="Where clips are rendered (default: beside the .blend)")
    engine: bpy.props.StringProperty(name="Engine", default="procedural",  # type: ignore
                                     description="procedural, or a diffusion engine with local weights")
    preset: bpy.props.StringProperty(name="Preset", default="pulse", description="Motion preset")  # type: ignore
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)  # type: ignore
    match_scene_size: bpy.props.BoolProperty(name="Render at Scene Size", default=True,  # type: ignore
                                             description="Render clips at the scene's output resolution")
    with_sound: bpy.props.BoolProperty(name="Add Music as Sound", default=False,  # type: ignore
                                       description="Also add each clip's muxed music as a sound strip")

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def execute(self, context: Any) -> set[str]:
        from stillmotion.plugin.runtime import SubprocessError, run_json_lines

        scene = context.scene
        snapshot = snapshot_scene(scene)
        names = strips_to_animate(snapshot)
        if not names:
            self.report({"ERROR"}, "StillMotion: no image strips to animate")
            return {"CANCELLED"}
        folder = Path(bpy.path.abspath(self.output_dir) if self.output_dir else default_output_dir())
        folder.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {"engine": self.engine, "preset": self.preset, "seed": self.seed}
        if self.match_scene_size:
            width, height = snapshot["resolution"]
            settings["width"], settings["height"] = _even(width), _even(height)
        job = {"snapshot": snapshot, "strips": names, "output_dir": str(folder), "settings": settings}
        fd, job_path = tempfile.mkstemp(prefix=".stillmotion-job-", suffix=".json", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(job, handle)
        wm = context.window_manager
        wm.progress_begin(0, 100)
        notes: list[str] = []
        try:
            reply = run_json_lines(["-m", "stillmotion.plugin.blender.worker", job_path],
                                   lambda message: notes.append(str(message.get("message", ""))))
            placed = place_clips(scene, reply["result"]["clips"], with_sound=self.with_sound)
        except (SubprocessError, PlacementError) as exc:
            self.report({"ERROR"}, f"StillMotion: {exc}")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
            Path(job_path).unlink(missing_ok=True)
        for note in notes:
            self.report({"WARNING"}, f"StillMotion: {note}")
        scene["stillmotion_last_run"] = json.dumps({"placed": placed, "timeline": reply["result"]["timeline"]})
        channels = sorted({p["channel"] for p in placed})
        self.report({"INFO"}, f"StillMotion: placed {len(placed)} clip(s) on channel "
                              f"{', '.join(map(str, channels))}")
        return {"FINISHED"}


def _pump() -> float | None:
    """Let Qt handle its events; stop (return None) once every panel window is closed."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    _PANELS[:] = [w for w in _PANELS if w.isVisible()]
    if app is None or not _PANELS:
        return None
    app.processEvents()
    return PUMP_INTERVAL


def close_panels(*_args: Any) -> None:
    """Close every open panel: Blender is quitting (atexit) or loading another file (`load_pre`: the scene the
    panel reads is about to go away)."""
    windows, _PANELS[:] = list(_PANELS), []
    for window in windows:
        try:
            window.close()
        except RuntimeError:  # its Qt object is already gone
            continue
    if windows:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.processEvents()


@bpy.app.handlers.persistent
def _on_load_pre(*args: Any) -> None:
    close_panels()


class STILLMOTION_OT_open_panel(bpy.types.Operator):  # noqa: N801
    """Open the StillMotion panel on this scene's sequencer"""

    bl_idname = "stillmotion.open_panel"
    bl_label = "StillMotion Panel"

    def execute(self, context: Any) -> set[str]:
        if bpy.app.background:
            self.report({"ERROR"}, "StillMotion: the panel needs Blender's interface (not blender -b)")
            return {"CANCELLED"}
        try:
            from stillmotion.plugin.blender.adapter import BlenderHost
            from stillmotion.plugin.panel import open_host_panel
        except ImportError as exc:
            self.report({"ERROR"}, f"StillMotion: the panel needs {exc.name or exc} from the project's venv "
                                   "(Blender's Python must match the venv's; see docs/hosts.md)")
            return {"CANCELLED"}
        window = open_host_panel(BlenderHost(context.scene))
        _PANELS.append(window)
        if not bpy.app.timers.is_registered(_pump):
            bpy.app.timers.register(_pump, first_interval=0.0, persistent=True)
        return {"FINISHED"}


def menu_entries(self: Any, context: Any) -> None:
    self.layout.separator()
    self.layout.operator(STILLMOTION_OT_animate_strips.bl_idname, icon="SEQUENCE")
    self.layout.operator(STILLMOTION_OT_open_panel.bl_idname, icon="WINDOW")


CLASSES = (STILLMOTION_OT_animate_strips, STILLMOTION_OT_open_panel)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.SEQUENCER_MT_strip.append(menu_entries)
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)
    atexit.register(close_panels)


def unregister() -> None:
    bpy.types.SEQUENCER_MT_strip.remove(menu_entries)
    if bpy.app.timers.is_registered(_pump):
        bpy.app.timers.unregister(_pump)
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    atexit.unregister(close_panels)
    close_panels()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
