"""Train the beat / downbeat network (engine/audio/beat_model.py) on DEVELOPMENT seeds of tests/musicgen.py only.

Development time only (torch is never imported by the engine): songs of seeds [0, --train) are rendered once to
the bench cache, their model inputs computed once through the runtime code path (spectral.compute_envelopes →
beat_model.model_input) and kept beside the render, each also in one augmented copy (EQ tilt, added noise,
gain). Seeds [--train, --train + --val) — still development seeds — give the validation loss. Fresh seeds
(bench_beats.py draws them from 1,000,000 up) are never read here.

Targets: 1 on the frame of each MIDI beat (downbeat), 0.5 on its neighbours (Böck's target widening), 0
elsewhere; binary cross-entropy on random 12-s crops. Deterministic: seeded torch / numpy, one or two threads.
Writes resources/beat_model.safetensors with its training record in the metadata.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_beat_model.py [--train 500] [--val 100] [--steps 4000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from stillmotion.engine.audio import beat_model, load_audio, spectral  # noqa: E402

CHANNELS = 16
BLOCKS = 7  # dilations 1..64: ~6 s of context at 86 frames/s
CROP = 1024
#: Weight of the tempo head's cross-entropy beside the two beat / downbeat BCE terms.
TEMPO_LOSS_WEIGHT = 0.03
#: Width (in tempo bins) of the Gaussian the tempo target is spread over (Böck et al. 2019 smooth theirs too).
TEMPO_TARGET_BINS = 0.7


def augment(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy: a random spectral tilt (mix of one-pole low / high pass), noise 15-40 dB down, gain."""
    from scipy.signal import lfilter

    pole = 0.9
    low = lfilter([1 - pole], [1, -pole], y)
    tilt = rng.uniform(-0.6, 0.6)
    out = y + tilt * (low if tilt > 0 else y - low)
    rms = float(np.sqrt(np.mean(out ** 2))) + 1e-9
    out = out + rng.normal(0.0, rms * 10 ** (-rng.uniform(15, 40) / 20), out.size)
    return (out * 10 ** (rng.uniform(-12, 0) / 20)).astype(np.float32)


