"""The one way StillMotion writes a file: to a temp file beside it, then an atomic rename.

A crash or a cancel never leaves a half-written output, and an existing output is only replaced when asked.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError, OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Fail early, before any work, when `path` cannot or must not be written."""
    out = Path(path)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists (pass --overwrite to replace it)")
    if out.is_dir():
        raise OutputError(f"{out} is a folder, not a file")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable")
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success rename it onto `path`, on failure delete it."""
    out = check_output(path, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".part{out.suffix}", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if out.exists() and not overwrite:
            raise OutputExistsError(f"{out} appeared while rendering (pass --overwrite to replace it)")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the user's usual permissions
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, overwrite: bool = False) -> Path:
    """Atomically write `data` to `path`."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, overwrite: bool = False) -> Path:
    """Atomically write UTF-8 `text` to `path`."""
    return write_bytes(path, text.encode("utf-8"), overwrite)
