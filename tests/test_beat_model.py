"""The shipped beat network (resources/beat_model.safetensors) through the runtime code path, on a song the
network never saw (a seed far outside the development range it was trained on), without retraining."""

from __future__ import annotations

import re

import mir_eval
import numpy as np
import pytest
from audio_fixtures import *  # noqa: F403
from musicgen import render_song
from stillmotion.engine.audio import analyze, beat_decode, beat_model, load_audio, spectral
from stillmotion.engine.audio.beat_model import _conv

#: Outside the development seeds the network was trained and validated on (< 1000), and outside bench_beats'
#: fresh draws (≥ 1e6).
UNSEEN_SEEDS = (900_001, 900_002, 900_003)


@pytest.fixture(scope="module")
def unseen_songs(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("unseen")
    return [render_song(seed, folder) for seed in UNSEEN_SEEDS]


def test_shipped_weights_load_small_and_documented() -> None:
    model = beat_model.load_model()
    assert model is not None, "resources/beat_model.safetensors is missing"
    count = sum(a.size for a in (model.input_weight, model.input_bias, model.output_weight, model.output_bias))
    count += sum(w.size + b.size for w, b in model.blocks)
    assert 1_000 < count < 60_000
    assert re.search(r"development seeds 0\.\.\d+ ", model.info["trained_on"]), model.info["trained_on"]
    assert "Apache-2.0" in model.info["licence"]


def test_conv_matches_a_plain_dilated_convolution() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 50)).astype(np.float32)
    weight = rng.standard_normal((2, 3, 5)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    got = _conv(x, weight, bias, dilation=4)
    padded = np.pad(x.astype(np.float64), ((0, 0), (8, 8)))
    want = np.array([[bias[o] + sum(weight[o, c, k] * padded[c, t + 4 * k] for c in range(3) for k in range(5))
                      for t in range(50)] for o in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_activation_peaks_on_the_beats_of_unseen_songs(unseen_songs) -> None:
    model = beat_model.load_model()
    for song in unseen_songs:
        y = load_audio(song["wav"], sample_rate=spectral.SAMPLE_RATE, mono=True).samples[0]
        env = spectral.compute_envelopes(y)
        beat, down = beat_model.activations(model, beat_model.model_input(env.log_mel))
        assert beat.shape == down.shape == (env.count,)
        ref = np.asarray(song["beats"])
        # Peaks of the beat activation (local maxima above 0.3) are the beats, within 70 ms.
        peaks = np.flatnonzero((beat[1:-1] >= beat[:-2]) & (beat[1:-1] > beat[2:]) & (beat[1:-1] > 0.3)) + 1
        f = mir_eval.beat.f_measure(ref, peaks / env.hop_rate)
        assert f >= 0.8, f"{song['name']}: activation peaks F {f:.3f}"
        on = np.round(ref * env.hop_rate).astype(int)
        on = on[on < beat.size]
        assert beat[on].mean() > 5 * np.median(beat), song["name"]
        down_frames = np.round(np.asarray(song["downbeats"]) * env.hop_rate).astype(int)
        down_frames = down_frames[down_frames < down.size]
        others = np.setdiff1d(on, down_frames)
        assert down[down_frames].mean() > 2 * down[others].mean(), song["name"]


def test_model_tracker_is_the_default_and_dsp_stays_available(unseen_songs) -> None:
    song = unseen_songs[0]
    model, dsp = analyze(song["wav"]), analyze(song["wav"], tracker="dsp")
    ref = np.asarray(song["beats"])
    assert mir_eval.beat.f_measure(ref, model.beats) >= 0.9
    assert dsp.beats.size > 0
    with pytest.raises(ValueError, match="tracker"):
        analyze(song["wav"], tracker="madmom")


def test_tempo_head_reads_the_notated_tempo_of_unseen_songs(unseen_songs) -> None:
    """The tempo head (the decoder's tempo prior) puts its mass at the notated level, not an octave off."""
    model = beat_model.load_model()
    assert model.tempo_weight is not None and model.tempo_bpms is not None
    for song in unseen_songs:
        y = load_audio(song["wav"], sample_rate=spectral.SAMPLE_RATE, mono=True).samples[0]
        env = spectral.compute_envelopes(y)
        out = beat_model.forward(model, beat_model.model_input(env.log_mel))
        assert out.tempo_log_probs.shape == (model.tempo_bpms.size, env.count)
        np.testing.assert_allclose(np.exp(out.tempo_log_probs).sum(axis=0), 1.0, atol=1e-4)
        head = float(out.tempo_bpms[np.argmax(np.exp(out.tempo_log_probs).mean(axis=1))])
        ref = 60.0 / float(np.median(np.diff(song["beats"])))
        assert abs(np.log2(head / ref)) < 0.15, f"{song['name']}: head {head:.1f} vs {ref:.1f} BPM"


def test_head_prior_peaks_where_the_head_does() -> None:
    bpms = beat_model.tempo_bins(10)
    log_probs = np.full((bpms.size, 2000), -20.0, np.float32)
    log_probs[np.argmin(np.abs(bpms - 90.0))] = 0.0
    prior = beat_decode.head_prior(log_probs, bpms, 86.0, 2.0)(np.array([5.0, 12.0]), np.geomspace(50, 220, 160))
    assert prior.shape == (2, 160)
    assert abs(np.geomspace(50, 220, 160)[np.argmax(prior[0])] / 90.0 - 1) < 0.05


def test_off_beat_phase_follows_the_downbeat_activation() -> None:
    frames = np.arange(20, 2000, 40)
    down = np.zeros(2100)
    down[frames[::4] + 20] = 0.9  # bar lines half-way between the tracked beats
    assert beat_decode.off_beat_phase(down, frames)
    down[:] = 0.0
    down[frames[::4]] = 0.9
    assert not beat_decode.off_beat_phase(down, frames)
