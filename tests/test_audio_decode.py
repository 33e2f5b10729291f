"""Decoding and segment mixing: formats, odd inputs, bad inputs, ranges, trims, gaps, channel mixing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import *  # noqa: F403
from audio_fixtures import click_track, ffmpeg, tone
from stillmotion.engine.audio import audio_info, load_audio, render_segments
from stillmotion.engine.errors import BadInputError
from stillmotion.engine.rates import FrameGrid, parse_fps
from stillmotion.engine.request import AudioSegment


def _first_click(samples: np.ndarray, rate: int) -> float:
    mono = np.abs(samples).max(axis=0)
    return float(np.flatnonzero(mono > 0.3 * mono.max())[0]) / rate


@pytest.mark.parametrize(
    ("name", "rate", "channels", "subtype"),
    [
        ("mono8k.wav", 8000, 1, "PCM_16"),
        ("hires.flac", 96000, 2, "PCM_24"),
        ("song.aiff", 44100, 2, "PCM_16"),
        ("song.ogg", 44100, 2, "VORBIS"),
        ("float.wav", 48000, 2, "FLOAT"),
        ("max.wav", 192000, 1, "PCM_24"),
        ("song.mp3", 44100, 2, None),
        ("song.m4a", 48000, 2, None),
    ],
)
def test_formats_decode_with_right_length_and_timing(make_audio, name, rate, channels, subtype) -> None:
    """Every common format decodes; a click at 1.0 s is found at 1.0 s (encoder delay handled)."""
    data = click_track(2.0, rate, [1.0], channels)
    path = make_audio(name, data, rate, subtype)
    clip = load_audio(path)
    assert clip.sample_rate == rate
    assert clip.channels == channels
    assert abs(clip.duration - 2.0) < 0.06  # MP3/AAC pad the end to a frame
    assert abs(_first_click(clip.samples, rate) - 1.0) < 0.002
    # A range from a compressed file lands on the same time as from PCM.
    part = load_audio(path, start=Fraction(1, 2), duration=Fraction(1))
    assert part.samples.shape == (channels, rate)
    assert abs(_first_click(part.samples, rate) - 0.5) < 0.002


def test_short_clip_and_resampling(make_audio) -> None:
    path = make_audio("short.wav", tone(0.1, 44100), 44100)
    clip = load_audio(path, sample_rate=22050, mono=True)
    assert clip.samples.shape == (1, 2205)
    assert clip.samples.dtype == np.float32
    # Ranges past the end are zero-padded silence, not an error.
    long = load_audio(path, start=Fraction(0), duration=Fraction(1), sample_rate=48000)
    assert long.samples.shape == (1, 48000)
    assert np.abs(long.samples[:, 5000:]).max() < 1e-5  # resampler ringing only
    beyond = load_audio(path, start=Fraction(5), duration=Fraction(1, 2))
    assert beyond.samples.shape == (1, 22050) and not beyond.samples.any()


def test_surround_51_downmix_uses_itu_weights(make_audio) -> None:
    rate = 48000
    n = rate // 2
    data = np.zeros((n, 6))
    data[:, 0] = 0.1   # FL
    data[:, 1] = 0.2   # FR
    data[:, 2] = 0.3   # FC
    data[:, 3] = 0.9   # LFE (dropped)
    data[:, 4] = 0.05  # BL
    data[:, 5] = 0.15  # BR
    path = make_audio("surround.wav", data, rate, "FLOAT")
    assert audio_info(path).channels == 6
    stereo = render_segments([AudioSegment(str(path))], Fraction(1, 2), rate)
    k = np.sqrt(0.5)
    assert stereo.shape == (2, n)
    assert np.allclose(stereo[0], 0.1 + k * 0.3 + k * 0.05, atol=1e-6)
    assert np.allclose(stereo[1], 0.2 + k * 0.3 + k * 0.15, atol=1e-6)
    mono = load_audio(path, mono=True).samples
    assert np.allclose(mono[0], 0.5 * (stereo[0] + stereo[1]), atol=1e-6)


def test_surround_via_ffmpeg_and_mono_upmix(make_audio, tmp_path: Path) -> None:
    src = make_audio("mono.wav", tone(1.0, 44100, 300.0), 44100)
    surround = tmp_path / "six.m4a"
    ffmpeg("-i", str(src), "-af", "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0", "-c:a", "aac", str(surround))
    assert audio_info(surround).channels == 6
    out = render_segments([AudioSegment(str(surround))], Fraction(1), 44100)
    assert out.shape == (2, 44100) and np.abs(out).max() > 0.5
    up = render_segments([AudioSegment(str(src))], Fraction(1), 44100)
    assert np.array_equal(up[0], up[1]) and np.abs(up).max() > 0.45


@pytest.mark.parametrize("case", ["missing", "folder", "empty", "text", "png", "truncated_wav",
                                  "truncated_flac", "mp3_fragment", "m4a_no_moov", "video_without_audio"])
def test_bad_input_is_one_line_naming_the_file(case: str, tmp_path: Path, make_audio) -> None:
    path = tmp_path / f"bad_{case}"
    if case == "missing":
        path = tmp_path / "nope.wav"
    elif case == "folder":
        path.mkdir()
    elif case == "empty":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
    elif case == "text":
        path = tmp_path / "notes.wav"
        path.write_text("RIFF this is not audio at all\n" * 20)
    elif case == "png":
        from PIL import Image

        path = tmp_path / "picture.mp3"
        Image.new("RGB", (8, 8), "red").save(path, format="PNG")
    elif case in ("truncated_wav", "truncated_flac"):
        suffix = ".wav" if case == "truncated_wav" else ".flac"
        full = make_audio(f"full{suffix}", tone(2.0, 44100), 44100)
        path = tmp_path / f"cut{suffix}"
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    elif case == "mp3_fragment":
        full = make_audio("full.mp3", tone(2.0, 44100), 44100)
        path = tmp_path / "cut.mp3"
        path.write_bytes(full.read_bytes()[:200])
    elif case == "m4a_no_moov":
        full = make_audio("full.m4a", tone(2.0, 44100), 44100)
        path = tmp_path / "cut.m4a"
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif case == "video_without_audio":
        path = tmp_path / "silent_video.mp4"
        ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x64:d=0.5", "-c:v", "libx264", str(path))
    with pytest.raises(BadInputError) as err:
        clip = load_audio(path)
        # A decoder that returns nothing at all for a damaged file must not pass silently either.
        assert clip.samples.size > 0
    message = str(err.value)
    assert "\n" not in message
    assert path.name in message


def test_render_segments_trims_gaps_and_past_the_end(make_audio) -> None:
    """Clicks every 0.5 s in a 4-s file; segments with trims, a gap, an overhang and a negative record start."""
    rate = 48000
    clicks = [0.25 + 0.5 * i for i in range(8)]
    path = str(make_audio("clicks.wav", click_track(4.0, rate, clicks, 2), rate, "FLOAT"))
    segments = [
        AudioSegment(path, source_start=Fraction(1), duration=Fraction(1), record_start=Fraction(1, 2)),
        # gap from 1.5 to 2.0, then a segment that runs past the end of the file (3.5 → 5.5 in source)
        AudioSegment(path, source_start=Fraction(7, 2), duration=Fraction(2), record_start=Fraction(2), gain=0.5),
        # starts before the clip: only its last 0.25 s is heard
        AudioSegment(path, source_start=Fraction(0), duration=Fraction(1, 2), record_start=Fraction(-1, 4)),
    ]
    out = render_segments(segments, Fraction(5), rate)
    assert out.shape == (2, 5 * rate) and out.dtype == np.float32
    onsets = _click_times(out[0], rate)
    # seg 3: source click 0.25 at clip time 0.0; seg 1: source 1.25, 1.75 → 0.75, 1.25; seg 2: source 3.75 → 2.25
    assert np.allclose(onsets, [0.0, 0.75, 1.25, 2.25], atol=1.5 / rate)
    assert not out[:, int(1.5 * rate) + 10:2 * rate].any()  # the gap is silent
    assert not out[:, int(2.5 * rate):].any()  # past the end of the file: silence
    seg2 = out[0, int(2.25 * rate):int(2.26 * rate)]
    assert 0.3 < np.abs(seg2).max() < 0.45  # gain 0.5 applied to a 0.8 click
    assert render_segments([], Fraction(1), rate).shape == (2, rate)


def _click_times(signal: np.ndarray, rate: int) -> np.ndarray:
    above = np.abs(signal) > 0.05
    starts = np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))
    keep = [s for i, s in enumerate(starts) if i == 0 or s - starts[i - 1] > rate // 20]
    return np.asarray(keep) / rate


@pytest.mark.parametrize("fps_text", ["23.976", "29.97", "25"])
def test_segment_at_a_frame_lands_on_sample_bounds_after_ten_minutes(fps_text: str, tmp_path: Path) -> None:
    """A 10-minute file whose samples count up (PCM_32 = index): placing and trimming at frame boundaries
    is sample-exact and agrees with FrameGrid.sample_bounds, even at the last frame."""
    rate = 8000
    n = 600 * rate
    path = tmp_path / "index.wav"
    sf.write(path, np.arange(n, dtype=np.int32)[:, None] * 256, rate, subtype="PCM_32")
    fps = parse_fps(fps_text)
    grid = FrameGrid(fps=fps, count=int(600 * fps) - 1)
    bounds = grid.sample_bounds(rate)
    for k in (0, 1, 7, 1001, grid.count // 2, grid.count - 2):
        start = grid.frame_start(k)
        clip = load_audio(path, start=start, duration=grid.frame_duration * 2)
        index = np.round(clip.samples[0] * 2 ** 23).astype(np.int64)
        assert index[0] == bounds[k], k
        assert len(index) == bounds[k + 2] - bounds[k]
        assert np.array_equal(np.diff(index), np.ones(len(index) - 1))
        # Placed at frame k of a clip, the source's frame-k audio starts exactly on sample_bounds[k].
        seg = AudioSegment(str(path), source_start=start, duration=grid.frame_duration, record_start=start)
        out = render_segments([seg], grid.frame_start(k + 1), rate, channels=1)
        placed = np.flatnonzero(out[0])
        expected_first = bounds[k] if bounds[k] else bounds[k] + 1  # sample 0 has value 0
        assert placed[0] == expected_first
        assert placed[-1] == bounds[k + 1] - 1


def test_streamed_mix_equals_each_segment_decoded_whole(make_audio) -> None:
    """The encoder's block-by-block mix (small blocks, resampled 44.1 -> 48 kHz, mono upmixed) holds exactly the
    samples of each segment decoded whole and placed, so streaming changes no output sample."""
    from stillmotion.engine.audio import SegmentMix

    rng = np.random.default_rng(7)
    stereo = str(make_audio("noise.wav", 0.3 * rng.standard_normal((44100 * 3, 2)).astype(np.float32), 44100,
                            "FLOAT"))
    mono = str(make_audio("mono.flac", 0.3 * rng.standard_normal((44100 * 2, 1)).astype(np.float32), 44100,
                          "PCM_24"))
    segments = [AudioSegment(stereo, source_start=Fraction(1, 3), duration=Fraction(2), record_start=Fraction(-1, 4)),
                AudioSegment(mono, source_start=Fraction(0), duration=Fraction(3), record_start=Fraction(1, 2),
                             gain=0.5)]
    duration, rate = Fraction(3), 48000
    expected = np.zeros((2, 3 * rate), np.float32)
    first = load_audio(stereo, Fraction(1, 3) + Fraction(1, 4), Fraction(7, 4), rate).samples
    expected[:, :first.shape[1]] += np.float32(1.0) * first
    second = load_audio(mono, Fraction(0), Fraction(5, 2), rate).samples
    expected[:, rate // 2:rate // 2 + second.shape[1]] += np.float32(0.5) * np.repeat(second, 2, axis=0)
    mix = SegmentMix(segments, duration, rate)
    blocks = list(mix.blocks(size=5000))
    assert max(b.shape[1] for b in blocks) <= 5000 and mix.total == 3 * rate
    assert np.array_equal(np.concatenate(blocks, axis=1), expected)
    assert np.array_equal(render_segments(segments, duration, rate), expected)


def _one_read(path: Path) -> np.ndarray:
    """The whole file as one decoder reads it from the start, (frames, channels). Not `sf.read`: it seeks to 0
    first, after which libsndfile decodes a low-rate MP3 1 ulp differently."""
    with sf.SoundFile(path) as snd:
        return snd.read(dtype="float32", always_2d=True)


def _music_like(seconds: float, rate: int, channels: int, seed: int) -> np.ndarray:
    """Noise bursts over drifting tones: content a compressed codec's bit reservoir has to work on."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    data = np.zeros((n, channels))
    for c in range(channels):
        data[:, c] = 0.2 * np.sin(2 * np.pi * (220 + 40 * c) * t * (1 + 0.01 * np.sin(t)))
    for start in rng.uniform(0, seconds - 0.2, int(seconds * 3)):
        i = int(start * rate)
        data[i:i + rate // 20] += rng.normal(0, 0.3, (rate // 20, channels))
    return np.clip(data, -1, 1)


@pytest.mark.parametrize("name, rate, channels, codec", [
    ("long.mp3", 44100, 2, ["-c:a", "libmp3lame", "-b:a", "192k"]),
    ("vbr.mp3", 44100, 2, ["-c:a", "libmp3lame", "-q:a", "9"]),       # lowest VBR: the reservoir reaches far
    ("mono.mp3", 22050, 1, ["-c:a", "libmp3lame", "-b:a", "32k"]),
    ("long.ogg", 44100, 2, ["-c:a", "libvorbis", "-q:a", "2"]),
])
def test_long_compressed_files_decode_exactly_as_one_linear_read(tmp_path: Path, name, rate, channels, codec) -> None:
    """MP3 / Ogg of SPLIT_DECODE_SECONDS or more are decoded as two halves on two threads: the whole file is
    exactly one decoder's read, and a range from inside the file is what decoding from the start gives there (to
    the decoder's last bit: after a seek, a low-rate MP3 decodes 1 ulp off; a seek's glitch would be ~0.1-0.9)."""
    from stillmotion.engine.audio import decode

    wav, path = tmp_path / "src.wav", tmp_path / name
    sf.write(wav, _music_like(decode.SPLIT_DECODE_SECONDS * 2.2, rate, channels, seed=len(name)), rate)
    ffmpeg("-i", str(wav), *codec, str(path))
    linear = _one_read(path)
    assert sf.info(str(path)).samplerate == rate
    assert np.array_equal(load_audio(path).samples, linear.T)
    for start, duration in ((Fraction(7, 3), Fraction(decode.SPLIT_DECODE_SECONDS + 11)), (Fraction(5), None),
                            (Fraction(40), Fraction(3))):
        clip = load_audio(path, start, duration)
        first = decode.seconds_to_sample(start, rate)
        expected = linear[first:first + clip.samples.shape[1]].T
        assert clip.samples.shape[1] >= expected.shape[1] > min(duration or 99, 30) * rate - 1
        assert np.abs(clip.samples[:, :expected.shape[1]] - expected).max() <= 1e-6, (name, start, duration)


def test_a_seam_that_does_not_match_falls_back_to_one_fresh_decoder(tmp_path: Path, make_audio, monkeypatch) -> None:
    """If the second decoder's samples before the seam differ from the first's, its half is not used: a fresh
    decoder reads the range in one go."""
    from stillmotion.engine.audio import decode

    path = make_audio("seam.mp3", _music_like(decode.SPLIT_DECODE_SECONDS * 2.5, 44100, 2, seed=3), 44100)
    linear = _one_read(path)
    opened = decode._open_soundfile

    class Shifted:  # a decoder whose output after a seek is off by one sample: what a bad seek would give
        def __init__(self, name: str) -> None:
            self.inner = opened(name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.inner.close()

        def seek(self, frame: int) -> None:
            self.inner.seek(frame + 1)

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

    calls: list[str] = []
    monkeypatch.setattr(decode, "_open_soundfile", lambda name: calls.append(name) or Shifted(name))
    snd = opened(str(path))
    with snd:
        clip = decode._read_soundfile(snd, str(path), Fraction(0), None)
    assert calls == [str(path), str(path)]  # the second decoder ran, then the fresh one
    assert np.array_equal(clip.samples, linear.T)


def test_a_streamed_vbr_mp3_has_no_clicks_at_block_edges(tmp_path: Path) -> None:
    """The render's streamed mix of a VBR MP3 holds exactly the samples of the range decoded in one go, and those
    are the file's from its start. soundfile's own block reads seek after every block, and on this file that puts
    ~0.1 s of wrong samples after each seek."""
    from stillmotion.engine.audio import SegmentMix, decode

    wav, path = tmp_path / "src.wav", tmp_path / "vbr.mp3"
    sf.write(wav, _music_like(24.0, 44100, 2, seed=11), 44100)
    ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-q:a", "9", str(path))
    start, duration = Fraction(3, 2), Fraction(20)
    whole = load_audio(path, start, duration).samples
    with sf.SoundFile(path) as snd:  # the material does show the defect with plain block reads
        snd.seek(decode.seconds_to_sample(start, 44100))
        blocks = [snd.read(decode.STREAM_BLOCK, dtype="float32", always_2d=True) for _ in range(3)]
    plain = np.concatenate(blocks).T
    assert np.abs(plain - whole[:, :plain.shape[1]]).max() > 0.01
    mix = SegmentMix([AudioSegment(str(path), source_start=start, duration=duration)], duration, 44100)
    assert np.array_equal(np.concatenate(list(mix.blocks()), axis=1), whole)
    linear = _one_read(path)  # and the range's head is right too (no seek glitch)
    first = decode.seconds_to_sample(start, 44100)
    assert np.abs(whole - linear[first:first + whole.shape[1]].T).max() <= 1e-6


def test_decoding_still_works_if_soundfile_drops_the_internals_it_reads_through(tmp_path: Path, monkeypatch) -> None:
    """`_read_on` uses soundfile's libsndfile binding; a soundfile without it falls back to its public read."""
    rng = np.random.default_rng(5)
    data = (0.3 * rng.standard_normal((44100 * 2, 2))).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, data, 44100, subtype="FLOAT")
    expected = load_audio(path, Fraction(1, 2), Fraction(1)).samples
    from stillmotion.engine.audio import decode

    monkeypatch.setattr(decode, "_has_binding", lambda snd: False)
    assert np.array_equal(load_audio(path, Fraction(1, 2), Fraction(1)).samples, expected)
    assert np.array_equal(expected, data[22050:66150].T)
