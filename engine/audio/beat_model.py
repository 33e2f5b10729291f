"""Beat / downbeat activations from a small trained network, evaluated in plain numpy.

Why a network: the DSP tracker (beats.py) reads periodicity from onsets, so songs whose strongest onsets are not
the beat (reggae skanks, arpeggios, trap hats, bowed strings) get the wrong level or phase. A temporal
convolutional network (dilated 1-D convolutions over ~6 s of log-mel frames, the design of Böck & Davies' TCN
beat trackers) learns which onsets are beats and which beats start bars. It was trained here, at development
time only, on songs of tests/musicgen.py's development seed range (bench/train_beat_model.py); the weights are
ours (Apache-2.0, like the code) and ship in resources/beat_model.safetensors.

The forward pass sums in a fixed order with elementwise operations (_conv), so activations, and the beats decoded from
them, are bit-identical for any thread count. torch is never imported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import StillMotionError
from ..resources import resources_dir

#: The shipped weights, in resources/ (trained by bench/train_beat_model.py; see docs/audio.md).
WEIGHTS_NAME = "beat_model.safetensors"
#: Kernel size of the dilated blocks; block i has dilation 2**i.
KERNEL = 5
#: Tempo range of the tempo head's bins (BPM), log-spaced.
TEMPO_HEAD_RANGE = (40.0, 250.0)


@dataclass(frozen=True)
class BeatModel:
    """Weights of the network (numpy float32) and its input normalisation."""

    mean: np.ndarray            # (features,)
    scale: np.ndarray           # (features,)
    input_weight: np.ndarray    # (channels, features, 1)
    input_bias: np.ndarray
    blocks: tuple[tuple[np.ndarray, np.ndarray], ...]  # (channels, channels, KERNEL), (channels,) per block
    output_weight: np.ndarray   # (2, channels, 1)
    output_bias: np.ndarray
    info: dict
    tempo_weight: np.ndarray | None = None  # (bins, channels, 1): per-frame tempo logits (None: no tempo head)
    tempo_bias: np.ndarray | None = None
    tempo_bpms: np.ndarray | None = None    # (bins,) BPM of each tempo bin


@dataclass(frozen=True)
class Activations:
    """The network's outputs per frame: beat and downbeat probabilities, and (with a tempo head) the log
    probability of each tempo bin (bins, frames) with the bins' BPM."""

    beat: np.ndarray
    down: np.ndarray
    tempo_log_probs: np.ndarray | None = None
    tempo_bpms: np.ndarray | None = None


def tempo_bins(per_octave: int) -> np.ndarray:
    """BPM of the tempo head's bins: TEMPO_HEAD_RANGE log-spaced at `per_octave` bins per octave."""
    lo, hi = TEMPO_HEAD_RANGE
    return np.geomspace(lo, hi, int(round(per_octave * np.log2(hi / lo))) + 1)


def model_input(log_mel: np.ndarray) -> np.ndarray:
    """Network input (2 × bands, frames): the log-mel frames and their positive change from the previous frame."""
    diff = np.zeros_like(log_mel)
    diff[:, 1:] = np.maximum(0.0, log_mel[:, 1:] - log_mel[:, :-1])
    return np.concatenate([log_mel, diff], axis=0).astype(np.float32)


def tensors_to_model(tensors: dict[str, np.ndarray], info: dict) -> BeatModel:
    """A BeatModel from the flat tensor names the training script writes."""
    count = sum(1 for name in tensors if name.startswith("block") and name.endswith(".weight"))
    f32 = lambda name: np.ascontiguousarray(tensors[name], dtype=np.float32)  # noqa: E731
    head = "tempo.weight" in tensors
    return BeatModel(
        mean=f32("input.mean"), scale=f32("input.scale"),
        input_weight=f32("input.weight"), input_bias=f32("input.bias"),
        blocks=tuple((f32(f"block{i}.weight"), f32(f"block{i}.bias")) for i in range(count)),
        output_weight=f32("output.weight"), output_bias=f32("output.bias"), info=info,
        tempo_weight=f32("tempo.weight") if head else None, tempo_bias=f32("tempo.bias") if head else None,
        tempo_bpms=f32("tempo.bpms") if head else None,
    )


def weights_file() -> Path | None:
    """Where the shipped weights are (None without a resources/ folder)."""
    try:
        return resources_dir() / WEIGHTS_NAME
    except StillMotionError:
        return None


@lru_cache(maxsize=2)
def load_model(path: str | None = None) -> BeatModel | None:
    """The shipped model (or the one at `path`), or None when its file is absent (the DSP tracker is used then)."""
    file = Path(path) if path else weights_file()
    if file is None or not file.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(file), framework="numpy") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        info = json.loads((handle.metadata() or {}).get("info", "{}"))
    return tensors_to_model(tensors, info)


@lru_cache(maxsize=1)
def weights_digest() -> str:
    """blake2b of the shipped weights file ('' when absent): part of the analysis cache key."""
    import hashlib

    file = weights_file()
    return hashlib.blake2b(file.read_bytes(), digest_size=16).hexdigest() if file and file.is_file() else ""


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, dilation: int = 1) -> np.ndarray:
    """'Same' 1-D convolution (channels_in, frames) → (channels_out, frames), zero padded.

    Accumulated tap by tap and input channel by input channel in a fixed order with elementwise float32
    operations (no BLAS, whose summation order follows the thread count): the same bits on any machine, and
    ~6× faster than reproducible.matmul for these dense, narrow layers.
    """
    c_out, c_in, kernel = weight.shape
    frames = x.shape[1]
    pad = dilation * (kernel - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad))) if pad else x
    out = np.empty((c_out, frames), np.float32)
    out[:] = bias[:, None]
    product = np.empty_like(out)
    for k in range(kernel):
        tap = padded[:, k * dilation:k * dilation + frames]
        for c in range(c_in):
            np.multiply(weight[:, c, k, None], tap[c], out=product)
            out += product
    return out


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))).astype(np.float32)


def forward(model: BeatModel, features: np.ndarray) -> Activations:
    """All outputs of the network for model_input features (frames at the envelopes' hop rate)."""
    x = ((features - model.mean[:, None]) / model.scale[:, None]).astype(np.float32)
    h = _elu(_conv(x, model.input_weight, model.input_bias))
    for i, (weight, bias) in enumerate(model.blocks):
        h = h + _elu(_conv(h, weight, bias, dilation=2 ** i))
    logits = _conv(h, model.output_weight, model.output_bias)
    probs = (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)
    if model.tempo_weight is None:
        return Activations(probs[0], probs[1])
    tempo = _conv(h, model.tempo_weight, model.tempo_bias)
    tempo = tempo - tempo.max(axis=0, keepdims=True)
    tempo = tempo - np.log(np.exp(tempo).sum(axis=0, keepdims=True))
    return Activations(probs[0], probs[1], tempo.astype(np.float32), model.tempo_bpms)


def activations(model: BeatModel, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beat, downbeat) probabilities per frame, each (frames,) in 0..1, from model_input features."""
    out = forward(model, features)
    return out.beat, out.down
