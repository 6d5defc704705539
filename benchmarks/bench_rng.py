"""Keyed draws (issue 19): NumPy's Philox against the torch Philox (``decopt.philox``) per draw.

The rule in ``rng._drawing_device`` keeps CPU draws in NumPy; this measures why. For each draw a
run makes every iteration (sizes of the MNIST MLP job: 10 agents, d = 79,510, batch 256), interleaved
in one process (one torch thread, median of ``--repeat`` rounds): the NumPy path (``device=None``) and
the torch path on ``--device`` (forced on the CPU; on CUDA timed to a synchronize, wall clock).
Then how far torch's log1p, cos and sin (on ``--device``) are from NumPy's on the CPU, and so the
Box-Muller normals, over 10^6 keyed uniforms: uniforms and integers are bit-identical, normals not.

    python benchmarks/bench_rng.py [--repeat 20] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from decopt import rng
from decopt.rng import Key, Stream

import limits

KEY = Key(1, Stream.COMPRESS, 12345, 2)
DRAWS = {   # name: (numbers drawn, draw(device))
    "qsgd dithering: uniform 10 x 79,510": (795_100, lambda dev: rng.uniform(KEY, range(10), 79_510, device=dev)),
    "minibatch: integers 10 x 256 of 6,000": (2_560, lambda dev: rng.integers(KEY, range(10), 256, 6_000, device=dev)),
    "links: uniform 1,000 edges x 1": (1_000, lambda dev: rng.uniform(KEY, range(1_000), 1, device=dev)),
    "rand-k 10%: sample 10 x 7,951 of 79,510": (79_510,
                                                lambda dev: rng.sample(KEY, range(10), 79_510, 7_951, device=dev)),
    "noise: normal 10 x 10,000": (100_000, lambda dev: rng.normal(KEY, range(10), 10_000, device=dev)),
    "block: integers_steps 64 x 100 x 32": (204_800,
                                            lambda dev: rng.integers_steps(KEY, range(64), range(100), 32, 100, 1000,
                                                                           device=dev)),
}


def ulps(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """Largest distance in units in the last place, and the fraction of values that differ."""
    d = np.abs(a.view(np.int64) - b.view(np.int64))
    return int(d.max()), float((d > 0).mean())


def transcendentals(dev: torch.device) -> list[list]:
    u = rng.uniform(Key(2, Stream.NOISE), range(1), 1_000_000)[0]
    a = 2 * np.pi * u
    t, ta = torch.from_numpy(u).to(dev), torch.from_numpy(a).to(dev)
    pairs = {"log1p(-u)": (np.log1p(-u), torch.log1p(-t)), "cos(2 pi u)": (np.cos(a), torch.cos(ta)),
             "sin(2 pi u)": (np.sin(a), torch.sin(ta)),
             "normal (Box-Muller)": (rng.normal(KEY, range(10), 100_000),
                                     rng.normal(KEY, range(10), 100_000, device=dev))}
    return [[name, *(f"{v:.2%}" if isinstance(v, float) else v for v in ulps(want, got.cpu().numpy()))]
            for name, (want, got) in pairs.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dev = torch.device(args.device)
    rng._drawing_device = lambda device: None if device is None else torch.device(device)   # torch on any device
    if dev.type != "cpu":
        limits.set_clock("wall")

    def on_device(draw):
        def run():
            draw(dev)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        return run

    rows = []
    for name, (count, draw) in DRAWS.items():
        np_s, torch_s = limits.timeit_interleaved([lambda: draw(None), on_device(draw)], args.repeat)
        rows.append([name, f"{count:,}", f"{1e3 * np_s:.3f}", f"{1e3 * torch_s:.3f}", f"{torch_s / np_s:.1f}x",
                     f"{1e9 * torch_s / count:.1f}"])
    print(limits.header(sys.argv))
    print(f"ms per draw; torch on {dev}\n")
    print(limits.table(["draw", "numbers", "NumPy", f"torch ({dev})", "torch / NumPy", "torch ns / number"], rows))
    print(f"\ntorch on {dev} against NumPy on the CPU, 10^6 values\n")
    print(limits.table(["function", "max ulps", "values that differ"], transcendentals(dev)))


if __name__ == "__main__":
    main()
