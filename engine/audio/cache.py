"""Where analysis results and numba's JIT cache live.

Analysis is keyed by the file's content hash (not its name or mtime) plus the analysis parameters and a
version, so an edited file is re-analysed and a renamed one is not. numba's JIT cache is kept under the same
folder: librosa (used only by benchmarks and optional paths) would otherwise recompile for 15-30 s per process.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

#: Environment variable that overrides the cache root (tests point it at a temp folder).
CACHE_ENV = "STILLMOTION_CACHE_DIR"

_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def cache_root() -> Path:
    """The user's StillMotion cache folder (created on demand)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("stillmotion"))


def configure_numba_cache() -> None:
    """Make numba's JIT cache persistent; must run before librosa/numba are imported to take effect."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = str(cache_root() / "numba")


def file_digest(path: str | os.PathLike[str]) -> str:
    """blake2b of the file's bytes (memoised per process on path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    cached = _HASH_MEMO.get(memo_key)
    if cached is not None:
        return cached
    digest = hashlib.blake2b(digest_size=20)
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    value = digest.hexdigest()
    _HASH_MEMO[memo_key] = value
    return value


def entry_key(content_digest: str, params: dict[str, Any], version: int) -> str:
    """Cache key for one analysis: content, parameters and analysis version."""
    blob = json.dumps({"file": content_digest, "params": params, "version": version}, sort_keys=True)
    return hashlib.blake2b(blob.encode(), digest_size=20).hexdigest()


def _entry_path(key: str, kind: str = "audio") -> Path:
    return cache_root() / kind / key[:2] / f"{key}.npz"


def load_entry(key: str, kind: str = "audio") -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """(metadata, arrays) of a cached analysis, or None when absent or unreadable. `kind` names the sub-folder
    ("audio" for music analysis, "stills" for the procedural engine's still analysis)."""
    path = _entry_path(key, kind)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(bytes(arrays.pop("__meta__")).decode("utf-8"))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return meta, arrays


def store_entry(key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray], kind: str = "audio") -> None:
    """Write an entry atomically; a cache that cannot be written is skipped silently (it is only a cache)."""
    from ..atomic import atomic_path
    from ..errors import StillMotionError

    path = _entry_path(key, kind)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = dict(arrays)
        payload["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **payload)
    except (OSError, StillMotionError):
        return
