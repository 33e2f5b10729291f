"""Markers an editor put on the timeline, read as beats, downbeats and cues.

Every format reaches OTIO with its markers: FCP7 XML sequence and clip markers, FCPXML markers, Kdenlive guides
(on the stack) and clip markers, Resolve and OTIO markers. Markers on the timeline (its stack), on audio tracks
and on music clips become the beat grid of the stills above them (`--beats-from-markers`, the panel's "use
timeline markers"); one named "downbeat", "bar", "1"... is a downbeat. A marker on a *still* named like "hit",
"cue" or "accent" is a cue: the biggest motion of that clip lands exactly on its frame.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from ..audio.grid import MARKER_SOURCE, BeatGrid
from ..motion import MotionSchedule
from ..request import RenderRequest
from .select import Still
from .timebase import to_seconds

#: Marker names that make a cue on a still (whole words, any case: "Hit", "cue 2", "ACCENT!").
CUE_WORDS = re.compile(r"\b(hit|cue|accent)\b", re.IGNORECASE)
#: Marker names that make a downbeat: "downbeat", "bar", "Bar 3", "db", "1", "one".
DOWNBEAT_NAME = re.compile(r"^\s*(downbeat|bar|db|1|one)\b", re.IGNORECASE)
#: Seconds of markers kept either side of a still, so its first and last frames still get a beat phase.
MARGIN = 4.0


def is_cue(name: str) -> bool:
    return bool(CUE_WORDS.search(name or ""))


def is_downbeat(name: str) -> bool:
    return bool(DOWNBEAT_NAME.match(name or ""))


def _marker_start(marker: otio.schema.Marker) -> Fraction:
    return to_seconds(marker.marked_range.start_time)


def _clip_markers_on_timeline(clip: otio.schema.Clip) -> list[tuple[Fraction, str]]:
    """(timeline seconds, name) of a clip's markers that fall inside its trimmed range."""
    placed = clip.range_in_parent()
    trimmed = clip.trimmed_range()
    start, length = to_seconds(trimmed.start_time), to_seconds(trimmed.duration)
    out = []
    for marker in clip.markers:
        local = _marker_start(marker) - start
        if 0 <= local < length:
            out.append((to_seconds(placed.start_time) + local, marker.name or ""))
    return out


def timeline_beat_markers(timeline: otio.schema.Timeline) -> list[tuple[Fraction, str]]:
    """(timeline seconds, name) of every marker that can be a beat: on the stack, on audio tracks and on the
    clips of audio tracks, sorted by time, duplicates (the same instant marked twice) dropped."""
    found: list[tuple[Fraction, str]] = [(_marker_start(m), m.name or "") for m in timeline.tracks.markers]
    for track in timeline.audio_tracks():
        found += [(_marker_start(m), m.name or "") for m in track.markers]
        for item in track:
            if isinstance(item, otio.schema.Clip):
                found += _clip_markers_on_timeline(item)
    found = [(t, name) for t, name in found if not is_cue(name)]
    found.sort(key=lambda item: (item[0], not is_downbeat(item[1])))
    unique: list[tuple[Fraction, str]] = []
    for t, name in found:
        if unique and abs(t - unique[-1][0]) < Fraction(1, 1000):
            continue
        unique.append((t, name))
    return unique


def marker_grid(timeline: otio.schema.Timeline, still: Still, rate: Fraction,
                base: BeatGrid | None = None) -> BeatGrid | None:
    """The beat grid the timeline's markers give the still's music (in the song file's time), or None when
    fewer than two markers lie near the still or it has no music. `base` keeps the editor's hint and offset."""
    if not still.audio:
        return None
    start = Fraction(still.record_start) / rate
    end = Fraction(still.record_end) / rate
    near = [(t, name) for t, name in timeline_beat_markers(timeline) if start - MARGIN <= t <= end + MARGIN]
    if len(near) < 2:
        return None
    # The song the still mostly hears: markers are mapped through its placement (clip time -> file time).
    segment = max(still.audio, key=lambda s: s.duration or Fraction(0))
    shift = segment.source_start - segment.record_start - start
    beats = [t + shift for t, _ in near if t + shift >= 0]
    downbeats = [t + shift for t, name in near if t + shift >= 0 and is_downbeat(name)]
    if len(beats) < 2:
        return None
    base = base or BeatGrid()
    return BeatGrid(bpm=None, tempo_range=None, beats=tuple(float(t) for t in beats),
                    downbeats=tuple(float(t) for t in downbeats), factor=base.factor, offset=base.offset,
                    source=MARKER_SOURCE)


def still_cues(still: Still, rate: Fraction) -> list[int]:
    """Frames (clip time) of the still's cue markers ("hit", "cue", "accent"), inside the clip."""
    clip = still.clip
    if not clip.markers:
        return []
    try:
        origin = to_seconds(clip.trimmed_range().start_time)
    except otio.exceptions.CannotComputeAvailableRangeError:
        origin = Fraction(0)
    frames = set()
    for marker in clip.markers:
        if not is_cue(marker.name or ""):
            continue
        frame = round((_marker_start(marker) - origin) * rate)
        if 0 <= frame < still.frames:
            frames.add(int(frame))
    return sorted(frames)


def annotate_request(request: RenderRequest, timeline: otio.schema.Timeline, still: Still, rate: Fraction,
                     beats_from_markers: bool = False) -> str | None:
    """Put the still's cues into the request's motion schedule and, when asked, the markers' beat grid into
    its options (both then belong to the job's identity and the clip's provenance). Returns a one-line note
    when markers were asked for but give no grid for this still."""
    cues = still_cues(still, rate)
    if cues:
        data = request.options.get("schedule") or MotionSchedule(
            preset=request.preset, intensity=request.intensity, seed=request.seed).to_json()
        request.options["schedule"] = MotionSchedule.from_json(data | {"cues": cues}).to_json()
    if not beats_from_markers:
        return None
    base = BeatGrid.of_request(request)
    grid = marker_grid(timeline, still, rate, base)
    if grid is None:
        return (f"still {still.name!r}: fewer than two beat markers on its music or the timeline near it; "
                "the tracked beat grid is used")
    request.options["beat_grid"] = grid.to_json()
    return None


def check_grid_fits(options: dict, stills: list[Still]) -> None:
    """A beat file given for the whole timeline must fit every song it is applied to (one line, before any work)."""
    grid = BeatGrid.from_json(options["beat_grid"]) if options.get("beat_grid") else None
    if grid is None or grid.beats is None or grid.source == MARKER_SOURCE:
        return
    from ..audio import audio_info

    for path in sorted({seg.path for still in stills for seg in still.audio}):
        grid.check_duration(audio_info(path).duration, Path(path).name)
