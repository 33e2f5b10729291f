"""Read and write editors' timelines through OpenTimelineIO and its adapter packages, safely.

Every file is read once into memory, checked (size, content matches the extension, XML free of entity
declarations and external entities) and only then handed to an adapter, so no adapter ever expands an entity or
touches another file. Known adapter bugs are worked around here and listed in docs/timelines.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import opentimelineio as otio
from defusedxml import DefusedXmlException

from ..atomic import atomic_path
from ..errors import BadInputError, OutputError, StillMotionError
from ..rates import parse_fps
from .fcpx import read_fcpxml_string, write_fcpxml_string
from .frame_size import sequence_frame_size
from .timebase import exact_rate

#: Largest timeline file accepted (a 3 h feature's XML is a few MB; anything this big is not a timeline).
MAX_TIMELINE_BYTES = 256 * 1024 * 1024

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class TimelineFormat:
    """One timeline format: its extension, OTIO adapter, XML root tag (if XML) and what it can hold."""

    suffix: str
    adapter: str
    label: str
    xml_root: str | None = None
    writable: bool = True
    #: Whether a media reference may be a path relative to the timeline file.
    relative_media: bool = False


FORMATS: dict[str, TimelineFormat] = {
    ".otio": TimelineFormat(".otio", "otio_json", "OpenTimelineIO JSON", relative_media=True),
    ".otioz": TimelineFormat(".otioz", "otioz", "OpenTimelineIO zip bundle"),
    ".xml": TimelineFormat(".xml", "fcp_xml", "Final Cut Pro 7 XML", xml_root="xmeml"),
    ".fcpxml": TimelineFormat(".fcpxml", "fcpx_xml", "FCPXML", xml_root="fcpxml"),
    ".fcpxmld": TimelineFormat(".fcpxmld", "fcpx_xml", "FCPXML bundle", xml_root="fcpxml"),
    ".edl": TimelineFormat(".edl", "cmx_3600", "CMX 3600 EDL"),
    ".kdenlive": TimelineFormat(".kdenlive", "kdenlive", "Kdenlive project", xml_root="mlt",
                                relative_media=True),
    ".aaf": TimelineFormat(".aaf", "AAF", "AAF"),
}

_ROOT_NAMES = {"xmeml": "Final Cut Pro 7 XML (.xml)", "fcpxml": "FCPXML (.fcpxml)", "mlt": "Kdenlive/MLT (.kdenlive)"}


@dataclass
class ReadInfo:
    """What reading a timeline found besides the timeline: its format, rate and anything the user should know."""

    path: Path
    format: TimelineFormat
    rate: Fraction
    notes: list[str] = field(default_factory=list)
    #: MLT `root` folder of a Kdenlive project (relative media paths are relative to it).
    media_root: Path | None = None
    #: The sequence's frame size where the file says (generated clips match it by default).
    frame_size: tuple[int, int] | None = None


def timeline_format(path: str | Path) -> TimelineFormat:
    """The format a path's extension names, or a one-line error listing the supported ones."""
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise BadInputError(f"{Path(path).name}: unknown timeline extension {suffix or '(none)'!r} "
                            f"(supported: {known})") from None


