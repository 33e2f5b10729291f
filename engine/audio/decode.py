"""Decode audio ranges sample-exactly and mix a clip's segments.

soundfile (libsndfile) reads WAV/AIFF/FLAC/OGG/MP3 fast and seeks exactly; PyAV (ffmpeg) takes whatever libsndfile
cannot (M4A/AAC, Opus, video containers). Ranges are exact `Fraction` seconds; a range past the end is silence so a
timeline clip longer than its music still renders.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import BadInputError
from ..rates import round_half_up
from ..request import AudioSegment

#: Sample rates accepted from files (Hz).
MIN_RATE, MAX_RATE = 8000, 192000
#: ITU-R BS.775 downmix weight for centre and surround channels.
_ITU = float(np.sqrt(0.5))
#: Seek with PyAV only when the range starts this far in (s); before that decoding from 0 is as cheap.
_SEEK_AFTER = 4.0


@dataclass
class AudioClip:
    """Decoded audio: float32 samples shaped (channels, n)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])


@dataclass
class AudioInfo:
    """What a file holds, without decoding it (frame count may be an estimate for compressed streams)."""

    sample_rate: int
    channels: int
    frames: int
    codec: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _check_file(path: str | os.PathLike[str]) -> str:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise BadInputError(f"audio file {name} does not exist")
    if os.path.isdir(name):
        raise BadInputError(f"audio file {name} is a folder")
    if os.path.getsize(name) == 0:
        raise BadInputError(f"audio file {name} is empty")
    if not os.access(name, os.R_OK):
        raise BadInputError(f"audio file {name} is not readable")
    return name


