"""Beat, tempo, meter and onset accuracy on music with known beats; the analysis cache."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import *  # noqa: F403
from audio_fixtures import SHARED_AUDIO
from stillmotion.engine.audio import analyze, analyze_samples
from stillmotion.engine.audio.cache import cache_root, entry_key

#: Minimum mir_eval beat F-measure (70 ms, untrimmed) and downbeat F-measure per synthetic track. Measured
#: values are 1.00 for every track (bench/bench_beats.py); plain librosa scores 0.67 on fast_punk (half tempo),
#: 0.76 on the ramp and 0.68 on the step. The margins absorb fluidsynth / platform differences.
BEAT_MIN = {"slow_ballad": 0.9, "mid_straight": 0.9, "mid_swing": 0.9, "fast_punk": 0.9, "waltz_3_4": 0.9,
            "ramp_90_140": 0.85, "step_100_132": 0.85}
DOWNBEAT_MIN = 0.75


def _f(ref, est) -> float:
    return float(mir_eval.beat.f_measure(np.asarray(ref, float), np.asarray(est, float)))


@pytest.mark.parametrize("name", list(BEAT_MIN))
def test_beats_tempo_meter_on_synthetic_music(synthetic_music, name: str) -> None:
    track = synthetic_music[name]
    result = analyze(track["wav"])
    f_beats = _f(track["beats"], result.beats)
    assert f_beats >= BEAT_MIN[name], f"{name}: beat F {f_beats:.3f}"
    low, high = track["bpm"]
    assert result.tempo is not None
    if low == high:
        assert result.tempo == pytest.approx(low, rel=0.02), "no octave error, accurate tempo"
    else:  # ramp or step: the local tempo follows it
        assert low < result.tempo < high
        local = result.envelopes["local_tempo"]
        hop = result.hop_rate
        first, last = track["beats"][4], track["beats"][-4]
        assert local[int(first * hop)] == pytest.approx(low, rel=0.1)  # the ramp is followed
        assert local[int(last * hop)] == pytest.approx(high, rel=0.1)
    assert result.meter == track["meter"]
    assert _f(track["downbeats"], result.downbeats) >= DOWNBEAT_MIN
    assert set(result.beat_positions[np.isin(result.beats, result.downbeats)]) == {1}
    assert 0.5 < result.tempo_confidence <= 1.0


def test_cache_hit_and_invalidation(synthetic_music, tmp_path: Path) -> None:
    src = Path(synthetic_music["slow_ballad"]["wav"])
    path = tmp_path / "song.wav"
    data, rate = sf.read(src)
    sf.write(path, 0.9 * data, rate)  # content no other test has analysed yet
    entries = lambda: sorted((cache_root() / "audio").rglob("*.npz"))  # noqa: E731
    before = set(entries())
    t0 = time.perf_counter()
    first = analyze(path)
    miss = time.perf_counter() - t0
    created = set(entries()) - before
    assert len(created) == 1
    # Same bytes under a new mtime and a new name: a hit, nothing recomputed or written.
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(path.read_bytes())
    t0 = time.perf_counter()
    again = analyze(copy)
    hit = time.perf_counter() - t0
    assert set(entries()) - before == created
    assert hit < miss / 3
    assert np.array_equal(first.beats, again.beats) and first.tempo == again.tempo
    assert np.array_equal(first.envelopes["onset_env"], again.envelopes["onset_env"])
    assert first.sections == again.sections
    # Changing the file's content invalidates: a new entry and a new result.
    sf.write(path, 0.9 * data[: len(data) // 2], rate)
    changed = analyze(path)
    assert len(set(entries()) - before) == 2
    assert changed.duration == pytest.approx(first.duration / 2, abs=0.01)
    # A damaged entry is ignored and rewritten, never an error.
    for entry in set(entries()) - before:
        entry.write_bytes(b"garbage")
    repaired = analyze(path)
    assert repaired.duration == pytest.approx(changed.duration)
    # Parameters and version are part of the key.
    assert entry_key("abc", {"hop": 256}, 1) != entry_key("abc", {"hop": 512}, 1)
    assert entry_key("abc", {"hop": 256}, 1) != entry_key("abc", {"hop": 256}, 2)


def test_no_pulse_means_no_beats() -> None:
    rate = 22050
    t = np.arange(rate * 12) / rate
    drone = analyze_samples((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    assert drone.tempo is None and drone.beats.size == 0
    assert drone.onsets.size <= 2  # the tone's start, at most its end
    noise = analyze_samples(np.random.default_rng(1).standard_normal(rate * 12).astype(np.float32) * 0.1)
    assert noise.tempo is None and noise.beats.size == 0
    silence = analyze_samples(np.zeros(rate * 3, np.float32))
    assert silence.tempo is None and silence.sections == [] and silence.silent


def test_sections_find_a_break(synthetic_music, tmp_path: Path) -> None:
    """A 40-s track with an 8-bar drum break in the middle: boundaries at the break, on downbeats."""
    from musicgen import TrackSpec, compose, render_midi

    spec = TrackSpec("sections", 120, 120, 24, style="rock", break_bars=tuple(range(8, 16)), seed=9)
    midi, beats, downbeats = compose(spec)
    midi.save(tmp_path / "s.mid")
    render_midi(tmp_path / "s.mid", tmp_path / "s.wav")
    latency = synthetic_music["slow_ballad"]["latency"]
    result = analyze(tmp_path / "s.wav")
    starts = [a for a, _, _ in result.sections]
    break_start, break_end = downbeats[8] + latency, downbeats[16] + latency
    assert min(abs(s - break_start) for s in starts) < 0.6
    assert min(abs(s - break_end) for s in starts) < 0.6
    labels = {round(a): label for a, _, label in result.sections}
    assert labels[round(break_start)] in ("low", "mid")


@pytest.mark.skipif(not (SHARED_AUDIO / "mir_eval").is_dir(), reason="../shared/fixtures/audio missing")
@pytest.mark.parametrize("kind", ["beat", "onset"])
def test_scoring_reproduces_mir_eval_expected_numbers(kind: str) -> None:
    folder = SHARED_AUDIO / "mir_eval" / kind
    if kind == "beat":  # what mir_eval.beat.evaluate does for F (minus its slow information-gain metrics)
        def evaluate(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
            ref, est = mir_eval.beat.trim_beats(ref), mir_eval.beat.trim_beats(est)
            return {"F-measure": mir_eval.beat.f_measure(ref, est)}
    else:
        evaluate = mir_eval.onset.evaluate
    outputs = sorted(folder.glob("output*.json"))
    assert outputs
    for expected in outputs:
        idx = expected.stem[len("output"):]
        ref = mir_eval.io.load_events(str(folder / f"ref{idx}.txt"))
        est = mir_eval.io.load_events(str(folder / f"est{idx}.txt"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = evaluate(ref, est)["F-measure"]
        assert got == pytest.approx(json.loads(expected.read_text())["F-measure"], abs=1e-9)


@pytest.mark.skipif(not (SHARED_AUDIO / "madmom" / "sample.wav").is_file(), reason="madmom sample missing")
def test_madmom_sample_beats_and_onsets() -> None:
    """Real recorded music (2.8 s, CC BY-NC-SA, read in place). Its annotation allows 87.5 or 175 BPM."""
    folder = SHARED_AUDIO / "madmom"
    result = analyze(folder / "sample.wav")
    ref_beats = np.loadtxt(folder / "sample.beats", comments="#", ndmin=2)[:, 0]
    ref_onsets = np.loadtxt(folder / "sample.onsets", comments="#", ndmin=1)
    assert result.tempo is not None
    assert min(abs(result.tempo - t) / t for t in (87.5, 175.0)) < 0.05
    assert mir_eval.onset.f_measure(ref_onsets, result.onsets)[0] >= 0.85
    # Every annotated beat is found within 70 ms (the tracker may also mark the off-beats at 175 BPM).
    assert all(np.min(np.abs(result.beats - b)) <= 0.07 for b in ref_beats)
    assert _f(ref_beats, result.beats) >= 0.6


@pytest.mark.parametrize("name", ["mid_straight", "fast_punk"])
def test_tempo_hint_forces_the_metrical_level(synthetic_music, name: str) -> None:
    """An editor's BPM hint picks the level (half or the notated tempo); phase and beats are still tracked."""
    track = synthetic_music[name]
    notated = track["bpm"][0]
    at_level = analyze(track["wav"], bpm=notated)
    assert at_level.tempo == pytest.approx(notated, rel=0.02)
    assert _f(track["beats"], at_level.beats) >= 0.9
    halved = analyze(track["wav"], bpm=notated / 2)
    assert halved.tempo == pytest.approx(notated / 2, rel=0.02)
    every_other = np.asarray(track["beats"])  # the half-tempo grid sits on every other notated beat
    assert max(_f(every_other[0::2], halved.beats), _f(every_other[1::2], halved.beats)) >= 0.9
    # A hint a little off still lands on the song's own tempo (the tracker follows the music, not the hint).
    off = analyze(track["wav"], bpm=notated * 1.06)
    assert off.tempo == pytest.approx(notated, rel=0.02)
    ranged = analyze(track["wav"], tempo_range=(notated * 0.4, notated * 0.6))
    assert ranged.tempo == pytest.approx(notated / 2, rel=0.02)


