"""Small real media made on the fly for tests: photos from resources/demo, odd image formats, tone audio."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo"
PHOTOS = {"portrait": DEMO / "astronaut.png", "landscape": DEMO / "rocket.jpg", "product": DEMO / "coffee.png",
          "cat": DEMO / "chelsea.png"}
SHARED = ROOT.parent / "shared"


def photo(name: str = "cat") -> Path:
    return PHOTOS[name]


def write_click_track(path: Path, seconds: float, bpm: float = 120.0, sample_rate: int = 44100,
                      channels: int = 2, subtype: str | None = None) -> np.ndarray:
    """A kick-like click on every beat over a soft pad; returns the beat times."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    pad = 0.05 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    beats = np.arange(0.25, seconds, 60.0 / bpm)
    signal = pad.copy()
    for b in beats:
        i = int(b * sample_rate)
        k = np.arange(min(int(0.12 * sample_rate), n - i))
        signal[i:i + len(k)] += 0.8 * np.exp(-k / (0.02 * sample_rate)) * np.sin(2 * np.pi * 60 * k / sample_rate
                                                                                  * (1 + 2 * np.exp(-k / 400)))
    data = np.repeat(signal[:, None], channels, axis=1).astype(np.float32)
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return beats


def write_odd_images(folder: Path) -> dict[str, Path]:
    """Valid but unusual stills: tiny, huge, grayscale, 16-bit, RGBA, CMYK, EXIF-rotated."""
    folder.mkdir(parents=True, exist_ok=True)
    base = Image.open(photo("cat")).convert("RGB")
    out: dict[str, Path] = {}
    out["tiny"] = folder / "tiny.png"
    base.resize((16, 16)).save(out["tiny"])
    out["large"] = folder / "large.jpg"
    base.resize((5000, 3000)).save(out["large"], quality=80)
    out["gray"] = folder / "gray.png"
    base.convert("L").save(out["gray"])
    out["gray16"] = folder / "gray16.png"
    arr16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(arr16).save(out["gray16"])
    out["rgb16"] = folder / "rgb16.png"
    bgr16 = np.asarray(base)[:, :, ::-1].astype(np.uint16) * 257
    cv2.imwrite(str(out["rgb16"]), bgr16)
    out["rgba"] = folder / "rgba.png"
    rgba = base.convert("RGBA")
    alpha = Image.new("L", base.size, 0)
    alpha.paste(255, (40, 40, base.width - 40, base.height - 40))
    rgba.putalpha(alpha)
    rgba.save(out["rgba"])
    out["cmyk"] = folder / "cmyk.jpg"
    base.convert("CMYK").save(out["cmyk"])
    out["exif"] = folder / "exif_rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° CW to display
    base.save(out["exif"], exif=exif.tobytes())
    return out


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)
