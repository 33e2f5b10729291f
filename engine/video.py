"""Video I/O through PyAV: a streaming H.264 / ProRes writer with muxed AAC audio, and a frame reader.

Frames stream to the encoder one at a time (constant memory for any length). The writer targets a path handed
in by `atomic.atomic_path`, so a failed or cancelled render never leaves a partial file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol

import av
import cv2
import numpy as np

from .errors import BadInputError

#: Sample rate of muxed audio (AAC at 48 kHz is what every NLE expects).
AUDIO_RATE = 48000

#: Output codecs by name: (PyAV codec, pixel format, container options).
CODECS = {
    "h264": ("libx264", "yuv420p"),
    "prores4444": ("prores_ks", "yuva444p10le"),
}


#: x264 settings on top of the preset. `subme=1:partitions=none:me=dia` cuts libx264's CPU by ~45 % on our warped
#: 1080p frames at the same CRF, for +3 % bits and -0.18 dB PSNR (49.80 -> 49.61 dB, SSIM 0.9948 -> 0.9945;
#: measured on a 10-s 1080p clip, see docs/procedural.md). The encoder is half the render's CPU, so this is what
#: lets warp + encode keep up with ffmpeg's zoompan. `8x8dct=0` takes another ~10 % of the encoder's CPU for the
#: same size and -0.00..0.07 dB (three demo stills it was not chosen on; docs/procedural.md). Pass
#: `x264_params=""` for the plain preset.
X264_SPEED_PARAMS = "subme=1:partitions=none:me=dia:8x8dct=0"

#: libx264 frame threads, the same on every machine. With threads=auto (1.5 x cores) the stream depended on where
#: it was encoded: x264 records its thread count in the stream, and frame threads bound the vertical motion search
#: to rows the other threads have finished. A fixed count keeps a clip the same bytes in a panel, a worker or a Ray
#: task (decoded frames were already equal in every case measured; see docs/cluster.md for the cost).
X264_THREADS = 4

#: Full-range chroma (OpenCV's YCrCb) -> limited-range BT.601 chroma, as a one-channel lookup table.
_LIMITED_CHROMA = np.clip(np.round(128 + (np.arange(256) - 128) * 224 / 255), 0, 255).astype(np.uint8)


def rgb_to_yuv420p(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """HxWx3 (or x4, alpha ignored) uint8 RGB -> the (H*3/2)xW planar I420 array `VideoFrame.from_ndarray`
    takes for 'yuv420p': BT.601 limited range, chroma the 2x2 box average, as swscale makes it.

    Why not PyAV's `reformat`: swscale runs on one thread at ~8 ms per 1080p frame; this is ~4 ms. OpenCV's
    own RGB->I420 point-samples chroma (aliasing, ~1.5 dB worse on detailed stills), so only its luma is used
    and chroma comes from a 2x2 area-averaged copy, each plane range-mapped in place (a three-channel LUT over
    the half-size image cost 1.4-1.9 ms of the 5.5). `out` (uint8, (H*3/2)xW) is filled and returned if given.
    """
    height, width = frame.shape[:2]
    code = cv2.COLOR_RGBA2YUV_I420 if frame.shape[2] == 4 else cv2.COLOR_RGB2YUV_I420
    planar = cv2.cvtColor(frame, code, dst=out)
    half = cv2.resize(frame[..., :3] if frame.shape[2] == 4 else frame, (width // 2, height // 2),
                      interpolation=cv2.INTER_AREA)
    ycrcb = cv2.cvtColor(half, cv2.COLOR_RGB2YCrCb)
    flat = planar.reshape(-1)
    luma, quarter = width * height, (width // 2) * (height // 2)
    for channel, start in ((2, luma), (1, luma + quarter)):  # Cb, then Cr
        plane = flat[start:start + quarter].reshape(height // 2, width // 2)
        cv2.extractChannel(ycrcb, channel, dst=plane)
        cv2.LUT(plane, _LIMITED_CHROMA, dst=plane)
    return planar


def yuv420p_frame(planar: np.ndarray, width: int, height: int,
                  reuse: av.VideoFrame | None = None) -> av.VideoFrame:
    """A 'yuv420p' VideoFrame holding `planar` (as `rgb_to_yuv420p` makes it), copied plane by plane into the
    frame's own buffers (any line padding kept). `reuse`, a frame this function made before, is refilled once
    nothing else holds its buffers (`make_writable` copies them away otherwise): writing into fresh pages cost
    ~1 ms per 1080p frame, `from_ndarray` ~0.7 ms more."""
    video_frame = reuse if reuse is not None else av.VideoFrame(width, height, "yuv420p")
    if reuse is not None:
        video_frame.make_writable()
    flat = planar.reshape(-1)
    start = 0
    for plane, (rows, cols) in zip(video_frame.planes, ((height, width), (height // 2, width // 2),
                                                        (height // 2, width // 2)), strict=True):
        view = np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)[:, :cols]
        np.copyto(view, flat[start:start + rows * cols].reshape(rows, cols))
        start += rows * cols
    return video_frame


class VideoWriter:
    """Encode RGB(A) uint8 frames at an exact rational rate, interleaving the clip's audio as it goes.

    `key_frames` are encoded near-losslessly: the anchor frame must reproduce the still (≥ 40 dB PSNR).
    `x264_params` (None: `X264_SPEED_PARAMS`) are extra libx264 options, "key=value:key=value".
    `audio` is a whole (channels, n) array or an `AudioSource` read as the frames go (constant memory).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        audio: np.ndarray | AudioSource | None = None,
        codec: str = "h264",
        crf: int = 16,
        preset: str = "veryfast",
        threads: int = 0,
        metadata: dict[str, str] | None = None,
        key_frames: tuple[int, ...] = (),
        x264_params: str | None = None,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs even dimensions, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, Fraction(fps)
        codec_name, pix_fmt = CODECS[codec]
        container_format = "mov" if codec == "prores4444" else None
        # The movie timescale carries the edit list; ffmpeg's default (1000) rounds NTSC durations to the
        # millisecond, so use one that is exact for both the frame rate and the audio rate.
        timescale = math.lcm(self.fps.numerator, AUDIO_RATE)
        options = {"movie_timescale": str(timescale)} if timescale < 2**31 else {}
        self._container = av.open(str(self.path), mode="w", format=container_format, options=options)
        for key, value in (metadata or {}).items():
            self._container.metadata[key] = value
        self._video = self._container.add_stream(codec_name, rate=self.fps)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = pix_fmt
        self._video.time_base = 1 / self.fps
        self._video.codec_context.time_base = 1 / self.fps
        if codec == "h264":
            options = {"crf": str(crf), "preset": preset}
            params = [X264_SPEED_PARAMS if x264_params is None else x264_params]
            if key_frames:  # near-lossless quantiser on frames that must match the still (the anchor)
                params.append("zones=" + "/".join(f"{k},{k},q=2" for k in sorted(set(key_frames))))
            if any(params):
                options["x264-params"] = ":".join(p for p in params if p)
            self._video.options = options
            # PyAV defaults to slice threads, which libx264 maps to sliced threading (less efficient, and the
            # stream differs from the ffmpeg CLI's); frame threads are x264's own default.
            self._video.codec_context.thread_type = "FRAME"
        else:
            self._video.options = {"profile": "4444"}
        if codec == "h264":  # see X264_THREADS: the stream must not depend on the machine's core count
            threads = threads or X264_THREADS
        if threads:
            self._video.codec_context.thread_count = threads
        self._has_alpha = codec == "prores4444"
        self._planar: np.ndarray | None = None
        self._yuv_frame: av.VideoFrame | None = None
        self._frames = 0
        self._audio_stream = None
        self._audio: Iterator[np.ndarray] | None = None
        self._audio_total = 0
        self._audio_pending = np.zeros((0, 0), np.float32)
        self._audio_written = 0
        if isinstance(audio, np.ndarray):
            audio = _ArrayAudio(audio) if audio.size else None
        if audio is not None and audio.total:
            channels = audio.channels
            layout = "mono" if channels == 1 else "stereo"
            if channels > 2:
                raise ValueError("mix audio down to stereo before writing")
            self._audio = iter(audio.blocks())
            self._audio_total = audio.total
            self._audio_pending = np.zeros((channels, 0), np.float32)
            self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE, layout=layout)
            self._audio_stream.bit_rate = 192_000

    @property
    def frames_written(self) -> int:
        return self._frames

    def write(self, frame: np.ndarray) -> None:
        """Encode one HxWx3 (or HxWx4 for alpha codecs) uint8 RGB frame."""
        if frame.dtype != np.uint8 or frame.shape[0] != self.height or frame.shape[1] != self.width:
            raise ValueError(f"expected {self.height}x{self.width} uint8 frame, got {frame.shape} {frame.dtype}")
        if self._has_alpha:
            if frame.shape[2] == 3:
                frame = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgba")
        else:
            # the frame gets a copy, so one conversion buffer serves every frame
            self._planar = rgb_to_yuv420p(np.ascontiguousarray(frame), self._planar)
            vf = self._yuv_frame = yuv420p_frame(self._planar, self.width, self.height, self._yuv_frame)
        vf.pts = self._frames
        vf.time_base = 1 / self.fps
        for packet in self._video.encode(vf):
            self._container.mux(packet)
        self._frames += 1
        self._write_audio_until(self._frames)

    def _write_audio_until(self, frames: int, final: bool = False) -> None:
        if self._audio is None or self._audio_stream is None:
            return
        total = self._audio_total
        end = total if final else min(total, int(Fraction(frames) / self.fps * AUDIO_RATE))
        chunk = 4096
        while self._audio_written < end:
            stop = min(end, self._audio_written + chunk)
            data = self._take_audio(stop - self._audio_written)
            stop = self._audio_written + data.shape[1]
            if not data.shape[1]:  # the source ended early: the container simply holds less audio
                self._audio_total = self._audio_written
                return
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data), format="fltp", layout=self._audio_stream.layout.name
            )
            af.sample_rate = AUDIO_RATE
            af.pts = self._audio_written
            af.time_base = Fraction(1, AUDIO_RATE)
            for packet in self._audio_stream.encode(af):
                self._container.mux(packet)
            self._audio_written = stop

    def _take_audio(self, count: int) -> np.ndarray:
        """The next `count` samples of the source (fewer only at its end), pulling blocks as needed."""
        assert self._audio is not None
        while self._audio_pending.shape[1] < count:
            block = next(self._audio, None)
            if block is None:
                break
            self._audio_pending = np.concatenate([self._audio_pending, np.asarray(block, np.float32)], axis=1)
        data, self._audio_pending = self._audio_pending[:, :count], self._audio_pending[:, count:]
        return data

    def close(self) -> None:
        """Flush encoders and finish the container."""
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio_stream is not None:
            self._write_audio_until(self._frames, final=True)
            for packet in self._audio_stream.encode(None):
                self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        """Close without flushing (the caller deletes the temp file)."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - a broken container is being thrown away anyway
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AudioSource(Protocol):
    """Audio the writer pulls as it goes: `channels`, `total` samples at AUDIO_RATE, and float32
    (channels, n) `blocks()` in order (`audio.SegmentMix` streams a clip's mix this way)."""

    channels: int
    total: int

    def blocks(self) -> Iterator[np.ndarray]: ...


class _ArrayAudio:
    """A whole (channels, n) array as an AudioSource."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.channels, self.total = self.samples.shape

    def blocks(self) -> Iterator[np.ndarray]:
        yield self.samples


class VideoInfo:
    """What a video file holds: size, exact rate, frame count, and audio duration if any."""

    def __init__(self, path: str | Path) -> None:
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise BadInputError(f"{path} has no video stream")
                stream = container.streams.video[0]
                self.width = stream.codec_context.width
                self.height = stream.codec_context.height
                self.fps = Fraction(stream.average_rate or stream.guessed_rate or 0)
                self.frames = stream.frames or sum(1 for _ in container.decode(stream))
                self.duration = (
                    Fraction(stream.duration * stream.time_base) if stream.duration else Fraction(self.frames) / self.fps
                )
                self.audio_duration: float | None = None
                self.audio_rate: int | None = None
                if container.streams.audio:
                    audio = container.streams.audio[0]
                    self.audio_rate = audio.rate
                    if audio.duration:
                        self.audio_duration = float(audio.duration * audio.time_base)
        except av.error.FFmpegError as exc:
            raise BadInputError(f"{path} is not a readable video: {exc}") from None


def read_frames(path: str | Path, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video's frames as HxWx3 uint8 RGB, optionally downscaled so the long side is ≤ max_side."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, FileNotFoundError, IsADirectoryError) as exc:
        raise BadInputError(f"{path} is not a readable video: {exc}") from None
    with container:
        if not container.streams.video:
            raise BadInputError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = 1.0
        if max_side and max(width, height) > max_side:
            scale = max_side / max(width, height)
        out_w = max(2, int(round(width * scale)))
        out_h = max(2, int(round(height * scale)))
        try:
            for frame in container.decode(stream):
                if scale != 1.0:
                    yield frame.to_ndarray(format="rgb24", width=out_w, height=out_h)
                else:
                    yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise BadInputError(f"{path} is truncated or corrupt: {exc}") from None
