"""Music analysis on the timeline's frame grid: decode, mix a clip's segments, beats, onsets, bands, sections.

Importing this package points numba's JIT cache at the StillMotion cache folder before anything can import
librosa, so an optional librosa path never recompiles on every launch.
"""

from __future__ import annotations

from .cache import configure_numba_cache

configure_numba_cache()

from .analysis import ANALYSIS_VERSION, AudioAnalysis, analyze, analyze_samples  # noqa: E402
from .decode import (  # noqa: E402
    AudioClip,
    AudioInfo,
    SegmentMix,
    audio_info,
    load_audio,
    render_segments,
    to_channels,
)
from .frames import FrameFeatures, clip_features, frame_features  # noqa: E402

__all__ = [
    "ANALYSIS_VERSION",
    "AudioAnalysis",
    "AudioClip",
    "AudioInfo",
    "FrameFeatures",
    "SegmentMix",
    "analyze",
    "analyze_samples",
    "audio_info",
    "clip_features",
    "frame_features",
    "load_audio",
    "render_segments",
    "to_channels",
]