def test_tempo_hint_is_part_of_the_cache_key(synthetic_music) -> None:
    from stillmotion.engine.audio.analysis import analysis_params

    assert analysis_params() != analysis_params(124.0) != analysis_params(124.0, (100.0, 140.0))
    track = synthetic_music["mid_straight"]
    plain, hinted = analyze(track["wav"]), analyze(track["wav"], bpm=59)
    assert plain.tempo == pytest.approx(118, rel=0.02) and hinted.tempo == pytest.approx(59, rel=0.02)
    assert analyze(track["wav"]).tempo == plain.tempo  # the hinted entry did not replace the plain one


@pytest.mark.parametrize("kwargs", [{"bpm": 0}, {"bpm": -120}, {"bpm": 10}, {"bpm": 500}, {"bpm": float("nan")},
                                    {"tempo_range": (140, 100)}, {"tempo_range": (120, 120)},
                                    {"tempo_range": (10, 100)}, {"tempo_range": (100, 450)},
                                    {"tempo_range": ("a", "b")}, {"bpm": 90, "tempo_range": (100, 140)}])
def test_bad_tempo_hint_is_a_user_error(synthetic_music, kwargs) -> None:
    from stillmotion.engine.errors import BadInputError

    with pytest.raises(BadInputError):
        analyze(synthetic_music["mid_straight"]["wav"], **kwargs)
    with pytest.raises(BadInputError):
        analyze_samples(np.zeros(22050, np.float32), **kwargs)


