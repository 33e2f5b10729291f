"""Which clips to animate and which music plays under each one.

Stills are clips whose media is an image (by extension, including a one-frame image sequence); with
`from_video`, a video clip stands for the frame at its in-point. The music under a still is every audio clip
overlapping its record range, cut to the overlap and placed in the still's own clip time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from ..errors import BadInputError
from ..request import AudioSegment
from .timebase import to_frames, to_seconds

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".webp", ".bmp"})
VIDEO_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".mpg",
                              ".mpeg", ".dv", ".r3d", ".braw"})
_WINDOWS_DRIVE = re.compile(r"^/?[A-Za-z]:[\\/]")


class Relinker:
    """Finds media whose recorded path does not exist here (another machine's `C:/…`, `/Users/…`, a moved
    project) under the folders given with --relink, by file name: exact first, then case-insensitive."""

    def __init__(self, folders: list[str | Path] | None = None) -> None:
        self.folders = [Path(f) for f in folders or []]
        self.relinked: dict[str, str] = {}
        self._exact: dict[str, list[Path]] | None = None
        self._folded: dict[str, list[Path]] = {}

    def _index(self) -> dict[str, list[Path]]:
        if self._exact is None:
            self._exact = {}
            for folder in self.folders:
                if not folder.is_dir():
                    raise BadInputError(f"--relink {folder}: not a folder")
                for dirpath, _dirs, files in os.walk(folder):
                    for name in sorted(files):
                        path = Path(dirpath) / name
                        self._exact.setdefault(name, []).append(path)
                        self._folded.setdefault(name.casefold(), []).append(path)
        return self._exact

    def find(self, written: str) -> Path | None:
        """The file standing in for media recorded as `written` (a path or URL as the timeline wrote it)."""
        if not self.folders:
            return None
        name = file_name(written)
        if not name:
            return None
        exact = self._index().get(name) or self._folded.get(name.casefold())
        if not exact:
            return None
        self.relinked[written] = str(exact[0])
        return exact[0]


def file_name(written: str) -> str:
    """The file name of a path or URL as any OS wrote it (`C:\\a\\b.png`, `file:///Users/x/b.png`, `b.png`)."""
    text = unquote(urlparse(written).path) if written.lower().startswith("file:") else written
    return PureWindowsPath(text).name if ("\\" in text or _WINDOWS_DRIVE.match(text)) else PurePosixPath(text).name


def foreign_path(text: str) -> bool:
    """A path written on another OS: never looked up relative to the timeline's folder."""
    return bool(_WINDOWS_DRIVE.match(text)) or "\\" in text


def written_path(ref: otio.core.MediaReference) -> str:
    """The media's path exactly as the timeline wrote it (for messages)."""
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return ref.target_url_for_image_number(0)
    return getattr(ref, "target_url", "") or ""


def resolve_media(ref: otio.core.MediaReference, timeline_dir: Path, media_root: Path | None,
                  relinker: Relinker | None) -> tuple[Path | None, str]:
    """(local file or None, the path as written): the recorded path if it exists here, else a relinked one."""
    written = written_path(ref)
    path = media_path(ref, timeline_dir, media_root)
    if (path is None or not path.is_file()) and relinker is not None and written:
        found = relinker.find(written)
        if found is not None:
            return found, written
    return path, written


def missing_hint(relinker: Relinker | None) -> str:
    if relinker is not None and relinker.folders:
        return f"not found under --relink {', '.join(str(f) for f in relinker.folders)} either"
    return "pass --relink DIR to search a folder for it by file name"


@dataclass
class Still:
    """One clip to animate: where it sits on the timeline (frames at the timeline's rate) and its image."""

    clip: otio.schema.Clip
    name: str
    track_index: int
    track_name: str
    record_start: int
    frames: int
    image: Path | None
    #: Frame of `video` to take as the still (with --from-video), seconds into the file.
    video: Path | None = None
    video_time: Fraction | None = None
    audio: list[AudioSegment] = field(default_factory=list)
    audio_ranges: list[dict[str, str]] = field(default_factory=list)

    @property
    def record_end(self) -> int:
        return self.record_start + self.frames