@contextlib.contextmanager
def _quiet_adapter() -> Iterator[None]:
    """Adapters print banners and notes to stdout (which carries --json) and warn through the root logger."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


# ---------------------------------------------------------------------------------------------------------------
# safety checks
# ---------------------------------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise BadInputError(f"{path} does not exist")
    if path.is_dir():
        raise BadInputError(f"{path} is a folder, not a timeline file")
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path.name} is empty")
    if size > MAX_TIMELINE_BYTES:
        raise BadInputError(f"{path.name} is {size / 2**20:.0f} MB, too big for a timeline")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror or exc}") from None


#: The document inside a Final Cut `.fcpxmld` bundle (a folder).
BUNDLE_DOCUMENT = "Info.fcpxml"


def bundle_document(path: Path) -> Path:
    """`X.fcpxmld/Info.fcpxml`, or one line saying why the bundle cannot be read."""
    if not path.is_dir():
        raise BadInputError(f"{path.name}: an .fcpxmld bundle is a folder holding {BUNDLE_DOCUMENT}"
                            + (" (this is a file)" if path.exists() else " (it does not exist)"))
    document = path / BUNDLE_DOCUMENT
    if not document.is_file():
        raise BadInputError(f"{path.name}: the bundle holds no {BUNDLE_DOCUMENT}")
    return document


def _decode_text(data: bytes, path: Path) -> str:
    if b"\x00" in data[:4096]:
        raise BadInputError(f"{path.name} is binary, not a {timeline_format(path).label} text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _describe_content(data: bytes) -> str:
    head = data[:512].lstrip()
    if data.startswith(_OLE_MAGIC):
        return "an AAF/OLE binary"
    if data.startswith(_ZIP_MAGIC):
        return "a zip archive"
    if head.startswith(b"{"):
        return "JSON"
    if head.startswith(b"<"):
        match = re.search(rb"<([A-Za-z_][\w.-]*)[\s>/]", re.sub(rb"<[?!][^>]*>", b"", head))
        root = match.group(1).decode() if match else "?"
        return _ROOT_NAMES.get(root, f"XML with root <{root}>")
    return "text" if b"\x00" not in data[:4096] else "binary data"


def check_xml_safe(data: bytes, path: Path, expected_root: str) -> Element:
    """Refuse entity declarations (billion laughs), external entities and DTD fetches, malformed or truncated
    XML, and XML of another format — before any adapter parses it. Nothing is read from disk or network."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadInputError(f"{path.name}: refused unsafe XML ({type(exc).__name__}: entity declarations and "
                            "external references are not allowed in a timeline)") from None
    except SafeET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        kind = "truncated" if "no element found" in str(exc) or "unclosed token" in str(exc) else "not well-formed"
        raise BadInputError(f"{path.name} is {kind} XML (line {line}, column {column})") from None
    tag = root.tag.rsplit("}", 1)[-1]
    if tag != expected_root:
        found = _ROOT_NAMES.get(tag, f"XML with root <{tag}>")
        raise BadInputError(f"{path.name}: extension {path.suffix} expects <{expected_root}> but the file is {found}")
    return root


def _check_magic(data: bytes, path: Path, fmt: TimelineFormat) -> None:
    if fmt.suffix == ".aaf" and not data.startswith(_OLE_MAGIC):
        raise BadInputError(f"{path.name} is not an AAF file (it holds {_describe_content(data)})")
    if fmt.suffix == ".otioz" and not data.startswith(_ZIP_MAGIC):
        raise BadInputError(f"{path.name} is not an .otioz bundle (it holds {_describe_content(data)})")
    if fmt.suffix == ".otio" and not data.lstrip().startswith(b"{"):
        raise BadInputError(f"{path.name} is not OpenTimelineIO JSON (it holds {_describe_content(data)})")
    if fmt.xml_root and not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise BadInputError(f"{path.name} is not {fmt.label} (it holds {_describe_content(data)})")
    if fmt.suffix == ".edl":
        described = _describe_content(data)
        if described != "text":
            raise BadInputError(f"{path.name} is not a CMX 3600 EDL (it holds {described})")


# ---------------------------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------------------------
_TIMECODE_FRAMES = re.compile(r"\b\d{2}:\d{2}:\d{2}[:;.](\d{2})\b")
_EDL_EVENT = re.compile(r"^\s*\d{3,6}\s+\S+\s+\S+\s+\S+", re.MULTILINE)


