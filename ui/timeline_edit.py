"""The timeline overview the panel draws (tracks and clips in frames, stills marked). Single-clip Insert and
Replace live in `stillmotion.engine.timeline.edit`, shared with the hosts."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
from stillmotion.engine.timeline.select import Still
from stillmotion.engine.timeline.timebase import to_frames

from .viewmodel import ClipItem, MarkerItem, TimelineOverview, TrackItem


def still_key(still: Still) -> str:
    """Stable key of a still: its video track and record start (clip names need not be unique)."""
    return f"V{still.track_index + 1}@{still.record_start}"


def build_overview(timeline: otio.schema.Timeline, rate: Fraction, stills: list[Still],
                   offline_names: set[str] | None = None,
                   offline_stills: set[tuple[int, int]] | None = None) -> TimelineOverview:
    """Tracks and clips in frames, with the stills marked (keys match `still_key`); `offline_stills` are
    (video track index, record start) of stills whose media is not here: drawn as stills, marked offline."""
    still_at = {(s.track_index, s.record_start): s for s in stills}
    offline_stills = offline_stills or set()
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
                offline=child.name in offline_names or (is_video and (kind_index, start) in offline_stills)))
            end = max(end, start + frames)
        tracks.append(item)
        if is_video:
            video_index += 1
        else:
            audio_index += 1
    markers = timeline_markers(timeline, rate)
    end = max([end, *(m.frame + m.frames for m in markers)])
    return TimelineOverview(name=timeline.name or "timeline", rate=rate, frames=end, tracks=tracks,
                            markers=markers)


def timeline_markers(timeline: otio.schema.Timeline, rate: Fraction) -> list[MarkerItem]:
    """The timeline's own markers (on its top stack) and its tracks' markers, in record frames, by frame."""
    found: list[MarkerItem] = []
    for owner in [timeline.tracks, *timeline.tracks]:
        for marker in owner.markers:
            span = marker.marked_range
            start = to_frames(span.start_time, rate)
            found.append(MarkerItem(frame=start, name=marker.name or "", colour=str(marker.color or ""),
                                    frames=max(0, to_frames(span.start_time + span.duration, rate) - start)))
    return sorted(found, key=lambda m: (m.frame, m.name))


def video_track_names(timeline: otio.schema.Timeline) -> list[str]:
    return [t.name for t in timeline.video_tracks() if t.name]
