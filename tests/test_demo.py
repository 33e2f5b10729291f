"""The README's first command ends in `stillmotion demo`: it must render the bundled timeline end to end."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest
from stillmotion.engine.cli import main
from stillmotion.engine.video import VideoInfo


def test_demo_renders_every_still_to_the_music(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--output-dir", str(tmp_path), "--width", "160", "--height", "120", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert Path(summary["contact_sheet"]).stat().st_size > 1000
    timeline = otio.adapters.read_from_file(str(tmp_path / "demo_stillmotion.otio"))
    generated = next(t for t in timeline.tracks if t.name == "StillMotion")
    stills = next(t for t in timeline.tracks if t.name == "V1")
    clips = list(generated.find_clips())
    assert len(clips) == 4
    for still, clip in zip(stills.find_clips(), clips, strict=True):
        assert clip.range_in_parent() == still.range_in_parent()
        media = Path(summary["rendered"][clips.index(clip)]["output"])
        info = VideoInfo(media)
        assert info.frames == 96 and info.fps == 24 and (info.width, info.height) == (160, 120)
        assert info.audio_duration is not None and abs(info.audio_duration - 4.0) < 0.03
        assert clip.metadata["stillmotion"]["engine"] == "procedural"
