"""Placing rendered clips in Blender's sequencer at exact frames (runs inside Blender; bpy and the stdlib only)."""

from __future__ import annotations

from typing import Any

from .snapshot import all_strips, top_strips

#: Blender's highest sequencer channel.
MAX_CHANNEL = 128


class PlacementError(Exception):
    """A strip did not land where asked (Blender moved or trimmed it)."""


def _editor(scene: Any) -> Any:
    return scene.sequence_editor or scene.sequence_editor_create()


def free_channel(scene: Any, spans: list[tuple[int, int]], above: int = 0) -> int:
    """The lowest channel above every strip overlapping any of `spans` (and above `above`) that is empty over
    all of them, so new clips sit on top of the stills they animate."""
    strips = list(top_strips(_editor(scene)))

    def overlaps(strip: Any, a: int, b: int) -> bool:
        return strip.frame_final_start < b and a < strip.frame_final_end

    floor = max([above] + [s.channel for s in strips for a, b in spans if overlaps(s, a, b)])
    for channel in range(floor + 1, MAX_CHANNEL + 1):
        if not any(s.channel == channel and overlaps(s, a, b) for s in strips for a, b in spans):
            return channel
    for channel in range(1, floor + 1):  # everything above is full: any free lane will do
        if not any(s.channel == channel and overlaps(s, a, b) for s in strips for a, b in spans):
            return channel
    raise PlacementError(f"no free channel for frames {spans}")


def _check(strip: Any, channel: int, frame_start: int, frames: int) -> None:
    if (strip.channel, strip.frame_final_start, strip.frame_final_duration) != (channel, frame_start, frames):
        raise PlacementError(f"{strip.name!r} landed on channel {strip.channel} at frame "
                             f"{strip.frame_final_start} for {strip.frame_final_duration} frames, not channel "
                             f"{channel} at {frame_start} for {frames}")


def add_movie(scene: Any, name: str, path: str, channel: int, frame_start: int, frames: int) -> Any:
    """A movie strip showing the first `frames` frames of `path` from `frame_start` on `channel`, verified."""
    strips = top_strips(_editor(scene))
    strip = strips.new_movie(name=name, filepath=path, channel=channel, frame_start=frame_start)
    if strip.frame_final_duration != frames:  # the file's own length estimate can differ by a frame
        strip.frame_final_duration = frames
    _check(strip, channel, frame_start, frames)
    return strip


def add_sound(scene: Any, name: str, path: str, channel: int, frame_start: int, frames: int) -> Any:
    strips = top_strips(_editor(scene))
    strip = strips.new_sound(name=name, filepath=path, channel=channel, frame_start=frame_start)
    if strip.frame_final_duration != frames:
        strip.frame_final_duration = frames
    _check(strip, channel, frame_start, frames)
    return strip


def place_clips(scene: Any, clips: list[dict[str, Any]], with_sound: bool = False) -> list[dict[str, Any]]:
    """Insert every rendered clip ({strip, output, frame_start, frames}) as a movie strip in one free channel
    above the stills (and its music as a sound strip one channel higher, when asked). Returns what landed."""
    if not clips:
        return []
    spans = [(int(c["frame_start"]), int(c["frame_start"]) + int(c["frames"])) for c in clips]
    channel = free_channel(scene, spans)
    sound_channel = free_channel(scene, spans, above=channel) if with_sound else 0
    placed = []
    for clip in clips:
        name = f"{clip['strip']} (StillMotion)"
        strip = add_movie(scene, name, clip["output"], channel, int(clip["frame_start"]), int(clip["frames"]))
        entry = {"strip": strip.name, "source": clip["strip"], "channel": strip.channel,
                 "frame_start": strip.frame_final_start, "frames": strip.frame_final_duration,
                 "output": clip["output"]}
        if with_sound:
            sound = add_sound(scene, f"{clip['strip']} (StillMotion music)", clip["output"], sound_channel,
                              int(clip["frame_start"]), int(clip["frames"]))
            entry["sound_strip"], entry["sound_channel"] = sound.name, sound.channel
        placed.append(entry)
    return placed


def strip_by_name(scene: Any, name: str) -> Any:
    editor = scene.sequence_editor
    return None if editor is None else all_strips(editor).get(name)
