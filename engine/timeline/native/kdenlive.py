"""Add-only writer for Kdenlive / MLT XML: per new track, a bin producer per clip (with its `main_bin` entry),
two playlists (the clips with blanks between; an empty second one, as Kdenlive writes every track), a track
tractor, its `<track>` at the top of the main tractor and the compositing transition Kdenlive adds for each
video track — so Kdenlive opens it and `melt` renders it with every original effect still applied.

One container total changes: the main tractor's `kdenlive:sequenceproperties.tracksCount` (when present) is set
to the new number of tracks, as Kdenlive itself would write it.
"""

from __future__ import annotations

import re
from fractions import Fraction

from ...errors import OutputError
from .model import NativeResult, NewTrack
from .splice import Document, Node, element

_COMPOSITORS = ("qtblend", "frei0r.cairoblend", "composite", "movit.overlay")


def prop(node: Node, name: str) -> Node | None:
    return next((c for c in node.children if c.tag == "property" and c.get("name") == name), None)


def prop_text(node: Node | None, name: str, default: str = "") -> str:
    found = prop(node, name) if node is not None else None
    return found.text.strip() if found is not None else default


def main_tractor(root: Node) -> Node:
    """The tractor OTIO's Kdenlive reader takes as the timeline (global_feed, else the last tractor, or the
    sequence the last one wraps since document version 1.1)."""
    tractors = root.findall("tractor")
    if not tractors:
        raise OutputError("the Kdenlive project has no tractor (timeline) to add a track to")
    for tractor in tractors:
        if tractor.get("global_feed") == "1":
            return tractor
    last = tractors[-1]
    if prop_text(last, "kdenlive:projectTractor") == "1":
        first = last.find("track")
        by_id = {n.get("id"): n for n in root.children if n.get("id")}
        if first is not None and first.get("producer") in by_id:
            return by_id[first.get("producer")]
    return last


