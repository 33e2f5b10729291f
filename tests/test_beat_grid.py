"""The editor's hand on the beat grid: --bpm, --tempo-range, --beats, --beat-offset (engine/audio/grid.py)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from audio_fixtures import *  # noqa: F403
from grid_fixtures import house_song
from media_fixtures import photo
from stillmotion.engine.audio import clip_features
from stillmotion.engine.audio.grid import BeatGrid, analysis_for, apply_grid, read_beat_file
from stillmotion.engine.cli import main
from stillmotion.engine.qc import qc_video
from stillmotion.engine.rates import FrameGrid
from stillmotion.engine.request import AudioSegment

RENDER = ["--duration", "8", "--fps", "24", "--width", "192", "--height", "128", "--no-qc"]


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 124-BPM house track (trackers often read such tracks at half tempo)."""
    path = tmp_path_factory.mktemp("house") / "house124.wav"
    beats, downbeats = house_song(path, bpm=124.0, bars=6)
    return path, beats, downbeats


def render(house: tuple[Path, np.ndarray, np.ndarray], out: Path, *extra: str) -> int:
    return main(["render", str(photo()), "--audio", str(house[0]), *RENDER, "-o", str(out), *extra])


def test_bpm_hint_turns_a_half_tempo_reading_into_every_beat(house, tmp_path: Path) -> None:
    """Done when: a 124-BPM song read at 62 becomes 124 with --bpm 124, and motion peaks land on every beat."""
    path, truth, _ = house
    half = analysis_for(path, BeatGrid(bpm=62))
    assert half.tempo == pytest.approx(62, rel=0.04)  # the half-tempo reading the issue reports
    hinted = analysis_for(path, BeatGrid(bpm=124))
    assert hinted.tempo == pytest.approx(124, rel=0.04)
    assert all(np.min(np.abs(hinted.beats - t)) < 0.07 for t in truth)

    slow, fast = tmp_path / "read62.mp4", tmp_path / "read124.mp4"
    assert render(house, slow, "--bpm", "62") == 0
    assert render(house, fast, "--bpm", "124") == 0
    slow_hits = qc_video(slow, beat_times=truth).beat_hit_rate
    fast_hits = qc_video(fast, beat_times=truth).beat_hit_rate
    assert fast_hits == 1.0  # the project's QC beat-hit measure, against the song's true beats
    assert slow_hits is not None and slow_hits < 0.8
    with av.open(str(fast)) as container:  # the grid travels in the clip's own provenance
        comment = json.loads(container.metadata["comment"])
    assert comment["stillmotion"]["request"]["options"]["beat_grid"] == {"bpm": 124.0}


