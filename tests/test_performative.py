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
from decopt.errors import ConfigError
from decopt.graphs import Graph, Links
from decopt.problems.gaussian_mean import GaussianMean, GaussianMeanConfig
from decopt.problems.partition import partition
from decopt.problems.performative import per_agent
from decopt.problems.spambase import spambase_split
from decopt.rng import Key, Stream, integers_steps, normal_steps
from decopt.runner import build

from conftest import SHARED_DATA, run_cli

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
    g = algo.problem.grad(x, t)
    theta = x.clone().requires_grad_(True)
    (((theta[:, None, :] - Z) ** 2).sum() / 2 / 3).backward()
    np.testing.assert_allclose(g, theta.grad, atol=1e-13)
    np.testing.assert_allclose(g, x - Z.mean(1), atol=1e-13)
    # ... not the derivative through the distribution, (1 - eps_i)(theta - Z), which targets theta_PO
    theta2 = x.clone().requires_grad_(True)
    Z2 = p.zbar[:, None, :] + p.eps[:, None, :] * theta2[:, None, :] + w
    (((theta2[:, None, :] - Z2) ** 2).sum() / 2 / 3).backward()
    assert not torch.allclose(g, theta2.grad)
    # and one full step: theta^1 = W theta^0 - gamma_1 grad, gamma_1 = lr / (a1 + 1), W = ring weights 1/3
    W = torch.as_tensor(net.graph.adjacency.toarray() / 3.0) + torch.eye(25, dtype=torch.float64) / 3.0
    state = algo.init(x)
    net.begin(t)
    state = algo.step(state, t)
    gamma = algo.cfg.lr / (algo.cfg.a1 + t + 1)
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
    np.testing.assert_allclose(algo.problem.grad(x, t), theta.grad, atol=1e-12)


# ----------------------------------------------------------------------------- convergence / divergence
def test_dsgd_gd_reaches_theta_ps_at_rate_one_over_t_with_some_unstable_agents():
    r = decopt.run(*GM, "problem.eps_mean=0.9", "problem.zbar_high=1", "algo.lr=20", "algo.a1=1000",
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
    algo = DSGDGD(DSGDGDConfig(lr=100.0, a1=2000.0), net, p, Identity(64))
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
    r = decopt.run(*GM, "problem.eps_mean=0.9", "problem.zbar_high=1", "algo.lr=100", "algo.a1=2000",
                   "run.iterations=30000", run_dir=False)
    assert r.summary["status"] == "completed" and r.metrics["ps_error"][-1] < 1.0


@pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(), reason="no Spambase copy")
def test_strategic_spam_runs_towards_its_stable_point():
    r = decopt.run("algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SHARED_DATA / 'spambase'}",
                   "problem.eps_mean=0.1", "problem.batch_size=8", "algo.lr=50", "algo.a1=500", "graph.n=25",
                   "run.dtype=float64", "run.iterations=5000", run_dir=False)
    m = r.metrics
    assert r.summary["status"] == "completed"
    assert "ps_error" in m                                         # repeated risk minimisation converged
    assert m["ps_error"][-1] < 0.1 * m["ps_error"][0]
    assert m["grad_norm_sq"][-1] < 0.05 * m["grad_norm_sq"][0]   # gradient on data shifted by xbar itself
    assert m["accuracy"][-1] > 0.8


# ----------------------------------------------------------------------------- a given instance
GIVEN = ("algo=dsgd_gd", "problem=gaussian_mean", "graph=ring", "graph.n=5", "run.dtype=float64",
         "problem.eps=[0.2,1.3,0.5,0.9,0.6]", "problem.zbar=[1,-2,3.5,0.25,4]")


def test_gaussian_mean_takes_the_given_eps_and_zbar_and_their_closed_form_theta_ps():
    _, p, _ = setup(*GIVEN)
    np.testing.assert_array_equal(p.eps[:, 0], [0.2, 1.3, 0.5, 0.9, 0.6])
    np.testing.assert_array_equal(p.zbar[:, 0], [1.0, -2.0, 3.5, 0.25, 4.0])
    # by hand: eps_avg = 3.5 / 5 = 0.7, sum zbar = 6.75, theta_PS = 6.75 / (5 (1 - 0.7)) = 4.5
    assert p.eps_avg == pytest.approx(0.7, abs=1e-15)
    assert float(p.theta_ps[0]) == pytest.approx(4.5, abs=1e-14)
    # dim 2, two replicas: a number is every coordinate's, a list one per coordinate; every replica the same
    _, p2, _ = setup(*GIVEN[:-1], "problem.zbar=[[1,2],-2,3.5,0.25,[4,-1]]", "problem.dim=2", "problem.replicas=2")
    np.testing.assert_array_equal(p2.zbar, [[1, 2, 1, 2], [-2, -2, -2, -2], [3.5, 3.5, 3.5, 3.5],
                                            [0.25, 0.25, 0.25, 0.25], [4, -1, 4, -1]])
    # coordinate 2: sum zbar = 2 - 2 + 3.5 + 0.25 - 1 = 2.75, theta_PS = 2.75 / 1.5
    np.testing.assert_allclose(p2.theta_ps, [4.5, 2.75 / 1.5, 4.5, 2.75 / 1.5], rtol=1e-14)
    # an MPI rank holding agents 3 and 4 takes their entries (global agent ids)
    np.testing.assert_array_equal(per_agent("problem.zbar", [[1, 2], -2, 3.5, 0.25, [4, -1]], 5, [3, 4], (2,)),
                                  [[0.25, 0.25], [4, -1]])