def _read_edl(text: str, path: Path, rate_hint: Fraction | None, notes: list[str]) -> otio.schema.Timeline:
    if not _EDL_EVENT.search(text):
        raise BadInputError(f"{path.name} holds no CMX 3600 events (is it an EDL?)")
    drop_frame = re.search(r"^\s*FCM:\s*DROP\s+FRAME", text, re.IGNORECASE | re.MULTILINE) is not None
    if rate_hint is not None:
        rate = rate_hint
    elif drop_frame:
        rate = Fraction(30000, 1001)  # the adapter rejects 29.97 as a rate; it needs 30000/1001
        notes.append("EDL says DROP FRAME: read at 29.97 (30000/1001)")
    else:
        top = max((int(m.group(1)) for m in _TIMECODE_FRAMES.finditer(text)), default=0)
        if top > 23:
            rate = Fraction(25) if top == 24 else Fraction(30)
            notes.append(f"EDL carries no frame rate and its timecodes reach frame {top}: read at {rate} fps "
                         "(pass --rate to change)")
        else:
            rate = Fraction(24)
            notes.append("EDL carries no frame rate: assumed 24 fps (pass --rate to change)")
    # M2 (speed) lines make source and record durations differ; the adapter rejects that unless told not to.
    ignore_mismatch = re.search(r"^\s*M2\s", text, re.MULTILINE) is not None
    with _quiet_adapter():
        for attempt in range(2):
            try:
                timeline = otio.adapters.read_from_string(
                    text, adapter_name="cmx_3600", rate=float(rate), ignore_timecode_mismatch=ignore_mismatch
                )
                _edl_start_time(timeline, text, rate)
                return timeline
            except Exception as exc:  # noqa: BLE001 - the adapter raises many types; all mean "cannot read"
                if attempt == 0 and not ignore_mismatch and "don't match" in str(exc):
                    ignore_mismatch = True
                    notes.append(f"{path.name}: source and record durations differ in some events; "
                                 "read with the adapter's ignore_timecode_mismatch")
                    continue
                if "Transitions can't be at the very beginning" in str(exc):
                    raise BadInputError(f"{path.name}: its first event is a transition (a dissolve from "
                                        "nothing, as Avid writes audio EDLs); the CMX 3600 adapter cannot read that. "
                                        "Export the EDL with its first event as a cut, or export the video "
                                        "tracks only (or as AAF/XML)") from None
                raise BadInputError(f"{path.name}: the CMX 3600 adapter cannot read it at "
                                    f"{float(rate):.3f} fps: {_one_line(exc)} (pass --rate FPS if that rate "
                                    "is wrong)") from None
    raise AssertionError("unreachable")


_FIRST_RECORD_IN = re.compile(r"^\s*\d{3,6}\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+\S+\s+\S+\s+(\d{2}:\d{2}:\d{2}[:;.]\d{2})",
                              re.MULTILINE)


def _edl_start_time(timeline: otio.schema.Timeline, text: str, rate: Fraction) -> None:
    """The adapter places events from the first record-in on and drops that timecode: it is the timeline's start
    (e.g. 01:00:00:00), so keep it as `global_start_time` (not as a gap)."""
    match = _FIRST_RECORD_IN.search(text)
    if timeline.global_start_time is not None or match is None:
        return
    with contextlib.suppress(ValueError):
        timeline.global_start_time = otio.opentime.from_timecode(match.group(1).replace(";", ":"), float(rate))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _pick_timeline(result: otio.core.SerializableObject, path: Path, notes: list[str]) -> otio.schema.Timeline:
    if isinstance(result, otio.schema.Timeline):
        return result
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = [item for item in result.find_children(descended_from_type=otio.schema.Timeline)
                     if isinstance(item, otio.schema.Timeline)] or [
            item for item in result if isinstance(item, otio.schema.Timeline)]
        if not timelines:
            raise BadInputError(f"{path.name} holds no timeline (only loose clips)")
        if len(timelines) > 1:
            others = ", ".join(repr(t.name) for t in timelines[1:])
            notes.append(f"{path.name} holds {len(timelines)} projects; using the first, {timelines[0].name!r} "
                         f"(others: {others})")
        timeline = timelines[0]
        parent = timeline.parent() if hasattr(timeline, "parent") else None
        if parent is not None:
            with contextlib.suppress(Exception):
                result.remove(timeline)
        return timeline
    raise BadInputError(f"{path.name} holds a {type(result).__name__}, not a timeline")


