"""Fixtures for the audio tests (import them: `from audio_fixtures import *`).

- `audio_cache` (autouse, session): STILLMOTION_CACHE_DIR points at a session temp folder, so tests never touch
  the user's cache and every session starts cold.
- `synthetic_music`: the tests/musicgen.py set, rendered once per session (~3 s).
- `make_audio`: writes test files in any format (soundfile for PCM, real ffmpeg for MP3 / M4A / OGG / 5.1).
- `SHARED_AUDIO`: ../shared/fixtures/audio (madmom sample, mir_eval pairs); tests using it skip when missing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "audio"

__all__ = ["SHARED_AUDIO", "audio_cache", "click_track", "ffmpeg", "make_audio", "synthetic_music", "tone"]


# Fixtures imported into several test modules are separate fixtures per module, so "session" scope alone would
# redo the work per module; these module-level memos make the cache folder and the rendered music truly shared.
_SHARED: dict[str, object] = {}


@pytest.fixture(scope="session", autouse=True)
def audio_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if "cache" not in _SHARED:
        _SHARED["cache"] = tmp_path_factory.mktemp("stillmotion-cache")
    folder = _SHARED["cache"]
    assert isinstance(folder, Path)
    old = os.environ.get("STILLMOTION_CACHE_DIR")
    os.environ["STILLMOTION_CACHE_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if old is None:
            os.environ.pop("STILLMOTION_CACHE_DIR", None)
        else:
            os.environ["STILLMOTION_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def synthetic_music(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    if "music" not in _SHARED:
        from musicgen import render_set

        _SHARED["music"] = render_set(tmp_path_factory.mktemp("musicgen"))
    music = _SHARED["music"]
    assert isinstance(music, dict)
    return music


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True, capture_output=True, timeout=120)


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    """(n, channels) sine; channel c is at freq × (c + 1) so channels can be told apart."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([amp * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)], axis=1)


def click_track(seconds: float, rate: int, clicks: list[float], channels: int = 1) -> np.ndarray:
    """(n, channels) silence with short decaying 2 kHz clicks at the given times."""
    data = np.zeros((int(round(seconds * rate)), channels))
    length = int(0.01 * rate)
    burst = 0.8 * np.sin(2 * np.pi * 2000 * np.arange(length) / rate) * np.exp(-np.arange(length) / (0.002 * rate))
    for t in clicks:
        i = int(round(t * rate))
        data[i:i + length] += burst[: max(0, min(length, data.shape[0] - i)), None]
    return data


@pytest.fixture
def make_audio(tmp_path: Path) -> Callable[..., Path]:
    """make_audio(name, data (n, ch), rate, subtype=None) → path; the suffix picks the format.

    .wav/.flac/.aiff/.ogg go through soundfile; .mp3/.m4a are encoded by ffmpeg from a temporary WAV.
    """

    def make(name: str, data: np.ndarray, rate: int, subtype: str | None = None) -> Path:
        path = tmp_path / name
        suffix = path.suffix.lower()
        if suffix in (".mp3", ".m4a", ".opus"):
            wav = tmp_path / f"_{path.stem}_src.wav"
            sf.write(wav, data, rate, subtype="PCM_16")
            codec = {".mp3": ["-c:a", "libmp3lame", "-b:a", "192k"], ".m4a": ["-c:a", "aac", "-b:a", "192k"],
                     ".opus": ["-c:a", "libopus"]}[suffix]
            ffmpeg("-i", str(wav), *codec, str(path))
        else:
            sf.write(path, data, rate, subtype=subtype)
        return path

    return make
