"""Add-only writer for FCPXML 1.8–1.13: each rendered clip becomes an `<asset-clip>` connected (on a new lane
above every existing one) to the primary-storyline element under its record time, with its `<asset>` (and a
`<format>` when no existing one matches) added to `<resources>` — how Final Cut shows clips above the originals.

Nothing of the original document changes: version, formats, tcStart, audio, markers, keywords stay as written.
FCPXML has no container totals; the sequence's `duration` is left as it is (connected clips do not extend it).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from ...errors import OutputError
from ..fcpx import parse_fcpx_time
from .model import NativeResult, NewClip, NewTrack
from .splice import Document, Node, element

#: Primary-storyline items a clip can be connected to.
_STORY_ITEMS = frozenset({"clip", "asset-clip", "gap", "ref-clip", "video", "title", "sync-clip", "mc-clip",
                          "audition", "audio"})
#: Children that come after anchored items in the DTD (markers, keywords, filters, metadata...).
_AFTER_ANCHORS = frozenset({"marker", "chapter-marker", "rating", "keyword", "analysis-marker",
                            "hidden-clip-marker", "audio-channel-source", "audio-role-source", "filter-video",
                            "filter-video-mask", "filter-audio", "metadata"})


def fcpx_time(seconds: Fraction, frame_duration: Fraction) -> str:
    """'1001/24000s' style: over the frame duration's denominator when exact (as Final Cut writes), else reduced."""
    if seconds == 0:
        return "0s"
    scaled = seconds * frame_duration.denominator
    if scaled.denominator == 1 and frame_duration.denominator != 1:
        return f"{scaled.numerator}/{frame_duration.denominator}s"
    if seconds.denominator == 1:
        return f"{seconds.numerator}s"
    return f"{seconds.numerator}/{seconds.denominator}s"


def _version(root: Node) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", root.get("version", "1.8") or "1.8")
    return (int(match.group(1)), int(match.group(2))) if match else (1, 8)


def main_sequence(root: Node) -> Node:
    """The first project's sequence (what the reader returns first)."""
    for project in root.iter("project"):
        sequence = project.find("sequence")
        if sequence is not None and sequence.find("spine") is not None:
            return sequence
    raise OutputError("the FCPXML holds no project with a spine to add clips to (write OUT as .otio)")


def _duration(item: Node) -> Fraction:
    """An item's duration; an `<audition>` has none of its own and lasts as its active (first) pick."""
    if item.get("duration") is None and item.tag == "audition":
        pick = next((c for c in item.children if c.tag in _STORY_ITEMS), None)
        return _duration(pick) if pick is not None else Fraction(0)
    return parse_fcpx_time(item.get("duration"))


def _covering(spine: Node, at: Fraction) -> Node | None:
    for item in spine.children:
        if item.tag not in _STORY_ITEMS:
            continue
        offset = parse_fcpx_time(item.get("offset"))
        if offset <= at < offset + _duration(item):
            return item
    return None


def _top_lane(spine: Node) -> int:
    lanes = [int(child.get("lane", "0")) for item in spine.children for child in item.children
             if (child.get("lane") or "").lstrip("-").isdigit()]
    return max([0, *lanes])


def _next_id(root: Node) -> int:
    numbers = [int(m.group(1)) for n in root.iter() if (m := re.fullmatch(r"r(\d+)", n.get("id") or ""))]
    return max([0, *numbers]) + 1


