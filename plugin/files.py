"""The standalone host: a timeline file read and written through `stillmotion.engine.timeline`.

Any OTIO-readable file comes in (.otio, .otioz, FCP7 .xml, .fcpxml, .edl, .kdenlive, .aaf); inserts go into the
in-memory timeline and `save` writes the same format beside it (edit.xml -> edit_animated.xml): FCP7 XML, FCPXML
and Kdenlive through the add-only native writers (IN's document plus the new tracks). An EDL holds one video track
only and AAF is written as OTIO's AAF writer allows, so those two are saved as .otio.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.timeline import read_timeline_info, timeline_format, write_timeline
from stillmotion.engine.timeline.edit import find_placed, generated_clip, place_clip
from stillmotion.engine.timeline.native import NewClip, NewTrack, has_native_writer, write_native
from stillmotion.engine.timeline.pipeline import media_url

from .host import Capability, HostAdapter, InsertedClip, RecordRange

#: Formats a new track cannot be written back into faithfully; their inserts are saved as .otio.
_SAVED_AS_OTIO = {".edl", ".aaf"}


def default_output(source: Path) -> Path:
    """edit.xml -> edit_animated.xml beside it (an .edl or .aaf -> edit_animated.otio)."""
    suffix = source.suffix.lower()
    if suffix in _SAVED_AS_OTIO:
        suffix = ".otio"
    return source.with_name(f"{source.stem}_animated{suffix}")


class FileHost(HostAdapter):
    """A timeline file as a host: read once, edited in memory, written atomically on `save`."""

    name = "files"

    def __init__(self, path: str | Path, output: str | Path | None = None, rate: str | None = None) -> None:
        self.path = Path(path)
        self.output = Path(output) if output else default_output(self.path)
        if self.output.resolve() == self.path.resolve():
            raise BadInputError(f"{self.path.name}: the output must not be the input itself")
        timeline_format(self.output)  # an unknown extension is one line now, not at save time
        self._timeline, self.info = read_timeline_info(self.path, rate)
        self.rate: Fraction = self.info.rate
        #: What was inserted, per track, for the add-only native writer (IN's own format).
        self._inserted: dict[str, list[NewClip]] = {}

    def capabilities(self) -> Capability:
        return (Capability.READ_TIMELINE | Capability.IMPORT_MEDIA | Capability.INSERT_CLIP | Capability.NEW_TRACK
                | Capability.SAVE)

    def read_timeline(self) -> otio.schema.Timeline:
        return self._timeline

    def insert_clip(self, media_path: str, record: RecordRange, track: str | None = None,
                    metadata: dict | None = None) -> InsertedClip:
        media = self.checked_media(media_path, record, self.rate)
        relative = timeline_format(self.output).relative_media
        clip = generated_clip(f"{media.stem} (StillMotion)", media_url(media, self.output, relative),
                              record.frames, self.rate, metadata)
        placed_on = place_clip(self._timeline, clip, record.start_frame, self.rate, track)
        found = find_placed(self._timeline, media, self.rate, self.output.resolve().parent)
        if found is None:
            raise BadInputError(f"{media.name} is not on the timeline after the insert")
        start, frames = found[1], found[2]
        if (start, frames) != (record.start_frame, record.frames):
            raise BadInputError(f"{media.name} landed at {start}+{frames}, not {record.start_frame}+{record.frames}")
        self._inserted.setdefault(placed_on.name, []).append(
            NewClip.from_media(clip.name, media, start, frames, provenance=metadata))
        return InsertedClip(track=placed_on.name, start_frame=start, frames=frames, media_path=str(media))

    def project_key(self) -> str:
        return str(self.path.resolve())

    def save(self) -> str:
        """IN's own format (.xml, .fcpxml, .kdenlive): the inserts are added to IN's document, nothing else
        changes; other formats are written from the timeline through OTIO."""
        if has_native_writer(self.path, self.output):
            tracks = [NewTrack(name, sorted(clips, key=lambda c: c.record_start))
                      for name, clips in self._inserted.items()]
            write_native(self.path, self.output, tracks, self.rate, overwrite=True)
        else:
            write_timeline(self._timeline, self.output, overwrite=True, rate=self.rate)
        return str(self.output)
