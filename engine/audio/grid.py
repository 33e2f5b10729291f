"""The editor's hand on the beat grid: a tempo hint, a tempo range, beats of their own, a phase shift, ×2 / ÷2.

A `BeatGrid` is a small JSON-serialisable override that travels in `RenderRequest.options["beat_grid"]`, so it
is part of the job's identity and of the clip's provenance, and `regenerate` reproduces it. `analysis_for`
turns a song file into the `AudioAnalysis` the frames are computed from: the tracker with the hint and range,
then the explicit beats (in the song file's time, as `stillmotion analyze` writes them), the tempo factor and
the offset. Beat files are read here too (one time per line, CSV, or analyze's JSON) and rejected with one line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from .analysis import AudioAnalysis, analyze

#: Tempo factors the panel's ×2 / ÷2 buttons step through (1 = as tracked).
TEMPO_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Labels that make a beat a downbeat (a marker's name, a beat file's second column).
DOWNBEAT_LABELS = frozenset({"downbeat", "bar", "1", "one", "db"})
#: `BeatGrid.source` of a grid read from timeline markers (beats past the song's end are dropped, not refused).
MARKER_SOURCE = "timeline markers"
#: A beat may sit this far past the song's end (a last beat rounded up) before the file is rejected.
_END_SLACK = 0.05


@dataclass(frozen=True)
class BeatGrid:
    """How the editor corrected the tracked grid. Times are seconds in the song file."""

    bpm: float | None = None
    tempo_range: tuple[float, float] | None = None
    #: The editor's own beats (None: the tracker's); downbeats among them, when known.
    beats: tuple[float, ...] | None = None
    downbeats: tuple[float, ...] = ()
    #: 2 puts a beat half-way between every two (×2), 0.5 keeps every other one, downbeats kept (÷2).
    factor: float = 1.0
    #: Seconds the whole grid moves (positive = later).
    offset: float = 0.0
    #: Where explicit beats came from: a beat file's name or "timeline markers" (provenance only).
    source: str = ""

    @property
    def is_default(self) -> bool:
        return (self.bpm is None and self.tempo_range is None and self.beats is None and self.factor == 1.0
                and self.offset == 0.0)

    def check(self) -> None:
        """Reject values the grid cannot use (one line each)."""
        from .tempo import check_tempo_hint

        check_tempo_hint(self.bpm, self.tempo_range)
        if self.factor not in TEMPO_FACTORS:
            raise BadInputError(f"tempo factor {self.factor:g} is not one of "
                                f"{', '.join(f'{f:g}' for f in TEMPO_FACTORS)}")
        if not math.isfinite(self.offset) or abs(self.offset) > 60:
            raise BadInputError(f"beat offset {self.offset} s is out of range (-60..60 s)")
        if self.beats is not None:
            check_beats(np.asarray(self.beats, dtype=np.float64), self.source or "the beat grid")

    def check_duration(self, duration: float, song: str = "the song") -> None:
        """Explicit beats must lie inside the song they are for."""
        if self.beats and self.beats[-1] > duration + _END_SLACK:
            raise BadInputError(f"{self.source or 'beat grid'}: beat at {self.beats[-1]:.3f} s is beyond the end of "
                                f"{song} ({duration:.3f} s)")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.bpm is not None:
            data["bpm"] = float(self.bpm)
        if self.tempo_range is not None:
            data["tempo_range"] = [float(v) for v in self.tempo_range]
        if self.beats is not None:
            data["beats"] = [float(t) for t in self.beats]
            data["downbeats"] = [float(t) for t in self.downbeats]
        if self.factor != 1.0:
            data["factor"] = float(self.factor)
        if self.offset != 0.0:
            data["offset"] = float(self.offset)
        if self.source:
            data["source"] = self.source
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> BeatGrid:
        data = data or {}
        tempo_range = data.get("tempo_range")
        beats = data.get("beats")
        return cls(
            bpm=None if data.get("bpm") is None else float(data["bpm"]),
            tempo_range=None if tempo_range is None else (float(tempo_range[0]), float(tempo_range[1])),
            beats=None if beats is None else tuple(float(t) for t in beats),
            downbeats=tuple(float(t) for t in data.get("downbeats", ())),
            factor=float(data.get("factor", 1.0)), offset=float(data.get("offset", 0.0)),
            source=str(data.get("source", "")),
        )

    @classmethod
    def of_request(cls, request: Any) -> BeatGrid | None:
        """The grid a RenderRequest asks for (None: the tracker's, untouched)."""
        data = getattr(request, "options", {}).get("beat_grid")
        return cls.from_json(data) if data else None


def analysis_for(path: str | os.PathLike[str], grid: BeatGrid | None = None) -> AudioAnalysis:
    """The analysis of `path` with the editor's grid applied (the cached tracker's when `grid` is None)."""
    if grid is None:
        return analyze(path)
    return apply_grid(analyze(path, bpm=grid.bpm, tempo_range=grid.tempo_range), grid)


def apply_grid(analysis: AudioAnalysis, grid: BeatGrid) -> AudioAnalysis:
    """`analysis` with its beats replaced by the editor's, scaled by the factor and shifted by the offset."""
    if grid.beats is not None:
        if grid.source != MARKER_SOURCE:
            grid.check_duration(analysis.duration, Path(analysis.path).name or "the song")
        beats = np.asarray(grid.beats, dtype=np.float64)
        downbeats = np.asarray(grid.downbeats, dtype=np.float64)
    else:
        beats, downbeats = analysis.beats.astype(np.float64), analysis.downbeats.astype(np.float64)
    beats, downbeats = scale_beats(beats, downbeats, grid.factor)
    beats, downbeats = beats + grid.offset, downbeats + grid.offset
    keep = (beats >= 0) & (beats <= analysis.duration)
    beats = beats[keep]
    downbeats = downbeats[(downbeats >= 0) & (downbeats <= analysis.duration)]
    positions, meter = beat_positions(beats, downbeats)
    tempo = float(60.0 / np.median(np.diff(beats))) if beats.size >= 2 else None
    envelopes = dict(analysis.envelopes)
    if "local_tempo" in envelopes and beats.size >= 2:
        envelopes["local_tempo"] = _local_tempo(beats, analysis.hop_rate, envelopes["local_tempo"].size)
    return replace(analysis, beats=beats, downbeats=downbeats, beat_positions=positions, meter=meter,
                   tempo=tempo, envelopes=envelopes)


def scale_beats(beats: np.ndarray, downbeats: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """×2 (midpoints added), ÷2 (every other beat, keeping the downbeats' parity), or repeated for 4 / ¼."""
    while factor >= 2 and beats.size >= 2:
        mids = 0.5 * (beats[1:] + beats[:-1])
        beats = np.sort(np.concatenate([beats, mids]))
        factor /= 2
    while factor <= 0.5 and beats.size >= 2:
        parity = 0
        if downbeats.size:
            first = int(np.argmin(np.abs(beats - downbeats[0])))
            parity = first % 2
        beats = beats[parity::2]
        factor *= 2
    return beats, downbeats


def beat_positions(beats: np.ndarray, downbeats: np.ndarray) -> tuple[np.ndarray, int | None]:
    """1..meter for each beat counted from the latest downbeat (0 without downbeats), and the meter."""
    if beats.size == 0 or downbeats.size == 0:
        return np.zeros(beats.size, dtype=np.int64), None
    is_down = np.zeros(beats.size, dtype=bool)
    for t in downbeats:
        nearest = int(np.argmin(np.abs(beats - t)))
        if abs(beats[nearest] - t) < 0.07:
            is_down[nearest] = True
    marks = np.flatnonzero(is_down)
    if marks.size == 0:
        return np.zeros(beats.size, dtype=np.int64), None
    meter = int(np.median(np.diff(marks))) if marks.size >= 2 else None
    positions = np.zeros(beats.size, dtype=np.int64)
    for i in range(beats.size):
        before = marks[marks <= i]
        if before.size:
            positions[i] = i - before[-1] + 1
        elif meter:
            positions[i] = (i - marks[0]) % meter + 1
    return positions, meter


def _local_tempo(beats: np.ndarray, hop_rate: float, size: int) -> np.ndarray:
    """BPM at each hop from the inter-beat interval around it (flat beyond the first and last beat)."""
    centres = 0.5 * (beats[1:] + beats[:-1])
    bpm = 60.0 / np.diff(beats)
    t = np.arange(size) / hop_rate
    return np.interp(t, centres, bpm).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# command-line values and beat files
# ---------------------------------------------------------------------------------------------------------------
def parse_tempo_range(text: str | None) -> tuple[float, float] | None:
    """'100:140' → (100.0, 140.0) (validated with the tracker's limits by BeatGrid.check)."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise BadInputError(f"--tempo-range {text!r} must look like LO:HI, e.g. 100:140") from None
    return lo, hi


def check_beats(beats: np.ndarray, name: str) -> None:
    """Beat times must be finite, non-negative and strictly increasing."""
    if beats.size == 0:
        raise BadInputError(f"{name}: no beat times in it")
    if not np.all(np.isfinite(beats)):
        raise BadInputError(f"{name}: beat times must be finite numbers")
    if beats[0] < 0:
        raise BadInputError(f"{name}: beat time {beats[0]:g} s is negative")
    steps = np.diff(beats)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise BadInputError(f"{name}: beat times are not increasing ({beats[i]:g} s then {beats[i + 1]:g} s)")


def read_beat_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(beats, downbeats) in seconds from a beat file: analyze's JSON ({"beats", "downbeats"}) or a JSON list,
    or text with one time per line / CSV whose first column is the time; a second column "1" (a beat's
    position in the bar, as in .beats annotations) or "downbeat"/"bar" marks a downbeat. '#' starts a comment;
    one header line is allowed."""
    source = Path(path)
    name = source.name
    try:
        text = source.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInputError(f"beat file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"beat file {path} cannot be read: {exc}") from None
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        beats, downbeats = _json_beats(stripped, name)
    else:
        beats, downbeats = _text_beats(text, name)
    check_beats(beats, f"beat file {name}")
    return beats, downbeats


def _numbers(values: Any, name: str, what: str) -> np.ndarray:
    if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                               for v in values):
        raise BadInputError(f"beat file {name}: {what} must be a list of numbers (seconds)")
    return np.asarray(values, dtype=np.float64)


def _json_beats(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"beat file {name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(data, list):
        return _numbers(data, name, "the list"), np.zeros(0)
    if not isinstance(data, dict) or "beats" not in data:
        raise BadInputError(f"beat file {name}: JSON needs a \"beats\" list (as `stillmotion analyze` writes)")
    beats = _numbers(data["beats"], name, '"beats"')
    downbeats = _numbers(data.get("downbeats", []), name, '"downbeats"')
    return beats, downbeats


def _text_beats(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    beats: list[float] = []
    downbeats: list[float] = []
    seen_data = False
    dialect = csv.excel_tab if "\t" in text else csv.excel
    for number, row in enumerate(csv.reader(io.StringIO(text), dialect=dialect), start=1):
        fields = [f.strip() for cell in row for f in cell.split()] if dialect is csv.excel else \
            [f.strip() for f in row]
        fields = [f for f in fields if f]
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) == 1 and ";" in fields[0]:
            fields = [f.strip() for f in fields[0].split(";") if f.strip()]
        try:
            value = float(fields[0])
        except ValueError:
            if not seen_data and not beats and number == 1:
                seen_data = True  # a header line ("time,label")
                continue
            raise BadInputError(f"beat file {name}, line {number}: {fields[0]!r} is not a time in seconds") from None
        seen_data = True
        beats.append(value)
        if len(fields) > 1 and fields[1].strip().lower() in DOWNBEAT_LABELS:
            downbeats.append(value)
    return np.asarray(beats, dtype=np.float64), np.asarray(downbeats, dtype=np.float64)


def grid_from_options(bpm: float | None = None, tempo_range: str | None = None, beats_file: str | None = None,
                      offset: float | None = None) -> BeatGrid | None:
    """The grid the command-line options ask for (None when they ask for nothing), validated."""
    beats = downbeats = None
    if beats_file is not None:
        beats, downbeats = read_beat_file(beats_file)
    grid = BeatGrid(bpm=bpm, tempo_range=parse_tempo_range(tempo_range),
                    beats=None if beats is None else tuple(float(t) for t in beats),
                    downbeats=() if downbeats is None else tuple(float(t) for t in downbeats),
                    offset=float(offset or 0.0), source=Path(beats_file).name if beats_file else "")
    grid.check()
    return None if grid.is_default else grid