def clock(frames: int, rate: Fraction) -> str:
    """Kdenlive's time spelling, HH:MM:SS.mmm (ms is finer than half a frame at any rate MLT reads back)."""
    millis = round(Fraction(frames) / rate * 1000)
    seconds, ms = divmod(millis, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{sec:02d}.{ms:03d}"


def _fresh(taken: set[str], stem: str) -> str:
    number = 0
    while f"{stem}{number}" in taken:
        number += 1
    taken.add(f"{stem}{number}")
    return f"{stem}{number}"


def _properties(values: dict[str, object], indent: str) -> list[str]:
    return [element("property", {"name": k}, text=str(v), indent=indent) for k, v in values.items()]


def _compositor(tractor: Node) -> Node | None:
    """The internal per-track compositing transition Kdenlive added, to add one like it for the new track."""
    for transition in tractor.findall("transition"):
        if (prop_text(transition, "internal_added") == "237"
                and prop_text(transition, "mlt_service") in _COMPOSITORS):
            return transition
    return None


def add_tracks(document: Document, tracks: list[NewTrack], rate: Fraction) -> NativeResult:
    root = document.root
    tractor = main_tractor(root)
    main_bin = next((n for n in root.children if n.tag == "playlist" and n.get("id") == "main_bin"), None)
    taken = {n.get("id") for n in root.iter() if n.get("id")}
    kdenlive_ids = [int(n.text) for n in root.iter("property")
                    if n.get("name") == "kdenlive:id" and re.fullmatch(r"-?\d+", n.text.strip())]
    next_kid = max([0, *kdenlive_ids]) + 1
    step = document.step
    top = document.child_indent(root)
    inner = top + step
    existing_tracks = tractor.findall("track")
    if not existing_tracks:
        raise OutputError(f"the Kdenlive main tractor {tractor.get('id')!r} has no tracks")
    producers, timeline, bin_entries, main_tracks, transitions = [], [], [], [], []
    template = _compositor(tractor)
    for number, track in enumerate(tracks):
        track_index = len(existing_tracks) + number
        items = []
        position = 0
        end = 0
        for clip in track.clips:
            pid = _fresh(taken, "stillmotion_producer")
            kid = next_kid
            next_kid += 1
            last = clock(clip.frames - 1, rate)
            producers.append(element("producer", {"id": pid, "in": clock(0, rate), "out": last}, children=
                                     _properties({
                                         "length": clip.frames, "eof": "pause",
                                         "resource": str(clip.media.resolve()),
                                         "mlt_service": "avformat-novalidate", "seekable": "1",
                                         "kdenlive:clipname": clip.name, "kdenlive:folderid": "-1",
                                         "kdenlive:id": kid, "kdenlive:clip_type": "0",
                                     }, inner), indent=top))
            bin_entries.append((pid, last, kid))
            if clip.record_start > position:
                items.append(element("blank", {"length": clock(clip.record_start - position, rate)},
                                     indent=inner))
            items.append(element("entry", {"producer": pid, "in": clock(0, rate), "out": last},
                                 children=_properties({"kdenlive:id": kid}, inner + step), indent=inner))
            position = clip.record_end
            end = max(end, clip.record_end)
        first = _fresh(taken, "stillmotion_playlist")
        second = _fresh(taken, "stillmotion_playlist")
        tid = _fresh(taken, "stillmotion_tractor")
        timeline.append(element("playlist", {"id": first}, children=items, indent=top))
        timeline.append(element("playlist", {"id": second}, indent=top))
        timeline.append(element("tractor", {"id": tid, "in": clock(0, rate), "out": clock(max(end - 1, 0), rate)},
                                children=[*_properties({"kdenlive:trackheight": "67", "kdenlive:timeline_active": "1",
                                                        "kdenlive:collapsed": "0", "kdenlive:track_name": track.name},
                                                       inner),
                                          element("track", {"hide": "audio", "producer": first}, indent=inner),
                                          element("track", {"hide": "audio", "producer": second}, indent=inner)],
                                indent=top))
        main_tracks.append((tid, track_index))
    # definitions go before their first use: producers before the bin and the timeline, tracks before the tractor
    first_use = min([n for n in (main_bin, tractor) if n is not None], key=lambda n: n.start)
    document.insert_before(first_use, "".join(producers).removeprefix("\n" + top) + "\n" + top)
    document.insert_before(tractor, "".join(timeline).removeprefix("\n" + top) + "\n" + top)
    track_indent = document.indent_of(existing_tracks[-1])
    document.insert_after(existing_tracks[-1], "".join(element("track", {"producer": tid}, indent=track_indent)
                                                       for tid, _ in main_tracks))
    if template is not None:
        t_indent = document.indent_of(template)
        for _tid, index in main_tracks:
            values = {p.get("name"): p.text for p in template.findall("property")}
            values["b_track"] = str(index)
            transitions.append(element("transition", {"id": _fresh(taken, "stillmotion_transition")},
                                       children=_properties(values, t_indent + step), indent=t_indent))
        last_transition = tractor.findall("transition")[-1]
        document.insert_after(last_transition, "".join(transitions))
    if main_bin is not None:
        b_indent = document.child_indent(main_bin)
        entries = [element("entry", {"producer": pid, "in": clock(0, rate), "out": last}, indent=b_indent)
                   for pid, last, _kid in bin_entries]
        bin_children = main_bin.findall("entry") or main_bin.children
        if bin_children:
            document.insert_after(bin_children[-1], "".join(entries))
        else:
            document.append_child(main_bin, "".join(entries))
    result = NativeResult()
    count = prop(tractor, "kdenlive:sequenceproperties.tracksCount")
    if count is not None and count.text.strip().isdigit():
        new_count = int(count.text.strip()) + len(tracks)
        document.set_text(count, str(new_count))
        result.changed_totals.append(f"kdenlive:sequenceproperties.tracksCount {count.text.strip()} -> {new_count}")
    return result
