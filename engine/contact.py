"""Contact sheets: a grid of frames sampled evenly from clips, for the README, docs and eyeballing results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_path
from .video import VideoInfo, read_frames


def sample_frames(path: str | Path, count: int, max_side: int = 320) -> list[np.ndarray]:
    """`count` frames spread evenly over the clip (first and last included)."""
    total = VideoInfo(path).frames
    wanted = sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(count)})
    picked = []
    for index, frame in enumerate(read_frames(path, max_side=max_side)):
        if index in wanted:
            picked.append(frame)
    return picked


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 8 + 8 * len(text)), 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(clips: Sequence[tuple[str, str | Path]], output: str | Path, frames_per_clip: int = 6,
                  tile_side: int = 240, overwrite: bool = True) -> Path:
    """One row per (label, clip): `frames_per_clip` evenly spaced frames, labelled, written as PNG."""
    rows = []
    for label, path in clips:
        frames = sample_frames(path, frames_per_clip, max_side=tile_side)
        h = max(f.shape[0] for f in frames)
        tiles = []
        for i, f in enumerate(frames):
            pad = np.zeros((h, f.shape[1], 3), np.uint8)
            pad[: f.shape[0]] = f
            tiles.append(_label(pad, f"{label} #{i}" if i == 0 else f"#{i}"))
        rows.append(np.hstack([np.pad(t, ((2, 2), (2, 2), (0, 0))) for t in tiles]))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    out = Path(output)
    with atomic_path(out, overwrite) as tmp:
        ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("PNG encoding failed")
        tmp.write_bytes(data.tobytes())
    return out
