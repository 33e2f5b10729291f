"""`ResolveHost`: the current Resolve timeline as a `HostAdapter`.

Reading: the timeline's own OTIO export (`Timeline.Export(path, resolve.EXPORT_OTIO, resolve.EXPORT_NONE)`,
Resolve 18.5+), else its tracks and items enumerated through the API. Inserting: `MediaPool.ImportMedia`, then
`MediaPool.AppendToTimeline([{mediaPoolItem, startFrame, endFrame, mediaType, trackIndex, recordFrame}])`, then
the track is READ BACK: that call is known to report success and place nothing, so when the clip is not there
the current timeline plus the clip is written as OTIO and imported as a new timeline
(`MediaPool.ImportTimelineFromFile`), which is verified the same way. Resolve has no scripting undo grouping.

Frames in `RecordRange` count from the timeline's first frame (`Timeline.GetStartFrame()`, 86400 for a
01:00:00:00 start at 24 fps), which is where OTIO frame 0 of the export lies.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.rates import parse_fps
from stillmotion.engine.timeline import read_timeline_info, write_timeline
from stillmotion.engine.timeline.edit import generated_clip, place_clip
from stillmotion.engine.timeline.timebase import frames_range

from ..host import Capability, HostAdapter, InsertedClip, RecordRange

#: Where Resolve installs its scripting module, per platform (overridden by $RESOLVE_SCRIPT_API).
SCRIPT_API_DIRS = {
    "linux": "/opt/resolve/Developer/Scripting",
    "darwin": "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting",
    "win32": os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "Blackmagic Design",
                          "DaVinci Resolve", "Support", "Developer", "Scripting"),
}
VIDEO_ONLY = 1


def script_module() -> Any:
    """Import DaVinciResolveScript, adding Resolve's Modules folder to sys.path when needed."""
    try:
        import DaVinciResolveScript
    except ImportError:
        api = os.environ.get("RESOLVE_SCRIPT_API") or SCRIPT_API_DIRS.get(sys.platform, "")
        modules = os.path.join(api, "Modules")
        if not os.path.isdir(modules):
            raise BadInputError("DaVinci Resolve's scripting module was not found (set RESOLVE_SCRIPT_API to "
                                "its Developer/Scripting folder)") from None
        sys.path.append(modules)
        try:
            import DaVinciResolveScript
        except ImportError as exc:
            raise BadInputError(f"cannot load DaVinciResolveScript from {modules}: {exc}") from None
    return DaVinciResolveScript


def connect() -> Any:
    """The running Resolve (Studio allows external scripts; the free version runs them from its Scripts menu)."""
    resolve = script_module().scriptapp("Resolve")
    if resolve is None:
        raise BadInputError("DaVinci Resolve is not running, or external scripting is off "
                            "(Preferences > System > General > External scripting using: Local)")
    return resolve


def timeline_rate(text: str) -> Fraction:
    """Resolve's timelineFrameRate setting ("23.976", "29.97 DF", "24") as an exact rate."""
    return parse_fps(re.sub(r"\s*N?DF$", "", str(text).strip()))