def _check_rate(name: str, rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise BadInputError(f"audio file {name} has sample rate {rate} Hz (supported: {MIN_RATE}-{MAX_RATE})")


def _open_soundfile(name: str):  # -> soundfile.SoundFile | None
    import soundfile as sf

    try:
        return sf.SoundFile(name)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channel count and length of an audio file."""
    name = _check_file(path)
    snd = _open_soundfile(name)
    if snd is not None:
        with snd:
            info = AudioInfo(int(snd.samplerate), int(snd.channels), int(snd.frames), str(snd.format).lower())
        _check_rate(name, info.sample_rate)
        return info
    import av

    try:
        with av.open(name) as container:
            stream = _audio_stream(container, name)
            rate = int(stream.codec_context.sample_rate)
            _check_rate(name, rate)
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                seconds = 0.0
            return AudioInfo(rate, int(stream.codec_context.channels), int(round(seconds * rate)),
                             stream.codec_context.name)
    except av.FFmpegError:
        raise BadInputError(f"audio file {name} is not a readable audio file") from None


def _audio_stream(container, name: str):
    if not container.streams.audio:
        raise BadInputError(f"{name} has no audio stream (not an audio file?)")
    return container.streams.audio[0]


def seconds_to_sample(seconds: Fraction, sample_rate: int) -> int:
    """Sample index of an exact time: floor(t × rate), the convention of FrameGrid.sample_bounds.

    With floor everywhere, consecutive ranges [a, b), [b, c) tile the samples exactly (no gap, no overlap) and a
    range starting at frame k's start begins exactly at `grid.sample_bounds(rate)[k]`.
    """
    return math.floor(Fraction(seconds) * sample_rate)


def range_samples(start: Fraction, duration: Fraction, sample_rate: int) -> tuple[int, int]:
    """(first sample, sample count) of the time range [start, start + duration)."""
    first = seconds_to_sample(start, sample_rate)
    return first, max(0, seconds_to_sample(Fraction(start) + Fraction(duration), sample_rate) - first)


def _frames_range(start: Fraction, duration: Fraction | None, rate: int, total: int | None) -> tuple[int, int]:
    """First sample and sample count of [start, start + duration) at `rate` (to `total` when open-ended)."""
    if duration is not None:
        return range_samples(start, duration, rate)
    first = seconds_to_sample(start, rate)
    return first, max(0, (total or 0) - first)


_SIZE_MISMATCH = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _check_not_truncated(snd, name: str) -> None:
    """libsndfile quietly shortens a WAV / AIFF whose data chunk is cut off; its header log tells.

    Streamed WAVs (size 0 or 0xFFFFFFFF because the writer could not seek back) are not truncation.
    """
    for declared, actual in _SIZE_MISMATCH.findall(snd.extra_info or ""):
        declared_n, actual_n = int(declared), int(actual)
        if 0 < declared_n < 0xFFFFFF00 and declared_n > actual_n + 8:
            raise BadInputError(f"audio file {name} is truncated ({actual_n} of {declared_n} data bytes present)")


#: Compressed ranges (MP3, Ogg) at least this long are decoded as two halves on two threads: libsndfile's
#: decoders run without the GIL, so a 3-minute MP3 takes ~0.16 s instead of ~0.27 s on two cores.
SPLIT_DECODE_SECONDS = 30
#: A seek into a compressed file lands this many frames early and decodes on to the target: right after a seek,
#: libsndfile's VBR MP3 output is off for ~5000 samples (0.1 s of wrong sound at the head of a range).
SEEK_PREROLL = 65536
#: The second half's decoder starts SEAM_CHECK frames before the seam, and those must equal what the first decoder
#: read there, sample for sample; if not, one fresh decoder reads the whole range (a 32-kb/s MP3 at 22 kHz decodes
#: 1 ulp off for good after a seek: the check catches it). The result is always exactly the one decoder's.
SEAM_CHECK = 8192


def _read_on(snd, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """Up to `count` frames continuing exactly where the decoder stopped, (frames, channels) float32, into `out`
    (C-contiguous, ≥ `count` rows) when given.

    `SoundFile.read` seeks back to where it already is after every read (to keep its own position): harmless for
    PCM, but each seek restarts an MP3 decoder, and libsndfile's VBR MP3 output is then off for ~5000 samples —
    a click in every block of a streamed MP3. This calls libsndfile's read through soundfile's own binding (the
    same call `read` makes, minus the seek); `_position` first.
    """
    import soundfile as sf

    if out is None:
        out = np.empty((count, snd.channels), np.float32)
    assert out.flags.c_contiguous and out.dtype == np.float32 and out.shape[0] >= count
    if not _has_binding(snd):  # a soundfile without these internals: its public read (the seek it adds is the MP3 issue)
        return snd.read(count, dtype="float32", always_2d=True, out=out[:count])
    done = sf._snd.sf_readf_float(snd._file, sf._ffi.cast("float *", out.ctypes.data), count)
    sf._error_check(snd._errorcode)
    return out[:done]


def _has_binding(snd) -> bool:
    """Whether soundfile still has the internals `_read_on` calls libsndfile through."""
    import soundfile as sf

    return all(hasattr(sf, name) for name in ("_snd", "_ffi", "_error_check")) and hasattr(snd, "_file")


def _position(snd, frame: int) -> None:
    """Put `snd` at `frame` so that `_read_on` then gives what a decode from the start gives there (compressed
    files: from SEEK_PREROLL frames earlier, decoded and dropped)."""
    start = max(0, frame - SEEK_PREROLL) if _is_compressed(snd) else frame
    # `tell` is the seek `SoundFile.read` starts with: from a freshly opened file, the samples then match a one-go
    # `read` exactly (a seek to 0 instead makes libsndfile decode a low-rate MP3 1 ulp differently)
    if snd.tell() != start:
        snd.seek(start)
    if frame > start:
        _read_on(snd, frame - start)


def _read_from(snd, frame: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """Up to `count` frames from `frame`, (frames, channels) float32 (into `out` when given)."""
    _position(snd, frame)
    return _read_on(snd, count, out)


def _read_halves(snd, name: str, lo: int, hi: int, whole: np.ndarray) -> int:
    """Frames [lo, hi) of the open compressed file `snd` into `whole` ((hi - lo, channels), C-contiguous): the
    second half decoded by its own decoder on another thread and checked at the seam (SEAM_CHECK), the first half
    here. Returns the frames read."""
    seam = lo + (hi - lo) // 2
    second: list[tuple[np.ndarray, int]] = []

    def decode_second() -> None:
        try:
            with _open_soundfile(name) as other:
                before = _read_from(other, seam - SEAM_CHECK, SEAM_CHECK)
                second.append((before, _read_on(other, hi - seam, whole[seam - lo:]).shape[0]))
        except Exception:  # noqa: BLE001 - any failure there: one decoder reads the range, and reports it if real
            pass

    worker = threading.Thread(target=decode_second, name="stillmotion-decode", daemon=True)
    worker.start()
    try:
        done = _read_from(snd, lo, seam - lo, whole[: seam - lo]).shape[0]
    finally:
        worker.join()
    if done < seam - lo:  # the file ended early (an estimated length): nothing after it to join
        return done
    if second and np.array_equal(second[0][0], whole[seam - lo - SEAM_CHECK: seam - lo]):
        return seam - lo + second[0][1]
    # A fresh decoder: the open one's state after its read differs (even rewound to 0, a low-rate MP3 then
    # decodes 1 ulp off for the rest of the file).
    with _open_soundfile(name) as fresh:
        return _read_from(fresh, lo, hi - lo, whole).shape[0]


def _read_soundfile(snd, name: str, start: Fraction, duration: Fraction | None) -> AudioClip:
    """The range as libsndfile decodes it. The samples are read straight into a frame-major array (libsndfile's
    interleaved order) and handed out as its (channels, n) transposed view: mixing to mono and resampling work on
    that view, and only their smaller result is made contiguous (`load_audio`), not the whole multichannel file."""
    import soundfile as sf

    rate, total = int(snd.samplerate), int(snd.frames)
    _check_rate(name, rate)
    _check_not_truncated(snd, name)
    first, count = _frames_range(start, duration, rate, total)
    frames = np.zeros((count, snd.channels), dtype=np.float32)
    lo, hi = max(first, 0), min(first + count, total)
    if hi > lo:
        target = frames[lo - first:hi - first]
        try:
            if _is_compressed(snd) and hi - lo >= SPLIT_DECODE_SECONDS * rate:
                done = _read_halves(snd, name, lo, hi, target)
            else:
                done = _read_from(snd, lo, hi - lo, target).shape[0]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise BadInputError(f"audio file {name} is corrupt or truncated ({exc})") from None
        if done < hi - lo and not _is_compressed(snd):
            raise BadInputError(f"audio file {name} is truncated ({done + lo} of {total} samples)")
    return AudioClip(frames.T, rate)


def _is_compressed(snd) -> bool:
    """Compressed formats report an estimated length; a short read there is not corruption."""
    return str(snd.format).upper() in {"MP3", "MPEG", "OGG"}  # libsndfile names MP3 "MP3" (older: "MPEG")


def _frame_to_array(frame) -> np.ndarray:
    """A PyAV AudioFrame as float32 (channels, n), whatever its sample format."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return (arr / 2147483648.0).astype(np.float32)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32, copy=False)


def _read_pyav(name: str, start: Fraction, duration: Fraction | None) -> AudioClip:
    import av

    try:
        container = av.open(name)
    except (av.FFmpegError, UnicodeDecodeError):
        raise BadInputError(f"{name} is not a readable audio file") from None
    with container:
        stream = _audio_stream(container, name)
        rate = int(stream.codec_context.sample_rate or 0)
        _check_rate(name, rate)
        channels = int(stream.codec_context.channels or 0) or 1
        first, count = _frames_range(start, duration, rate, None)
        chunks: list[tuple[int, np.ndarray]] = []
        position: int | None = None
        try:
            if first > _SEEK_AFTER * rate and stream.time_base is not None:
                target = Fraction(first, rate) - 1
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    data = _frame_to_array(frame)
                    if frame.pts is not None and frame.time_base is not None:
                        position = round_half_up(Fraction(frame.pts) * frame.time_base * rate)
                    elif position is None:
                        position = 0
                    if data.shape[0] != channels:
                        channels = data.shape[0]
                    chunks.append((position, data))
                    position += data.shape[1]
                    if duration is not None and position >= first + count:
                        break
                else:
                    continue
                break
        except av.FFmpegError as exc:
            if not chunks:
                raise BadInputError(f"audio file {name} cannot be decoded ({exc})") from None
            # A damaged tail: keep what decoded, the rest of the range is silence.
        if not chunks and first <= 0 and (duration is None or count > 0) and stream.frames not in (None, 0):
            raise BadInputError(f"audio file {name} has no decodable audio")
    if duration is None:
        end = max((pos + data.shape[1] for pos, data in chunks), default=0)
        count = max(0, end - first)
    out = np.zeros((channels, count), dtype=np.float32)
    for pos, data in chunks:
        lo, hi = max(pos, first), min(pos + data.shape[1], first + count)
        if hi > lo and data.shape[0] == channels:
            out[:, lo - first:hi - first] = data[:, lo - pos:hi - pos]
    return AudioClip(out, rate)


def resample(samples: np.ndarray, rate_in: int, rate_out: int, length: int | None = None) -> np.ndarray:
    """Band-limited resampling with soxr; `length` pins the output sample count (pad or trim)."""
    if length is None:
        length = round_half_up(Fraction(samples.shape[1] * rate_out, rate_in))
    if rate_in != rate_out and samples.shape[1] > 0:
        import soxr

        samples = np.ascontiguousarray(soxr.resample(samples.T, rate_in, rate_out, quality="HQ").T,
                                       dtype=np.float32)
    return _fit_length(samples, length)


def _fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    if samples.shape[1] == length:
        return samples
    if samples.shape[1] > length:
        return np.ascontiguousarray(samples[:, :length])
    out = np.zeros((samples.shape[0], length), dtype=np.float32)
    out[:, :samples.shape[1]] = samples
    return out


def to_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """Mix (c, n) audio to 1 or 2 channels: 5.1/7.1 with ITU-R BS.775 weights (LFE dropped), mono upmixed."""
    have = samples.shape[0]
    if have == channels:
        return samples.astype(np.float32, copy=False)
    if channels not in (1, 2):
        raise ValueError(f"can only mix to mono or stereo, not {channels} channels")
    if have == 1:
        return np.repeat(samples, channels, axis=0).astype(np.float32, copy=False)
    if have == 2:
        stereo = samples
    elif have == 3:  # L R C
        stereo = np.stack([samples[0] + _ITU * samples[2], samples[1] + _ITU * samples[2]])
    elif have == 4:  # quad: FL FR BL BR
        stereo = np.stack([samples[0] + _ITU * samples[2], samples[1] + _ITU * samples[3]])
    elif have == 5:  # 5.0: FL FR FC BL BR
        stereo = np.stack([samples[0] + _ITU * (samples[2] + samples[3]),
                           samples[1] + _ITU * (samples[2] + samples[4])])
    elif have in (6, 8):  # 5.1: FL FR FC LFE BL BR (7.1 adds SL SR)
        left = samples[0] + _ITU * (samples[2] + samples[4])
        right = samples[1] + _ITU * (samples[2] + samples[5])
        if have == 8:
            left = left + _ITU * samples[6]
            right = right + _ITU * samples[7]
        stereo = np.stack([left, right])
    else:
        mono = _mean_of_rows(samples)
        stereo = np.repeat(mono, 2, axis=0)
    if channels == 1:
        return _mean_of_rows(stereo).astype(np.float32, copy=False)
    return stereo.astype(np.float32, copy=False)


def _mean_of_rows(samples: np.ndarray) -> np.ndarray:
    """`samples.mean(axis=0, keepdims=True)`, the same bits for float32 (rows added in order, then divided), but
    fast on the transposed view `_read_soundfile` hands out, where numpy's reduction runs two elements at a time
    (176 ms for 3 minutes of stereo instead of 7)."""
    if samples.dtype != np.float32:
        return samples.mean(axis=0, keepdims=True)
    total = samples[0].copy()
    for row in samples[1:]:
        total += row
    return (total / np.float32(samples.shape[0]))[None]


def load_audio(
    path: str | os.PathLike[str],
    start: Fraction = Fraction(0),
    duration: Fraction | None = None,
    sample_rate: int | None = None,
    mono: bool = False,
) -> AudioClip:
    """Samples [start, start + duration) of `path` (to the end when duration is None), zero-padded past the end.

    Raises BadInputError (one line naming the file) for missing, non-audio or corrupt files.
    """
    name = _check_file(path)
    start = Fraction(start)
    if duration is not None:
        duration = Fraction(duration)
        if duration < 0:
            raise BadInputError(f"negative audio duration {float(duration):g} s for {name}")
    snd = _open_soundfile(name)
    if snd is not None:
        with snd:
            clip = _read_soundfile(snd, name, start, duration)
    else:
        clip = _read_pyav(name, start, duration)
    samples = clip.samples
    if mono:
        samples = to_channels(samples, 1)
    rate = clip.sample_rate
    if sample_rate is not None and sample_rate != rate:
        length = (range_samples(start, duration, sample_rate)[1] if duration is not None
                  else round_half_up(Fraction(samples.shape[1] * sample_rate, rate)))
        samples = resample(samples, rate, sample_rate, length)
        rate = sample_rate
    return AudioClip(np.ascontiguousarray(samples, dtype=np.float32), int(rate))


def render_segments(
    segments: list[AudioSegment], duration: Fraction, sample_rate: int, channels: int = 2
) -> np.ndarray:
    """The audio under one clip, float32 (channels, round(duration × rate)): segments placed and mixed, gaps silent.

    A segment plays samples [source_start, source_start + duration) of its file from `record_start` seconds
    after the clip's first frame, times `gain`; the parts before 0 or after `duration` are cut. Positions use
    floor(t × rate) like FrameGrid.sample_bounds, so a segment placed at frame k starts on sample_bounds[k].
    """
    mix = SegmentMix(segments, duration, sample_rate, channels)
    blocks = list(mix.blocks(max(1, mix.total)))
    return blocks[0] if blocks else np.zeros((channels, 0), dtype=np.float32)


#: Source frames read per step when streaming a segment (about 1.4 s at 44.1 kHz).
STREAM_BLOCK = 65536


def _stream_range(name: str, start: Fraction, duration: Fraction, sample_rate: int) -> Iterator[np.ndarray]:
    """Samples [start, start + duration) of `name` at `sample_rate`, float32 (channels, n) blocks in order,
    exactly what `load_audio(name, start, duration, sample_rate).samples` holds, in constant memory.

    Files libsndfile reads stream block by block through soxr's streaming resampler (the same filter as the
    one-shot `resample`, so the samples are identical); formats only PyAV decodes are read whole per segment.
    """
    snd = _open_soundfile(name)
    if snd is None:
        yield load_audio(name, start, duration, sample_rate).samples
        return
    import soundfile as sf

    with snd:
        rate, total = int(snd.samplerate), int(snd.frames)
        _check_rate(name, rate)
        _check_not_truncated(snd, name)
        first, count = range_samples(start, duration, rate)
        wanted = range_samples(start, duration, sample_rate)[1] if rate != sample_rate else count
        stream = None
        if rate != sample_rate and count > 0:
            import soxr

            stream = soxr.ResampleStream(rate, sample_rate, snd.channels, dtype="float32", quality="HQ")
        lo, hi = max(first, 0), min(first + count, total)
        if hi > lo:
            _position(snd, lo)
        emitted, position = 0, first
        while position < first + count:
            stop = min(first + count, position + STREAM_BLOCK)
            block = np.zeros((stop - position, snd.channels), dtype=np.float32)
            a, b = max(position, lo), min(stop, hi)
            if b > a:
                try:  # straight into the block (a short read leaves the rest of it silent)
                    done = _read_on(snd, b - a, block[a - position:b - position]).shape[0]
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise BadInputError(f"audio file {name} is corrupt or truncated ({exc})") from None
                if done < b - a and not _is_compressed(snd):
                    raise BadInputError(f"audio file {name} is truncated ({done + a} of {total} samples)")
            position = stop
            if stream is not None:
                block = stream.resample_chunk(block, last=position >= first + count)
            block = block[: max(0, wanted - emitted)]
            emitted += block.shape[0]
            if block.shape[0]:
                yield np.ascontiguousarray(block.T)
        if emitted < wanted:  # the resampler's output came up short of the exact length: silence, as `resample`
            yield np.zeros((snd.channels, wanted - emitted), dtype=np.float32)


class SegmentMix:
    """The audio under one clip, made block by block: `blocks()` yields exactly the samples `render_segments`
    returns, holding only about one block per segment at a time (a 10-minute stereo mix at 48 kHz would be 230 MB).

    `blocks()` may be called again (a QC retry re-encodes the clip): each call decodes afresh.
    """

    def __init__(self, segments: list[AudioSegment], duration: Fraction, sample_rate: int, channels: int = 2) -> None:
        self.sample_rate, self.channels = sample_rate, channels
        self.total = round_half_up(Fraction(duration) * sample_rate)
        clip_end = Fraction(duration)
        #: (output offset, source start, visible duration, path, gain) of each audible segment
        self._placed: list[tuple[int, Fraction, Fraction, str, float]] = []
        for seg in segments:
            record = Fraction(seg.record_start)
            source = Fraction(seg.source_start)
            length = seg.duration
            if length is None:
                info = audio_info(seg.path)
                length = max(Fraction(0), Fraction(info.frames, info.sample_rate) - source)
            length = Fraction(length)
            skip = max(Fraction(0), -record)  # part that would play before the clip starts
            visible = min(record + length, clip_end) - max(record, Fraction(0))
            name = _check_file(seg.path)
            if visible <= 0:
                continue
            offset = seconds_to_sample(max(record, Fraction(0)), sample_rate)
            self._placed.append((offset, source + skip, visible, name, float(seg.gain)))

    def blocks(self, size: int = STREAM_BLOCK) -> Iterator[np.ndarray]:
        """float32 (channels, ≤ size) blocks covering [0, total) in order."""
        readers = [_Placed(offset, _stream_range(name, start, visible, self.sample_rate), gain, self.channels)
                   for offset, start, visible, name, gain in self._placed]
        for begin in range(0, self.total, size):
            end = min(self.total, begin + size)
            out = np.zeros((self.channels, end - begin), dtype=np.float32)
            for reader in readers:
                reader.add_into(out, begin, end)
            yield out


class _Placed:
    """One segment's stream placed at an output offset, read forward as the mix advances."""

    def __init__(self, offset: int, stream: Iterator[np.ndarray], gain: float, channels: int) -> None:
        self.offset, self.stream, self.gain, self.channels = offset, stream, np.float32(gain), channels
        self.pending = np.zeros((channels, 0), np.float32)
        self.position = offset  # output sample index of pending[:, 0]

    def add_into(self, out: np.ndarray, begin: int, end: int) -> None:
        if end <= self.offset:
            return
        while self.position + self.pending.shape[1] < end:
            block = next(self.stream, None)
            if block is None:
                break
            self.pending = np.concatenate([self.pending, to_channels(block, self.channels)], axis=1)
        lo, hi = max(begin, self.position), min(end, self.position + self.pending.shape[1])
        if hi > lo:
            out[:, lo - begin:hi - begin] += self.gain * self.pending[:, lo - self.position:hi - self.position]
        drop = max(0, min(end, self.position + self.pending.shape[1]) - self.position)
        self.pending = self.pending[:, drop:]
        self.position += drop
