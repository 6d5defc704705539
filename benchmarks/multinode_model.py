"""Multi-node on paper (issue 22): what crosses the network per iteration, what stays constant per
rank in weak scaling, and the projected time per iteration on a 100 Gb/s network, for the papers'
MNIST settings (784-100-10 sigmoid MLP, d = 79,510, fp32) on 10 to 1,000 agents.

Settings (experiments/*_mnist.py; a ring for all three, so that the degree, and with it the traffic
per rank, does not grow with n):

* FSPDA-SA: a keyed 1 % mask per edge (``algo.mask_ratio=0.01``), every ring edge active (Fig. 5's
  all-edges form; the paper's one edge per iteration on K_10 sends less), batch 256;
* DoCoM: top-k 5 %, batch 16;
* TiCoPD: 8-bit QSGD, batch 256.

Each (setting, n) is built by decopt (``runner.build``) in its own process on the stacked backend
and run for a few iterations; the traffic is read from decopt's ledger (``Network.ledger()``,
``run.bits_convention=edge``: the payload bits each directed link carries), and the compute time is
the step's CPU time (one thread, median), which includes the codec and the in-memory mixing. The
agents are split over P = n / A ranks in contiguous blocks (``runner.block``, as ``backend=mpi``
does); a rank's traffic is the bits on arcs leaving its block. Model, one rank per node, one
100 Gb/s link each, no overlap of compute and communication:

    t_iter = A * compute per agent + rounds * alpha + (bits out of the busiest rank) / beta

with ``rounds`` the message rounds per iteration (the ledger's messages per carrying arc) and
alpha the latency of one round (``--alpha``, 2 us: MPI over InfiniBand/RoCE; TCP is ~20-50 us).

    python benchmarks/multinode_model.py [--n 10 100 1000] [--agents-per-rank 1 10] [--alpha 2e-6]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import limits

REPO = Path(__file__).resolve().parents[1]
BETA = 100e9                     # bits/s per node
SETTINGS = {
    "FSPDA-SA 1% mask": ["algo=fspda", "algo.mask_ratio=0.01", "graph.links=static", "problem.batch_size=256"],
    "DoCoM top-k 5%": ["algo=docom", "compressor=topk", "compressor.ratio=0.05", "problem.batch_size=16"],
    "TiCoPD 8-bit QSGD": ["algo=ticopd", "compressor=qsgd8", "problem.batch_size=256"],
}


def one(setting: str, n: int, iterations: int, data: Path) -> dict:
    """Build the setting on n agents, time ``iterations`` steps; the per-arc ledger and timings."""
    from decopt.cli import compose
    from decopt.config import validate
    from decopt.runner import build

    s = validate(compose([*SETTINGS[setting], "problem=mnist_mlp", f"problem.data_dir={data / 'mnist'}",
                          "graph=ring", f"graph.n={n}", "run.dtype=float32", "run.bits_convention=edge"]))
    _, net, problem, algorithm = build(s)
    state = algorithm.init(problem.x0())
    steps = iter(range(10 ** 9))
    done = []

    def step():
        t = next(steps)
        net.begin(t)
        algorithm.step(state, t)
        done.append(t)
    sec = limits.timeit(step, iterations, warmup=1)
    ledger = net.ledger()
    return {"setting": setting, "n": n, "d": problem.d, "sec": sec, "iterations": len(done),
            "src": ledger["src"].tolist(), "dst": ledger["dst"].tolist(), "bits": ledger["bits"].tolist(),
            "messages": ledger["messages"].tolist(),
            "state_bytes": sum(v.numel() * v.element_size() for v in state.values()),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def per_rank(r: dict, agents: int) -> dict:
    """Traffic per iteration of the busiest of the P = n / agents ranks (contiguous blocks)."""
    from decopt.runner import block

    n, ranks = r["n"], r["n"] // agents
    owner = np.empty(n, dtype=np.int64)
    for q in range(ranks):
        owner[block(q, ranks, n)] = q
    src, dst = owner[np.array(r["src"])], owner[np.array(r["dst"])]
    leaving = src != dst
    bits = np.bincount(src[leaving], weights=np.array(r["bits"])[leaving], minlength=ranks) / r["iterations"]
    msgs = np.array(r["messages"])
    rounds = msgs[msgs > 0].max() / r["iterations"] if (msgs > 0).any() else 0.0
    return {"ranks": ranks, "bits": bits.max() if ranks > 1 else 0.0, "rounds": rounds if ranks > 1 else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--agents-per-rank", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--alpha", type=float, default=2e-6, help="seconds per message round (latency)")
    ap.add_argument("--iterations", type=int, default=3, help="timed steps per (setting, n), after one warm-up")
    ap.add_argument("--data", type=Path, default=None,
                    help="data root with mnist/ (default $DECOPT_DATA or ../shared/data)")
    ap.add_argument("--one", nargs=2, metavar=("SETTING", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = Path(args.data or os.environ.get("DECOPT_DATA") or REPO.parent / "shared" / "data")
    torch.set_num_threads(1)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.iterations, data)))
        return
    rows = []
    for setting in SETTINGS:
        for n in args.n:
            out = subprocess.run([sys.executable, __file__, "--one", setting, str(n), "--iterations",
                                  str(args.iterations), "--data", str(data)], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{setting}, n = {n}: {out.stderr.strip()[-2000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(limits.header(sys.argv))
    print(f"MNIST MLP d = {rows[0]['d']:,}, fp32, ring; ledger: run.bits_convention=edge; compute: CPU time of one "
          f"step per agent (one thread, median of {args.iterations}); network: beta = {BETA / 1e9:.0f} Gb/s per "
          f"node, alpha = {args.alpha * 1e6:g} us per message round, one rank per node, no overlap\n")
    table = []
    for r in rows:
        per_agent = r["sec"] / r["n"]
        for a in args.agents_per_rank:
            if r["n"] % a:
                continue
            q = per_rank(r, a)
            latency, transfer = q["rounds"] * args.alpha, q["bits"] / BETA
            table.append([r["setting"], r["n"], a, q["ranks"], f"{q['bits']:,.0f}", f"{q['rounds']:g}",
                          f"{r['state_bytes'] / r['n'] / 2 ** 20 * a:.2f}", f"{per_agent * a * 1e3:.2f}",
                          f"{latency * 1e6:.1f}", f"{transfer * 1e6:.1f}",
                          f"{(per_agent * a + latency + transfer) * 1e3:.2f}", f"{r['peak_mib']:.0f}"])
    print(limits.table(["setting", "agents n", "agents / rank A", "ranks P", "bits out / rank / it.",
                        "rounds / it.", "state MiB / rank", "compute ms / rank", "latency us", "transfer us",
                        "projected ms / it.", "peak RSS MiB (all n)"], table))


if __name__ == "__main__":
    main()
