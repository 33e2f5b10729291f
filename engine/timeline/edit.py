"""Single-clip edits on an OTIO timeline: make a clip for a rendered file, place it at an exact record range
without overwriting anything, find it again, and point it at a new attempt.

The batch command adds whole generated tracks (`pipeline.add_generated_tracks`); the panel's Insert / Replace
and the hosts that edit through OTIO (the file host, Resolve's fallback import) place one clip at a time. All of
them build clips here, so a generated clip looks the same whoever made it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from ..errors import BadInputError
from .timebase import frames_range, to_frames

DEFAULT_TRACK = "StillMotion"


def unique_track_name(timeline: otio.schema.Timeline, base: str = DEFAULT_TRACK) -> str:
    """`base`, or `base 2`, `base 3`... whichever no track of the timeline is called yet."""
    names = {t.name for t in timeline.tracks}
    if base not in names:
        return base
    number = 2
    while f"{base} {number}" in names:
        number += 1
    return f"{base} {number}"


def generated_clip(name: str, media_url: str, frames: int, rate: Fraction,
                   metadata: dict[str, Any] | None = None) -> otio.schema.Clip:
    """A clip showing all `frames` of a rendered file (available_range set: some writers need it)."""
    reference = otio.schema.ExternalReference(target_url=media_url, available_range=frames_range(0, frames, rate))
    reference.name = media_url.rsplit("/", 1)[-1]
    clip = otio.schema.Clip(name=name, media_reference=reference, source_range=frames_range(0, frames, rate))
    if metadata:
        clip.metadata["stillmotion"] = metadata
    return clip


def occupied_spans(track: otio.schema.Track, rate: Fraction) -> list[tuple[int, int, otio.core.Item]]:
    """(start, end, item) of every non-gap item of `track`, in frames at `rate`."""
    found = []
    for child in track:
        if isinstance(child, otio.schema.Transition):
            raise BadInputError(f"track {track.name!r} has transitions; insert on another track")
        if isinstance(child, otio.schema.Gap):
            continue
        placed = child.range_in_parent()
        start = to_frames(placed.start_time, rate)
        found.append((start, to_frames(placed.start_time + placed.duration, rate), child))
    return found


def lay_out(track: otio.schema.Track, spans: list[tuple[int, int, otio.core.Item]], rate: Fraction) -> None:
    """Put `spans` on `track` in order with gaps between them (OTIO tracks are sequences, not positions)."""
    track.clear()
    position = 0
    for start, end, item in sorted(spans, key=lambda s: s[0]):
        if start > position:
            track.append(otio.schema.Gap(source_range=frames_range(0, start - position, rate)))
        track.append(item)
        position = end


def place_clip(timeline: otio.schema.Timeline, clip: otio.schema.Clip, start: int, rate: Fraction,
               track_name: str | None = None) -> otio.schema.Track:
    """Put `clip` at record frame `start` on video track `track_name` (a new top track when None or absent).

    Nothing is overwritten: an occupied range is one `BadInputError` line.
    """
    if start < 0:
        raise BadInputError(f"record frame {start} is before the timeline's start")
    frames = to_frames(clip.source_range.duration, rate)
    name = track_name or unique_track_name(timeline)
    track = next((t for t in timeline.video_tracks() if t.name == name), None)
    if track is None:
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video)
        timeline.tracks.append(track)
    spans = occupied_spans(track, rate)
    for a, b, item in spans:
        if a < start + frames and start < b:
            raise BadInputError(f"track {name!r} already has {item.name!r} at frames {a}-{b}; "
                                "choose another track or replace that clip")
    spans.append((start, start + frames, clip))
    lay_out(track, spans, rate)
    return track


def find_placed(timeline: otio.schema.Timeline, media: Path, rate: Fraction, timeline_dir: Path | None = None
                ) -> tuple[str, int, int] | None:
    """(track name, start, frames) of the clip whose media is `media`, read back from the timeline (relative
    media URLs resolve against `timeline_dir`)."""
    from .select import media_path

    target = media.resolve()
    for track in timeline.video_tracks():
        try:
            spans = occupied_spans(track, rate)
        except BadInputError:  # a track with transitions holds no clip we placed
            continue
        for a, b, item in spans:
            if isinstance(item, otio.schema.Clip):
                path = media_path(item.media_reference, timeline_dir or Path.cwd())
                if path is not None and path.resolve() == target:
                    return track.name, a, b - a
    return None


def find_generated_clip(timeline: otio.schema.Timeline, source_clip: str, start: int) -> otio.schema.Clip | None:
    """The clip generated (by the panel or the batch command) for the still `source_clip` at record `start`."""
    for clip in timeline.find_clips():
        data = clip.metadata.get("stillmotion") if isinstance(clip, otio.schema.Clip) else None
        if not data or "output" not in data:
            continue
        record = data.get("record_range") or {}
        if data.get("source_clip") == source_clip and int(record.get("start_frame", -1)) == start:
            return clip
    return None


def replace_generated_clip(timeline: otio.schema.Timeline, source_clip: str, start: int, media_url: str,
                           metadata: dict[str, Any]) -> otio.schema.Clip:
    """Point the clip generated earlier for this still at a new attempt (same place, same length)."""
    clip = find_generated_clip(timeline, source_clip, start)
    if clip is None:
        raise BadInputError(f"nothing was inserted for {source_clip!r} yet; use Insert first")
    reference = clip.media_reference
    if isinstance(reference, otio.schema.ExternalReference):
        reference.target_url = media_url
        reference.name = media_url.rsplit("/", 1)[-1]
    else:
        clip.media_reference = otio.schema.ExternalReference(target_url=media_url, available_range=clip.source_range)
    clip.metadata["stillmotion"] = metadata
    return clip
