"""Add-only native writers: write StillMotion's new track(s) into the editor's own document (FCP7 XML, FCPXML,
Kdenlive) and change nothing else — every byte of the input outside the insertions is kept.

OTIO reads the timeline and decides what goes where; these writers only insert. EDL and AAF have no native
writer (an EDL holds one video track; OTIO's AAF writer regenerates the file), see docs/timelines.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import defusedxml.ElementTree as SafeET
import opentimelineio as otio

from ...atomic import write_bytes
from ...errors import OutputError
from ..io import BUNDLE_DOCUMENT, bundle_document, check_xml_safe, timeline_format
from . import fcpxml, kdenlive, xmeml
from .model import NativeResult, NewClip, NewTrack
from .splice import Document

WRITERS: dict[str, Callable[[Document, list[NewTrack], Fraction], NativeResult]] = {
    ".xml": xmeml.add_tracks, ".fcpxml": fcpxml.add_tracks, ".fcpxmld": fcpxml.add_tracks,
    ".kdenlive": kdenlive.add_tracks,
}


def has_native_writer(source: str | Path, out: str | Path) -> bool:
    """Whether OUT is IN's own format and that format has an add-only writer."""
    suffix = timeline_format(out).suffix
    return suffix == timeline_format(source).suffix and suffix in WRITERS


def add_to_document(data: bytes, suffix: str, tracks: list[NewTrack], rate: Fraction,
                    name: str = "timeline") -> tuple[bytes, NativeResult]:
    """The document `data` with the new tracks inserted, and what the insertion had to change."""
    fmt = timeline_format(f"x{suffix}")  # .fcpxmld: `data` is the bundle's Info.fcpxml
    assert fmt.xml_root is not None
    check_xml_safe(data, Path(name), fmt.xml_root)
    document = Document(data)
    result = WRITERS[suffix](document, tracks, rate)
    out = document.to_bytes()
    try:
        SafeET.fromstring(out, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except SafeET.ParseError as exc:  # a bug here must never reach the user's project
        raise OutputError(f"{name}: adding the track made malformed XML ({exc}); nothing written") from None
    return out, result


def tracks_from_timeline(timeline: otio.schema.Timeline, rate: Fraction) -> list[NewTrack]:
    """The StillMotion clips placed on an OTIO timeline (metadata["stillmotion"]["output"]), per track, as the
    native writers take them — for hosts that edit OTIO's model and save into the editor's own document."""
    from ..timebase import to_frames

    tracks: list[NewTrack] = []
    for track in timeline.video_tracks():
        clips = []
        for item in track:
            data = item.metadata.get("stillmotion") if isinstance(item, otio.schema.Clip) else None
            if not data or "output" not in data:
                continue
            placed = item.range_in_parent()
            start = to_frames(placed.start_time, rate)
            frames = to_frames(placed.start_time + placed.duration, rate) - start
            clips.append(NewClip.from_media(item.name, Path(str(data["output"])), start, frames))
        if clips:
            tracks.append(NewTrack(track.name or "StillMotion", clips))
    return tracks


def write_native(source: str | Path, out: str | Path, tracks: list[NewTrack], rate: Fraction,
                 overwrite: bool = False) -> NativeResult:
    """Read IN's bytes, insert the new tracks, write OUT atomically."""
    source, out = Path(source), Path(out)
    suffix = timeline_format(source).suffix
    document = bundle_document(source) if suffix == ".fcpxmld" else source
    data, result = add_to_document(document.read_bytes(), suffix, tracks, rate, source.name)
    if suffix == ".fcpxmld":
        write_bundle(source, out, data, overwrite)
    else:
        write_bytes(out, data, overwrite)
    return result


def write_bundle(source: Path, out: Path, document: bytes, overwrite: bool) -> None:
    """OUT.fcpxmld: a copy of IN's bundle with its Info.fcpxml replaced, put in place by one rename (an
    existing OUT, when replacing is allowed, is moved aside first and removed after)."""
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists (pass --overwrite to replace it)")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", suffix=".part.fcpxmld", dir=out.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        (staging / BUNDLE_DOCUMENT).write_bytes(document)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            os.replace(out, old)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = ["WRITERS", "NativeResult", "NewClip", "NewTrack", "add_to_document", "has_native_writer",
           "tracks_from_timeline", "write_native"]
