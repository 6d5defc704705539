"""DSGD-GD on performative problems (Li, Yau, Wai 2022): convergence to theta_PS at O(1/t) when
eps_avg < 1 even with some eps_i > 1, divergence for eps_avg > 1 and for an isolated agent with
eps > 1, and a gradient that never goes through the distribution."""
import math

import numpy as np
import pytest
import torch

import decopt
from decopt.algorithms.dsgd_gd import DSGDGD, DSGDGDConfig
from decopt.cli import compose
from decopt.comm import StackedNetwork
from decopt.compressors.identity import Identity
from decopt.config import validate
from decopt.graphs import Graph, Links
from decopt.problems.gaussian_mean import GaussianMean, GaussianMeanConfig
from decopt.problems.partition import partition
from decopt.problems.spambase import spambase_split
from decopt.rng import Key, Stream, integers_steps, normal_steps
from decopt.runner import build

from conftest import SHARED_DATA

GM = ("algo=dsgd_gd", "problem=gaussian_mean", "graph=ring", "graph.n=25", "run.dtype=float64")


def setup(*overrides):
    graph, net, problem, algo = build(validate(compose(list(overrides))))
    return net, problem, algo


# ----------------------------------------------------------------------------- the problem itself
def test_gaussian_mean_theta_ps_is_the_fixed_point_of_repeated_risk_minimisation():
    net, p, _ = setup(*GM, "problem.eps_mean=0.9")
    eps = p.eps[:, 0].numpy()
    assert eps.mean() == pytest.approx(0.9) and eps.max() > 1.0         # some agents are unstable alone
    np.testing.assert_allclose(eps, 0.9 * np.linspace(0.4, 1.6, 25))   # {0.4, 0.45, ..., 1.6} x eps_avg
    theta = p.theta_ps
    # M(theta) = argmin_theta' (1/n) sum_i E_{Z ~ D_i(theta)} (theta' - Z)^2 / 2 = mean_i (zbar_i + eps_i theta)
    np.testing.assert_allclose((p.zbar + p.eps * theta).mean(0), theta, rtol=1e-12)
    # grad f(theta_PS; theta_PS) = 0 (gradient in the first argument, data at theta_PS)
    _, g = p.loss_grad(theta.expand(25, 1))
    assert abs(float(g.mean())) < 1e-12


def test_no_theta_ps_and_no_ps_error_when_eps_avg_is_at_least_one():
    _, p, _ = setup(*GM, "problem.eps_mean=1.1")
    assert p.theta_ps is None
    assert "ps_error" not in p.extra_metrics(torch.zeros(1, dtype=torch.float64), 0.0)


# ----------------------------------------------------------------------------- no gradient through D
def test_dsgd_gd_uses_the_sample_gradient_at_a_fixed_sample():
    net, p, algo = setup(*GM, "problem.eps_mean=0.9", "problem.batch_size=3")
    x = torch.linspace(-2.0, 3.0, 25, dtype=torch.float64)[:, None]
    t = 7
    # the sample Z_i ~ D_i(x_i), written out: zbar_i + eps_i x_i + sigma w, w keyed (seed, PROBLEM, t, agent)
    w = torch.as_tensor(normal_steps(Key(0, Stream.PROBLEM), range(t, t + 1), range(25), 3, 25)).view(25, 3, 1)
    Z = p.zbar[:, None, :] + p.eps[:, None, :] * x[:, None, :] + w
    np.testing.assert_allclose(p.sample(x, t), Z, atol=1e-13)
    # the algorithm's gradient = d/dtheta mean_b (theta - Z_b)^2 / 2 with Z held fixed ...
    g = algo.gradient(x, t)
    theta = x.clone().requires_grad_(True)
    (((theta[:, None, :] - Z) ** 2).sum() / 2 / 3).backward()
    np.testing.assert_allclose(g, theta.grad, atol=1e-13)
    np.testing.assert_allclose(g, x - Z.mean(1), atol=1e-13)
    # ... not the derivative through the distribution, (1 - eps_i)(theta - Z), which targets theta_PO
    theta2 = x.clone().requires_grad_(True)
    Z2 = p.zbar[:, None, :] + p.eps[:, None, :] * theta2[:, None, :] + w
    (((theta2[:, None, :] - Z2) ** 2).sum() / 2 / 3).backward()
    assert not torch.allclose(g, theta2.grad)
    # and one full step: theta^1 = W theta^0 - gamma_1 grad, gamma_1 = a0 / (a1 + 1), W = ring weights 1/3
    W = torch.as_tensor(net.graph.adjacency.toarray() / 3.0) + torch.eye(25, dtype=torch.float64) / 3.0
    state = {"x": x.clone()}
    net.begin(t)
    algo.step(state, t)
    gamma = algo.cfg.a0 / (algo.cfg.a1 + t + 1)
    np.testing.assert_allclose(state["x"], W @ x - gamma * (x - Z.mean(1)), atol=1e-12)


@pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(), reason="no Spambase copy")
def test_strategic_spam_gradient_holds_the_shifted_sample_fixed():
    net, p, algo = setup("algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SHARED_DATA / 'spambase'}",
                         "problem.eps_mean=0.5", "problem.batch_size=4", "graph.n=5", "run.dtype=float64", "run.seed=2")
    x = torch.as_tensor(np.random.default_rng(1).normal(scale=0.3, size=(5, p.d)))
    t = 3
    A, y = p.sample(x, t)
    # the base samples, written out: indices into agent i's shard keyed (seed, BATCH, t, agent) in the
    # iteration-major layout, the shard being agent i's part of the keyed iid split of the training set
    xtr, ytr, _, _ = spambase_split(SHARED_DATA / "spambase", 48, True, False, 0.25)
    shards = [np.sort(part)[: p.m] for part in partition("iid", ytr, 5, 2)]
    idx = integers_steps(Key(2, Stream.BATCH), range(t, t + 1), range(5), 4, 5, p.m)[0]
    rows = np.stack([shard[i] for shard, i in zip(shards, idx)])                 # (agents, batch)
    assert A.shape == (5, 1, 4, p.d)                                              # (agents, replicas, batch, d)
    np.testing.assert_array_equal(y[:, 0], ytr[rows])
    # the users shifted their features by +eps_i x_i
    np.testing.assert_allclose(A[:, 0] - torch.as_tensor(xtr[rows]), (p.eps * x)[:, None, :].expand(5, 4, p.d),
                               atol=1e-12)
    theta = x.clone().requires_grad_(True)
    z = torch.einsum("nbd,nd->nb", A[:, 0], theta)
    loss = (torch.nn.functional.softplus(z) - y[:, 0] * z).mean(1).sum() + 0.5 * p.reg * (theta * theta).sum()
    loss.backward()
    np.testing.assert_allclose(algo.gradient(x, t), theta.grad, atol=1e-12)


# ----------------------------------------------------------------------------- convergence / divergence
def test_dsgd_gd_reaches_theta_ps_at_rate_one_over_t_with_some_unstable_agents():
    r = decopt.run(*GM, "problem.eps_mean=0.9", "problem.zbar_high=1", "algo.a0=20", "algo.a1=1000",
                   "run.iterations=30000", run_dir=False)
    assert r.summary["status"] == "completed"
    it, ps = np.array(r.metrics["iteration"]), np.array(r.metrics["ps_error"])
    assert len(it) > 60                                            # a geometric grid: ~20 rows per decade
    assert ps[-1] < 0.2                                            # |theta_PS|^2 is about 30
    tail = it >= 3000
    slope = np.polyfit(np.log(it[tail]), np.log(ps[tail]), 1)[0]
    assert slope < -0.9, slope                                     # O(1/t) (or faster) on a log-log fit
    assert r.metrics["consensus_error"][-1] < 1e-2


def test_dsgd_gd_diverges_when_eps_avg_exceeds_one():
    r = decopt.run(*GM[:-1], "problem.eps_mean=1.1", "run.iterations=1000000", run_dir=False)
    s = r.summary
    assert s["status"] == "diverged"
    assert s["iterations"] < 1000000
    final = s["final"]
    assert final and all(math.isfinite(v) for v in final.values() if isinstance(v, float))
    assert final["risk"] > 1e10                                    # it blew up before stopping
    assert all(math.isfinite(v) for v in r.metrics["risk"])


def test_a_single_isolated_agent_with_eps_above_one_diverges():
    g = Graph.from_edges(1, [], name="single")
    net = StackedNetwork(g, Links(g), dtype=torch.float64)
    p = GaussianMean(GaussianMeanConfig(eps=[1.01]), net, 0)
    algo = DSGDGD(DSGDGDConfig(a0=100.0, a1=2000.0), net, p, Identity(64))
    state = algo.init(p.x0())
    marks, sizes = (100, 1000, 10000, 30000), []
    for t in range(marks[-1]):
        net.begin(t)
        state = algo.step(state, t)
        if t + 1 in marks:
            sizes.append(abs(float(state["x"][0, 0])))
    assert p.theta_ps is None                                      # no stable point for eps = 1.01 alone
    assert all(b > 2 * a for a, b in zip(sizes, sizes[1:])), sizes   # grows like t^(a0 (eps - 1)) = t
    # the same schedule converges in a 25-agent ring whose average sensitivity is 0.9
    r = decopt.run(*GM, "problem.eps_mean=0.9", "problem.zbar_high=1", "algo.a0=100", "algo.a1=2000",
                   "run.iterations=30000", run_dir=False)
    assert r.summary["status"] == "completed" and r.metrics["ps_error"][-1] < 1.0


@pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(), reason="no Spambase copy")
def test_strategic_spam_runs_towards_its_stable_point():
    r = decopt.run("algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SHARED_DATA / 'spambase'}",
                   "problem.eps_mean=0.1", "problem.batch_size=8", "algo.a0=50", "algo.a1=500", "graph.n=25",
                   "run.dtype=float64", "run.iterations=5000", run_dir=False)
    m = r.metrics
    assert r.summary["status"] == "completed"
    assert "ps_error" in m                                         # repeated risk minimisation converged
    assert m["ps_error"][-1] < 0.1 * m["ps_error"][0]
    assert m["grad_norm_sq"][-1] < 0.05 * m["grad_norm_sq"][0]   # gradient on data shifted by xbar itself
    assert m["accuracy"][-1] > 0.8
