"""`BlenderHost`: Blender's sequencer as a `HostAdapter` (runs inside Blender, with the venv linked)."""

from __future__ import annotations

from typing import Any

import bpy
import opentimelineio as otio
from stillmotion.engine.errors import BadInputError

from ..host import Capability, HostAdapter, InsertedClip, RecordRange
from .convert import origin_frame, scene_rate, sequencer_to_otio
from .sequencer import PlacementError, add_movie, free_channel
from .snapshot import snapshot_scene

_WINDOWS: list[int] | None = None


def blender_windows() -> list[int]:
    """Blender's own X11 windows, looked up once: the first look-up runs before Qt opens any window of its own
    in this process (both set the same `_NET_WM_PID`)."""
    global _WINDOWS
    if _WINDOWS is None:
        from ..x11 import process_windows

        _WINDOWS = [] if bpy.app.background else process_windows()
    return _WINDOWS


class BlenderHost(HostAdapter):
    """One scene's sequencer. Frames in `RecordRange` count from OTIO frame 0 = Blender frame `origin`."""

    name = "blender"

    def __init__(self, scene: Any) -> None:
        self.scene = scene
        self._snapshot: dict[str, Any] | None = None
        self._windows = blender_windows()

    def native_window(self) -> int | None:
        return self._windows[0] if self._windows else None

    def capabilities(self) -> Capability:
        return (Capability.READ_TIMELINE | Capability.SELECTION | Capability.PLAYHEAD | Capability.IN_OUT_RANGE
                | Capability.IMPORT_MEDIA | Capability.INSERT_CLIP | Capability.NEW_TRACK | Capability.UNDO_GROUP)

    def project_key(self) -> str:
        import bpy

        return f"{bpy.data.filepath or 'untitled'}::{self.scene.name}"

    def _snap(self, fresh: bool = False) -> dict[str, Any]:
        if fresh or self._snapshot is None:
            self._snapshot = snapshot_scene(self.scene)
        return self._snapshot

    @property
    def origin(self) -> int:
        return origin_frame(self._snap())

    @property
    def rate(self) -> Any:
        snap = self._snap()
        return scene_rate(snap["fps"], snap["fps_base"])

    def host_frame(self, frame: int) -> int:
        """Blender's own frame number: record frame 0 is the sequencer's `origin` (scene start or first strip)."""
        return self.origin + int(frame)

    def timeline_noun(self) -> str:
        return "scene"

    def timeline_title(self) -> str:
        return f"Blender · {self.scene.name}"

    def editor_rect(self) -> tuple[int, int, int, int] | None:
        """The biggest sequencer area of Blender's first window (Blender's area y counts up from the window's
        bottom edge), else the whole window."""
        window = bpy.context.window or next(iter(bpy.context.window_manager.windows), None)
        if window is None:
            return None
        areas = [a for a in window.screen.areas if a.type == "SEQUENCE_EDITOR"]
        if not areas:
            return int(window.x), int(window.y), int(window.width), int(window.height)
        area = max(areas, key=lambda a: a.width * a.height)
        top = int(window.y) + int(window.height) - (int(area.y) + int(area.height))
        return int(window.x) + int(area.x), top, int(area.width), int(area.height)

    def read_timeline(self) -> otio.schema.Timeline:
        return sequencer_to_otio(self._snap(fresh=True))

    def selection(self) -> list[str]:
        return [s["name"] for s in self._snap(fresh=True)["strips"] if s.get("select")]

    def playhead(self) -> int | None:
        return int(self.scene.frame_current) - self.origin

    def in_out_range(self) -> RecordRange | None:
        scene = self.scene
        start, end = ((scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range
                      else (scene.frame_start, scene.frame_end))
        return RecordRange(start_frame=int(start) - self.origin, frames=int(end) - int(start) + 1, fps=self.rate)

    def _channel(self, track: str | None, start: int, end: int) -> int:
        if track is None:
            return free_channel(self.scene, [(start, end)])
        digits = "".join(ch for ch in track if ch.isdigit())
        if not track.lower().startswith("channel") or not digits:
            raise BadInputError(f"track {track!r} is not a sequencer channel (use 'Channel N')")
        return int(digits)

    def insert_clip(self, media_path: str, record: RecordRange, track: str | None = None,
                    metadata: dict | None = None) -> InsertedClip:
        media = self.checked_media(media_path, record, self.rate)
        start = self.origin + record.start_frame
        channel = self._channel(track, start, start + record.frames)
        try:
            strip = add_movie(self.scene, f"{media.stem} (StillMotion)", str(media), channel, start, record.frames)
        except PlacementError as exc:
            raise BadInputError(str(exc)) from None
        if metadata:
            strip["stillmotion"] = str(metadata.get("source_clip", ""))
        if not bpy.app.background:
            bpy.ops.ed.undo_push(message="StillMotion: insert clip")
        self._snapshot = None
        return InsertedClip(track=f"Channel {strip.channel}", start_frame=strip.frame_final_start - self.origin,
                            frames=strip.frame_final_duration, media_path=str(media))
