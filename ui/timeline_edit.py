"""Panel-side timeline edits, done with OpenTimelineIO directly: the overview the panel draws, and placing one
generated clip at its still's record range on a chosen track (Insert) or swapping the media of a clip placed
earlier (Replace). `stillmotion.engine.timeline` adds whole generated tracks for the batch command; the panel
needs single-clip edits on existing tracks, which it does not offer yet."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import opentimelineio as otio
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline.select import Still
from stillmotion.engine.timeline.timebase import frames_range, to_frames

from .viewmodel import ClipItem, TimelineOverview, TrackItem


def still_key(still: Still) -> str:
    """Stable key of a still: its video track and record start (clip names need not be unique)."""
    return f"V{still.track_index + 1}@{still.record_start}"


def build_overview(timeline: otio.schema.Timeline, rate: Fraction, stills: list[Still],
                   offline_names: set[str] | None = None) -> TimelineOverview:
    """Tracks and clips in frames, with the stills marked (keys match `still_key`)."""
    still_at = {(s.track_index, s.record_start): s for s in stills}
    offline_names = offline_names or set()
    tracks: list[TrackItem] = []
    video_index = audio_index = 0
    end = 0
    for number, track in enumerate(timeline.tracks):
        is_video = track.kind == otio.schema.TrackKind.Video
        kind_index = video_index if is_video else audio_index
        item = TrackItem(index=number, name=track.name or f"{'V' if is_video else 'A'}{kind_index + 1}",
                         kind="Video" if is_video else "Audio")
        for child in track:
            if not isinstance(child, otio.core.Item) or isinstance(child, otio.schema.Gap):
                continue
            placed = child.range_in_parent()
            start = to_frames(placed.start_time, rate)
            frames = to_frames(placed.start_time + placed.duration, rate) - start
            still = still_at.get((kind_index, start)) if is_video else None
            key = still_key(still) if still is not None else f"{item.name}#{number}@{start}"
            item.clips.append(ClipItem(
                key=key, name=child.name or "clip", start=start, frames=frames, is_still=still is not None,
                generated=isinstance(child, otio.schema.Clip) and "stillmotion" in child.metadata
                and "output" in child.metadata["stillmotion"],
                offline=child.name in offline_names))
            end = max(end, start + frames)
        tracks.append(item)
        if is_video:
            video_index += 1
        else:
            audio_index += 1
    return TimelineOverview(name=timeline.name or "timeline", rate=rate, frames=end, tracks=tracks)


def video_track_names(timeline: otio.schema.Timeline) -> list[str]:
    return [t.name for t in timeline.video_tracks() if t.name]


def _occupied(track: otio.schema.Track, rate: Fraction) -> list[tuple[int, int, otio.core.Item]]:
    spans = []
    for child in track:
        if isinstance(child, otio.schema.Transition):
            raise BadInputError(f"track {track.name!r} has transitions; insert on another track")
        if isinstance(child, otio.schema.Gap):
            continue
        placed = child.range_in_parent()
        start = to_frames(placed.start_time, rate)
        spans.append((start, to_frames(placed.start_time + placed.duration, rate), child))
    return spans


def _rebuild(track: otio.schema.Track, spans: list[tuple[int, int, otio.core.Item]], rate: Fraction) -> None:
    """Lay `spans` out again in order with gaps between them (OTIO tracks are sequences, not positions)."""
    track.clear()
    position = 0
    for start, end, item in sorted(spans, key=lambda s: s[0]):
        if start > position:
            track.append(otio.schema.Gap(source_range=frames_range(0, start - position, rate)))
        track.append(item)
        position = end


def generated_clip(name: str, media_url: str, frames: int, rate: Fraction, metadata: dict[str, Any]
                   ) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(target_url=media_url, available_range=frames_range(0, frames, rate))
    reference.name = media_url.rsplit("/", 1)[-1]
    clip = otio.schema.Clip(name=name, media_reference=reference, source_range=frames_range(0, frames, rate))
    clip.metadata["stillmotion"] = metadata
    return clip


def place_generated_clip(timeline: otio.schema.Timeline, clip: otio.schema.Clip, start: int, rate: Fraction,
                         track_name: str) -> otio.schema.Track:
    """Put `clip` at record frame `start` on the video track `track_name` (a new top track when there is none).

    Refuses (one line) when something already sits in that range on that track: nothing is overwritten.
    """
    frames = to_frames(clip.source_range.duration, rate)
    track = next((t for t in timeline.video_tracks() if t.name == track_name), None)
    if track is None:
        track = otio.schema.Track(name=track_name, kind=otio.schema.TrackKind.Video)
        timeline.tracks.append(track)
    spans = _occupied(track, rate)
    for a, b, item in spans:
        if a < start + frames and start < b:
            raise BadInputError(f"track {track_name!r} already has {item.name!r} at frames {a}-{b}; "
                                "choose another track or use Replace")
    spans.append((start, start + frames, clip))
    _rebuild(track, spans, rate)
    return track


def find_generated_clip(timeline: otio.schema.Timeline, source_clip: str, start: int
                        ) -> otio.schema.Clip | None:
    """The clip the panel (or the batch command) generated for the still `source_clip` at record `start`."""
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
        clip.media_reference = otio.schema.ExternalReference(target_url=media_url,
                                                             available_range=clip.source_range)
    clip.metadata["stillmotion"] = metadata
    return clip
