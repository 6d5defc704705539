"""Compute-bound steps: FSPDA and DoCoM on mnist_mlp, 10 agents, batch 256 (issue 11, 2).

Side by side in one process (CPU clock, one torch thread, median of ``--repeat`` timings):

* the machine's fp32 matmul rate (a 1024^3 ``torch.mm``);
* the batched gradient alone (``problem.grad``: keyed minibatch draw, gather, bmm forward and
  backward for all agents), its GFLOP/s and its share of the matmul rate;
* one ``algorithm.step`` of FSPDA (one gradient, shared-mask exchange on the ring) and of DoCoM
  (two gradients on one minibatch, two compressed gossip rounds, top-k 5%), as a multiple of the
  gradients it needs (1x and 2x the batched gradient).

FLOPs per agent and call: forward 2B(ph + hc), backward 2B(ph + 2hc) (p = 784, h = 100, c = 10).

A second table splits one step's CPU time (median over the timed steps) by where it is spent, by
timing the calls the step makes: the gradients (``problem.grad``/``grads``), the message rounds
(``net.broadcast``/``exchange``: codec and bookkeeping), inside them the compressor's codec and its
entry selection, the mixing products (``net.mix``/``laplacian``/``gossip_into``, the latter applying
the copies' messages); "other" is the rest of the step: the algorithm's own vector arithmetic on
(n, d) arrays and the copies' own-row updates.

    python benchmarks/bench_compute.py [--data-dir DIR] [--n 10] [--batch 256] [--repeat 10]

``--data-dir``: the folder with the MNIST IDX files (default: $DECOPT_DATA/mnist, as decopt).
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys

import torch

from decopt.cli import compose
from decopt.config import validate
from decopt.runner import build

import limits

ALGOS = {"fspda": ["algo=fspda"], "docom": ["algo=docom", "compressor=topk", "compressor.ratio=0.05"]}


def job(algo: str, n: int, batch: int, data_dir: str | None):
    over = ALGOS[algo] + ["problem=mnist_mlp", "graph=ring", f"graph.n={n}", f"problem.batch_size={batch}",
                          "run.dtype=float32"]
    if data_dir:
        over.append(f"problem.data_dir={data_dir}")
    _, net, problem, alg = build(validate(compose(over)))
    state = alg.init(problem.x0())
    return net, problem, alg, state


def time_steps(net, alg, state, repeat: int) -> float:
    t = iter(range(10 ** 9))

    def one():
        i = next(t)
        net.begin(i)
        alg.step(state, i)
    return limits.timeit(one, repeat, warmup=2)


class Split:
    """CPU seconds spent in chosen methods of chosen objects, by category, outermost call only."""

    def __init__(self):
        self.acc, self.active = collections.Counter(), collections.Counter()

    def wrap(self, obj, name: str, cat: str) -> None:
        fn = getattr(obj, name, None)
        if fn is None:
            return

        def timed(*a, **kw):
            if self.active[cat]:
                return fn(*a, **kw)
            self.active[cat] += 1
            t0 = limits.CLOCK()
            try:
                return fn(*a, **kw)
            finally:
                self.acc[cat] += limits.CLOCK() - t0
                self.active[cat] -= 1
        setattr(obj, name, timed)


CATS = ["gradients", "message rounds", "codec", "selection", "mixing"]


def split_steps(net, problem, alg, state, repeat: int) -> dict:
    """Median ms per step in each category (see the module docstring), plus 'step' and 'other'."""
    sp = Split()
    for name in ("grad", "grads"):
        sp.wrap(problem, name, "gradients")
    for name in ("broadcast", "exchange"):
        sp.wrap(net, name, "message rounds")
    for name in ("mix", "laplacian", "gossip_into"):
        sp.wrap(net, name, "mixing")
    comp = alg.compressor
    for name in ("compress", "compress_split", "compress_sparse"):
        sp.wrap(comp, name, "codec")
    sp.wrap(comp, "select", "selection")
    rows = collections.defaultdict(list)
    for i in range(10 ** 6, 10 ** 6 + repeat + 2):
        sp.acc.clear()
        t0 = limits.CLOCK()
        net.begin(i)
        alg.step(state, i)
        step = limits.CLOCK() - t0
        rows["step"].append(step)
        for c in CATS:
            rows[c].append(sp.acc[c])
        rows["other"].append(step - sp.acc["gradients"] - sp.acc["message rounds"] - sp.acc["mixing"])
    return {k: 1e3 * statistics.median(v[2:]) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n, B = args.n, args.batch
    peak = limits.matmul_rate()
    rows, splits = [], []
    for algo in ALGOS:
        net, problem, alg, state = job(algo, n, B, args.data_dir)
        X = state["x"]
        p, h, c = 784, problem.shapes[0][0], problem.num_classes
        flops = n * 2 * B * (2 * p * h + 3 * h * c)
        t = iter(range(10 ** 9))
        t_grad = limits.timeit(lambda: problem.grad(X, next(t)), args.repeat, warmup=2)
        t_step = time_steps(net, alg, state, args.repeat)
        grads = alg.grads_per_step
        sp = split_steps(net, problem, alg, state, args.repeat)
        splits.append([algo, f"{sp['step']:.2f}"] + [f"{sp[c]:.2f}" for c in CATS + ["other"]])
        rows.append([algo, f"{t_step / (grads * t_grad):.2f}", f"{flops / t_grad / peak:.0%}",
                     f"{t_step * 1e3:.2f}", f"{grads} x {t_grad * 1e3:.2f}", f"{flops / t_grad / 1e9:.1f}"])
    print(limits.header(sys.argv))
    print(f"mnist_mlp (784-{h}-10, d = {problem.d:,}), n = {n} agents on a ring, batch {B}, fp32; "
          f"fp32 matmul rate (1024^3 mm): {peak / 1e9:.1f} GFLOP/s\n")
    print(limits.table(["algorithm", "step / gradients", "gradient % of matmul", "step ms",
                        "gradients ms", "gradient GFLOP/s"], rows))
    print("\nwhere a step's time goes (ms per step; codec and selection are inside the message rounds):\n")
    print(limits.table(["algorithm", "step"] + CATS + ["other"], splits))


if __name__ == "__main__":
    main()
