"""A fake of DaVinci Resolve's scripting module: the documented API subset StillMotion uses, with Resolve's
behaviour where it matters (method names, 1-based track indices, absolute frame numbers from the start
timecode, exclusive `endFrame`, lists returned empty instead of errors), and its known failure modes:

- FAULTS["append_places_nothing"]: `MediaPool.AppendToTimeline` returns timeline items but places nothing (the
  silent failure seen in real Resolve builds).
- FAULTS["end_frame_inclusive"]: `endFrame` counted inclusively (older builds place one frame more).
- FAULTS["no_otio_export"]: Resolve before 18.5 (no `EXPORT_OTIO`): the timeline must be enumerated.

Method names and signatures follow Resolve's scripting README ("Developer/Scripting/README.txt"). Only what
StillMotion calls is implemented; anything else raises AttributeError like a typo would against real Resolve.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import opentimelineio as otio

FAULTS = {"append_places_nothing": False, "end_frame_inclusive": False, "no_otio_export": False}
_ids = itertools.count(1)
_APP: Resolve | None = None
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr"}
#: Resolve gives a still image this many seconds in the media pool.
STILL_SECONDS = 5


def reset(fps: str = "24", start_frame: int = 86400) -> Resolve:
    """A fresh Resolve with one open project (what `scriptapp` returns from now on)."""
    global _APP
    for key in FAULTS:
        FAULTS[key] = False
    _APP = Resolve(fps, start_frame)
    return _APP


def scriptapp(name: str) -> Resolve | None:
    return _APP if name == "Resolve" else None


def _rate(text: str) -> Fraction:
    value = text.replace("DF", "").strip()
    table = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "59.94": Fraction(60000, 1001)}
    return table.get(value, Fraction(value))


class MediaPoolItem:
    def __init__(self, path: Path, fps: Fraction) -> None:
        self._path, self._id = path, f"media-{next(_ids)}"
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            frames, kind = int(STILL_SECONDS * fps), "Still"
        elif suffix in {".wav", ".flac", ".mp3"}:
            import soundfile

            info = soundfile.info(str(path))
            frames, kind = int(Fraction(info.frames, info.samplerate) * fps), "Audio"
        else:
            import av

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                frames = stream.frames or int(float(container.duration / 1e6) * float(fps) + 0.5)
            kind = "Video + Audio"
        self._frames, self._kind, self._fps = frames, kind, fps

    def GetName(self) -> str:  # noqa: N802 - Resolve's names
        return self._path.name

    def GetMediaId(self) -> str:  # noqa: N802
        return self._id

    def GetClipProperty(self, key: str | None = None) -> Any:  # noqa: N802
        props = {"File Path": str(self._path), "Frames": str(self._frames), "FPS": str(float(self._fps)),
                 "Type": self._kind, "Clip Name": self._path.name}
        return props if key is None else props.get(key, "")


class TimelineItem:
    def __init__(self, media: MediaPoolItem, start: int, duration: int, source_start: int) -> None:
        self._media, self._start, self._duration, self._source = media, start, duration, source_start
        self._enabled = True

    def GetName(self) -> str:  # noqa: N802
        return self._media.GetName()

    def GetStart(self, subframe_precision: bool = False) -> int:  # noqa: N802
        return self._start

    def GetEnd(self, subframe_precision: bool = False) -> int:  # noqa: N802
        return self._start + self._duration

    def GetDuration(self, subframe_precision: bool = False) -> int:  # noqa: N802
        return self._duration

    def GetLeftOffset(self, subframe_precision: bool = False) -> int:  # noqa: N802
        return self._source

    def GetSourceStartFrame(self) -> int:  # noqa: N802
        return self._source

    def GetMediaPoolItem(self) -> MediaPoolItem:  # noqa: N802
        return self._media

    def GetClipEnabled(self) -> bool:  # noqa: N802
        return self._enabled


class Timeline:
    def __init__(self, name: str, fps: Fraction, start_frame: int) -> None:
        self._name, self._fps, self._start = name, fps, start_frame
        self._tracks: dict[str, list[dict[str, Any]]] = {"video": [], "audio": []}
        self._playhead = start_frame
        self._marks: dict[str, dict[str, int]] = {}
        self._markers: dict[float, dict[str, Any]] = {}  # frameId relative to the timeline start -> info
        self.AddTrack("video")
        self.AddTrack("audio")

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetStartFrame(self) -> int:  # noqa: N802
        return self._start

    def GetEndFrame(self) -> int:  # noqa: N802
        ends = [i.GetEnd() for kind in self._tracks.values() for t in kind for i in t["items"]]
        return max(ends, default=self._start)

    def GetSetting(self, name: str) -> str:  # noqa: N802
        if name == "timelineFrameRate":
            return {Fraction(24000, 1001): "23.976", Fraction(30000, 1001): "29.97"}.get(self._fps, str(self._fps))
        return ""

    def GetTrackCount(self, kind: str) -> int:  # noqa: N802
        return len(self._tracks.get(kind, []))

    def AddTrack(self, kind: str, sub_type: str | None = None) -> bool:  # noqa: N802
        if kind not in self._tracks:
            return False
        number = len(self._tracks[kind]) + 1
        self._tracks[kind].append({"name": f"{'V' if kind == 'video' else 'A'}{number}", "items": [],
                                   "enabled": True})
        return True

    def GetTrackName(self, kind: str, index: int) -> str:  # noqa: N802
        tracks = self._tracks.get(kind, [])
        return tracks[index - 1]["name"] if 1 <= index <= len(tracks) else ""

    def SetTrackName(self, kind: str, index: int, name: str) -> bool:  # noqa: N802
        tracks = self._tracks.get(kind, [])
        if not 1 <= index <= len(tracks):
            return False
        tracks[index - 1]["name"] = name
        return True

    def GetIsTrackEnabled(self, kind: str, index: int) -> bool:  # noqa: N802
        return bool(self._tracks[kind][index - 1]["enabled"])

    def GetItemListInTrack(self, kind: str, index: int) -> list[TimelineItem]:  # noqa: N802
        tracks = self._tracks.get(kind, [])
        return list(tracks[index - 1]["items"]) if 1 <= index <= len(tracks) else []

    def DeleteClips(self, items: list[TimelineItem], ripple: bool = False) -> bool:  # noqa: N802
        for kind in self._tracks.values():
            for track in kind:
                track["items"] = [i for i in track["items"] if i not in items]
        return True

    def GetCurrentTimecode(self) -> str:  # noqa: N802
        return otio.opentime.to_timecode(otio.opentime.RationalTime(self._playhead, float(self._fps)),
                                         float(self._fps))

    def SetCurrentTimecode(self, timecode: str) -> bool:  # noqa: N802
        self._playhead = int(otio.opentime.from_timecode(timecode, float(self._fps)).to_frames())
        return True

    def GetMarkInOut(self) -> dict[str, dict[str, int]]:  # noqa: N802
        return dict(self._marks)

    def SetMarkInOut(self, mark_in: int, mark_out: int, kind: str = "all") -> bool:  # noqa: N802
        self._marks = {"video": {"in": mark_in, "out": mark_out}, "audio": {"in": mark_in, "out": mark_out}}
        return True

    def AddMarker(self, frame_id: float, color: str, name: str, note: str, duration: float,  # noqa: N802
                  custom_data: str = "") -> bool:
        if frame_id in self._markers or duration < 1:
            return False
        self._markers[float(frame_id)] = {"color": color, "duration": float(duration), "note": note, "name": name,
                                          "customData": custom_data}
        return True

    def GetMarkers(self) -> dict[float, dict[str, Any]]:  # noqa: N802
        return {k: dict(v) for k, v in self._markers.items()}

    def Export(self, path: str, export_type: Any, export_subtype: Any = None) -> bool:  # noqa: N802
        if FAULTS["no_otio_export"] or export_type != Resolve.EXPORT_OTIO:
            return False
        rate = float(self._fps)
        timeline = otio.schema.Timeline(name=self._name)
        timeline.global_start_time = otio.opentime.RationalTime(self._start, rate)
        for kind, otio_kind in (("video", otio.schema.TrackKind.Video), ("audio", otio.schema.TrackKind.Audio)):
            for track_data in self._tracks[kind]:
                track = otio.schema.Track(name=track_data["name"], kind=otio_kind)
                position = self._start
                for item in sorted(track_data["items"], key=lambda i: i.GetStart()):
                    if item.GetStart() > position:
                        track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(
                            item.GetStart() - position, rate)))
                    ref = otio.schema.ExternalReference(target_url=Path(item._media._path).as_uri())
                    track.append(otio.schema.Clip(name=item.GetName(), media_reference=ref,
                                                  source_range=otio.opentime.TimeRange(
                                                      otio.opentime.RationalTime(item.GetSourceStartFrame(), rate),
                                                      otio.opentime.RationalTime(item.GetDuration(), rate))))
                    position = item.GetEnd()
                timeline.tracks.append(track)
        for frame, info in sorted(self._markers.items()):
            timeline.tracks.markers.append(otio.schema.Marker(name=info["name"], marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(frame, rate), otio.opentime.RationalTime(info["duration"], rate))))
        otio.adapters.write_to_file(timeline, path, adapter_name="otio_json")
        return True

    # used by MediaPool
    def _place(self, kind: str, index: int, item: TimelineItem) -> bool:
        tracks = self._tracks[kind]
        if not 1 <= index <= len(tracks):
            return False
        for other in tracks[index - 1]["items"]:
            if other.GetStart() < item.GetEnd() and item.GetStart() < other.GetEnd():
                return False
        tracks[index - 1]["items"].append(item)
        return True


class Folder:
    def __init__(self, name: str) -> None:
        self._name, self._clips = name, []

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetClipList(self) -> list[MediaPoolItem]:  # noqa: N802
        return list(self._clips)


class MediaPool:
    def __init__(self, project: Project) -> None:
        self._project, self._root = project, Folder("Master")

    def GetRootFolder(self) -> Folder:  # noqa: N802
        return self._root

    def GetCurrentFolder(self) -> Folder:  # noqa: N802
        return self._root

    def ImportMedia(self, paths: list[str]) -> list[MediaPoolItem]:  # noqa: N802
        items = []
        for text in paths:
            path = Path(text)
            if not path.is_file():
                continue  # Resolve skips what it cannot import and returns the rest
            existing = next((c for c in self._root._clips if c._path == path), None)
            item = existing or MediaPoolItem(path, self._project._fps)
            if existing is None:
                self._root._clips.append(item)
            items.append(item)
        return items

    def CreateEmptyTimeline(self, name: str) -> Timeline | None:  # noqa: N802
        if any(t.GetName() == name for t in self._project._timelines):
            return None
        timeline = Timeline(name, self._project._fps, self._project._start)
        self._project._timelines.append(timeline)
        self._project._current = timeline
        return timeline

    def AppendToTimeline(self, clips: list[Any]) -> list[TimelineItem]:  # noqa: N802
        timeline = self._project._current
        if timeline is None:
            return []
        placed = []
        for info in clips:
            if isinstance(info, MediaPoolItem):
                info = {"mediaPoolItem": info, "startFrame": 0, "endFrame": info._frames}
            media: MediaPoolItem = info["mediaPoolItem"]
            start, end = int(info.get("startFrame", 0)), int(info.get("endFrame", media._frames))
            duration = end - start + (1 if FAULTS["end_frame_inclusive"] else 0)
            kind = "audio" if info.get("mediaType") == 2 or media._kind == "Audio" else "video"
            index = int(info.get("trackIndex", 1))
            record = int(info.get("recordFrame", timeline.GetEndFrame()))
            item = TimelineItem(media, record, duration, start)
            if FAULTS["append_places_nothing"] or timeline._place(kind, index, item):
                placed.append(item)  # the silent failure: reported as appended, not on the timeline
        return placed

    def ImportTimelineFromFile(self, path: str, options: dict[str, Any] | None = None) -> Timeline | None:  # noqa: N802
        options = options or {}
        try:
            source = otio.adapters.read_from_file(path)
        except Exception:  # noqa: BLE001 - Resolve answers None to anything it cannot import
            return None
        name = options.get("timelineName") or source.name
        if any(t.GetName() == name for t in self._project._timelines):
            return None
        start = source.global_start_time.to_frames() if source.global_start_time else self._project._start
        timeline = Timeline(name, self._project._fps, start)
        timeline._tracks = {"video": [], "audio": []}
        for track in source.tracks:
            kind = "video" if track.kind == otio.schema.TrackKind.Video else "audio"
            timeline.AddTrack(kind)
            timeline.SetTrackName(kind, timeline.GetTrackCount(kind), track.name)
            for clip in track.find_clips():
                url = getattr(clip.media_reference, "target_url", "")
                media_path = Path(unquote(urlparse(url).path)) if url.startswith("file:") else Path(url)
                media = self.ImportMedia([str(media_path)]) if options.get("importSourceClips", True) else []
                if not media:
                    continue
                placed = clip.range_in_parent()
                item = TimelineItem(media[0], start + placed.start_time.to_frames(), placed.duration.to_frames(),
                                    clip.source_range.start_time.to_frames())
                timeline._place(kind, timeline.GetTrackCount(kind), item)
        self._project._timelines.append(timeline)
        return timeline


class Project:
    def __init__(self, name: str, fps: Fraction, start_frame: int) -> None:
        self._name, self._fps, self._start = name, fps, start_frame
        self._timelines: list[Timeline] = []
        self._current: Timeline | None = None
        self._pool = MediaPool(self)

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetMediaPool(self) -> MediaPool:  # noqa: N802
        return self._pool

    def GetCurrentTimeline(self) -> Timeline | None:  # noqa: N802
        return self._current

    def SetCurrentTimeline(self, timeline: Timeline) -> bool:  # noqa: N802
        if timeline not in self._timelines:
            return False
        self._current = timeline
        return True

    def GetTimelineCount(self) -> int:  # noqa: N802
        return len(self._timelines)

    def GetTimelineByIndex(self, index: int) -> Timeline | None:  # noqa: N802
        return self._timelines[index - 1] if 1 <= index <= len(self._timelines) else None

    def GetSetting(self, name: str) -> str:  # noqa: N802
        return str(self._fps) if name == "timelineFrameRate" else ""


class ProjectManager:
    def __init__(self, project: Project) -> None:
        self._project = project

    def GetCurrentProject(self) -> Project:  # noqa: N802
        return self._project


class Resolve:
    EXPORT_OTIO = 20  # resolve.EXPORT_OTIO (Resolve 18.5+)
    EXPORT_NONE = 0

    def __init__(self, fps: str, start_frame: int) -> None:
        self._pm = ProjectManager(Project("Untitled Project", _rate(fps), start_frame))

    def __getattribute__(self, name: str) -> Any:
        if name == "EXPORT_OTIO" and FAULTS["no_otio_export"]:
            raise AttributeError(name)
        return super().__getattribute__(name)

    def GetProjectManager(self) -> ProjectManager:  # noqa: N802
        return self._pm

    def GetProductName(self) -> str:  # noqa: N802
        return "DaVinci Resolve Studio (StillMotion test fake)"

    def GetVersionString(self) -> str:  # noqa: N802
        return "19.1.0.fake"
