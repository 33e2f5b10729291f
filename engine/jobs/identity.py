"""A job's identity: a content hash of everything that decides its frames and sound, and nothing else.

The still and the music are hashed by their bytes (not their paths), so a copied or moved still is the same job;
the output path is left out, so the same work asked for under another name is reused instead of rendered again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import BadInputError
from ..request import RenderRequest

#: Bumped when the meaning of the hashed fields changes, so older jobs are never mistaken for new ones.
IDENTITY_VERSION = 1
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
    }


def job_id(request: RenderRequest) -> str:
    """64 hex digits naming the work; equal for requests that would produce the same clip."""
    canonical = json.dumps(identity(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def output_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(SHA-256, size) of a rendered file, read fresh (outputs are checked, never trusted from a cache)."""
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