class ResolveHost(HostAdapter):
    """The current timeline of the current project of a running Resolve."""

    name = "resolve"

    def __init__(self, resolve: Any = None, workdir: str | Path | None = None) -> None:
        self.resolve = resolve if resolve is not None else connect()
        self.project = self.resolve.GetProjectManager().GetCurrentProject()
        if not self.project:
            raise BadInputError("no project is open in Resolve")
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="stillmotion-resolve-"))
        self.notes: list[str] = []

    # ------------------------------------------------------------------ reading
    def capabilities(self) -> Capability:
        caps = (Capability.READ_TIMELINE | Capability.PLAYHEAD | Capability.IMPORT_MEDIA | Capability.INSERT_CLIP
                | Capability.NEW_TRACK)
        timeline = self.project.GetCurrentTimeline()
        if timeline and hasattr(timeline, "GetMarkInOut"):
            caps |= Capability.IN_OUT_RANGE
        return caps

    def project_key(self) -> str:
        timeline = self.project.GetCurrentTimeline()
        return f"{self.project.GetName()}::{timeline.GetName() if timeline else ''}"

    def host_frame(self, frame: int) -> int:
        """Resolve's own record frame: the timeline's start frame (01:00:00:00 by default) plus `frame`."""
        return int(self.timeline().GetStartFrame()) + int(frame)

    def describe_place(self, track: str, frame: int) -> str:
        """Resolve's record timecode, as its timeline shows it ("V2 at 01:00:00:05")."""
        tc = otio.opentime.to_timecode(otio.opentime.RationalTime(self.host_frame(frame), float(self.rate)),
                                       float(self.rate))
        return f"{self.track_label(track)} at {tc}"

    def timeline(self) -> Any:
        timeline = self.project.GetCurrentTimeline()
        if not timeline:
            raise BadInputError("no timeline is open in Resolve's current project")
        return timeline

    @property
    def rate(self) -> Fraction:
        return timeline_rate(self.timeline().GetSetting("timelineFrameRate"))

    def read_timeline(self) -> otio.schema.Timeline:
        timeline = self.timeline()
        export = getattr(self.resolve, "EXPORT_OTIO", None)
        if export is not None:
            path = self.workdir / "resolve_export.otio"
            path.unlink(missing_ok=True)
            if timeline.Export(str(path), export, getattr(self.resolve, "EXPORT_NONE", 0)) and path.is_file():
                read, _ = read_timeline_info(path)
                return read
            self.notes.append("Resolve's OTIO export failed; read the timeline through its items instead")
        else:
            self.notes.append("this Resolve has no OTIO export (before 18.5); read the timeline through its items")
        return self._enumerate(timeline)

    def _enumerate(self, timeline: Any) -> otio.schema.Timeline:
        """The timeline built from its tracks and items (Resolve before 18.5 has no OTIO export)."""
        rate = self.rate
        start = int(timeline.GetStartFrame())
        result = otio.schema.Timeline(name=timeline.GetName())
        result.global_start_time = otio.opentime.RationalTime(start, float(rate))
        for kind, otio_kind in (("video", otio.schema.TrackKind.Video), ("audio", otio.schema.TrackKind.Audio)):
            for index in range(1, int(timeline.GetTrackCount(kind)) + 1):
                track = otio.schema.Track(name=timeline.GetTrackName(kind, index) or f"{kind[0].upper()}{index}",
                                          kind=otio_kind)
                track.enabled = bool(timeline.GetIsTrackEnabled(kind, index))
                position = start
                for item in sorted(timeline.GetItemListInTrack(kind, index) or [], key=lambda i: i.GetStart()):
                    begin, duration = int(item.GetStart()), int(item.GetDuration())
                    if begin > position:
                        track.append(otio.schema.Gap(source_range=frames_range(0, begin - position, rate)))
                    pool_item = item.GetMediaPoolItem()
                    path = pool_item.GetClipProperty("File Path") if pool_item else ""
                    reference = (otio.schema.ExternalReference(target_url=Path(path).resolve().as_uri()) if path
                                 else otio.schema.MissingReference())
                    source_start = int(item.GetSourceStartFrame()) if hasattr(item, "GetSourceStartFrame") \
                        else int(item.GetLeftOffset())
                    clip = otio.schema.Clip(name=item.GetName(), media_reference=reference,
                                            source_range=frames_range(source_start, duration, rate))
                    if hasattr(item, "GetClipEnabled"):
                        clip.enabled = bool(item.GetClipEnabled())
                    track.append(clip)
                    position = begin + duration
                result.tracks.append(track)
        self._read_markers(timeline, result, rate)
        return result

    @staticmethod
    def _read_markers(timeline: Any, result: otio.schema.Timeline, rate: Fraction) -> None:
        """The timeline's markers (frameIds count from the timeline's start) on the OTIO stack, where the OTIO
        export puts them too, so `--beats-from-markers` and the panel read them on either path."""
        markers = timeline.GetMarkers() if hasattr(timeline, "GetMarkers") else None
        for frame, info in sorted((markers or {}).items()):
            duration = max(1.0, float(info.get("duration", 1) or 1))
            result.tracks.markers.append(otio.schema.Marker(
                name=str(info.get("name", "")), marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(float(frame), float(rate)),
                    otio.opentime.RationalTime(duration, float(rate)))))

    def playhead(self) -> int | None:
        timeline = self.timeline()
        code = timeline.GetCurrentTimecode()
        if not code:
            return None
        return otio.opentime.from_timecode(code, float(self.rate)).to_frames() - int(timeline.GetStartFrame())

    def in_out_range(self) -> RecordRange | None:
        marks = (self.timeline().GetMarkInOut() or {}).get("video") or {}
        if "in" not in marks or "out" not in marks:
            return None
        return RecordRange(int(marks["in"]), int(marks["out"]) - int(marks["in"]) + 1, self.rate)

    # ------------------------------------------------------------------ inserting
    def _track_index(self, timeline: Any, track: str | None) -> int:
        if track is not None:
            for index in range(1, int(timeline.GetTrackCount("video")) + 1):
                if timeline.GetTrackName("video", index) == track:
                    return index
        if not timeline.AddTrack("video"):
            raise BadInputError("Resolve refused to add a video track")
        index = int(timeline.GetTrackCount("video"))
        timeline.SetTrackName("video", index, track or "StillMotion")
        return index

    @staticmethod
    def _item_path(item: Any) -> str:
        pool_item = item.GetMediaPoolItem()
        return str(pool_item.GetClipProperty("File Path")) if pool_item else ""

    def _find(self, timeline: Any, index: int | None, record_frame: int, media: Path) -> Any:
        indices = [index] if index else range(1, int(timeline.GetTrackCount("video")) + 1)
        for number in indices:
            for item in timeline.GetItemListInTrack("video", number) or []:
                if int(item.GetStart()) == record_frame and Path(self._item_path(item)) == media:
                    return item, number
        return None, None

    def insert_clip(self, media_path: str, record: RecordRange, track: str | None = None,
                    metadata: dict | None = None) -> InsertedClip:
        media = self.checked_media(media_path, record, self.rate)
        timeline = self.timeline()
        pool = self.project.GetMediaPool()
        imported = pool.ImportMedia([str(media)])
        if not imported:
            raise BadInputError(f"Resolve could not import {media.name} into the media pool")
        index = self._track_index(timeline, track)
        record_frame = int(timeline.GetStartFrame()) + record.start_frame
        for item in timeline.GetItemListInTrack("video", index) or []:
            if int(item.GetStart()) < record_frame + record.frames and record_frame < int(item.GetEnd()):
                raise BadInputError(f"track {timeline.GetTrackName('video', index)!r} already has "
                                    f"{item.GetName()!r} at frames {item.GetStart()}-{item.GetEnd()}")
        found = None
        for end_frame in (record.frames, record.frames - 1):  # endFrame is exclusive in current Resolve
            pool.AppendToTimeline([{"mediaPoolItem": imported[0], "startFrame": 0, "endFrame": end_frame,
                                    "mediaType": VIDEO_ONLY, "trackIndex": index, "recordFrame": record_frame}])
            found, _ = self._find(timeline, index, record_frame, media)
            if found is None or int(found.GetDuration()) == record.frames:
                break
            timeline.DeleteClips([found], False)  # an inclusive-endFrame build placed one frame too many
            found = None
        if found is not None:
            return InsertedClip(track=timeline.GetTrackName("video", index), start_frame=record.start_frame,
                                frames=record.frames, media_path=str(media))
        self.notes.append("AppendToTimeline reported success but placed nothing; imported a new timeline instead")
        return self._insert_by_import(timeline, media, record, track, metadata)

    def _insert_by_import(self, timeline: Any, media: Path, record: RecordRange, track: str | None,
                          metadata: dict | None) -> InsertedClip:
        """The fallback: the current timeline plus the clip, as OTIO, imported as a new timeline."""
        edited = self.read_timeline()
        clip = generated_clip(f"{media.stem} (StillMotion)", media.as_uri(), record.frames, record.fps, metadata)
        placed_on = place_clip(edited, clip, record.start_frame, record.fps, track)
        name = f"{timeline.GetName()} (StillMotion)"
        existing = {self.project.GetTimelineByIndex(i).GetName()
                    for i in range(1, int(self.project.GetTimelineCount()) + 1)}
        number = 2
        while name in existing:
            name, number = f"{timeline.GetName()} (StillMotion {number})", number + 1
        edited.name = name
        path = self.workdir / f"{Path(name).stem.replace(' ', '_')}.otio"
        write_timeline(edited, path, overwrite=True)
        new = self.project.GetMediaPool().ImportTimelineFromFile(str(path), {"timelineName": name,
                                                                             "importSourceClips": True})
        if not new:
            raise BadInputError("Resolve placed nothing with AppendToTimeline and refused the OTIO import of "
                                f"{path}; import it by hand (File > Import > Timeline)")
        self.project.SetCurrentTimeline(new)
        record_frame = int(new.GetStartFrame()) + record.start_frame
        found, index = self._find(new, None, record_frame, media)
        if found is None or int(found.GetDuration()) != record.frames:
            raise BadInputError(f"the imported timeline {name!r} does not hold {media.name} at the record frame")
        return InsertedClip(track=new.GetTrackName("video", index) or placed_on.name, start_frame=record.start_frame,
                            frames=record.frames, media_path=str(media), timeline=name)
