"""Load a still the way an editor expects, and fit it to the clip's frame.

Handles what real stills are: EXIF-rotated JPEGs, CMYK, grayscale, 16-bit PNGs, palette and alpha images, huge
scans (downscaled first) and hostile files (decompression bombs are refused before any pixel is decoded).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadInputError

#: Largest image accepted, in pixels; bigger files are refused before decoding (decompression-bomb guard).
MAX_PIXELS = 150_000_000
#: Largest output side; H.264 level limits and memory make bigger frames unreasonable.
MAX_SIDE = 8192
#: Default long side of the output when the user gives no size.
DEFAULT_LONG_SIDE = 1920
#: Images are downscaled on load so no side exceeds this before fitting (saves memory on 8000x8000 scans).
WORKING_LONG_SIDE = 4096

FIT_POLICIES = ("cover", "letterbox")


@dataclass
class LoadedImage:
    """An 8-bit RGB still (and its alpha if it had one), upright."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: str
    original_size: tuple[int, int]

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _to_8bit(img: Image.Image) -> Image.Image:
    """Reduce high-bit-depth grayscale modes to 'L' by scaling, not clipping (Pillow's convert clips)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    return img


#: The one decode handed over by `load_image(..., hand_over=True)`, keyed by what identifies the file's bytes.
_handed_over: tuple[tuple, LoadedImage] | None = None


def _file_key(p: Path, max_long_side: int) -> tuple:
    info = p.stat()
    return (str(p.resolve()), info.st_ino, info.st_size, info.st_mtime_ns, max_long_side)


def load_image(path: str | Path, max_long_side: int = WORKING_LONG_SIDE, hand_over: bool = False) -> LoadedImage:
    """Decode `path` to upright 8-bit RGB (+ alpha), downscaled so its long side is ≤ max_long_side.

    `hand_over`: also keep this decode for the next `load_image` of the same, unchanged file, which takes it
    (once). The CLI validates the still while parsing and the render loads it again; the second decode of a
    JPEG was ~15 ms of a 1-frame render. The caller that hands over must not modify the arrays.
    """
    global _handed_over
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"image {p} does not exist")
    if p.is_dir():
        raise BadInputError(f"image {p} is a folder, not an image file")
    key = _file_key(p, max_long_side) if hand_over or _handed_over is not None else None
    if _handed_over is not None and _handed_over[0] == key:
        kept, _handed_over = _handed_over[1], None
        return replace(kept, path=str(p))
    loaded = _decode(p, max_long_side)
    if hand_over:  # keyed by the file as it was before the decode: a save during it is not taken as this one
        _handed_over = (key, loaded)
    return loaded


def _decode(p: Path, max_long_side: int) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                width, height = img.size
                if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                    raise BadInputError(
                        f"image {p} claims {width}x{height} pixels, over the {MAX_PIXELS // 1_000_000} MP limit "
                        "(refused as a possible decompression bomb)"
                    )
                if max(width, height) > max_long_side * 2 and img.format == "JPEG":
                    img.draft("RGB", (max_long_side, max_long_side))  # decode JPEG at reduced scale directly
                img.load()
                img = ImageOps.exif_transpose(img) or img
                img = _to_8bit(img)
                has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
                img = img.convert("RGBA" if has_alpha else "RGB")
                arr = np.asarray(img)
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(f"image {p} is too large to decode safely (refused as a decompression bomb)") from None
    except UnidentifiedImageError:
        raise BadInputError(f"{p} is not an image Pillow can read") from None
    except PermissionError:
        raise BadInputError(f"image {p} is not readable (permission denied)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"image {p} is truncated or corrupt ({exc})") from None
    rgb = np.ascontiguousarray(arr[:, :, :3])
    alpha = np.ascontiguousarray(arr[:, :, 3]) if arr.shape[2] == 4 else None
    long_side = max(rgb.shape[:2])
    if long_side > max_long_side:
        scale = max_long_side / long_side
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return LoadedImage(rgb=rgb, alpha=alpha, path=str(p), original_size=(width, height))


def even(value: float) -> int:
    """Round to the nearest even integer ≥ 2 (H.264 with 4:2:0 chroma needs even sides)."""
    return max(2, int(round(value / 2.0)) * 2)


def default_size(image_size: tuple[int, int], width: int | None = None, height: int | None = None,
                 long_side: int = DEFAULT_LONG_SIDE) -> tuple[int, int]:
    """Output size: the image's own, capped at `long_side`, rounded to even; one given side keeps the aspect."""
    iw, ih = image_size
    for name, value in (("width", width), ("height", height)):
        if value is not None and not (0 < value <= MAX_SIDE):
            raise BadInputError(f"{name} {value} is out of range (1..{MAX_SIDE})")
    if width and height:
        return even(width), even(height)
    if width:
        return even(width), even(width * ih / iw)
    if height:
        return even(height * iw / ih), even(height)
    scale = min(1.0, long_side / max(iw, ih))
    return even(iw * scale), even(ih * scale)


def fit_image(rgb: np.ndarray, width: int, height: int, policy: str = "cover",
              alpha: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Fit to width×height. 'cover' scales to fill and centre-crops; 'letterbox' fits inside on black bars."""
    if policy not in FIT_POLICIES:
        raise BadInputError(f"fit policy {policy!r} is not one of {', '.join(FIT_POLICIES)}")
    ih, iw = rgb.shape[:2]
    scale = max(width / iw, height / ih) if policy == "cover" else min(width / iw, height / ih)
    sw, sh = max(1, round(iw * scale)), max(1, round(ih * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(rgb, (sw, sh), interpolation=interp)
    scaled_alpha = cv2.resize(alpha, (sw, sh), interpolation=interp) if alpha is not None else None
    if policy == "cover":
        x0, y0 = (sw - width) // 2, (sh - height) // 2
        out = scaled[y0:y0 + height, x0:x0 + width]
        out_alpha = scaled_alpha[y0:y0 + height, x0:x0 + width] if scaled_alpha is not None else None
    else:
        out = np.zeros((height, width, 3), np.uint8)
        x0, y0 = (width - sw) // 2, (height - sh) // 2
        out[y0:y0 + sh, x0:x0 + sw] = scaled
        out_alpha = None
        if scaled_alpha is not None:
            out_alpha = np.zeros((height, width), np.uint8)
            out_alpha[y0:y0 + sh, x0:x0 + sw] = scaled_alpha
    return np.ascontiguousarray(out), (np.ascontiguousarray(out_alpha) if out_alpha is not None else None)
