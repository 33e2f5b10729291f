"""The procedural engine's still analysis, cached on disk by the pixels it was computed from.

Segmenting the foreground layer (GrabCut) is the largest fixed cost of a render (0.2-1.3 s on this machine's
shared cores) and depends only on the low-resolution copy of the fitted still. Editors re-render the same still
over and over (another song, preset, duration), so the analysis is stored under a hash of exactly those pixels
and a version: a hit returns bit-identical arrays, so the render stays a pure function of its request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..audio.cache import entry_key, load_entry, store_entry

#: Bump when `analyse_still` changes what it returns: old entries are then ignored.
STILL_ANALYSIS_VERSION = 1
_KIND = "stills"
_ARRAYS = ("texture", "depth", "foreground")


@dataclass
class StillAnalysis:
    """What the engine learns from the still once: where the subject is, what is textured, what is near."""

    texture: np.ndarray     # 0..1, local gradient energy (hair, foliage, water move most)
    depth: np.ndarray       # 0..1 proxy, 1 = near (salient, centred, detailed)
    foreground: np.ndarray  # 0..1 soft mask of the near layer (zeros when the still has no clear subject)
    layered: bool           # whether `foreground` is a usable layer
    center: tuple[float, float]  # subject centre in field pixels (x, y)
    radius: float            # subject size in field pixels


def _pixels_digest(small: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((small.shape, str(small.dtype))).encode())
    digest.update(np.ascontiguousarray(small).tobytes())
    return digest.hexdigest()


def cached_analysis(small: np.ndarray, analyse: Callable[[np.ndarray], StillAnalysis]) -> StillAnalysis:
    """`analyse(small)` (a StillAnalysis), from the cache when these exact pixels were analysed before."""
    key = entry_key(_pixels_digest(small), {"analysis": "procedural-still"}, STILL_ANALYSIS_VERSION)
    hit = load_entry(key, _KIND)
    if hit is not None:
        meta, arrays = hit
        shape = small.shape[:2]
        if all(name in arrays and arrays[name].shape == shape for name in _ARRAYS):
            return StillAnalysis(texture=arrays["texture"], depth=arrays["depth"], foreground=arrays["foreground"],
                                 layered=bool(meta["layered"]), center=(float(meta["cx"]), float(meta["cy"])),
                                 radius=float(meta["radius"]))
    analysis = analyse(small)
    meta = {"layered": bool(analysis.layered), "cx": analysis.center[0], "cy": analysis.center[1],
            "radius": analysis.radius}
    store_entry(key, meta, {name: getattr(analysis, name) for name in _ARRAYS}, _KIND)
    return analysis