@pytest.mark.parametrize("network_conf, dsp_conf, bpm, chosen, dsp_runs", [
    (0.50, 0.60, None, "dsp", True),       # the network unsure, the DSP tracker surer by more than the margin
    (0.50, 0.54, None, "network", True),   # surer, but within the margin
    (0.85, 0.99, None, "network", False),  # a sure network keeps its grid; the DSP tracker is not even run
    (0.30, 0.90, 124.0, "network", False),  # with the editor's tempo hint the level is chosen: the network tracks
])
def test_the_dsp_grid_replaces_an_unsure_network_only(monkeypatch, network_conf, dsp_conf, bpm, chosen,
                                                      dsp_runs) -> None:
    """analysis.track's choice between the network's and the DSP tracker's grid (docs/audio.md, version 11), on
    the envelopes of a real click track with each tracker's confidence set."""
    from stillmotion.engine.audio import analysis, beat_decode, spectral
    from stillmotion.engine.audio import beats as beats_mod

    rate = spectral.SAMPLE_RATE
    y = np.zeros(rate * 8, np.float32)
    for t in np.arange(0.25, 7.9, 0.5):
        y[int(t * rate):int(t * rate) + 200] = np.hanning(200) * 0.8
    env = spectral.compute_envelopes(y)
    real_net, real_dsp = beat_decode.decode_outputs, beats_mod.track_beats
    runs: list[str] = []

    def net(*args, **kwargs):
        result = real_net(*args, **kwargs)
        result.confidence, result.tempo = network_conf, 1.0
        return result

    def dsp(*args, **kwargs):
        runs.append("dsp")
        result = real_dsp(*args, **kwargs)
        result.confidence, result.tempo = dsp_conf, 2.0
        return result

    monkeypatch.setattr(beat_decode, "decode_outputs", net)
    monkeypatch.setattr(beats_mod, "track_beats", dsp)
    result = analysis.track(env, bpm, None)
    assert result.tempo == (2.0 if chosen == "dsp" else 1.0)
    assert bool(runs) == dsp_runs
