"""decopt against the papers' way of running (issue 11, 5): one FSPDA step on mnist_mlp.

* ``decopt``: the stacked backend, all agents as rows (``algo=fspda``, shared random-k masks,
  10% kept, batch ``--batch``, ring).
* ``per-agent loop``: how the official code is organised (one process per agent, here one loop
  iteration per agent): every agent owns a ``torch.nn`` 784-100-10 sigmoid MLP and its dual
  vector; per iteration each agent draws its minibatch, runs forward/backward with autograd and,
  per neighbour, draws the shared edge mask (``torch.randperm`` seeded by (t, edge)) and sends
  its masked parameters as a separate message tensor; then it applies the FSPDA primal-dual
  update (4a)-(4b) to its parameters. Same data, model, batch and message sizes; its random
  streams differ from decopt's (it is a timing reference, not an equivalence test).

Both in the same process, alternating blocks of ``--block`` consecutive steps (each side runs warm,
as it would in a real run), CPU clock, one torch thread, median over ``--repeat`` blocks.

    python benchmarks/bench_vs_loop.py [--n 10 30 100] [--batch 256] [--repeat 5] [--block 5] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

from decopt.cli import compose
from decopt.config import validate
from decopt.runner import build

import limits

LR, ETA, GAMMA, BETA, KEEP = 0.05, 0.01, 0.5, 1.0, 0.1


class AgentLoop:
    """n agents, each with its own module, dual, minibatch and per-neighbour messages."""

    def __init__(self, problem, graph, x0: torch.Tensor, batch: int):
        self.problem, self.batch = problem, batch
        self.models, self.duals = [], []
        for i in range(graph.n):
            m = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 10))
            torch.nn.utils.vector_to_parameters(x0[i].clone(), m.parameters())
            self.models.append(m)
            self.duals.append(torch.zeros(x0.shape[1]))
        self.d = x0.shape[1]
        self.k = int(KEEP * self.d)
        self.nbrs = [sorted(graph.adjacency.indices[graph.adjacency.indptr[i]:graph.adjacency.indptr[i + 1]])
                     for i in range(graph.n)]
        self.edge = graph.edge_index
        self.parts = [torch.as_tensor(p) for p in problem.parts]

    def step(self, t: int) -> None:
        params = [torch.nn.utils.parameters_to_vector(m.parameters()).detach() for m in self.models]
        grads, inbox = [], {}
        for i, m in enumerate(self.models):                  # every agent: its own gradient ...
            g = torch.Generator().manual_seed(t * 7919 + i)
            rows = self.parts[i][torch.randint(len(self.parts[i]), (self.batch,), generator=g)]
            m.zero_grad(set_to_none=True)
            F.cross_entropy(m(self.problem.train_x[rows]), self.problem.train_y[rows]).backward()
            grads.append(torch.nn.utils.parameters_to_vector(p.grad for p in m.parameters()))
            for j in self.nbrs[i]:                           # ... and one message per neighbour
                e = self.edge[(min(i, j), max(i, j))]
                idx = torch.randperm(self.d, generator=torch.Generator().manual_seed(t * 100003 + e))[:self.k]
                inbox[(i, j)] = (idx, params[i][idx].clone())
        for i, m in enumerate(self.models):                  # receive, then update (4a)-(4b)
            lap = torch.zeros(self.d)
            for j in self.nbrs[i]:
                idx, vals = inbox[(j, i)]
                lap[idx] += params[i][idx] - vals
            x = params[i] - (LR * grads[i] + ETA * self.duals[i] + GAMMA * lap)
            self.duals[i].add_(lap, alpha=BETA)
            torch.nn.utils.vector_to_parameters(x, m.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 30, 100])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--block", type=int, default=5, help="consecutive steps per timing (each side warm)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in args.n:
        over = ["algo=fspda", f"algo.lr={LR}", f"algo.eta={ETA}", f"algo.gamma={GAMMA}", f"algo.beta={BETA}",
                f"algo.mask_ratio={KEEP}", "problem=mnist_mlp", f"problem.batch_size={args.batch}",
                "problem.weight_decay=0", "graph=ring", f"graph.n={n}", "run.dtype=float32"]
        if args.data_dir:
            over.append(f"problem.data_dir={args.data_dir}")
        graph, net, problem, algo = build(validate(compose(over)))
        state = algo.init(problem.x0())
        loop = AgentLoop(problem, graph, state["x"], args.batch)
        ts, tl = iter(range(10 ** 9)), iter(range(10 ** 9))

        def stacked():
            for _ in range(args.block):
                t = next(ts)
                net.begin(t)
                algo.step(state, t)

        def looped():
            for _ in range(args.block):
                loop.step(next(tl))
        best_s, best_l = [], []
        for _ in range(args.repeat):      # alternate blocks of steps, so load changes hit both alike
            best_s.append(limits.timeit(stacked, 1, warmup=1 if not best_s else 0) / args.block)
            best_l.append(limits.timeit(looped, 1, warmup=1 if not best_l else 0) / args.block)
        s, l = float(np.median(best_s)), float(np.median(best_l))
        rows.append([n, f"{l / s:.1f}", f"{s * 1e3:.1f}", f"{l * 1e3:.1f}", f"{s / n * 1e3:.2f}", f"{l / n * 1e3:.2f}"])
    print(limits.header(sys.argv))
    print(f"one FSPDA step, mnist_mlp 784-100-10 (d = 79,510), batch {args.batch}, ring, 10% shared masks, fp32\n")
    print(limits.table(["n", "speed-up (loop / decopt)", "decopt ms / step", "per-agent loop ms / step",
                        "decopt ms / agent", "loop ms / agent"], rows))


if __name__ == "__main__":
    main()
