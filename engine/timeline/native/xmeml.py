"""Add-only writer for Final Cut Pro 7 XML (xmeml): a new `<track>` at the top of the sequence's `<video>`,
with one `<clipitem>` (and its `<file>`) per rendered clip, the way Premiere and Resolve write their own.

Nothing of the original document changes; no container total exists in xmeml (tracks are not counted).
"""

from __future__ import annotations

from fractions import Fraction
from urllib.parse import quote

from ...errors import OutputError
from .model import NativeResult, NewTrack, rate_parts
from .splice import Document, Node, element


def main_sequence(root: Node) -> Node:
    """The sequence OTIO's FCP7 reader returns first: a top-level `<sequence>`, else the first in a bin."""
    for child in root.children:
        if child.tag == "sequence":
            return child
    for node in root.iter("children"):
        for child in node.children:
            if child.tag == "sequence":
                return child
    raise OutputError("the FCP7 XML holds no <sequence> to add a track to")


def pathurl(path) -> str:
    """file://localhost/… the way Premiere and FCP7 write it."""
    return "file://localhost" + quote(path.resolve().as_posix(), safe="/")


def _rate(timebase: int, ntsc: bool, indent: str, step: str) -> str:
    inner = indent + step
    return element("rate", children=[element("timebase", text=str(timebase), indent=inner),
                                     element("ntsc", text="TRUE" if ntsc else "FALSE", indent=inner)],
                   indent=indent)


def _ids(root: Node) -> set[str]:
    return {n.attrib["id"] for n in root.iter() if "id" in n.attrib}


def sequence_rate(sequence: Node, fallback: Fraction) -> tuple[int, bool]:
    rate = sequence.find("rate")
    if rate is not None and rate.findtext("timebase").isdigit():
        return int(rate.findtext("timebase")), rate.findtext("ntsc").upper() == "TRUE"
    return rate_parts(fallback)


def add_tracks(document: Document, tracks: list[NewTrack], rate: Fraction) -> NativeResult:
    sequence = main_sequence(document.root)
    video = sequence.path("media", "video")
    if video is None:
        raise OutputError("the FCP7 XML sequence has no <media><video> to add a track to")
    timebase, ntsc = sequence_rate(sequence, rate)
    taken = _ids(document.root)
    step = document.step
    existing = video.findall("track")
    indent = document.indent_of(existing[-1]) if existing else document.child_indent(video)
    counter = 0

    def fresh(kind: str) -> str:
        nonlocal counter
        while True:
            counter += 1
            name = f"stillmotion-{kind}-{counter}"
            if name not in taken:
                taken.add(name)
                return name

    markup = []
    for track in tracks:
        i1, i2, i3, i4, i5 = (indent + step * n for n in range(1, 6))
        items = []
        for clip in track.clips:
            sample = element("samplecharacteristics", children=[
                _rate(timebase, ntsc, i5 + step, step), element("width", text=str(clip.width), indent=i5 + step),
                element("height", text=str(clip.height), indent=i5 + step)], indent=i5)
            file_e = element("file", {"id": fresh("file")}, children=[
                element("name", text=clip.media.name, indent=i3),
                element("pathurl", text=pathurl(clip.media), indent=i3),
                _rate(timebase, ntsc, i3, step),
                element("duration", text=str(clip.frames), indent=i3),
                element("media", children=[element("video", children=[sample], indent=i4)], indent=i3),
            ], indent=i2)
            items.append(element("clipitem", {"id": fresh("clipitem")}, children=[
                element("name", text=clip.name, indent=i2),
                element("enabled", text="TRUE", indent=i2),
                element("duration", text=str(clip.frames), indent=i2),
                _rate(timebase, ntsc, i2, step),
                element("start", text=str(clip.record_start), indent=i2),
                element("end", text=str(clip.record_end), indent=i2),
                element("in", text="0", indent=i2),
                element("out", text=str(clip.frames), indent=i2),
                file_e,
            ], indent=i1))
        items += [element("enabled", text="TRUE", indent=i1), element("locked", text="FALSE", indent=i1)]
        markup.append(element("track", children=items, indent=indent))
    text = "".join(markup)
    if existing:
        document.insert_after(existing[-1], text)
    else:
        document.append_child(video, text)
    return NativeResult()
