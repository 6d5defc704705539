"""Per-iteration overhead on a tiny problem: DSGD-GD on gaussian_mean, 25 agents, ring (issue 11, 1).

Side by side in one process, alternating, best of ``--repeat`` rounds:

* ``numpy reference``: a hand-written NumPy loop of the same update (draw the Gaussian sample,
  the sample gradient, mixing with the dense 25 x 25 W, the diminishing step), with the same
  metrics (average iterate, PS error, consensus error) on the same geometric grid;
* ``decopt``: ``decopt.run`` of the same job (keyed Philox noise, bit accounting, metrics on the
  geometric grid, the runner's bookkeeping), which takes DSGD-GD's fused multi-step path
  (``DSGDGD.fused_steps``). Its per-iteration time is the difference of two runs
  (``--iterations`` and ``--iterations // 10``), so setup (config, graph, imports) cancels;
* ``decopt, per-step path``: the same ``decopt.run`` with the fused path switched off (one
  ``algorithm.step`` per iteration, what every other configuration runs);
* ``decopt, problem.replicas=10``: ten seeds as one run (replica r = seed r), fused path;
* ``decopt, float32`` (the default dtype): the fused torch path (``step``'s operations without the
  message round, bit for bit the per-step trajectory) and the per-step path;
* the machine's floor: one tiny torch op and one tiny NumPy op.

Then DSGD-GD on strategic_spam (Exp. B: 25 agents, ring, d = 48, one e-mail per agent per iteration,
float64; needs ``$DECOPT_DATA/spambase``), the same way: the per-step path (fused off) against the
fused path (``StrategicSpam.descent_kernel``), alone and with ``problem.replicas=R`` seeds as one run
(per-iteration and per-seed-iteration times), and what the Exp. B figure (4 settings x S seeds x
5x10^6 iterations) costs on each.

    python benchmarks/bench_overhead.py [--iterations 200000] [--spam-iterations 100000] [--repeat 3]
                                        [--clock cpu|wall] [--only gaussian_mean|strategic_spam]
"""
from __future__ import annotations

import argparse
import math
import sys
from unittest import mock

import numpy as np
import torch

import decopt
from decopt.algorithms.dsgd_gd import DSGDGD
from decopt.cli import compose
from decopt.config import validate
from decopt.runner import GEOMETRIC_PER_DECADE, build

import limits

JOB = ["algo=dsgd_gd", "problem=gaussian_mean", "graph=ring", "graph.n=25", "run.dtype=float64",
       "run.eval_grid=geometric", "run.progress=none"]
SPAM = ["algo=dsgd_gd", "problem=strategic_spam", "graph=ring", "graph.n=25", "run.dtype=float64",
        "run.eval_grid=geometric", "run.progress=none"]
SPAM_REPLICAS = (5, 10)


def geometric_grid(iterations: int) -> set[int]:
    top = math.log10(iterations) * GEOMETRIC_PER_DECADE
    return {math.ceil(10 ** (k / GEOMETRIC_PER_DECADE) - 1e-9) for k in range(int(top) + 2)} | {iterations}


def numpy_reference(iterations: int) -> float:
    """Seconds for ``iterations`` steps of the hand-written loop (same W, eps, zbar, step sizes)."""
    _, net, problem, algo = build(validate(compose(JOB)))
    n = net.n
    W = np.zeros((n, n))
    for i in range(n):
        W[i, i] = W[i, (i + 1) % n] = W[i, (i - 1) % n] = 1 / 3
    eps, zbar = problem.eps[:, 0].numpy(), problem.zbar[:, 0].numpy()
    theta_ps = float(problem.theta_ps)
    a0, a1 = algo.cfg.lr, algo.cfg.a1
    grid, rows = geometric_grid(iterations), []
    rng = np.random.default_rng(0)
    x = np.zeros(n)
    start = limits.CLOCK()
    for t in range(iterations):
        z = zbar + eps * x + rng.standard_normal(n)
        x = W @ x - a0 / (a1 + t + 1) * (x - z)
        if t + 1 in grid:
            xbar = x.mean()
            rows.append((t + 1, (xbar - theta_ps) ** 2, ((x - xbar) ** 2).mean()))
    return limits.CLOCK() - start


def decopt_run(iterations: int, *extra: str, job=JOB) -> float:
    start = limits.CLOCK()
    decopt.run(*job, f"run.iterations={iterations}", *extra, run_dir=False)
    return limits.CLOCK() - start


