"""Render requests and results: plain dataclasses that round-trip through JSON.

The same object goes to a worker process, a Ray task, the job store and the clip's metadata, so it holds only
what is needed to reproduce the clip: paths, exact times as strings of fractions, settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from typing import Any


def fraction_to_json(value: Fraction) -> str:
    """'24000/1001' or '24': exact, readable, and parseable by `Fraction`."""
    return str(value)


@dataclass
class AudioSegment:
    """A piece of an audio file placed on the clip's timeline.

    Samples [source_start, source_start + duration) of `path` play from `record_start` seconds after the clip's
    first frame. A still's music is a list of these (trims, gaps and several clips under one still).
    """

    path: str
    source_start: Fraction = Fraction(0)
    duration: Fraction | None = None
    record_start: Fraction = Fraction(0)
    gain: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source_start": fraction_to_json(self.source_start),
            "duration": None if self.duration is None else fraction_to_json(self.duration),
            "record_start": fraction_to_json(self.record_start),
            "gain": self.gain,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AudioSegment:
        return cls(
            path=data["path"],
            source_start=Fraction(data.get("source_start", "0")),
            duration=None if data.get("duration") is None else Fraction(data["duration"]),
            record_start=Fraction(data.get("record_start", "0")),
            gain=float(data.get("gain", 1.0)),
        )


@dataclass
class RenderRequest:
    """Everything needed to render one clip, independent of any timeline or host."""

    image: str
    output: str
    fps: Fraction
    frames: int
    width: int
    height: int
    audio: list[AudioSegment] = field(default_factory=list)
    engine: str = "procedural"
    model: str | None = None
    preset: str = "pulse"
    intensity: float = 1.0
    seed: int = 0
    fit: str = "cover"
    anchor: str = "start"
    prompt: str = ""
    negative_prompt: str = ""
    end_image: str | None = None
    mux_audio: bool = True
    qc: bool = True
    overwrite: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> Fraction:
        return Fraction(self.frames) / self.fps

    def anchor_frame(self) -> int:
        """The output frame that shows the still exactly: the first, the last, or the middle one."""
        return {"start": 0, "end": self.frames - 1, "middle": (self.frames - 1) // 2}[self.anchor]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fps"] = fraction_to_json(self.fps)
        data["audio"] = [seg.to_json() for seg in self.audio]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderRequest:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["fps"] = Fraction(values["fps"])
        values["audio"] = [AudioSegment.from_json(seg) for seg in values.get("audio", [])]
        return cls(**values)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> RenderRequest:
        return cls.from_json(json.loads(text))
