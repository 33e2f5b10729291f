"""The timeline the panel has open: read from a file (or handed over by a host), its stills found and relinked,
drawn as the overview, and written back atomically, in the editor's own format where a native writer exists."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from stillmotion.engine.atomic import write_bytes
from stillmotion.engine.errors import StillMotionError
from stillmotion.engine.timeline import (
    FORMATS,
    find_stills,
    read_timeline_info,
    timeline_format,
    write_timeline,
)
from stillmotion.engine.timeline.native import (
    add_to_document,
    has_native_writer,
    tracks_from_timeline,
    write_native,
)
from stillmotion.engine.timeline.select import Relinker, Selection, Still

from . import timeline_edit
from .timeline_state import store_panel_state
from .viewmodel import PanelViewModel

DEFAULT_INSERT_TRACK = "StillMotion"


def error_line(exc: StillMotionError | OSError, doing: str) -> str:
    """The inline error line for a timeline that could not be read or written: our own message as it is, a
    system error as "cannot DOING: reason"."""
    if isinstance(exc, StillMotionError):
        return str(exc)
    return f"cannot {doing}: {exc.strerror or exc}"


class TimelineSession:
    """The open timeline and its stills, keyed by `timeline_edit.still_key`; what every other part reads."""

    def __init__(self, vm: PanelViewModel) -> None:
        self.vm = vm
        self.timeline: otio.schema.Timeline | None = None
        self.rate = Fraction(24)
        self.source_path: Path | None = None
        self.save_path: Path | None = None
        self.stills: dict[str, Still] = {}
        self.still_index: dict[str, int] = {}
        self.offline: dict[str, list[str]] = {}
        #: Folders searched by file name for media not found where the timeline says ("Relink…").
        self.relink_folders: list[str] = []
        self.offline_stills: set[tuple[int, int]] = set()
        #: The opened file's bytes: saving in its own format adds the StillMotion tracks to these (never to
        #: an earlier save), so nothing of the editor's document changes.
        self.native_base: bytes | None = None
        #: Pixel size of each still's image (learned when its thumbnail loads, or read when a job needs it).
        self.image_sizes: dict[str, tuple[int, int]] = {}

    def read(self, path: str) -> tuple[otio.schema.Timeline, Any] | None:
        """Read a timeline file (and keep its bytes); a bad file is one inline error line, never a dialog."""
        try:
            timeline, info = read_timeline_info(path)
        except (StillMotionError, OSError) as exc:
            self.vm.error = error_line(exc, f"read {path}")
            return None
        self.native_base = None if Path(path).is_dir() else Path(path).read_bytes()
        return timeline, info

    def load(self, timeline: otio.schema.Timeline, source_path: Path, rate: Fraction,
             media_root: Path | None = None, output: str | None = None) -> tuple[Selection, Relinker]:
        """Take `timeline` as the open one and find its stills (relinking offline media by file name)."""
        self.timeline, self.rate, self.source_path = timeline, Fraction(rate), Path(source_path)
        self.image_sizes = {}  # keys are track@start: another timeline's still there is another image
        self.save_path = Path(output) if output else self.default_save_path(self.source_path)
        relinker = Relinker(self.relink_folders)
        selection = find_stills(timeline, self.rate, self.source_path.resolve().parent, media_root=media_root,
                                relinker=relinker)
        self.offline_stills = {(track, start) for track, start, _name in selection.offline}
        self.stills = {timeline_edit.still_key(s): s for s in selection.stills}
        self.still_index = {key: n for n, key in enumerate(self.stills, start=1)}
        self.offline = {key: [p for p in selection.problems if f"under still {s.name!r}" in p]
                        for key, s in self.stills.items()}
        return selection, relinker

    @staticmethod
    def default_save_path(source: Path) -> Path:
        """Beside the input, never the input: edit.xml -> edit_animated.xml (.otio for EDL and unknown)."""
        suffix = source.suffix.lower()
        if suffix not in FORMATS or not FORMATS[suffix].writable or suffix == ".edl":
            suffix = ".otio"
        return source.with_name(f"{source.stem}_animated{suffix}")

    def refresh_overview(self) -> None:
        """Redraw the overview and offer the video tracks no still is on as insert tracks."""
        assert self.timeline is not None
        offline = {p.split("'")[1] for problems in self.offline.values() for p in problems if "'" in p}
        self.vm.overview = timeline_edit.build_overview(self.timeline, self.rate, list(self.stills.values()),
                                                        offline, self.offline_stills)
        names = timeline_edit.video_track_names(self.timeline)
        source_tracks = {s.track_name for s in self.stills.values()}
        choices = [n for n in names if n not in source_tracks]
        if DEFAULT_INSERT_TRACK not in choices:
            choices.insert(0, DEFAULT_INSERT_TRACK)
        self.vm.insert_tracks = choices
        if self.vm.insert_track not in choices:
            self.vm.insert_track = choices[0]

    def set_playhead(self, frame: int | None) -> None:
        """Hosts with a playhead call this; the overview draws it."""
        self.vm.playhead = frame
        self.vm.host_features = self.vm.host_features | {"playhead"}

    def set_in_out(self, start: int | None, end: int | None) -> None:
        self.vm.in_out = None if start is None or end is None else (int(start), int(end))
        self.vm.host_features = self.vm.host_features | {"in_out"}

    def save(self, in_place: bool = False) -> bool:
        """Write the timeline (with the panel's state in its metadata) atomically beside the input, or over the
        input when asked (keeping IN.bak)."""
        if self.timeline is None or self.save_path is None or self.source_path is None:
            self.vm.error = "no timeline to save"
            return False
        target = self.source_path if in_place else self.save_path
        store_panel_state(self.timeline, self.vm)
        try:
            if in_place:
                backup = self.source_path.with_name(self.source_path.name + ".bak")
                shutil.copy2(self.source_path, backup)
            if self.native_base is not None and has_native_writer(self.source_path, target):
                tracks = tracks_from_timeline(self.timeline, self.rate)
                data, _ = add_to_document(self.native_base, timeline_format(target).suffix, tracks, self.rate,
                                          self.source_path.name)
                write_bytes(target, data, overwrite=True)
            elif self.source_path.is_dir() and not in_place and has_native_writer(self.source_path, target):
                write_native(self.source_path, target, tracks_from_timeline(self.timeline, self.rate), self.rate,
                             overwrite=True)  # an .fcpxmld bundle: a copy of it with the tracks added
            else:
                write_timeline(self.timeline, target, overwrite=True, rate=self.rate)
        except (StillMotionError, OSError) as exc:
            self.vm.error = error_line(exc, f"save {target}")
            return False
        self.vm.status = f"Saved {target.name}"
        return True