def per_iteration(N: int, *extra: str, fused: bool = True, job=JOB) -> float:
    """Seconds per iteration of ``decopt.run``: the difference of an N and an N // 10 iteration run."""
    with mock.patch.object(DSGDGD, "fused_steps", DSGDGD.fused_steps if fused else lambda self: None):
        return (decopt_run(N, *extra, job=job) - decopt_run(N // 10, *extra, job=job)) / (N - N // 10)


def strategic_spam(N: int, repeat: int) -> None:
    """The strategic_spam table: per-step vs fused, alone and with replicas (see the docstring)."""
    rows = [("per-step path (fused off)", 1, N // 10, [], False), ("fused path", 1, N, [], True)]
    rows += [(f"fused, problem.replicas={R} ({R} seeds)", R, N // 2, [f"problem.replicas={R}"], True)
             for R in SPAM_REPLICAS]
    best = [math.inf] * len(rows)
    for _ in range(repeat):                           # alternate, so load changes hit all alike
        for i, (_, _, iters, extra, fused) in enumerate(rows):
            best[i] = min(best[i], per_iteration(iters, *extra, fused=fused, job=SPAM))
    step = best[0]
    print(f"\nDSGD-GD, strategic_spam (Spambase, d = 48, batch 1), 25 agents, ring, float64, metrics on the "
          f"geometric grid; per-step path {N // 10:,} iterations, fused {N:,} ({N // 2:,} with replicas), each "
          f"the difference with a tenth as many; best of {repeat}\n")
    us = lambda sec: f"{sec * 1e6:.2f}"
    print(limits.table(
        ["what", "us / iteration", "us / seed-iteration", "x faster per seed than per-step",
         "Exp. B figure, 4 x 10 seeds x 5x10^6 (min)"],
        [[what, us(sec), us(sec / R), f"{step / (sec / R):.1f}", f"{4 * 10 * 5e6 * sec / R / 60:.0f}"]
         for (what, R, *_), sec in zip(rows, best)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200_000)
    ap.add_argument("--spam-iterations", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--only", choices=("gaussian_mean", "strategic_spam"), default=None)
    args = ap.parse_args()
    limits.set_clock(args.clock)
    torch.set_num_threads(1)
    if args.only == "strategic_spam":
        print(limits.header(sys.argv))
        strategic_spam(args.spam_iterations, args.repeat)
        return
    N = args.iterations
    best = {k: math.inf for k in ("ref", "decopt", "step", "rep10", "f32", "f32step")}
    for _ in range(args.repeat):                      # alternate, so load changes hit all alike
        best["ref"] = min(best["ref"], numpy_reference(N) / N)
        best["decopt"] = min(best["decopt"], per_iteration(N))
        best["step"] = min(best["step"], per_iteration(N, fused=False))
        best["rep10"] = min(best["rep10"], per_iteration(N, "problem.replicas=10"))
        best["f32"] = min(best["f32"], per_iteration(N, "run.dtype=float32"))
        best["f32step"] = min(best["f32step"], per_iteration(N, "run.dtype=float32", fused=False))
    tiny_torch = limits.tiny_op_seconds()
    a = np.zeros(25)
    tiny_np = limits.timeit(lambda: [np.add(a, 1.0, out=a) for _ in range(100_000)], 3) / 100_000

    us = lambda s: f"{s * 1e6:.2f}"
    ref = best["ref"]
    print(limits.header(sys.argv))
    print(f"DSGD-GD, gaussian_mean, 25 agents, ring, float64, metrics on the geometric grid; "
          f"{N:,} iterations (decopt: difference with {N // 10:,}), best of {args.repeat}\n")
    row = lambda what, s: [what, us(s), f"{s / ref:.2f}", f"{s * 1e7:.0f}"]
    print(limits.table(
        ["what", "us / iteration", "x numpy reference", "10^7 iterations (s)"],
        [row("numpy reference loop", ref),
         row("decopt (decopt.run, fused path)", best["decopt"]),
         row("decopt.run, per-step path (fused off)", best["step"]),
         row("decopt, problem.replicas=10 (10 seeds), fused", best["rep10"]),
         row("decopt, float32, fused (torch)", best["f32"]),
         row("decopt, float32, per-step path (fused off)", best["f32step"]),
         ["floor: one tiny torch op", us(tiny_torch), f"{tiny_torch / ref:.2f}", ""],
         ["floor: one tiny numpy op", us(tiny_np), f"{tiny_np / ref:.2f}", ""]]))
    print(f"\nDSGD-GD Exp. A figure (5 settings x 10 seeds x 10^7 iterations) if every setting ran 10^7 iterations: "
          f"{5 * 10 * 1e7 * best['decopt'] / 60:.0f} min as 50 runs, {5 * 1e7 * best['rep10'] / 60:.1f} min as 5 runs "
          f"of problem.replicas=10; the three eps_bar > 1 settings stop (diverged) before 3,000 iterations, so "
          f"about {2 * 1e7 * best['rep10'] / 60:.1f} min")
    if args.only is None:
        strategic_spam(args.spam_iterations, args.repeat)


if __name__ == "__main__":
    main()
