"""Scaling in agents on the stacked backend (issue 11, 3): least squares d = 100, top-k 10%,
an Erdős–Rényi graph with average degree 8, n = 10 ... 10,000 agents.

Two TiCoPD forms: ``ticopd`` (P1, node-wise mirror: state O(n d)) and ``ticopd_robust`` (P2,
one mirror pair per directed edge: state O(n d + edges d)), each n in its own process so that
its peak resident memory (``ru_maxrss``) is its own. Reports the time per iteration (CPU clock,
one thread, median), the time per agent-coordinate (should stay flat: linear in n d), the state
size and the peak memory.

The graph: G(n, p) with p = 8 / (n - 1) drawn edge by edge in O(edges) (decopt's
``graph=erdos_renyi`` enumerates all n^2 / 2 pairs and redraws until connected, which at average
degree 8 and n = 10,000 is a ~3% event), with the isolated or disconnected pieces joined to the
giant component by one edge each, so it is connected with average degree ~8.

    python benchmarks/bench_scaling.py [--n 10 100 1000 10000] [--iterations 20]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csg
import torch

import limits

D, RATIO, DEGREE = 100, 0.1, 8


def er_graph(n: int, seed: int = 0):
    """Connected G(n, 8 / (n - 1)) (see the module docstring), as decopt's Graph."""
    from decopt.graphs import Graph

    rng = np.random.default_rng(seed)
    m = rng.binomial(n * (n - 1) // 2, min(1.0, DEGREE / max(n - 1, 1)))
    i, j = rng.integers(0, n, size=(2, 2 * m + 16))
    keep = i != j
    pairs = np.unique(np.sort(np.stack([i[keep], j[keep]], 1), 1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:m]]
    adj = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    k, label = csg.connected_components(adj, directed=False)
    if k > 1:                                      # join every other piece to the largest one
        big = np.bincount(label).argmax()
        anchor = np.flatnonzero(label == big)[0]
        extra = [(min(anchor, np.flatnonzero(label == c)[0]), max(anchor, np.flatnonzero(label == c)[0]))
                 for c in range(k) if c != big]
        pairs = np.concatenate([pairs, np.array(extra)])
    return Graph.from_edges(n, pairs, name="erdos_renyi")


def one(n: int, algo: str, iterations: int) -> dict:
    """Build and time one configuration in this process; returns a JSON-able row."""
    from decopt.algorithms import build_algorithm
    from decopt.cli import compose
    from decopt.comm import StackedNetwork
    from decopt.compressors import build_compressor
    from decopt.config import validate
    from decopt.graphs import Links
    from decopt.problems import build_problem

    s = validate(compose([f"algo={algo}", "problem=least_squares", f"problem.dim={D}", "problem.samples=10",
                          "compressor=topk", f"compressor.ratio={RATIO}", "run.dtype=float32"]))
    graph = er_graph(n)
    net = StackedNetwork(graph, Links(graph), dtype=torch.float32)
    problem = build_problem(s.problem, net, 0)
    algorithm = build_algorithm(s.algo, net, problem, build_compressor(s.compressor, 32, problem.segments))
    state = algorithm.init(problem.x0())
    t = iter(range(10 ** 9))

    def step():
        i = next(t)
        net.begin(i)
        algorithm.step(state, i)
    sec = limits.timeit(step, iterations, warmup=2)
    state_bytes = sum(v.numel() * v.element_size() for v in state.values())
    return {"n": n, "algo": algo, "edges": graph.m, "sec": sec, "state_mib": state_bytes / 2 ** 20,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--algo", nargs="+", default=["ticopd", "ticopd_robust"])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--one", nargs=2, metavar=("N", "ALGO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.iterations)))
        return
    rows = []
    for algo in args.algo:
        for n in args.n:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), algo, "--iterations",
                                  str(args.iterations)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    copy = limits.copy_rate()
    print(limits.header(sys.argv))
    print(f"memory copy rate (256 MiB tensor copy, read + write): {copy / 1e9:.1f} GB/s; 'state passes' = "
          f"iteration time / (state bytes / copy rate), i.e. how many copies of the state one iteration costs")
    print(f"least squares d = {D} (10 samples per agent), top-k {RATIO:.0%}, Erdős–Rényi average degree "
          f"{DEGREE} (connected), stacked backend, fp32; each n in its own process\n")
    table = []
    for r in rows:
        base = next(b for b in rows if b["algo"] == r["algo"])
        per = r["sec"] / (r["n"] * D)
        table.append([r["algo"], r["n"], r["edges"], f"{per / (base['sec'] / (base['n'] * D)):.2f}",
                      f"{r['sec'] * 1e3:.2f}", f"{per * 1e9:.1f}",
                      f"{r['sec'] / (r['state_mib'] * 2 ** 20 * 2 / copy):.0f}",
                      f"{r['state_mib']:.1f}", f"{r['peak_mib']:.0f}"])
    print(limits.table(["algo", "n", "edges", "time per n d (x smallest n)", "ms / iteration",
                        "ns per agent-coordinate", "state passes", "state MiB", "peak RSS MiB"], table))


if __name__ == "__main__":
    main()
