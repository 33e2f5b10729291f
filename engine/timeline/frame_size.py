"""The sequence's frame size, so generated clips sit on the timeline as the editor's own clips do.

Read from the document itself (FCP7 XML `samplecharacteristics`, FCPXML sequence `<format>`, Kdenlive
`<profile>`) or from OTIO metadata where a timeline carries `width`/`height`; None when the file does not say.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree.ElementTree import Element

import opentimelineio as otio


def _positive(width: object, height: object) -> tuple[int, int] | None:
    try:
        w, h = int(str(width).strip()), int(str(height).strip())
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def _xmeml(root) -> tuple[int, int] | None:
    sequences = [c for c in root if c.tag == "sequence"] or list(root.iterfind(".//children/sequence"))
    for sequence in sequences[:1]:
        sample = sequence.find("./media/video/format/samplecharacteristics")
        if sample is not None:
            return _positive(sample.findtext("width"), sample.findtext("height"))
    return None


def _fcpxml(root) -> tuple[int, int] | None:
    formats = {f.get("id"): f for f in root.iterfind("./resources/format")}
    for project in root.iter("project"):
        sequence = project.find("sequence")
        fmt = formats.get(sequence.get("format")) if sequence is not None else None
        if fmt is not None:
            return _positive(fmt.get("width"), fmt.get("height"))
    return None


def _kdenlive(root) -> tuple[int, int] | None:
    profile = root.find("profile")
    return _positive(profile.get("width"), profile.get("height")) if profile is not None else None


def _metadata(value: object, depth: int = 0) -> tuple[int, int] | None:
    if not isinstance(value, Mapping) or depth > 2:
        return None
    if "width" in value and "height" in value:
        found = _positive(value["width"], value["height"])
        if found:
            return found
    for child in value.values():
        found = _metadata(child, depth + 1)
        if found:
            return found
    return None


def sequence_frame_size(root: Element | None, xml_root: str | None,
                        timeline: otio.schema.Timeline) -> tuple[int, int] | None:
    """(width, height) of the sequence, or None. `root` is the timeline file's parsed XML (checked safe)."""
    if root is not None and xml_root in ("xmeml", "fcpxml", "mlt"):
        found = {"xmeml": _xmeml, "fcpxml": _fcpxml, "mlt": _kdenlive}[xml_root](root)
        if found:
            return found
    return _metadata(timeline.metadata)