def read_timeline_info(path: str | Path, rate_hint: str | float | Fraction | None = None
                       ) -> tuple[otio.schema.Timeline, ReadInfo]:
    """Read any supported timeline; return it with what was learnt on the way (format, exact rate, notes)."""
    path = Path(path)
    fmt = timeline_format(path)
    hint = parse_fps(rate_hint) if rate_hint is not None else None
    data = _read_bytes(bundle_document(path) if fmt.suffix == ".fcpxmld" else path)
    _check_magic(data, path, fmt)
    notes: list[str] = []
    media_root: Path | None = None
    xml_tree = check_xml_safe(data, path, fmt.xml_root) if fmt.xml_root else None
    try:
        if fmt.suffix == ".edl":
            result = _read_edl(_decode_text(data, path), path, hint, notes)
        elif fmt.suffix in (".fcpxml", ".fcpxmld"):
            result = read_fcpxml_string(_decode_text(data, path))
        elif fmt.suffix == ".otio":
            text = _decode_text(data, path)
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                raise BadInputError(f"{path.name} is truncated or not valid JSON (line {exc.lineno}, "
                                    f"column {exc.colno})") from None
            result = otio.adapters.read_from_string(text, adapter_name="otio_json")
        elif fmt.suffix == ".otioz":
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                    bad = bundle.testzip()
            except zipfile.BadZipFile:
                raise BadInputError(f"{path.name} is a truncated or damaged zip bundle") from None
            if bad is not None:
                raise BadInputError(f"{path.name}: member {bad!r} of the bundle is damaged")
            result = otio.adapters.read_from_file(str(path), adapter_name="otioz")
        elif fmt.suffix == ".aaf":
            with _quiet_adapter():
                result = otio.adapters.read_from_file(str(path), adapter_name="AAF")
        else:
            if fmt.suffix == ".kdenlive" and xml_tree is not None:
                media_root = Path(xml_tree.get("root")) if xml_tree.get("root") else None  # MLT `root`
            with _quiet_adapter():
                result = otio.adapters.read_from_string(_decode_text(data, path), adapter_name=fmt.adapter)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - adapters raise anything; the user gets one line naming it
        raise BadInputError(f"{path.name}: the {fmt.label} adapter cannot read it "
                            f"({type(exc).__name__}: {_one_line(exc)})") from None
    timeline = _pick_timeline(result, path, notes)
    rate = hint if hint is not None else timeline_rate(timeline)
    size = sequence_frame_size(xml_tree, fmt.xml_root, timeline)
    return timeline, ReadInfo(path=path, format=fmt, rate=rate, notes=notes, media_root=media_root,
                              frame_size=size)


def read_timeline(path: str | Path, rate_hint: str | float | Fraction | None = None) -> otio.schema.Timeline:
    """Read a timeline file (.otio, .otioz, FCP7 .xml, .fcpxml, .edl, .kdenlive, .aaf) into an OTIO Timeline.

    `rate_hint` sets the rate of formats that do not store one (EDL). Any problem is one `BadInputError` line.
    """
    return read_timeline_info(path, rate_hint)[0]


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's exact frame rate: its start time's rate, else the most common rate of its track items."""
    if timeline.global_start_time is not None and timeline.global_start_time.rate > 0:
        return exact_rate(timeline.global_start_time.rate)
    counts: dict[float, int] = {}
    for track in timeline.tracks:
        for item in track:
            source_range = getattr(item, "source_range", None)
            if source_range is not None:
                counts[source_range.duration.rate] = counts.get(source_range.duration.rate, 0) + 1
    if not counts:
        raise BadInputError(f"timeline {timeline.name!r} is empty: no clip gives its frame rate")
    return exact_rate(max(counts, key=lambda r: counts[r]))


# ---------------------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------------------
def _fill_available_ranges(timeline: otio.schema.Timeline, rescale_to: float | None = None) -> None:
    """The FCP7 XML writer crashes on a media reference without `available_range`; the AAF writer wants it at
    the edit rate. Give each clip's reference its clip's source range when it has none."""
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.MissingReference) and ref.available_range is None:
            ref.available_range = clip.source_range
        if ref.available_range is None and clip.source_range is not None:
            ref.available_range = clip.source_range
        if rescale_to is not None and ref.available_range is not None:
            ar = ref.available_range
            ref.available_range = otio.opentime.TimeRange(ar.start_time.rescaled_to(rescale_to),
                                                          ar.duration.rescaled_to(rescale_to))


def _drop_unwritable_timecodes(timeline: otio.schema.Timeline, rate: float) -> None:
    """The FCP7 XML writer formats each file's timecode with OTIO's SMPTE code, which accepts only standard
    rates. Premiere writes some it cannot format again (timebase 25 NTSC-off with DF; media at 14 fps). Try each
    with the writer's own timecode builder: drop a rejected timecode (the writer then derives it from the
    media's range), and if the media's own rate is the problem, express its range at the sequence rate."""
    fcp_xml = otio.adapters.from_name("fcp_xml").module()  # loaded by OTIO's plugin system

    def writable(ref: otio.core.MediaReference) -> bool:
        try:
            fcp_xml._build_timecode_from_metadata(ref.available_range.start_time,
                                                  ref.metadata.get("fcp_xml", {}).get("timecode"))
        except (ValueError, TypeError, KeyError):
            return False
        return True

    for clip in timeline.find_clips():
        ref = clip.media_reference
        if ref.available_range is None or writable(ref):
            continue
        fcp = ref.metadata.get("fcp_xml")
        if fcp and "timecode" in fcp:
            del fcp["timecode"]
        if not writable(ref):
            ar = ref.available_range
            ref.available_range = otio.opentime.TimeRange(ar.start_time.rescaled_to(rate),
                                                          ar.duration.rescaled_to(rate))


def _name_tracks(timeline: otio.schema.Timeline) -> None:
    """The FCP7 XML writer builds a <track> only from the metadata it read, so a new track loses its name;
    give it a <name> the way the reader stores one."""
    for track in timeline.tracks:
        if track.name:
            fcp = track.metadata.setdefault("fcp_xml", {})
            if "name" not in fcp:
                fcp["name"] = track.name


def prepare_for_writer(timeline: otio.schema.Timeline, fmt: TimelineFormat) -> otio.schema.Timeline:
    """A copy of `timeline` the format's writer accepts (the original is never changed)."""
    if fmt.adapter == "fcp_xml":
        copy = timeline.deepcopy()
        _fill_available_ranges(copy)
        _drop_unwritable_timecodes(copy, float(timeline_rate(copy)))
        _name_tracks(copy)
        return copy
    if fmt.adapter == "fcpx_xml":
        copy = timeline.deepcopy()
        _fill_available_ranges(copy)
        return copy
    if fmt.adapter == "AAF":
        copy = timeline.deepcopy()
        _fill_available_ranges(copy, rescale_to=copy.duration().rate)
        return copy
    return timeline


