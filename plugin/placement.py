"""Placing one rendered clip on an OTIO timeline at an exact record range, for hosts that edit through OTIO
(the file host, and Resolve's fallback import). Qt-free on purpose: `ui.timeline_edit` does the same for the
panel but pulls in Qt through its view model, and a host adapter must work without a panel."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline.pipeline import DEFAULT_TRACK
from stillmotion.engine.timeline.timebase import frames_range, to_frames


def unique_track_name(timeline: otio.schema.Timeline, base: str = DEFAULT_TRACK) -> str:
    """`base`, or `base 2`, `base 3`... whichever no track of the timeline is called yet."""
    names = {t.name for t in timeline.tracks}
    if base not in names:
        return base
    number = 2
    while f"{base} {number}" in names:
        number += 1
    return f"{base} {number}"


def generated_clip(name: str, media_url: str, frames: int, rate: Fraction, metadata: dict[str, Any] | None = None
                   ) -> otio.schema.Clip:
    """A clip showing all `frames` of a rendered file."""
    reference = otio.schema.ExternalReference(target_url=media_url, available_range=frames_range(0, frames, rate))
    reference.name = media_url.rsplit("/", 1)[-1]
    clip = otio.schema.Clip(name=name, media_reference=reference, source_range=frames_range(0, frames, rate))
    if metadata:
        clip.metadata["stillmotion"] = metadata
    return clip


def spans(track: otio.schema.Track, rate: Fraction) -> list[tuple[int, int, otio.core.Item]]:
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


def place_clip(timeline: otio.schema.Timeline, clip: otio.schema.Clip, start: int, rate: Fraction,
               track_name: str | None) -> otio.schema.Track:
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
    occupied = spans(track, rate)
    for a, b, item in occupied:
        if a < start + frames and start < b:
            raise BadInputError(f"track {name!r} already has {item.name!r} at frames {a}-{b}")
    occupied.append((start, start + frames, clip))
    track.clear()
    position = 0
    for a, b, item in sorted(occupied, key=lambda s: s[0]):
        if a > position:
            track.append(otio.schema.Gap(source_range=frames_range(0, a - position, rate)))
        track.append(item)
        position = b
    return track


def find_placed(timeline: otio.schema.Timeline, media: Path, rate: Fraction, timeline_dir: Path | None = None
                ) -> tuple[str, int, int] | None:
    """(track name, start, frames) of the clip whose media is `media`, read back from the timeline (relative
    media URLs resolve against `timeline_dir`)."""
    from stillmotion.engine.timeline.select import media_path

    target = media.resolve()
    for track in timeline.video_tracks():
        for a, b, item in spans(track, rate):
            if isinstance(item, otio.schema.Clip):
                path = media_path(item.media_reference, timeline_dir or Path.cwd())
                if path is not None and path.resolve() == target:
                    return track.name, a, b - a
    return None
