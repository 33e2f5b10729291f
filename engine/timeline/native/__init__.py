"""Add-only native writers: write StillMotion's new track(s) into the editor's own document (FCP7 XML, FCPXML,
Kdenlive) and change nothing else — every byte of the input outside the insertions is kept.

OTIO reads the timeline and decides what goes where; these writers only insert. EDL and AAF have no native
writer (an EDL holds one video track; OTIO's AAF writer regenerates the file), see docs/timelines.md.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import defusedxml.ElementTree as SafeET

from ...atomic import write_bytes
from ...errors import OutputError
from ..io import check_xml_safe, timeline_format
from . import fcpxml, kdenlive, xmeml
from .model import NativeResult, NewClip, NewTrack
from .splice import Document

WRITERS: dict[str, Callable[[Document, list[NewTrack], Fraction], NativeResult]] = {
    ".xml": xmeml.add_tracks, ".fcpxml": fcpxml.add_tracks, ".kdenlive": kdenlive.add_tracks,
}


def has_native_writer(source: str | Path, out: str | Path) -> bool:
    """Whether OUT is IN's own format and that format has an add-only writer."""
    suffix = timeline_format(out).suffix
    return suffix == timeline_format(source).suffix and suffix in WRITERS


def add_to_document(data: bytes, suffix: str, tracks: list[NewTrack], rate: Fraction,
                    name: str = "timeline") -> tuple[bytes, NativeResult]:
    """The document `data` with the new tracks inserted, and what the insertion had to change."""
    fmt = timeline_format(f"x{suffix}")
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


def write_native(source: str | Path, out: str | Path, tracks: list[NewTrack], rate: Fraction,
                 overwrite: bool = False) -> NativeResult:
    """Read IN's bytes, insert the new tracks, write OUT atomically."""
    source, out = Path(source), Path(out)
    data, result = add_to_document(source.read_bytes(), timeline_format(source).suffix, tracks, rate, source.name)
    write_bytes(out, data, overwrite)
    return result


__all__ = ["WRITERS", "NativeResult", "NewClip", "NewTrack", "add_to_document", "has_native_writer",
           "write_native"]
