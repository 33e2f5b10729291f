"""Exact frame rates for the FCPXML adapter (otio-fcpx-xml-adapter 1.0).

The adapter turns a format's `frameDuration` into `int(1 / frameDuration)`, so 23.976 becomes 23 and 29.97
becomes 29, and every time it reads is truncated to frames of that wrong rate. It also reads the media path only
from the pre-1.9 `asset@src` (newer files keep it in `<media-rep src>`), and it crashes on a `<video>` element
placed directly in a spine (how FCP puts a still image on the timeline), and it lays every pick of an
`<audition>` end to end (only the first, active one plays).

The adapter still does all the parsing and structure here (projects, lanes, ref-clips, markers, gaps): this
subclass replaces only its time helpers with exact rational ones and reads the few attribute values it needs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import opentimelineio as otio
from otio_fcpx_xml_adapter import fcpx_xml

from ..errors import BadInputError, OutputError
from .timebase import exact_rate


def parse_fcpx_time(text: str | None) -> Fraction:
    """'1001/24000s' or '3s' -> exact seconds (missing or '0s' -> 0)."""
    if not text:
        return Fraction(0)
    raw = text.strip().rstrip("s")
    try:
        if "/" in raw:
            num, den = raw.split("/", 1)
            return Fraction(int(num), int(den))
        return Fraction(raw)
    except (ValueError, ZeroDivisionError):
        raise BadInputError(f"FCPXML time value {text!r} is not a rational number of seconds") from None


def _frames(seconds: Fraction, rate: Fraction) -> int:
    """Whole frames in `seconds` at `rate` (times off the frame grid round to the nearest frame)."""
    return math.floor(seconds * rate + Fraction(1, 2))


_PICKS = ("clip", "asset-clip", "ref-clip", "sync-clip", "mc-clip", "video", "audio", "title", "gap")


def _keep_active_picks(root: Element) -> None:
    """An `<audition>` plays only its first (active) pick; the adapter lays every pick end to end, which
    shifts every later clip of the storyline. Read only the active one."""
    for audition in root.iter("audition"):
        picks = [child for child in audition if child.tag in _PICKS]
        for extra in picks[1:]:
            audition.remove(extra)


class ExactRateFcpxXml(fcpx_xml.FcpxXml):
    """The adapter's FCPXML reader with exact NTSC rates, `<media-rep>` paths and spine-level stills."""

    def __init__(self, xml_string: str) -> None:  # noqa: D107 - same contract as the adapter
        self.fcpx_xml = SafeET.fromstring(xml_string, forbid_dtd=False)
        _keep_active_picks(self.fcpx_xml)
        self.child_parent_map = {c: p for p in self.fcpx_xml.iter() for c in p}
        self._fallback_format = self._first_sequence_format()

    # -- rates ------------------------------------------------------------------------------------------------
    def _first_sequence_format(self) -> str | None:
        for sequence in self.fcpx_xml.iter("sequence"):
            fmt = self._format_by_id(sequence.get("format"))
            if fmt is not None and fmt.get("frameDuration"):
                return sequence.get("format")
        for fmt in self.fcpx_xml.iter("format"):
            if fmt.get("frameDuration"):
                return fmt.get("id")
        return None

    def exact_rate(self, format_id: str | None) -> Fraction:
        """Frames per second of a format, exactly (a format without a frameDuration, e.g. a still's
        'FFVideoFormatRateUndefined', takes the project's rate)."""
        fmt = self._format_by_id(format_id) if format_id else None
        if fmt is None or not fmt.get("frameDuration"):
            fmt = self._format_by_id(self._fallback_format) if self._fallback_format else None
        if fmt is None or not fmt.get("frameDuration"):
            raise BadInputError("FCPXML has no <format> with a frameDuration; its frame rate is unknown")
        duration = parse_fcpx_time(fmt.get("frameDuration"))
        if duration <= 0:
            raise BadInputError(f"FCPXML format {fmt.get('id')!r} has frameDuration {fmt.get('frameDuration')!r}")
        return 1 / duration

    def _format_frame_duration(self, format_id):  # type: ignore[override]
        duration = 1 / self.exact_rate(format_id)
        return str(duration.numerator), str(duration.denominator)

    def _format_frame_rate(self, format_id):  # type: ignore[override]
        return float(self.exact_rate(format_id))

    def _number_of_frames(self, time_value, format_id):  # type: ignore[override]
        return _frames(parse_fcpx_time(time_value), self.exact_rate(format_id))

    def _rational_time(self, text: str | None, format_id: str | None) -> otio.opentime.RationalTime:
        rate = self.exact_rate(format_id)
        return otio.opentime.RationalTime(_frames(parse_fcpx_time(text), rate), float(rate))

    def _time_range(self, element, format_id):  # type: ignore[override]
        return otio.opentime.TimeRange(
            start_time=self._rational_time(element.get("start", "0s"), format_id),
            duration=self._rational_time(element.get("duration"), format_id),
        )

    def _format_id_for_clip(self, clip, default_format):  # type: ignore[override]
        # The adapter times a clip in its asset's format and then mixes those frame counts with the sequence's
        # when it fills gaps; every time on a sequence is on the sequence's frame grid, so use its format.
        if default_format and self._format_by_id(default_format) is not None:
            return default_format
        return super()._format_id_for_clip(clip, default_format)

    # -- structure fixes --------------------------------------------------------------------------------------
    def _from_project(self, project_element):  # type: ignore[override]
        # The adapter lays a sequence's tcStart (e.g. one hour) as a gap in front of every track; it is the
        # timeline's start time, so it becomes `global_start_time` and the gap goes.
        timeline = super()._from_project(project_element)
        sequence = project_element.find("./sequence")
        start = parse_fcpx_time(sequence.get("tcStart")) if sequence is not None else Fraction(0)
        if start <= 0:
            return timeline
        rate = self.exact_rate(sequence.get("format"))
        frames = _frames(start, rate)
        timeline.global_start_time = otio.opentime.RationalTime(frames, float(rate))
        for track in timeline.tracks:
            if len(track) and isinstance(track[0], otio.schema.Gap):
                gap = track[0]
                length = gap.source_range.duration
                cut = min(int(length.value), frames)
                if cut >= int(length.value):
                    track.remove(gap)
                else:
                    gap.source_range = otio.opentime.TimeRange(
                        gap.source_range.start_time, otio.opentime.RationalTime(length.value - cut, length.rate))
        return timeline

    def _timing_clip(self, clip):  # type: ignore[override]
        element: Element | None = clip
        while element is not None and element.tag not in ("clip", "asset-clip", "ref-clip"):
            element = self.child_parent_map.get(element)
        if element is None:  # a <video>/<audio> placed directly in a spine times itself
            return clip
        return element

    def _reference_from_id(self, asset_id, default_format):  # type: ignore[override]
        asset = self._asset_by_id(asset_id)
        if asset is None:
            return otio.schema.MissingReference(name=str(asset_id))
        src = asset.get("src", "")
        if not src:
            rep = asset.find("media-rep")
            src = rep.get("src", "") if rep is not None else ""
        if not src:
            return otio.schema.MissingReference(name=asset.get("name", ""))
        format_id = asset.get("format", default_format)
        duration = parse_fcpx_time(asset.get("duration"))
        available_range = None
        if duration > 0:  # a still's asset has duration 0s: it has no range of its own
            available_range = otio.opentime.TimeRange(
                start_time=self._rational_time(asset.get("start"), format_id),
                duration=self._rational_time(asset.get("duration"), format_id),
            )
        asset_clip = self._assetclip_by_ref(asset_id)
        metadata = self._create_metadta(asset_clip) if asset_clip is not None else {}
        return otio.schema.ExternalReference(
            target_url=src, available_range=available_range, metadata={"fcpx": metadata}
        )