def test_gaussian_mean_run_on_a_given_instance_reaches_its_theta_ps():
    """With the exact expected gradient (batch_size=null, no noise) the only error left in Theorem 1
    is the gamma_t^2 term (the consensus bias of heterogeneous agents): the PS error falls like 1/t^2
    to theta_PS = 4.5, and it would level off at |theta - 4.5|^2 > 0 for any other limit."""
    r = decopt.run(*GIVEN, "problem.batch_size=null", "algo.lr=20", "algo.a1=100", "run.iterations=20000",
                   run_dir=False)
    assert r.summary["status"] == "completed"
    it, ps = np.array(r.metrics["iteration"]), np.array(r.metrics["ps_error"])
    assert ps[0] == pytest.approx(4.5 ** 2)                        # theta^0 = 0
    assert ps[-1] < 1e-6                                           # 20.25 -> ~1e-7 (gamma_T = 1e-3)
    tail = it >= 1000
    slope = np.polyfit(np.log(it[tail]), np.log(ps[tail]), 1)[0]
    assert -2.3 < slope < -1.7, slope                              # gamma_t^2 ~ 1/t^2: still falling, no floor


@pytest.mark.parametrize("overrides,message", [
    (("graph.n=4", "problem.zbar=[1,2,3]"), "problem.zbar: 3 values for graph.n=4 agents; give one per agent or null"),
    (("graph.n=4", "problem.eps=[0.1,0.2,0.3,0.4,0.5]"),
     "problem.eps: 5 values for graph.n=4 agents; give one per agent or null"),
    (("problem.zbar=[1,2,nan,4]",), "problem.zbar[2]=nan: must be a finite number"),
    (("problem.zbar=[1,abc,3,4]",), "problem.zbar[1]=abc: must be a number"),
    (("problem.zbar=[1,[2,3],3,4]",), "problem.zbar[1]=[2, 3]: must be a finite number or a list of problem.dim=1"),
    (("problem.eps=[0.5,-0.1,1,1]",), "problem.eps[1]=-0.1: must be a finite number >= 0"),
    (("problem.eps=[0.5,inf,1,1]",), "problem.eps[1]=inf: must be a finite number"),
])
def test_per_agent_lists_are_checked_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as info:
        setup("algo=dsgd_gd", "problem=gaussian_mean", "graph=ring", "graph.n=4", *overrides)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_per_agent_length_error_from_the_cli_is_one_line_and_exit_2(tmp_path):
    proc = run_cli("run", "algo=dsgd_gd", "problem=gaussian_mean", "graph=ring", "graph.n=4", "problem.zbar=[1,2,3]",
                   f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "decopt: error: problem.zbar: 3 values for graph.n=4 agents; give one per agent or null"]
    assert not (tmp_path / "metrics.csv").exists()


@pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(), reason="no Spambase copy")
@pytest.mark.parametrize("eps,message", [
    ("[0.1,0.2,0.3,0.4,0.5]", "problem.eps: 5 values for graph.n=4 agents; give one per agent or null"),
    ("[0.1,-0.2,0.3,0.4]", "problem.eps[1]=-0.2: must be a finite number >= 0"),
])
def test_strategic_spam_per_agent_eps_is_checked_in_one_line(eps, message):
    """strategic_spam's per-agent parameter (its eps_i; the loss, ridge and features are shared in
    the paper's model) is validated as gaussian_mean's, against graph.n."""
    with pytest.raises(ConfigError) as info:
        setup("algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SHARED_DATA / 'spambase'}", "graph=ring",
              "graph.n=4", f"problem.eps={eps}")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(), reason="no Spambase copy")
def test_strategic_spam_takes_the_given_eps_and_one_agent_s_value_moves_only_that_agent():
    spam = ("algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SHARED_DATA / 'spambase'}",
            "problem.batch_size=4", "graph.n=5", "run.dtype=float64")
    _, p, algo = setup(*spam, "problem.eps=[0.02,0.05,0.1,0.15,0.2]")
    _, q, algo_q = setup(*spam, "problem.eps=[0.02,0.05,0.3,0.15,0.2]")
    np.testing.assert_array_equal(p.eps[:, 0], [0.02, 0.05, 0.1, 0.15, 0.2])
    assert p.eps_avg == pytest.approx(0.104, abs=1e-15)
    x = torch.as_tensor(np.random.default_rng(3).normal(scale=0.3, size=(5, p.d)))
    (A, y), (B, z) = p.sample(x, 4), q.sample(x, 4)
    torch.testing.assert_close(y, z, rtol=0, atol=0)
    moved = [not torch.equal(A[i], B[i]) for i in range(5)]
    assert moved == [False, False, True, False, False]
    np.testing.assert_allclose(B[2] - A[2], 0.2 * x[2].expand_as(A[2]), atol=1e-12)   # (0.3 - 0.1) x_2
    g, h = algo.problem.grad(x, 4), algo_q.problem.grad(x, 4)
    assert [not torch.equal(g[i], h[i]) for i in range(5)] == [False, False, True, False, False]
    # theta_PS is the given instance's: grad f(theta; theta) = 0 there, not at the other instance's
    for prob, other in ((p, q), (q, p)):
        _, G = prob.loss_grad(prob.theta_ps.expand(5, p.d))
        assert float(G.mean(0).norm()) < 1e-9
        _, G = prob.loss_grad(other.theta_ps.expand(5, p.d))
        assert float(G.mean(0).norm()) > 1e-4
