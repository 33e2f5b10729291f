"""The tracker on a few songs from the seeded generator (tests/musicgen.py): metrical level and F-measure pinned.

The songs are fixed specs built from development seeds (the range bench/bench_beats.py tunes on) plus the two
failures that issue 14 was opened for: a 124-BPM house track once read at 62 BPM, and a 90 → 128 BPM ramp once
doubled. Each renders in well under a second; the whole module runs in seconds.
"""

from __future__ import annotations

import dataclasses

import mir_eval
import numpy as np
import pytest
from audio_fixtures import *  # noqa: F403
from musicgen import render_spec, song_spec
from stillmotion.engine.audio import analyze


def _spec(style: str, **changes):
    """The first development seed of that style, with `changes` applied."""
    seed = next(s for s in range(200) if song_spec(s).style == style)
    return dataclasses.replace(song_spec(seed), **changes)


STEADY = {"tempo_change": "none"}


#: name → (spec, minimum beat F, minimum downbeat F)
SONGS = {
    "house_124": (_spec("four_floor", bpm_start=124.0, bpm_end=124.0, bars=16, intro_bars=0, **STEADY), 0.95, 0.9),
    "ramp_90_128": (_spec("rock", bpm_start=90.0, bpm_end=128.0, tempo_change="ramp", bars=16), 0.9, 0.75),
    "waltz": (_spec("waltz", bpm_start=150.0, bpm_end=150.0, **STEADY), 0.95, 0.9),
    "twelve_eight": (_spec("twelve_eight", bpm_start=80.0, bpm_end=80.0, **STEADY), 0.95, 0.9),
    "dnb": (_spec("dnb", bpm_start=172.0, bpm_end=172.0, **STEADY), 0.95, 0.9),
    "funk": (_spec("funk", bpm_start=100.0, bpm_end=100.0, **STEADY), 0.95, 0.9),
    # Round 2 (analysis version 7), dev seeds as they are: the 6/8 bar of two dotted quarters, bowed strings on
    # the soft-attack envelope, a reggae one drop put back on the beat.
    "six_eight": (song_spec(2), 0.95, 0.9),
    "strings_only": (song_spec(97), 0.9, 0.75),
    "reggae": (song_spec(80), 0.9, 0.75),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("generated")
    return {name: render_spec(spec, folder, name) for name, (spec, _, _) in SONGS.items()}


@pytest.mark.parametrize("name", list(SONGS))
def test_generated_song_level_and_f_measure(generated, name: str) -> None:
    song, (spec, beat_min, down_min) = generated[name], SONGS[name]
    result = analyze(song["wav"])
    ref = np.asarray(song["beats"])
    f = float(mir_eval.beat.f_measure(ref, result.beats))
    tracked = 60.0 / np.median(np.diff(result.beats))
    notated = 60.0 / np.median(np.diff(ref))
    assert tracked == pytest.approx(notated, rel=0.04), f"{name}: metrical level {tracked:.1f} vs {notated:.1f}"
    assert f >= beat_min, f"{name}: beat F {f:.3f}"
    down = float(mir_eval.beat.f_measure(np.asarray(song["downbeats"]), result.downbeats))
    assert down >= down_min, f"{name}: downbeat F {down:.3f}"
    if spec.tempo_change == "ramp":  # the local tempo follows the ramp at the notated level
        local = result.envelopes["local_tempo"]
        assert local[int(ref[4] * result.hop_rate)] == pytest.approx(spec.bpm_start, rel=0.1)
        assert local[int(ref[-4] * result.hop_rate)] == pytest.approx(spec.bpm_end, rel=0.1)


def test_house_track_with_a_half_tempo_hint_is_read_at_the_half(generated) -> None:
    """The editor's hint wins over the level scorer (the other direction of issue 14's ×2 / ÷2)."""
    song = generated["house_124"]
    assert 60.0 / np.median(np.diff(analyze(song["wav"], bpm=62).beats)) == pytest.approx(62, rel=0.03)