def add_tracks(document: Document, tracks: list[NewTrack], rate: Fraction) -> NativeResult:
    root = document.root
    resources = root.find("resources")
    if resources is None:
        raise OutputError("the FCPXML has no <resources> to add assets to")
    sequence = main_sequence(root)
    spine = sequence.find("spine")
    formats = {f.get("id"): f for f in resources.findall("format")}
    seq_format = formats.get(sequence.get("format"))
    if seq_format is None or not seq_format.get("frameDuration"):
        raise OutputError(f"the FCPXML sequence's format {sequence.get('format')!r} has no frameDuration")
    frame = parse_fcpx_time(seq_format.get("frameDuration"))
    tc_start = parse_fcpx_time(sequence.get("tcStart"))
    media_rep = _version(root) >= (1, 9)
    next_id = _next_id(root)
    step = document.step
    res_indent = document.child_indent(resources)
    new_resources: list[str] = []
    made_formats: dict[tuple[int, int], str] = {}

    def format_for(clip: NewClip) -> str:
        nonlocal next_id
        for fid, fmt in formats.items():
            if (fmt.get("frameDuration") and parse_fcpx_time(fmt.get("frameDuration")) == frame
                    and fmt.get("width") == str(clip.width) and fmt.get("height") == str(clip.height)):
                return str(fid)
        key = (clip.width, clip.height)
        if key not in made_formats:
            made_formats[key] = f"r{next_id}"
            next_id += 1
            attrs = {"id": made_formats[key], "frameDuration": seq_format.get("frameDuration"),
                     "width": clip.width, "height": clip.height, "colorSpace": seq_format.get("colorSpace")}
            new_resources.append(element("format", attrs, indent=res_indent))
        return made_formats[key]

    def asset_for(clip: NewClip, format_id: str) -> str:
        nonlocal next_id
        asset_id = f"r{next_id}"
        next_id += 1
        src = Path(clip.media).resolve().as_uri()
        attrs: dict[str, object] = {"id": asset_id, "name": clip.media.stem}
        if not media_rep:
            attrs["src"] = src
        attrs |= {"start": "0s", "duration": fcpx_time(clip.frames * frame, frame), "hasVideo": "1",
                  "format": format_id, "videoSources": "1"}
        if clip.has_audio:
            attrs |= {"hasAudio": "1", "audioSources": "1", "audioChannels": "2", "audioRate": "48000"}
        children = [element("media-rep", {"kind": "original-media", "src": src}, indent=res_indent + step)] \
            if media_rep else None
        new_resources.append(element("asset", attrs, children=children, indent=res_indent))
        return asset_id

    base_lane = _top_lane(spine)
    anchored: dict[int, list[str]] = {}  # parent node id -> markup (kept in order)
    parents: dict[int, Node] = {}
    for number, track in enumerate(tracks, start=1):
        lane = base_lane + number
        for clip in track.clips:
            at = tc_start + clip.record_start * frame
            parent = _covering(spine, at)
            if parent is None:
                raise OutputError(f"FCPXML cannot hold {clip.name!r} at {float(at - tc_start):.3f} s: no "
                                  "primary-storyline clip lies under it to connect to (write OUT as .otio)")
            placed_at = parse_fcpx_time(parent.get("offset"))
            if parent.tag == "audition":  # connect to its active pick, which is timed at the audition's offset
                parent = next(c for c in parent.children if c.tag in _STORY_ITEMS)
            offset = parse_fcpx_time(parent.get("start")) + at - placed_at
            format_id = format_for(clip)
            asset_id = asset_for(clip, format_id)
            indent = document.child_indent(parent)
            attrs = {"ref": asset_id, "lane": lane, "offset": fcpx_time(offset, frame), "name": clip.name,
                     "start": "0s", "duration": fcpx_time(clip.frames * frame, frame), "format": format_id}
            if clip.has_audio:
                attrs["srcEnable"] = "video"  # the music under the still is already on the timeline
            anchored.setdefault(id(parent), []).append(element("asset-clip", attrs, indent=indent))
            parents[id(parent)] = parent
    for key, markup in anchored.items():
        parent = parents[key]
        text = "".join(markup)
        later = next((c for c in parent.children if c.tag in _AFTER_ANCHORS), None)
        if later is not None:
            lead = "\n" + document.indent_of(later)
            document.insert_before(later, text.removeprefix(lead) + lead)
        else:
            document.append_child(parent, text)
    if new_resources:
        document.append_child(resources, "".join(new_resources))
    return NativeResult()
