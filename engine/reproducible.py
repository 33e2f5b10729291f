"""Arithmetic whose result does not depend on where it runs: thread count, BLAS build, process.

A render must be a pure function of its request. BLAS (`a @ b`) splits a product across however many threads
OpenBLAS has (Ray workers run with OMP_NUM_THREADS=1, a panel with every core) and sums partial results in a
different order, so the last bits of a mel spectrogram changed with the thread count; through the tempo and
beat envelopes that moved every frame of a clip a little more as it went on (issue 16). The products used on the
way to pixels go through `matmul` here instead: one fixed summation order, elementwise IEEE operations only.
"""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a @ b` for 2-D arrays without BLAS, bit-identical for any thread count and any CPU: each output row is
    a fixed-order reduction of elementwise (correctly rounded) products over the row's non-zero entries of `a`.
    Skipping zeros (adding 0·x changes nothing) keeps the sparse filterbanks this is used for cheap."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs (m, k) and (k, n) arrays, got {a.shape} and {b.shape}")
    if np.iscomplexobj(b) and not np.iscomplexobj(a):  # real x complex: two real products, half the work
        return matmul(a, b.real) + 1j * matmul(a, b.imag)
    dtype = np.result_type(a, b)
    a, b = a.astype(dtype, copy=False), np.ascontiguousarray(b, dtype=dtype)
    out = np.zeros((a.shape[0], b.shape[1]), dtype)
    for m in range(a.shape[0]):
        ks = np.flatnonzero(a[m])
        if ks.size:
            np.add.reduce(a[m, ks, None] * b[ks], axis=0, out=out[m])
    return out
