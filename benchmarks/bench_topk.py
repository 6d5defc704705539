"""Top-k selection on the CPU (issue 11, goal 2): ``TopK.select`` against its alternatives.

For each shape (agents x entries per row, kept fraction) and dtype, interleaved in one process
(CPU clock, one torch thread, median of ``--repeat`` rounds), the time to select the kept indices
of every row by:

* ``select``: what ``TopK.select`` does (fp32: 64-bit (magnitude, index) keys and one
  ``np.partition``; fp64: ``argpartition``), over its cache-sized blocks of rows;
* ``keys``, ``argpartition``: each block path forced (``keys`` is fp32 only);
* ``torch.topk`` on the whole array (the choice among ties at the k-th magnitude unspecified).

Rows are Gaussian times exponential (heavy-tailed, like gradient messages).

    python benchmarks/bench_topk.py [--repeat 20]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from decopt.compressors import topk
from decopt.compressors.topk import TopK, TopKConfig

import limits

SHAPES = [(10, 79_510, 0.05), (10, 79_510, 0.01), (10_000, 100, 0.1), (1_000, 1_000, 0.05), (100, 7_840, 0.05)]


def blockwise(top):
    """Run a block path over ``TopK.select``'s blocks of rows."""
    def run(V, k):
        host = V.numpy()
        step = max(1, topk.BLOCK_BYTES // (host.shape[1] * host.itemsize))
        out = np.empty((host.shape[0], k), dtype=np.int64)
        for r in range(0, host.shape[0], step):
            out[r:r + step] = top(host[r:r + step], k)
        return out
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n, d, frac in SHAPES:
        comp = TopK(TopKConfig(ratio=frac))
        lay = comp.layout(d)
        k = lay[0][2]
        g = torch.Generator().manual_seed(0)
        base = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.empty(n, d, dtype=torch.float64).exponential_(
            generator=g)
        for dtype in (torch.float32, torch.float64):
            V = base.to(dtype)
            ways = {"select": lambda: comp.select(V, None, range(n), lay),
                    "argpartition": lambda: blockwise(topk._top_argpartition)(V, k),
                    "torch.topk": lambda: torch.topk(V.abs(), k, dim=1, sorted=False)}
            if dtype == torch.float32:
                ways["keys"] = lambda: blockwise(topk._top_fp32)(V, k)
            ms = dict(zip(ways, limits.timeit_interleaved(list(ways.values()), args.repeat)))
            rows.append([f"{n:,} x {d:,}", f"{k:,}", str(dtype).split(".")[1]]
                        + [f"{1e3 * ms[w]:.2f}" if w in ms else "" for w in ("select", "keys", "argpartition", "torch.topk")]
                        + [f"{ms['argpartition'] / ms['select']:.2f}x", f"{ms['torch.topk'] / ms['select']:.1f}x"])
    print(limits.header(sys.argv))
    print("ms per selection of all rows; heavy-tailed rows (Gaussian x exponential)\n")
    print(limits.table(["rows x entries", "k", "dtype", "select", "keys", "argpartition", "torch.topk",
                        "argpartition / select", "torch.topk / select"], rows))


if __name__ == "__main__":
    main()
