"""What a native writer adds: new tracks of rendered clips, each at a record range of the timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any


@dataclass
class NewClip:
    """One rendered clip to place: frames at the timeline's rate from the timeline's first frame."""

    name: str
    media: Path
    record_start: int
    frames: int
    width: int
    height: int
    has_audio: bool = False
    provenance: dict[str, Any] | None = None

    @classmethod
    def from_media(cls, name: str, media: Path, record_start: int, frames: int,
                   provenance: dict[str, Any] | None = None) -> NewClip:
        """A rendered clip as the writers need it: its size and whether it has sound, read from the file."""
        from ...video import VideoInfo

        info = VideoInfo(media)
        return cls(name=name, media=media, record_start=record_start, frames=frames, width=info.width,
                   height=info.height, has_audio=info.audio_rate is not None, provenance=provenance)

    @property
    def record_end(self) -> int:
        return self.record_start + self.frames


@dataclass
class NewTrack:
    """A video track to add above the others; its clips do not overlap."""

    name: str
    clips: list[NewClip] = field(default_factory=list)


@dataclass
class NativeResult:
    """What a native write did: the totals it had to change (documented per format) and notes for the user."""

    changed_totals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def rate_parts(rate: Fraction) -> tuple[int, bool]:
    """(timebase, ntsc) as FCP7 XML spells a rate: 30000/1001 -> (30, True)."""
    if rate.denominator == 1001:
        return round(rate.numerator / 1000), True
    return round(rate), False