def read_fcpxml_string(text: str) -> otio.schema.SerializableCollection | otio.schema.Timeline:
    """Read FCPXML through the adapter with the exact-rate fixes above."""
    reader = ExactRateFcpxXml(text)
    result = reader.to_otio()
    if result is None:
        raise BadInputError("FCPXML holds no library, event, project or clip")
    return result


class ExactRateFcpxOtio(fcpx_xml.FcpxOtio):
    """The adapter's FCPXML writer with exact frame durations: it only knows the spellings 23.98 / 29.97 /
    59.94, so an exact NTSC rate (23.976023…) finds no frameDuration and the writer crashes."""

    @staticmethod
    def _framerate_to_frame_duration(framerate):  # type: ignore[override]
        duration = 1 / exact_rate(float(framerate))
        return f"{duration.numerator}/{duration.denominator}s"

    def _frame_rate_from_element(self, element, default_format_id):  # type: ignore[override]
        format_id = default_format_id
        if element.tag == "ref-clip":
            format_id = self._media_by_id(element.get("ref")).find("./sequence").get("format")
        elif element.tag in ("clip", "asset-clip"):
            if element.tag == "asset-clip":
                asset_id = element.get("ref")
            elif element.find("./gap") is not None:
                asset_id = element.find("./gap").find("./audio").get("ref")
            else:
                asset_id = element.find("./video").get("ref")
            format_id = self._asset_by_id(asset_id).get("format")
        format_element = self.resource_element.find(f"./format[@id='{format_id}']")
        return float(1 / parse_fcpx_time(format_element.get("frameDuration")))


    def _find_parent_element(self, spine, trimmed_range, format_id):  # type: ignore[override]
        # The adapter compares times truncated to int(rate) frames; compare exact seconds instead.
        at = Fraction(trimmed_range.value) / exact_rate(trimmed_range.rate)
        for item in spine.iter():
            if item.tag not in ("clip", "asset-clip", "gap", "ref-clip") or item.get("lane") is not None:
                continue
            if item.tag == "gap" and item.find("./audio") is not None:
                continue
            offset = parse_fcpx_time(item.get("offset"))
            if offset > at:
                continue
            if offset + parse_fcpx_time(item.get("duration")) > at:
                return item
        # FCPXML connects every clip above the spine to a spine clip; the adapter would crash on None.
        raise OutputError(f"FCPXML cannot hold a clip at {float(at):.3f} s: no primary-storyline clip lies under "
                          "it to connect to (write OUT as .otio or .xml)")

    def _offset_based_on_parent(self, child, parent, default_format_id):  # type: ignore[override]
        # A connected clip's offset is in its parent's source time: child - parent offset + parent start.
        seconds = (parse_fcpx_time(child.get("offset")) - parse_fcpx_time(parent.get("offset"))
                   + parse_fcpx_time(parent.get("start")))
        rate = exact_rate(self._frame_rate_from_element(parent, default_format_id))
        return otio.opentime.RationalTime(_frames(seconds, rate), float(rate))


def write_fcpxml_string(timeline: otio.schema.Timeline) -> str:
    """Write FCPXML through the adapter with exact frame durations."""
    return ExactRateFcpxOtio(timeline).to_xml()