@dataclass
class Selection:
    """The stills found, and one line per clip or audio problem (the rest still gets done)."""

    stills: list[Still] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Stills whose media is not here: (video track index, record start, name), to show as offline stills.
    offline: list[tuple[int, int, str]] = field(default_factory=list)


def media_path(ref: otio.core.MediaReference, timeline_dir: Path, media_root: Path | None = None) -> Path | None:
    """The local file a media reference names (file:// URLs, plain or relative paths), or None if it has none
    (or names a Windows path, which no file here can be: --relink finds those by name)."""
    if isinstance(ref, otio.schema.ImageSequenceReference):
        url = ref.target_url_for_image_number(0)
    elif isinstance(ref, otio.schema.ExternalReference):
        url = ref.target_url
    else:
        return None
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme == "file":
        text = unquote(parsed.path)
        if parsed.netloc and parsed.netloc != "localhost":
            text = f"//{parsed.netloc}{text}"
        if _WINDOWS_DRIVE.match(text):
            text = text.lstrip("/")
    elif parsed.scheme and len(parsed.scheme) > 1:
        return None  # http:, urn:, ... name no local file
    else:
        text = url
    if foreign_path(text):
        return None  # another OS's path names no file here, and is never taken relative to the timeline's folder
    path = Path(text)
    if not path.is_absolute():
        base = media_root if media_root is not None and media_root.is_absolute() else timeline_dir
        path = base / path
    return Path(os.path.normpath(path))


def _extension(ref: otio.core.MediaReference) -> str:
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return ref.name_suffix.lower()
    if isinstance(ref, otio.schema.ExternalReference):
        return Path(unquote(urlparse(ref.target_url).path or ref.target_url)).suffix.lower()
    return ""


def is_image_reference(ref: otio.core.MediaReference) -> bool:
    """An image file, or an image sequence holding exactly one frame."""
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return ref.name_suffix.lower() in IMAGE_EXTENSIONS and ref.number_of_images_in_sequence() == 1
    return _extension(ref) in IMAGE_EXTENSIONS


def _is_video_reference(ref: otio.core.MediaReference) -> bool:
    return isinstance(ref, otio.schema.ExternalReference) and _extension(ref) in VIDEO_EXTENSIONS


def _time_warps(item: otio.core.Item) -> list[str]:
    return [type(e).__name__ for e in item.effects if isinstance(e, otio.schema.TimeEffect)]


def _has_stills(composition: otio.core.Composition) -> bool:
    return any(is_image_reference(c.media_reference) for c in composition.find_clips())


def _file_offset(clip: otio.schema.Clip, source_time: otio.opentime.RationalTime) -> Fraction:
    """Seconds into the media file of a source time (the media's own start, e.g. a timecode, subtracted)."""
    seconds = to_seconds(source_time)
    available = clip.media_reference.available_range
    if available is not None:
        seconds -= to_seconds(available.start_time)
    return max(Fraction(0), seconds)


def find_music(timeline: otio.schema.Timeline, still: Still, rate: Fraction, timeline_dir: Path,
               audio_track: int | None, media_root: Path | None, problems: list[str],
               relinker: Relinker | None = None) -> None:
    """Fill `still.audio` with the audio clips overlapping its record range, in the still's clip time."""
    audio_tracks = list(timeline.audio_tracks())
    if audio_track is not None:
        if not 1 <= audio_track <= len(audio_tracks):
            raise BadInputError(f"--audio-track {audio_track}: the timeline has {len(audio_tracks)} audio track(s)")
        chosen = [(audio_track, audio_tracks[audio_track - 1])]
    else:
        chosen = list(enumerate(audio_tracks, start=1))
    start, end = Fraction(still.record_start) / rate, Fraction(still.record_end) / rate
    for number, track in chosen:
        for item in track:
            if not isinstance(item, otio.schema.Clip) or item.source_range is None and item.media_reference is None:
                continue
            placed = item.range_in_parent()
            a0 = to_seconds(placed.start_time)
            a1 = a0 + to_seconds(placed.duration)
            lo, hi = max(start, a0), min(end, a1)
            if hi <= lo:
                continue
            if not (track.enabled and item.enabled):  # muted audio is not heard, so it does not drive motion
                problems.append(f"audio {item.name!r} on A{number} under still {still.name!r} is muted; not used")
                continue
            path, written = resolve_media(item.media_reference, timeline_dir, media_root, relinker)
            if path is None or not path.is_file():
                problems.append(f"audio {item.name!r} on A{number} under still {still.name!r} is offline "
                                f"({written or item.name!r}; {missing_hint(relinker)}); rendering that stretch "
                                "without it")
                continue
            if _time_warps(item):
                problems.append(f"audio {item.name!r} on A{number} has a speed change "
                                f"({', '.join(_time_warps(item))}); used at normal speed")
            source_start = _file_offset(item, item.trimmed_range().start_time) + (lo - a0)
            segment = AudioSegment(path=str(path), source_start=source_start, duration=hi - lo,
                                   record_start=lo - start)
            still.audio.append(segment)
            still.audio_ranges.append({"track": f"A{number}", "clip": item.name, "path": str(path),
                                       "source_start": str(source_start), "duration": str(hi - lo),
                                       "record_start": str(lo - start)})