def write_timeline(timeline: otio.schema.Timeline, path: str | Path, overwrite: bool = False,
                   rate: Fraction | None = None) -> Path:
    """Write `timeline` atomically in the format OUT's extension names."""
    path = Path(path)
    fmt = timeline_format(path)
    if not fmt.writable:
        raise OutputError(f"{path.name}: {fmt.label} cannot be written; use .otio, .xml, .fcpxml or .kdenlive")
    if fmt.adapter == "cmx_3600":
        video = [t for t in timeline.video_tracks()]
        if len(video) != 1:
            raise OutputError(f"{path.name}: a CMX 3600 EDL holds exactly one video track, this timeline has "
                              f"{len(video)}; write OUT as .otio, .xml, .fcpxml or .kdenlive instead")
    ready = prepare_for_writer(timeline, fmt)
    kwargs: dict[str, object] = {}
    if fmt.adapter == "cmx_3600" and rate is not None:
        kwargs["rate"] = float(rate)
    if fmt.adapter == "AAF":
        kwargs["use_empty_mob_ids"] = True  # the writer needs a mob ID per clip; new clips have none
    try:
        with atomic_path(path, overwrite) as tmp, _quiet_adapter():
            if fmt.suffix == ".fcpxmld":
                raise OutputError(f"{path.name}: an .fcpxmld bundle is written only from an .fcpxmld IN (the "
                                  "bundle's other files come from it); write OUT as .fcpxml instead")
            if fmt.adapter == "fcpx_xml":
                tmp.write_text(write_fcpxml_string(ready), encoding="utf-8")
            elif fmt.adapter in ("AAF", "otioz"):
                otio.adapters.write_to_file(ready, str(tmp), adapter_name=fmt.adapter, **kwargs)
            else:
                text = otio.adapters.write_to_string(ready, adapter_name=fmt.adapter, **kwargs)
                tmp.write_text(text, encoding="utf-8")
    except StillMotionError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - adapter writers raise anything; one line naming the adapter
        raise OutputError(f"{path.name}: the {fmt.label} writer failed ({type(exc).__name__}: "
                          f"{_one_line(exc)}); write OUT as .otio instead") from None
    return path
