"""A job's identity: a content hash of everything that decides its frames and sound, and nothing else.

The still and the music are hashed by their bytes (not their paths), so a copied or moved still is the same job;
the output path is left out, so the same work asked for under another name is reused instead of rendered again.
The code that makes the pixels is part of the identity too (`code_digest`): a clip rendered by older code is a
different job, found again only on purpose (`work_id`, `--reuse-stale`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import threading
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import BadInputError
from ..request import RenderRequest

#: Bumped when the meaning of the hashed fields changes, so older jobs are never mistaken for new ones.
IDENTITY_VERSION = 2
ENGINE_ROOT = Path(__file__).resolve().parents[1]
#: Sources (relative to engine/) that decide every engine's pixels: the pipeline, the motion schedule and preset
#: table, still fitting, music features, the encoder settings, and QC (which picks the attempt that is kept).
PIXEL_SOURCES = ("render.py", "request.py", "motion.py", "images.py", "video.py", "rates.py", "reproducible.py",
                 "backends/__init__.py", "backends/base.py", "audio/*.py", "qc/*.py")
#: What each engine adds (diffusion engines: the shared pipeline, its worker and model loading, the family).
ENGINE_SOURCES = {"procedural": ("backends/procedural.py", "backends/still_cache.py")}
DIFFUSION_SOURCES = ("backends/diffusion/*.py", "models.py")
#: Libraries whose versions change pixels (read from package metadata: nothing heavy is imported).
PIXEL_LIBRARIES = ("numpy", "scipy", "opencv-python-headless", "opencv-python", "av", "soundfile")
DIFFUSION_LIBRARIES = ("torch", "diffusers", "transformers")
#: Request options that only describe where a clip came from (they do not change a single pixel or sample).
PROVENANCE_OPTIONS = frozenset({"timeline"})
_CHUNK = 1 << 20

_digest_cache: dict[tuple[str, int, int, int], str] = {}
_digest_lock = threading.Lock()


def file_digest(path: str | os.PathLike[str], what: str = "file") -> str:
    """SHA-256 of a file's bytes, memoised per (path, size, mtime, inode) so a song under 24 stills is read once."""
    source = Path(path)
    try:
        stat = source.stat()
    except OSError:
        raise BadInputError(f"{what} {source} does not exist or cannot be read") from None
    key = (str(source.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _digest_lock:
        cached = _digest_cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    try:
        with source.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise BadInputError(f"{what} {source} cannot be read: {exc.strerror or exc}") from None
    value = digest.hexdigest()
    with _digest_lock:
        _digest_cache[key] = value
    return value


def _library_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_sources(engine: str) -> list[Path]:
    """The engine-relative source files whose code decides `engine`'s pixels."""
    patterns = PIXEL_SOURCES + ENGINE_SOURCES.get(engine, DIFFUSION_SOURCES)
    files: set[Path] = set()
    for pattern in patterns:
        files.update(p for p in ENGINE_ROOT.glob(pattern) if p.is_file())
    return sorted(files)


@functools.cache
def code_digest(engine: str) -> str:
    """SHA-256 (16 hex digits) of the code and library versions that make `engine`'s pixels; once per process.

    Hashes the sources' bytes (about 1 ms; parsing them to ignore comments cost 0.6 s), so any edit on the way to
    the pixels (engine, preset table, schedule, music features, encoder settings, QC) names new jobs."""
    digest = hashlib.sha256(f"stillmotion-code/{IDENTITY_VERSION}".encode())
    for path in code_sources(engine):
        digest.update(path.relative_to(ENGINE_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    libraries = PIXEL_LIBRARIES + (() if engine in ENGINE_SOURCES else DIFFUSION_LIBRARIES)
    for name in libraries:
        digest.update(f"{name}={_library_version(name)}\0".encode())
    return digest.hexdigest()[:16]


def identity(request: RenderRequest) -> dict[str, Any]:
    """The canonical, path-free description of the work `request` asks for."""
    data = request.to_json()
    options = {k: v for k, v in sorted(request.options.items()) if k not in PROVENANCE_OPTIONS}
    return {
        "identity": IDENTITY_VERSION,
        "stillmotion": __version__,
        "image": file_digest(request.image, "image"),
        "end_image": file_digest(request.end_image, "end image") if request.end_image else None,
        "audio": [{"sha256": file_digest(seg.path, "audio"), **{k: v for k, v in seg.to_json().items() if k != "path"}}
                  for seg in request.audio],
        "fps": data["fps"], "frames": request.frames, "width": request.width, "height": request.height,
        "engine": request.engine, "model": request.model, "preset": request.preset,
        "intensity": request.intensity, "seed": request.seed, "fit": request.fit, "anchor": request.anchor,
        "prompt": request.prompt, "negative_prompt": request.negative_prompt, "mux_audio": request.mux_audio,
        "qc": request.qc, "options": options, "container": Path(request.output).suffix.lower(),
        "code": code_digest(request.engine),
    }


def _hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def job_id(request: RenderRequest) -> str:
    """64 hex digits naming the work done by this code; equal for requests that would produce the same clip."""
    return _hash(identity(request))


def work_id(request: RenderRequest) -> str:
    """Like `job_id` but without the code digest: equal for the same work asked of any StillMotion version, so a
    clip made by other code can be found (and kept on purpose with --reuse-stale)."""
    data = identity(request)
    del data["code"]
    return _hash(data)


def frame_digests(path: str | os.PathLike[str]) -> list[str]:
    """SHA-256 of each decoded frame (RGB bytes): what "the same clip" means when containers may differ."""
    from ..video import read_frames

    return [hashlib.sha256(frame.tobytes()).hexdigest() for frame in read_frames(path)]


def compare_clips(stored: tuple[tuple[str, int], list[str]] | None, path: str | os.PathLike[str]
                  ) -> dict[str, Any]:
    """How the clip at `path` compares with `stored` ((sha256, size), frame digests) of the clip it replaced."""
    if stored is None:
        return {"stored": False, "identical_bytes": False, "identical_frames": False}
    new_frames = frame_digests(path)
    old_bytes, old_frames = stored
    differing = [i for i, (a, b) in enumerate(zip(old_frames, new_frames, strict=False)) if a != b]
    differing += list(range(min(len(old_frames), len(new_frames)), max(len(old_frames), len(new_frames))))
    return {"stored": True, "identical_bytes": output_digest(path) == old_bytes, "identical_frames": not differing,
            "frames_differing": len(differing), "first_difference": differing[0] if differing else None}


def output_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(SHA-256, size) of a rendered file, read fresh (outputs are checked, never trusted from a cache)."""
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