def _record_timecode(item: otio.core.Item, rate: Fraction) -> str:
    start = item.range_in_parent().start_time
    try:
        return otio.opentime.to_timecode(start.rescaled_to(float(rate)), float(rate))
    except (ValueError, TypeError):
        return f"frame {to_frames(start, rate)}"


def find_stills(timeline: otio.schema.Timeline, rate: Fraction, timeline_dir: Path, names: list[str] | None = None,
                from_video: bool = False, audio_track: int | None = None,
                media_root: Path | None = None, relinker: Relinker | None = None) -> Selection:
    """Every still on the timeline's video tracks (or the named ones), with the music under each."""
    selection = Selection()
    wanted = set(names) if names else None
    seen: set[str] = set()
    for track_index, track in enumerate(timeline.video_tracks()):
        for item in track:
            if isinstance(item, otio.core.Composition):
                if _has_stills(item) and (wanted is None or any(c.name in wanted for c in item.find_clips())):
                    selection.problems.append(
                        f"{type(item).__name__.lower()} {item.name!r} on V{track_index + 1} is a nested sequence "
                        "or compound clip; stills inside it are not animated (open it as its own timeline)")
                continue
            if not isinstance(item, otio.schema.Clip):
                continue
            ref = item.media_reference
            is_still = is_image_reference(ref)
            if not is_still and not (from_video and _is_video_reference(ref)):
                continue
            if wanted is not None and item.name not in wanted:
                continue
            seen.add(item.name)
            label = f"{item.name!r} on V{track_index + 1}" if item.name else \
                f"unnamed clip on V{track_index + 1} at {_record_timecode(item, rate)}"
            if wanted is None and not (track.enabled and item.enabled):
                selection.problems.append(f"still {label} is disabled; skipped (name it with --clips to animate it)")
                continue
            placed = item.range_in_parent()
            start = to_frames(placed.start_time, rate)
            frames = to_frames(placed.start_time + placed.duration, rate) - start
            if frames <= 0:
                selection.problems.append(f"still {label} has zero length; skipped")
                continue
            warps = _time_warps(item)
            if warps and not is_still:
                selection.problems.append(f"clip {label} has a time-warp effect ({', '.join(warps)}); its "
                                          "in-point frame is ambiguous, skipped")
                continue
            if warps:
                selection.problems.append(f"still {label} has a time-warp effect ({', '.join(warps)}); "
                                          "ignored (a still is animated for its record duration)")
            path, written = resolve_media(ref, timeline_dir, media_root, relinker)
            if path is None or not path.is_file():
                selection.problems.append(f"media for {label} is missing ({written or 'no media reference'!r}: "
                                          f"{missing_hint(relinker)}); skipped")
                selection.offline.append((track_index, start, item.name or written))
                continue
            still = Still(clip=item, name=item.name or path.stem, track_index=track_index,
                          track_name=track.name, record_start=start, frames=frames,
                          image=path if is_still else None)
            if not is_still:
                still.video = path
                still.video_time = _file_offset(item, item.trimmed_range().start_time)
            find_music(timeline, still, rate, timeline_dir, audio_track, media_root, selection.problems, relinker)
            selection.stills.append(still)
    if wanted is not None:
        for name in sorted(wanted - seen):
            selection.problems.append(f"--clips: no still named {name!r} on the timeline")
    return selection
