"""The HostAdapter seam: what StillMotion needs from an editor, and what each host can do.

Every host speaks OTIO at this boundary: it hands over its current timeline as an `otio.schema.Timeline` (with the
host's exact rate) and takes back rendered clips at record ranges. Capabilities let the panel hide what a host
cannot do instead of failing when it is tried.
"""

from __future__ import annotations

import enum
import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from stillmotion.engine.errors import BadInputError


class Capability(enum.Flag):
    READ_TIMELINE = enum.auto()
    SELECTION = enum.auto()
    PLAYHEAD = enum.auto()
    IN_OUT_RANGE = enum.auto()
    IMPORT_MEDIA = enum.auto()
    INSERT_CLIP = enum.auto()
    NEW_TRACK = enum.auto()
    UNDO_GROUP = enum.auto()
    SAVE = enum.auto()


@dataclass(frozen=True)
class RecordRange:
    """A span on the host's timeline, in frames at `fps` (exact).

    Frames count from the first frame of the timeline as `read_timeline` returns it (its tracks' frame 0); each
    adapter adds the host's own start (Blender's first strip or scene start, Resolve's start timecode).
    """

    start_frame: int
    frames: int
    fps: Fraction


@dataclass(frozen=True)
class InsertedClip:
    """Where a rendered clip landed, as the host reports it after the insert."""

    track: str
    start_frame: int
    frames: int
    media_path: str
    #: The host timeline holding the clip when it is not the current one (a fallback import made a new one).
    timeline: str = ""


class HostAdapter(ABC):
    """One editor (or a timeline file) as StillMotion sees it."""

    #: Short host name shown in the panel ("files", "blender", "resolve").
    name: str = ""

    @abstractmethod
    def capabilities(self) -> Capability:
        """What this host supports; the panel hides the rest."""

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities()

    @abstractmethod
    def read_timeline(self) -> otio.schema.Timeline:
        """The current timeline as OTIO, with the host's exact (possibly fractional) rate."""

    def selection(self) -> list[str]:
        """Names of the selected clips (empty when the host has no selection)."""
        return []

    def playhead(self) -> int | None:
        """The playhead frame, when the host has one."""
        return None

    def in_out_range(self) -> RecordRange | None:
        """The marked in / out range, when the host has one."""
        return None

    def project_key(self) -> str:
        """A stable name for the host's current project and timeline: the panel keeps its work (rendered clips,
        the timeline it hands to the engine, and so its job history) under it from one session to the next."""
        return self.name or "host"

    def checked_media(self, media_path: str, record: RecordRange, rate: Fraction) -> Path:
        """The rendered file to insert, refused with one line when it is missing or made at another rate."""
        media = Path(media_path).resolve()
        if not media.is_file():
            raise BadInputError(f"rendered clip {media} does not exist")
        if record.fps != rate:
            raise BadInputError(f"clip rate {record.fps} differs from the {self.name or 'host'} timeline's {rate}")
        return media

    @abstractmethod
    def insert_clip(self, media_path: str, record: RecordRange, track: str | None = None,
                    metadata: dict | None = None) -> InsertedClip:
        """Import `media_path` and place it at `record` on `track` (a new track when None), as one undo step
        where the host has undo. Must verify the placement and raise when the host silently failed."""

    # how the panel speaks of places on this host: in the host's own numbers and names
    def host_frame(self, frame: int) -> int:
        """The frame number the host itself shows for record frame `frame` (frame 0 = the timeline's first)."""
        return int(frame)

    def track_label(self, track: str) -> str:
        """The host's own name for a track (a sequencer channel, a video track)."""
        return track

    def timeline_noun(self) -> str:
        """What the host calls the timeline the panel reads ("timeline", Blender's "scene")."""
        return "timeline"

    def timeline_title(self) -> str:
        """The host's name for what the panel shows ("Blender · Scene"), for its title bar."""
        return self.name or "host"

    def editor_rect(self) -> tuple[int, int, int, int] | None:
        """Where the host's timeline editor is on the screen (x, y, width, height; pixels, top-left origin),
        so the panel can open beside it; None when the host cannot say."""
        return None

    def native_window(self) -> int | None:
        """The host's own top-level window as a native id (an X11 window), so the panel can be its transient
        child; None when unknown."""
        return None

    def describe_place(self, track: str, frame: int) -> str:
        """"Channel 3 at frame 1": where a clip sits, as the host's own interface shows it."""
        return f"{self.track_label(track)} at frame {self.host_frame(frame)}"

    def save(self) -> str | None:
        """Persist the host's document where the host does not do it itself; the path written, or None."""
        return None

    def feature_names(self) -> frozenset[str]:
        """Capabilities as lower-case names, the form the panel's view model uses ("playhead", "insert_clip")."""
        return frozenset(flag.name.lower() for flag in Capability if flag in self.capabilities() and flag.name)


def panel_workdir(host: HostAdapter) -> Path:
    """The host project's own folder in the user's StillMotion data folder (stable across sessions)."""
    from platformdirs import user_data_dir

    digest = hashlib.sha1(host.project_key().encode("utf-8")).hexdigest()[:16]
    folder = Path(os.environ.get("STILLMOTION_DATA_DIR") or user_data_dir("stillmotion")) / "hosts" / (
        host.name or "host") / digest
    folder.mkdir(parents=True, exist_ok=True)
    return folder