def test_beat_file_formats_round_trip(house, tmp_path: Path) -> None:
    path, truth, downs = house
    lines = tmp_path / "beats.txt"
    lines.write_text("# my beats\n" + "\n".join(f"{t:.4f}" for t in truth) + "\n")
    beats, downbeats = read_beat_file(lines)
    assert np.allclose(beats, truth, atol=1e-4) and downbeats.size == 0
    table = tmp_path / "beats.csv"
    table.write_text("time,position\n" + "\n".join(f"{t:.4f},{i % 4 + 1}" for i, t in enumerate(truth)))
    beats, downbeats = read_beat_file(table)
    assert np.allclose(downbeats, downs, atol=1e-4)
    # analyze's JSON, with --bpm, read back as a beat file: same beats, downbeats kept.
    report = tmp_path / "analysis.json"
    assert main(["analyze", str(path), "--bpm", "124", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["beat_grid"] == {"bpm": 124.0} and data["tempo"] == pytest.approx(124, rel=0.04)
    beats, downbeats = read_beat_file(report)
    assert np.allclose(beats, data["beats"]) and np.allclose(downbeats, data["downbeats"])
    grid = BeatGrid(beats=tuple(beats), downbeats=tuple(downbeats), offset=0.01, source="analysis.json")
    assert BeatGrid.from_json(json.loads(json.dumps(grid.to_json()))) == grid


def test_factor_and_offset_reshape_the_grid(house) -> None:
    path, truth, downs = house
    base = BeatGrid(beats=tuple(truth[::2]), downbeats=tuple(downs), source="test")
    doubled = analysis_for(path, BeatGrid(**{**base.__dict__, "factor": 2.0}))
    assert np.allclose(doubled.beats, truth[:-1]) and doubled.tempo == pytest.approx(124, rel=1e-3)
    assert doubled.meter == 4 and list(doubled.beat_positions[:5]) == [1, 2, 3, 4, 1]
    halved = analysis_for(path, BeatGrid(beats=tuple(truth), downbeats=tuple(downs), factor=0.5))
    assert np.allclose(halved.beats, truth[::2]) and set(downs) <= set(halved.beats)
    shifted = analysis_for(path, BeatGrid(beats=tuple(truth), offset=0.1))
    assert np.allclose(shifted.beats, truth + 0.1)
    # Frames follow: the beat flags sit on the shifted frames.
    segment = [AudioSegment(str(path), Fraction(0), Fraction(4))]
    grid = FrameGrid(Fraction(24), 96)
    plain = clip_features(segment, grid, BeatGrid(beats=tuple(truth)))
    moved = clip_features(segment, grid, BeatGrid(beats=tuple(truth), offset=0.25))
    expected = np.flatnonzero(plain.beat) + 6
    assert np.array_equal(np.flatnonzero(moved.beat), expected[expected < grid.count])


def test_tempo_range_and_hint_validation(house, tmp_path: Path, capsys) -> None:
    path, _, _ = house
    ranged = analysis_for(path, BeatGrid(tempo_range=(100.0, 140.0)))
    assert 100 <= ranged.tempo <= 140
    for bad in (["--tempo-range", "140:100"], ["--tempo-range", "fast"], ["--bpm", "-5"],
                ["--bpm", "124", "--tempo-range", "60:90"]):
        out = tmp_path / "x.json"
        assert main(["analyze", str(path), "--json", str(out), *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("content, says", [
    ("", "no beat times"),
    ("1.0\n0.5\n2.0\n", "not increasing"),
    ("-0.5\n1.0\n", "negative"),
    ("0.5\nabc\n1.5\n", "not a time"),
    ('{"beats": ["x"]}', "list of numbers"),
    ("0.5\n1.0\n95.0\n", "beyond the end"),
])
def test_bad_beat_files_fail_with_one_line(house, tmp_path: Path, capsys, content: str, says: str) -> None:
    beats = tmp_path / "beats.txt"
    beats.write_text(content)
    out = tmp_path / "clip.mp4"
    assert render(house, out, "--beats", str(beats)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [beats]


def test_grid_is_in_the_request_and_the_job_identity(house, tmp_path: Path) -> None:
    from stillmotion.engine.cli import build_parser
    from stillmotion.engine.commands.render import build_request
    from stillmotion.engine.jobs.identity import job_id

    def request(*extra: str):
        args = build_parser().parse_args(["render", str(photo()), "--audio", str(house[0]), *RENDER,
                                          "-o", str(tmp_path / "c.mp4"), *extra])
        return build_request(args)

    plain, hinted, shifted = request(), request("--bpm", "124"), request("--bpm", "124", "--beat-offset", "0.02")
    assert "beat_grid" not in plain.options
    assert hinted.options["beat_grid"] == {"bpm": 124.0}
    assert len({job_id(plain), job_id(hinted), job_id(shifted)}) == 3
    assert BeatGrid.of_request(type(hinted).loads(hinted.dumps())) == BeatGrid(bpm=124.0)


def test_apply_grid_drops_beats_shifted_outside_the_song(house) -> None:
    path, truth, _ = house
    analysis = analysis_for(path)
    moved = apply_grid(analysis, BeatGrid(beats=tuple(truth), offset=-0.6))
    assert moved.beats[0] >= 0 and moved.beats.size == truth.size - 1


def test_qc_command_judges_sync_against_the_corrected_grid(house, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    assert render(house, clip, "--bpm", "124") == 0
    rates = {}
    for bpm in ("62", "124"):
        report = tmp_path / f"qc{bpm}.json"
        assert main(["qc", str(clip), "--audio", str(house[0]), "--bpm", bpm, "--json", str(report)]) == 0
        data = json.loads(report.read_text())
        assert data["beat_grid"] == {"bpm": float(bpm)}
        rates[bpm] = data["beat_hit_rate"]
    assert rates["124"] == 1.0
    assert main(["qc", str(clip), "--bpm", "124", "--json", str(tmp_path / "x.json")]) == 2
