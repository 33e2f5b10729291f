"""Read Blender's sequencer into plain, JSON-ready data (runs inside Blender; needs only bpy and the stdlib).

bpy is imported inside the functions so the pure helpers here load (and are tested) anywhere. Works with
Blender 3.x (`sequence_editor.sequences`) and 4.4+ / 5.x (`sequence_editor.strips`).
"""

from __future__ import annotations

from typing import Any

SNAPSHOT_VERSION = 1  # keep equal to convert.SNAPSHOT_VERSION (convert imports OTIO, which Blender may lack)
_COMMON = ("name", "type", "channel", "frame_start", "frame_final_start", "frame_final_end", "frame_offset_start",
           "frame_offset_end", "frame_duration", "mute", "select")


def top_strips(editor: Any) -> Any:
    """The editor's top-level strips (the collection's name changed in Blender 4.4)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor: Any) -> Any:
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def _children(meta: Any) -> Any:
    return meta.strips if hasattr(meta, "strips") else meta.sequences


def _abspath(path: str, owner: Any = None) -> str:
    import bpy

    library = getattr(owner, "library", None)
    return bpy.path.abspath(path, library=library) if path else ""


def strip_data(strip: Any) -> dict[str, Any]:
    """One strip's timing, channel, state and media as plain values."""
    data: dict[str, Any] = {}
    for key in _COMMON:
        value = getattr(strip, key, None)
        data[key] = float(value) if key == "frame_start" else value
    data["frame_start"] = float(strip.frame_start)
    data["animation_offset_start"] = int(getattr(strip, "animation_offset_start", 0) or 0)
    kind = strip.type
    if kind == "IMAGE":
        data["directory"] = _abspath(strip.directory, strip)
        data["files"] = [element.filename for element in strip.elements]
    elif kind == "MOVIE":
        data["filepath"] = _abspath(strip.filepath, strip)
        data["movie_fps"] = float(getattr(strip, "fps", 0.0) or 0.0)
    elif kind == "SOUND":
        sound = strip.sound
        data["filepath"] = _abspath(sound.filepath, sound) if sound is not None else ""
        data["volume"] = float(strip.volume)
        data["sound_offset"] = float(getattr(strip, "sound_offset", 0.0) or 0.0)
    elif kind == "META":
        data["strips"] = [strip_data(child) for child in _children(strip)]
    return data


def snapshot_scene(scene: Any) -> dict[str, Any]:
    """The whole sequencer of `scene`: rate, range, playhead, channels and every strip (metas nested)."""
    import bpy

    editor = scene.sequence_editor
    strips = [strip_data(s) for s in top_strips(editor)] if editor is not None else []
    channels: dict[str, Any] = {}
    if editor is not None and hasattr(editor, "channels"):
        for number, channel in enumerate(editor.channels):
            if number and (channel.name != f"Channel {number}" or channel.mute):
                channels[str(number)] = {"name": channel.name, "mute": bool(channel.mute)}
    preview = [scene.frame_preview_start, scene.frame_preview_end] if scene.use_preview_range else None
    render = scene.render
    scale = render.resolution_percentage / 100.0
    return {
        "version": SNAPSHOT_VERSION, "scene": scene.name, "fps": int(render.fps), "fps_base": float(render.fps_base),
        "frame_start": int(scene.frame_start), "frame_end": int(scene.frame_end),
        "frame_current": int(scene.frame_current), "preview_range": preview,
        "resolution": [int(render.resolution_x * scale), int(render.resolution_y * scale)],
        "blend_file": bpy.data.filepath, "channels": channels, "strips": strips,
        "markers": [{"name": m.name, "frame": int(m.frame)} for m in sorted(scene.timeline_markers,
                                                                            key=lambda m: m.frame)],
    }


def strips_to_animate(snapshot: dict[str, Any]) -> list[str]:
    """The selected unmuted top-level image strips, or every unmuted image strip when none is selected."""
    images = [s for s in snapshot.get("strips", []) if s["type"] == "IMAGE" and not s.get("mute", False)]
    selected = [s["name"] for s in images if s.get("select")]
    return selected or [s["name"] for s in images]