def song_arrays(song: dict, variant: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model input float16, beat target, downbeat target) of one song, cached beside its render."""
    memo = Path(song["wav"]).with_suffix(f".beatnet{variant}.npz")
    if memo.is_file():
        with np.load(memo) as d:
            return d["x"], d["beat"], d["down"]
    y = load_audio(song["wav"], sample_rate=spectral.SAMPLE_RATE, mono=True).samples[0]
    if variant:
        y = augment(y, np.random.default_rng(song["seed"] * 31 + variant))
    env = spectral.compute_envelopes(y)
    x = beat_model.model_input(env.log_mel).astype(np.float16)
    n = x.shape[1]
    beat, down = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for times, target in ((song["beats"], beat), (song["downbeats"], down)):
        frames = np.round(np.asarray(times) * env.hop_rate).astype(int)
        for offset, value in ((-1, 0.5), (1, 0.5), (0, 1.0)):
            idx = frames + offset
            idx = idx[(idx >= 0) & (idx < n)]
            target[idx] = np.maximum(target[idx], value)
    np.savez(memo, x=x, beat=beat, down=down)
    return x, beat, down


def tempo_target(beat_times: np.ndarray, frames: int, hop_rate: float, bpms: np.ndarray) -> np.ndarray:
    """Per-frame target distribution over the tempo head's bins (bins, frames) from the MIDI beats: the local
    tempo (60 / inter-beat interval, interpolated between beat midpoints), spread over neighbouring bins; all
    zero outside the beats (those frames add nothing to the loss)."""
    target = np.zeros((bpms.size, frames), np.float32)
    beat_times = np.asarray(beat_times, np.float64)
    if beat_times.size < 3:
        return target
    mids = 0.5 * (beat_times[1:] + beat_times[:-1])
    local = 60.0 / np.diff(beat_times)
    t = np.arange(frames) / hop_rate
    inside = (t >= beat_times[0]) & (t <= beat_times[-1])
    position = np.interp(np.log2(np.interp(t, mids, local)), np.log2(bpms), np.arange(bpms.size))
    weights = np.exp(-0.5 * ((np.arange(bpms.size)[:, None] - position[None, :]) / TEMPO_TARGET_BINS) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    target[:, inside] = weights[:, inside]
    return target


def build_net(features: int, tempo_bins: int = 0, channels: int = CHANNELS):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input = nn.Conv1d(features, channels, 1)
            self.blocks = nn.ModuleList(nn.Conv1d(channels, channels, beat_model.KERNEL, dilation=2 ** i,
                                                  padding=2 ** i * (beat_model.KERNEL - 1) // 2)
                                        for i in range(BLOCKS))
            self.output = nn.Conv1d(channels, 2, 1)
            self.tempo = nn.Conv1d(channels, tempo_bins, 1) if tempo_bins else None
            self.drop = nn.Dropout(0.1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = nn.functional.elu(self.input(x))
            for block in self.blocks:
                h = h + self.drop(nn.functional.elu(block(h)))
            if self.tempo is None:
                return self.output(h)
            return torch.cat([self.output(h), self.tempo(h)], dim=1)

    return Net()


def batches(data: list, rng: np.random.Generator, size: int):
    """Random CROP-frame windows (zero padded when a song is shorter), forever."""
    while True:
        xs, ys = [], []
        for i in rng.integers(0, len(data), size):
            x, targets = data[i]
            n = x.shape[1]
            start = int(rng.integers(0, max(1, n - CROP)))
            cx = np.zeros((x.shape[0], CROP), np.float32)
            cy = np.zeros((targets.shape[0], CROP), np.float32)
            seg = slice(start, min(n, start + CROP))
            cx[:, :seg.stop - start] = x[:, seg]
            cy[:, :seg.stop - start] = targets[:, seg]
            xs.append(cx)
            ys.append(cy)
        yield np.stack(xs), np.stack(ys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=500, help="train on development seeds 0..N-1")
    parser.add_argument("--val", type=int, default=100, help="validate on development seeds N..N+V-1")
    parser.add_argument("--steps", type=int, default=4000, help="Adam steps (a fixed count: deterministic)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tempo-loss-weight", type=float, default=TEMPO_LOSS_WEIGHT)
    parser.add_argument("--channels", type=int, default=CHANNELS, help="width of the network")
    parser.add_argument("--tempo-bins-per-octave", type=int, default=10,
                        help="tempo head resolution (0: no tempo head, the network of ANALYSIS_VERSION 8)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "stillmotion-bench" / "musicgen"))
    parser.add_argument("--out", default=str(REPO / "resources" / beat_model.WEIGHTS_NAME))
    args = parser.parse_args()
    import torch
    from musicgen import GEN_VERSION, render_song
    from safetensors.numpy import save_file

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    train_songs = [render_song(s, Path(args.cache)) for s in range(args.train)]
    val_songs = [render_song(s, Path(args.cache)) for s in range(args.train, args.train + args.val)]
    train = [song_arrays(s, v) for s in train_songs for v in (0, 1)]
    val = [song_arrays(s, 0) for s in val_songs]
    print(f"features of {len(train)} training / {len(val)} validation sequences in {time.perf_counter() - t0:.0f} s")
    stacked = np.concatenate([x.astype(np.float32) for x, _, _ in train[::2]], axis=1)
    mean, scale = stacked.mean(axis=1), stacked.std(axis=1) + 1e-3
    del stacked
    norm = lambda x: (x.astype(np.float32) - mean[:, None]) / scale[:, None]  # noqa: E731
    bpms = beat_model.tempo_bins(args.tempo_bins_per_octave) if args.tempo_bins_per_octave else np.zeros(0)
    hop_rate = spectral.SAMPLE_RATE / spectral.HOP

    def with_targets(songs: list, arrays: list) -> list:
        out = []
        for song, (x, b, d) in zip(songs, arrays, strict=True):
            rows = [b[None], d[None]]
            if bpms.size:
                rows.append(tempo_target(np.asarray(song["beats"]), x.shape[1], hop_rate, bpms))
            out.append((norm(x), np.concatenate(rows, axis=0)))
        return out

    train = with_targets([s for s in train_songs for _ in (0, 1)], train)
    val = with_targets(val_songs, val)

    net = build_net(train[0][0].shape[0], bpms.size, args.channels)
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    bce = torch.nn.BCEWithLogitsLoss()

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = bce(out[:, :2], target[:, :2])
        if bpms.size:  # cross-entropy of the per-frame tempo distribution, over frames inside the beats only
            weight = target[:, 2:].sum(dim=1)
            ce = -(target[:, 2:] * torch.log_softmax(out[:, 2:], dim=1)).sum(dim=1)
            loss = loss + args.tempo_loss_weight * (ce * weight).sum() / weight.sum().clamp(min=1.0)
        return loss

    stream = batches(train, rng, 16)
    start = time.perf_counter()

    def val_loss() -> float:
        net.eval()
        with torch.no_grad():
            losses = [float(loss_fn(net(torch.from_numpy(x[None])), torch.from_numpy(y[None]))) for x, y in val]
        net.train()
        return float(np.mean(losses))

    for step in range(1, args.steps + 1):
        for group in opt.param_groups:  # cosine decay
            group["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * (step - 1) / args.steps))
        x, y = next(stream)
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0:
            v = val_loss()
            print(f"step {step:5d}  {time.perf_counter() - start:5.0f} s  train {loss.item():.4f}  val {v:.4f}",
                  flush=True)
    final_val = val_loss()
    state = {name: value.detach().numpy().astype(np.float32) for name, value in net.state_dict().items()}
    tensors = {"input.mean": mean.astype(np.float32), "input.scale": scale.astype(np.float32)}
    tensors["input.weight"], tensors["input.bias"] = state["input.weight"], state["input.bias"]
    for i in range(BLOCKS):
        tensors[f"block{i}.weight"], tensors[f"block{i}.bias"] = state[f"blocks.{i}.weight"], state[f"blocks.{i}.bias"]
    tensors["output.weight"], tensors["output.bias"] = state["output.weight"], state["output.bias"]
    if bpms.size:
        tensors["tempo.weight"], tensors["tempo.bias"] = state["tempo.weight"], state["tempo.bias"]
        tensors["tempo.bpms"] = bpms.astype(np.float32)
    info = {"trained_on": f"tests/musicgen.py v{GEN_VERSION} development seeds 0..{args.train - 1} (+1 augmented "
                          f"copy each); validated on {args.train}..{args.train + args.val - 1}",
            "parameters": int(params), "channels": args.channels,
            "tempo_bins_per_octave": args.tempo_bins_per_octave, "tempo_loss_weight": args.tempo_loss_weight,
            "steps": args.steps, "val_loss": round(final_val, 5), "seed": args.seed,
            "licence": "Apache-2.0 (trained by StillMotion on its own generated songs)"}
    out = Path(args.out)
    tmp = out.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"info": json.dumps(info)})
    tmp.replace(out)
    print(f"{params} parameters, {args.steps} steps, validation loss {final_val:.4f} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
