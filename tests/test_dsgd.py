"""DGD on heterogeneous least squares: a diminishing step reaches the closed-form optimum,
a constant step stalls at the heterogeneity bias (so the suite can tell the two apart)."""
import numpy as np
import pytest
import torch

import decopt
from decopt.cli import compose
from decopt.config import validate
from decopt.runner import build

SMALL = ("problem.dim=5", "problem.samples=20", "run.dtype=float64")


def final(*overrides):
    return decopt.run(*SMALL, *overrides, run_dir=False)


def test_diminishing_step_reaches_the_optimum():
    short = final("algo.schedule=inverse", "algo.lr=2", "algo.a1=20", "run.iterations=2000", "run.eval_every=500")
    long = final("algo.schedule=inverse", "algo.lr=2", "algo.a1=20", "run.iterations=20000", "run.eval_every=5000")
    d_short, d_long = short.summary["final"]["dist_opt"], long.summary["final"]["dist_opt"]
    assert d_long < 1e-6
    assert d_long < d_short / 30          # still converging, ~1/t^2
    assert long.summary["final"]["consensus_error"] < 1e-5


def test_constant_step_stalls_at_the_heterogeneity_bias():
    short = final("algo.lr=0.05", "run.iterations=2000", "run.eval_every=500")
    long = final("algo.lr=0.05", "run.iterations=20000", "run.eval_every=5000")
    d_short, d_long = short.summary["final"]["dist_opt"], long.summary["final"]["dist_opt"]
    assert d_long > 1e-3                   # the bias does not vanish ...
    assert d_long == pytest.approx(d_short, rel=1e-6)   # ... it is a fixed point
    assert long.summary["final"]["consensus_error"] > 1e-2


def test_one_step_matches_the_formula():
    settings = validate(compose([*SMALL, "graph.n=5", "algo.lr=0.1"]))
    graph, net, problem, algo = build(settings)
    state = algo.init(problem.x0() + torch.arange(5.0, dtype=torch.float64)[:, None])
    x = state["x"].clone()
    W = torch.as_tensor(net.graph.adjacency.toarray() / 3.0)     # ring of 5: Metropolis = 1/3
    W += torch.eye(5) / 3.0
    A, b = problem.A, problem.b                                    # f_i = ||A_i x - b_i||^2 / (2m)
    g = torch.stack([A[i].T @ (A[i] @ x[i] - b[i]) / A.shape[1] for i in range(5)])
    net.begin(0)
    algo.step(state, 0)
    np.testing.assert_allclose(state["x"], W @ x - 0.1 * g, atol=1e-14)


def test_bits_count_exact_messages():
    r = final("graph.n=7", "run.iterations=30", "run.eval_every=10")
    # one fp64 broadcast of d=5 per agent per iteration
    assert r.metrics["bits"] == [0, 7 * 5 * 64 * 10, 7 * 5 * 64 * 20, 7 * 5 * 64 * 30]
    edge = final("graph.n=7", "run.iterations=30", "run.eval_every=10", "run.bits_convention=edge")
    assert edge.metrics["bits"][-1] == 2 * 7 * 5 * 64 * 30   # ring: every broadcast reaches 2 links
