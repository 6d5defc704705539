"""Throughput of the batched per-agent gradient of ``mnist_mlp`` (784-100-10 sigmoid MLP).

Compares, at n agents with a minibatch of B samples each (fp32):

* the machine's measured fp32 matmul rate (a square ``torch.mm``, the best this CPU/GPU does);
* ``MLP.grad``: decopt's batched gradient (keyed batch draw + gather + bmm forward/backward for
  all agents at once, a new iteration t, i.e. a new minibatch, per call), its compute part alone
  (``_batch`` on an already gathered batch) and its draw + gather part alone (new rows per call);
* a per-agent loop of ordinary ``torch.nn`` modules with autograd (what one would write
  without batching): n x (zero_grad, forward, cross-entropy, backward, flatten grads).

FLOPs counted per agent: forward 2B(ph + hc), backward 2B(ph + 2hc) (gW1, gW2, dH; no dA).

    python benchmarks/bench_gradients.py [--data-dir DIR] [--n 10 100]
        [--batch 256 16] [--threads 1] [--clock cpu|wall]

``--clock cpu`` (default) times with the process CPU clock, which is what one core delivers
even when the machine is shared (all rates then are per core: use ``--threads 1``);
``--clock wall`` times with the wall clock (use it on a quiet machine, any thread count).
``--data-dir``: the MNIST IDX folder (default: $DECOPT_DATA/mnist, else ../shared/data/mnist).
Without MNIST files (``--data-dir`` missing) random inputs of the same shape are used.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from decopt.comm.stacked import StackedNetwork
from decopt.graphs import Links
from decopt.graphs.topologies import ring
from decopt.problems.mlp import MLP, MnistMLPConfig
from limits import header, matmul_rate, set_clock, timeit


def build(n: int, batch: int, data_dir: str | None) -> MLP:
    g = ring(n)
    net = StackedNetwork(g, Links(g), dtype=torch.float32)
    if data_dir and Path(data_dir).is_dir():
        return MLP(MnistMLPConfig(data_dir=data_dir, batch_size=batch), net, 0)

    class Fake(MLP):  # same model, random data of MNIST's shape
        def __init__(self):
            super(MLP, self).__init__(net, 0)
            self.batch_size, self.wd, self.agent_metrics_on = batch, 1e-4, False
            self.shapes, self.bounds = [(100, 784), (100,), (10, 100), (10,)], [0.0357, 0.0357, 0.1, 0.1]
            rng = np.random.default_rng(0)
            y = rng.integers(0, 10, 60000)
            self.setup_data(rng.standard_normal((60000, 784), dtype=np.float32), y,
                            np.zeros((0, 784), np.float32), np.zeros(0, np.int64),
                            list(np.array_split(np.arange(60000), n)))
    return Fake()


def loop_reference(prob: MLP, X: torch.Tensor):
    """n ordinary torch modules, one autograd backward each (the unbatched way), on the same
    keyed minibatch of iteration t as ``prob.grad(X, t)``."""
    n = X.shape[0]
    models = []
    for i in range(n):
        m = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 10))
        torch.nn.utils.vector_to_parameters(X[i], m.parameters())
        models.append(m)

    def run(t):
        rows = torch.gather(prob.table, 1, prob.batch_indices(t, prob.sizes))
        out = []
        for i, m in enumerate(models):
            m.zero_grad(set_to_none=True)
            A, Y = prob.train_x[rows[i]], prob.train_y[rows[i]]
            F.cross_entropy(m(A), Y).backward()
            g = torch.nn.utils.parameters_to_vector(p.grad for p in m.parameters())
            out.append(g.add_(torch.nn.utils.parameters_to_vector(m.parameters()), alpha=prob.wd))
        return torch.stack(out)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("DECOPT_DATA")
    ap.add_argument("--data-dir", default=str(Path(data) / "mnist") if data else
                    str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 16])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    set_clock(args.clock)

    peak = matmul_rate()
    rows = []
    for n in args.n:
        for B in args.batch:
            prob = build(n, B, args.data_dir)
            X = prob.x0() + 0.01 * torch.randn(n, prob.d)
            p, h, c = 784, 100, 10
            flops = n * 2 * B * (2 * p * h + 3 * h * c)
            rep = max(5, int(args.repeat * 10 * 256 / (n * B)))
            t = iter(range(10 ** 9))                      # a new minibatch per call
            t_grad = timeit(lambda: prob.grad(X, next(t)), rep)
            pos = prob.batch_indices(3, prob.sizes)
            r = torch.gather(prob.table, 1, pos)
            A, Y = prob.train_x[r], prob.train_y[r]
            w = torch.full(r.shape, 1.0 / B)
            t_comp = timeit(lambda: prob._batch(X, A, Y, w, need_pred=False), rep)
            t_take = timeit(lambda: prob._take(torch.gather(prob.table, 1, prob.batch_indices(next(t), prob.sizes)),
                                               reuse=True), rep)
            loop = loop_reference(prob, X)
            assert torch.allclose(loop(3), prob.grad(X, 3), atol=1e-5)
            t_loop = timeit(lambda: loop(next(t)), rep)
            rows.append((n, B, flops, t_grad, t_comp, t_take, t_loop))

    print(header(sys.argv))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.clock} clock; "
          f"fp32 matmul rate (1024^3 mm): {peak / 1e9:.1f} GFLOP/s\n")
    print("| n | batch | GFLOP/call | batched grad ms | GFLOP/s | % of matmul | compute-only ms (% matmul) "
          "| draw + gather ms | per-agent loop ms | speed-up vs loop |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, B, flops, tg, tc, tt, tl in rows:
        print(f"| {n} | {B} | {flops / 1e9:.3f} | {tg * 1e3:.2f} | {flops / tg / 1e9:.1f} | "
              f"{100 * flops / tg / peak:.0f}% | {tc * 1e3:.2f} ({100 * flops / tc / peak:.0f}%) | {tt * 1e3:.2f} | "
              f"{tl * 1e3:.2f} | {tl / tg:.1f}x |")


if __name__ == "__main__":
    main()
