"""A sequencer snapshot (plain data from `snapshot.snapshot_scene`) as an OTIO timeline, without bpy.

Mapping (docs/hosts.md): each channel holding picture strips becomes a video track and each channel holding sound
strips an audio track, in channel order, named after the channel; a meta strip becomes a nested Stack; a muted
strip or channel becomes a disabled clip or track; the scene's timeline markers become the timeline's markers.
The scene rate is `fps / fps_base` as an exact Fraction (Blender stores fps_base as a float32: 1.001 reads
1.00100004673, which is 1001/1000). Track frame 0 is Blender frame `origin` (the earliest of the scene start and every strip start), kept as the timeline's
global_start_time, so a record frame maps back to `origin + frame`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline.timebase import frames_range

SNAPSHOT_VERSION = 1
#: Strip types carrying pictures from a file, sound from a file, and nested strips.
IMAGE, MOVIE, SOUND, META = "IMAGE", "MOVIE", "SOUND", "META"
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.[^.]+)$")


def scene_rate(fps: int, fps_base: float) -> Fraction:
    """The exact scene rate: 24 / 1.001 (stored as float32) -> 24000/1001."""
    if fps <= 0 or fps_base <= 0:
        raise BadInputError(f"scene frame rate {fps}/{fps_base} is not positive")
    return Fraction(int(fps)) / Fraction(fps_base).limit_denominator(1000)


def _time(frames: Fraction | int, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(frames), float(rate))


def _file_url(path: str) -> str:
    return Path(path).resolve().as_uri() if path else ""


def _image_reference(strip: dict[str, Any], rate: Fraction) -> otio.core.MediaReference:
    files: list[str] = list(strip.get("files") or [])
    directory = strip.get("directory", "")
    if len(files) <= 1:
        path = str(Path(directory) / files[0]) if files else ""
        return otio.schema.ExternalReference(target_url=_file_url(path)) if path else otio.schema.MissingReference()
    first, last = _NUMBERED.match(files[0]), _NUMBERED.match(files[-1])
    if first and last and first["prefix"] == last["prefix"] and first["suffix"] == last["suffix"]:
        return otio.schema.ImageSequenceReference(
            target_url_base=Path(directory).resolve().as_uri() + "/", name_prefix=first["prefix"],
            name_suffix=first["suffix"], start_frame=int(first["number"]), frame_step=1, rate=float(rate),
            frame_zero_padding=len(first["number"]),
            available_range=frames_range(0, len(files), rate))
    missing = otio.schema.MissingReference()
    missing.metadata["blender"] = {"directory": directory, "files": files}
    return missing


def _reference(strip: dict[str, Any], rate: Fraction) -> otio.core.MediaReference:
    kind = strip["type"]
    if kind == IMAGE:
        return _image_reference(strip, rate)
    if kind in (MOVIE, SOUND):
        path = strip.get("filepath", "")
        if not path:
            return otio.schema.MissingReference()
        return otio.schema.ExternalReference(target_url=_file_url(path),
                                             available_range=frames_range(0, int(strip["frame_duration"]), rate))
    return otio.schema.GeneratorReference(generator_kind=kind.lower())


def _source_start(strip: dict[str, Any], rate: Fraction) -> Fraction:
    """Frames (at the scene rate) into the strip's media where its visible part begins."""
    trimmed = Fraction(strip["frame_final_start"]) - Fraction(strip["frame_start"])
    kind = strip["type"]
    if kind == SOUND:
        return trimmed + Fraction(strip.get("sound_offset", 0.0)).limit_denominator(10**6) * rate
    if kind == IMAGE and len(strip.get("files") or []) <= 1:
        return Fraction(0)
    return trimmed + int(strip.get("animation_offset_start", 0))


def _clip(strip: dict[str, Any], rate: Fraction) -> otio.core.Item:
    duration = int(strip["frame_final_end"]) - int(strip["frame_final_start"])
    source = otio.opentime.TimeRange(_time(_source_start(strip, rate), rate), _time(duration, rate))
    info = {k: v for k, v in strip.items() if k not in ("strips",)}
    if strip["type"] == META:
        inner = _tracks(strip.get("strips") or [], rate, origin=int(strip["frame_start"]), channels={})
        item: otio.core.Item = otio.schema.Stack(name=strip["name"], source_range=source)
        for track in inner:
            item.append(track)
    else:
        item = otio.schema.Clip(name=strip["name"], media_reference=_reference(strip, rate), source_range=source)
    item.enabled = not strip.get("mute", False)
    item.metadata["blender"] = info
    return item


def _tracks(strips: list[dict[str, Any]], rate: Fraction, origin: int, channels: dict[str, Any]
            ) -> list[otio.schema.Track]:
    """One track per (channel, picture or sound), channels bottom to top, video tracks before audio tracks."""
    by_lane: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for strip in strips:
        kind = otio.schema.TrackKind.Audio if strip["type"] == SOUND else otio.schema.TrackKind.Video
        by_lane.setdefault((kind, int(strip["channel"])), []).append(strip)
    tracks = []
    order = sorted(by_lane, key=lambda lane: (lane[0] != otio.schema.TrackKind.Video, lane[1]))
    for kind, channel in order:
        info = channels.get(str(channel), {})
        track = otio.schema.Track(name=info.get("name") or f"Channel {channel}", kind=kind)
        track.enabled = not info.get("mute", False)
        track.metadata["blender"] = {"channel": channel}
        position = origin
        for strip in sorted(by_lane[(kind, channel)], key=lambda s: s["frame_final_start"]):
            start = int(strip["frame_final_start"])
            if start < position:
                raise BadInputError(f"strips overlap on channel {channel} at frame {start} ({strip['name']!r})")
            if start > position:
                track.append(otio.schema.Gap(source_range=frames_range(0, start - position, rate)))
            track.append(_clip(strip, rate))
            position = int(strip["frame_final_end"])
        tracks.append(track)
    return tracks


def origin_frame(snapshot: dict[str, Any]) -> int:
    """Blender frame shown at OTIO frame 0: the scene start, or an earlier strip start."""
    starts = [int(s["frame_final_start"]) for s in snapshot.get("strips", [])]
    return min([int(snapshot["frame_start"]), *starts])


def sequencer_to_otio(snapshot: dict[str, Any]) -> otio.schema.Timeline:
    """The snapshot as an OTIO timeline at the scene's exact rate (see the module docstring for the mapping)."""
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise BadInputError(f"sequencer snapshot version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}")
    rate = scene_rate(snapshot["fps"], snapshot["fps_base"])
    origin = origin_frame(snapshot)
    timeline = otio.schema.Timeline(name=snapshot.get("scene") or "Scene")
    timeline.global_start_time = otio.opentime.RationalTime(origin, float(rate))
    for track in _tracks(snapshot.get("strips", []), rate, origin, snapshot.get("channels") or {}):
        timeline.tracks.append(track)
    for marker in snapshot.get("markers") or []:  # the scene's timeline markers, at their Blender frames
        timeline.tracks.markers.append(otio.schema.Marker(
            name=str(marker.get("name", "")), marked_range=frames_range(int(marker["frame"]) - origin, 0, rate),
            metadata={"blender": {"frame": int(marker["frame"])}}))
    timeline.metadata["blender"] = {
        "scene": snapshot.get("scene", ""), "fps": snapshot["fps"], "fps_base": snapshot["fps_base"],
        "rate": str(rate), "origin_frame": origin, "frame_start": snapshot["frame_start"],
        "frame_end": snapshot["frame_end"], "blend_file": snapshot.get("blend_file", ""),
    }
    return timeline
