"""DoCoM and the baselines of the DoCoM / TiCoPD / FSPDA papers: invariants, exact convergence with
deterministic gradients, CHOCO consensus under top-k, and one hand-computed step per algorithm."""
import numpy as np
import pytest
import torch

import decopt
from decopt.cli import compose
from decopt.compressors import SCHEMAS as COMPRESSORS
from decopt.config import validate
from decopt.runner import build

F64 = ("run.dtype=float64",)
SMALL = ("problem.dim=5", "problem.samples=20", "graph.n=8", *F64)


def setup(*overrides):
    graph, net, problem, algo = build(validate(compose(list(overrides))))
    return net, problem, algo


def step(net, algo, state, t):
    net.begin(t)
    return algo.step(state, t)


# ----------------------------------------------------------------------------- DoCoM invariants
def _compressor_overrides():
    out = []
    for name in sorted(COMPRESSORS):
        extra = {"topk": ("compressor.ratio=0.2",), "randk": ("compressor.ratio=0.2",)}.get(name, ())
        out.append(pytest.param((f"compressor={name}", *extra), id=name))
    return out


@pytest.mark.parametrize("comp", _compressor_overrides())
def test_docom_invariants_hold_after_every_step_for_any_compressor(comp):
    try:
        net, problem, algo = setup("algo=docom", *SMALL, "problem.batch_size=4", "algo.lr=0.05", *comp)
    except Exception as exc:                      # a compressor that needs more settings than its defaults
        pytest.skip(reason=f"{comp}: {exc}")
    eta = algo.cfg.lr
    state = algo.init(problem.x0())
    mean = lambda X: X.mean(0)
    assert torch.allclose(mean(state["g"]), mean(state["v"]), atol=1e-13, rtol=0)
    for t in range(40):
        x, g = state["x"].clone(), state["g"].clone()
        state = step(net, algo, state, t)
        np.testing.assert_allclose(mean(state["g"]), mean(state["v"]), atol=1e-12, rtol=0)
        np.testing.assert_allclose(mean(state["x"]), mean(x) - eta * mean(g), atol=1e-12, rtol=0)
    assert torch.isfinite(state["x"]).all()


def test_docom_pytorch_variant_keeps_the_tracking_invariant():
    net, problem, algo = setup("algo=docom", "algo.variant=pytorch", *SMALL, "problem.batch_size=4",
                               "compressor=topk", "compressor.ratio=0.2")
    state = algo.init(problem.x0())
    for t in range(30):
        x = state["x"].clone()
        state = step(net, algo, state, t)
        np.testing.assert_allclose(state["g"].mean(0), state["v"].mean(0), atol=1e-12, rtol=0)
        # the official code moves theta with the tracker it has just updated
        np.testing.assert_allclose(state["x"].mean(0), x.mean(0) - algo.cfg.lr * state["g"].mean(0), atol=1e-12)


@pytest.mark.parametrize("over,direction,after", [
    (("algo=docom",), "g", False),
    (("algo=docom", "algo.variant=pytorch"), "g", True),       # moves with the tracker it has just updated
    (("algo=beer",), "v", False),
    (("algo=beer", "algo.variant=pytorch"), "v", True),
    (("algo=choco",), None, False),
    (("algo=choco", "algo.variant=pytorch"), None, False),
    (("algo=choco", "graph.links=bernoulli", "graph.link_p=0.5"), None, False),
], ids=["docom", "docom-pytorch", "beer", "beer-pytorch", "choco", "choco-pytorch", "choco-random-links"])
def test_gradient_step_follows_the_lr_schedule(over, direction, after):
    """``schedule=inverse``: the mean iterate moves by -lr / (a1 + t) times the mean step direction
    (the tracker, or the gradient for CHOCO), since every gossip term has zero mean."""
    net, problem, algo = setup(*over, *SMALL, "problem.batch_size=4", "compressor=topk", "compressor.ratio=0.4",
                               "algo.lr=0.3", "algo.schedule=inverse", "algo.a1=2")
    state = algo.init(problem.x0())
    for t in range(6):
        x = state.x.clone()
        d = problem.grad(x, t) if direction is None else state[direction].clone()
        state = step(net, algo, state, t)
        d = state[direction] if after else d
        np.testing.assert_allclose(state.x.mean(0), x.mean(0) - 0.3 / (2 + t) * d.mean(0), atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- exact convergence
def _final(*overrides):
    r = decopt.run(*SMALL, *overrides, run_dir=False)
    assert r.summary["status"] == "completed"
    return r.summary["final"]


@pytest.mark.parametrize("algo", [
    pytest.param(("algo=docom", "algo.lr=0.05", "algo.gamma=0.5"), id="docom"),
    pytest.param(("algo=docom", "algo.lr=0.05", "algo.gamma=0.2", "compressor=topk", "compressor.ratio=0.4",
                  "compressor.value_bits=64"), id="docom-topk"),
    pytest.param(("algo=beer", "algo.lr=0.05", "algo.gamma=0.5"), id="beer"),
    pytest.param(("algo=diging", "algo.lr=0.05"), id="diging"),
    pytest.param(("algo=diging", "algo.lr=0.05", "graph.links=bernoulli", "graph.link_p=0.5"), id="diging-random"),
])
def test_tracking_methods_converge_exactly_with_deterministic_gradients(algo):
    f = _final(*algo, "run.iterations=6000", "run.eval_every=3000")
    assert f["dist_opt"] < 1e-20            # ||xbar - x*||^2, float64
    assert f["grad_norm_sq"] < 1e-20
    assert f["consensus_error"] < 1e-20


def test_dsgd_with_a_constant_step_does_not_converge_exactly():
    f = _final("algo=dsgd", "algo.lr=0.05", "run.iterations=6000", "run.eval_every=3000")
    assert f["dist_opt"] > 1e-4
    assert f["consensus_error"] > 1e-4


# ----------------------------------------------------------------------------- CHOCO consensus
def _consensus_errors(net, algo, x0, steps, every):
    state = algo.init(x0)
    errs = []
    for t in range(steps):
        state = step(net, algo, state, t)
        if (t + 1) % every == 0:
            X = state["x"]
            errs.append(float(((X - X.mean(0)) ** 2).sum(1).mean()))
    return errs, state


@pytest.mark.parametrize("links,steps", [((), 300), (("graph.links=one_edge",), 3000),
                                         (("graph.links=bernoulli", "graph.link_p=0.3"), 1000)],
                         ids=["static", "one_edge", "bernoulli"])
def test_choco_topk_on_a_ring_reaches_consensus_with_falling_error(links, steps):
    # pure gossip: a negligible gradient step, distinct starting points; top-k keeps 1 of 5 entries
    net, problem, algo = setup("algo=choco", "algo.lr=1e-300", "algo.gamma=0.3", *SMALL, "compressor=topk",
                               "compressor.ratio=0.2", "compressor.value_bits=64", *links)
    x0 = torch.as_tensor(np.random.default_rng(0).normal(size=(8, 5)))
    errs, state = _consensus_errors(net, algo, x0, steps, steps // 10)
    e0 = float(((x0 - x0.mean(0)) ** 2).sum(1).mean())
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-12 * e0
    np.testing.assert_allclose(state["x"].mean(0), x0.mean(0), atol=1e-12)   # gossip keeps the average


def test_choco_topk_with_sgd_drives_the_consensus_error_down():
    r = decopt.run("algo=choco", "algo.gamma=0.3", *SMALL, "compressor=topk", "compressor.ratio=0.2",
                   "problem.heterogeneity=0", "problem.noise=0", "run.iterations=3000", "run.eval_every=500",
                   run_dir=False)
    ce = r.metrics["consensus_error"][2:]
    assert all(b < a for a, b in zip(ce, ce[1:])), ce
    assert ce[-1] < 1e-20


# ----------------------------------------------------------------------------- hand-computed steps
N3 = ("graph.n=3", "problem.dim=2", "problem.samples=4", *F64)     # a triangle: every W_ij = 1/3
W3 = np.full((3, 3), 1.0 / 3.0)
X0 = np.array([0.5, -1.0])


def tiny(*overrides):
    net, problem, algo = setup(*N3, *overrides)
    A, b = problem.A.numpy(), problem.b.numpy()
    grad = lambda X: np.stack([A[i].T @ (A[i] @ X[i] - b[i]) / A.shape[1] for i in range(3)])
    return net, problem, algo, grad


def start(problem):
    return problem.x0() + torch.as_tensor(X0)


def top1(V):
    """Top-1 of 2 coordinates, per row (ratio 0.5)."""
    out = np.zeros_like(V)
    k = np.abs(V).argmax(1)
    out[np.arange(len(V)), k] = V[np.arange(len(V)), k]
    return out


@pytest.mark.parametrize("comp", [((), lambda V: V), (("compressor=topk", "compressor.ratio=0.5",
                                                       "compressor.value_bits=64"), top1)], ids=["none", "top1"])
def test_docom_step_by_hand(comp):
    overrides, Q = comp
    net, problem, algo, grad = tiny("algo=docom", "algo.copy_init=x0", "algo.lr=0.1", "algo.gamma=0.4", "algo.beta=0.3",
                                    *overrides)
    eta, gamma, beta, I = 0.1, 0.4, 0.3, np.eye(3)
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); g = v = grad(x); xh = x.copy(); gh = np.zeros_like(x)
    for t in range(3):
        state = step(net, algo, state, t)
        x_half = x - eta * g
        xh = xh + Q(x_half - xh)
        x_new = x_half + gamma * (W3 - I) @ xh
        v_new = grad(x_new) + (1 - beta) * (v - grad(x))
        g_half = g + v_new - v
        gh = gh + Q(g_half - gh)
        g = g_half + gamma * (W3 - I) @ gh
        x, v = x_new, v_new
        for key, want in (("x", x), ("g", g), ("v", v), ("x_hat", xh), ("g_hat", gh)):
            np.testing.assert_allclose(state[key].numpy(), want, atol=1e-13, err_msg=f"{key} at t={t}")


def test_docom_pytorch_variant_step_by_hand():
    net, problem, algo, grad = tiny("algo=docom", "algo.variant=pytorch", "algo.copy_init=x0", "algo.lr=0.1",
                                    "algo.gamma=0.4", "algo.beta=0.3")
    eta, gamma, beta, I = 0.1, 0.4, 0.3, np.eye(3)
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); g = v = grad(x); xh = x.copy(); gh = np.zeros_like(x); x_prev = None
    for t in range(3):
        state = step(net, algo, state, t)
        if t > 0:
            v_new = grad(x) + (1 - beta) * (v - grad(x_prev))
            g = g + v_new - v + gamma * (W3 - I) @ gh        # previous g-hat
            gh = gh + (g - gh)
            v = v_new
        x_prev = x
        x = x - eta * g + gamma * (W3 - I) @ xh              # previous theta-hat
        xh = xh + (x - xh)
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13, err_msg=f"t={t}")
        np.testing.assert_allclose(state["g"].numpy(), g, atol=1e-13, err_msg=f"t={t}")


def test_beer_step_by_hand():
    net, problem, algo, grad = tiny("algo=beer", "algo.copy_init=x0", "algo.lr=0.1", "algo.gamma=0.4", "compressor=topk",
                                    "compressor.ratio=0.5", "compressor.value_bits=64")
    eta, gamma, I = 0.1, 0.4, np.eye(3)
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); v = grad(x); h = x.copy(); gc = np.zeros_like(x)
    for t in range(3):
        state = step(net, algo, state, t)
        x_new = x - eta * v + gamma * (W3 - I) @ h
        h = h + top1(x_new - h)
        v = v + gamma * (W3 - I) @ gc + grad(x_new) - grad(x)
        gc = gc + top1(v - gc)
        x = x_new
        for key, want in (("x", x), ("v", v), ("h", h), ("g_hat", gc)):
            np.testing.assert_allclose(state[key].numpy(), want, atol=1e-13, err_msg=f"{key} at t={t}")


def test_choco_step_by_hand():
    net, problem, algo, grad = tiny("algo=choco", "algo.copy_init=x0", "algo.lr=0.1", "algo.gamma=0.4", "compressor=topk",
                                    "compressor.ratio=0.5", "compressor.value_bits=64")
    eta, gamma, I = 0.1, 0.4, np.eye(3)
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); xh = x.copy()
    for t in range(3):
        state = step(net, algo, state, t)
        x_half = x - eta * grad(x)
        xh = xh + top1(x_half - xh)
        x = x_half + gamma * (W3 - I) @ xh
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13, err_msg=f"t={t}")
        np.testing.assert_allclose(state["x_hat"].numpy(), xh, atol=1e-13, err_msg=f"t={t}")


def test_choco_random_links_step_by_hand():
    net, problem, algo, grad = tiny("algo=choco", "algo.lr=0.1", "algo.gamma=0.4", "graph.links=one_edge")
    eta, gamma = 0.1, 0.4
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)) + np.arange(3)[:, None]
    state.x = torch.as_tensor(x)
    h = {}                                            # h[(i, j)]: i's copy as j knows it (starts at 0)
    for t in range(4):
        net.begin(t)
        i, j = net.graph.edges[int(np.flatnonzero(net.active)[0])]
        state = algo.step(state, t)
        x_half = x - eta * grad(x)
        for a, b in ((i, j), (j, i)):
            h[(a, b)] = x_half[a].copy()              # exact compressor: the copy becomes x_half
        x = x_half.copy()
        x[i] += gamma / 3 * (h[(j, i)] - h[(i, j)])
        x[j] += gamma / 3 * (h[(i, j)] - h[(j, i)])
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13, err_msg=f"t={t}")


@pytest.mark.parametrize("name", ["diging", "gnsd"])
def test_gradient_tracking_step_by_hand(name):
    net, problem, algo, grad = tiny(f"algo={name}", "algo.lr=0.1")
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); y = grad(x)
    for t in range(3):
        state = step(net, algo, state, t)
        x_new = W3 @ x - 0.1 * y
        y = W3 @ y + grad(x_new) - grad(x)
        x = x_new
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13)
        np.testing.assert_allclose(state["y"].numpy(), y, atol=1e-13)


def test_gt_hsgd_step_by_hand():
    net, problem, algo, grad = tiny("algo=gt_hsgd", "algo.lr=0.1", "algo.beta=0.3")
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); v = y = grad(x)
    for t in range(3):
        state = step(net, algo, state, t)
        x_new = W3 @ (x - 0.1 * y)
        v_new = grad(x_new) + 0.7 * (v - grad(x))
        y = W3 @ (y + v_new - v)
        x, v = x_new, v_new
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13)
        np.testing.assert_allclose(state["y"].numpy(), y, atol=1e-13)


def test_storm_uses_one_minibatch_at_both_points():
    """Stochastic DoCoM: V^{t+1} - grad(x^{t+1}; xi) = (1 - beta)(V^t - grad(x^t; xi)) with the SAME xi."""
    net, problem, algo = setup("algo=docom", *SMALL, "problem.batch_size=3", "algo.beta=0.25")
    state = algo.init(problem.x0())
    for t in range(3):
        x, v = state["x"].clone(), state["v"].clone()
        state = step(net, algo, state, t)
        want = problem.grad(state["x"], t) + 0.75 * (v - problem.grad(x, t))
        np.testing.assert_allclose(state["v"], want, atol=1e-13)


def test_samples_column_counts_two_gradients_per_docom_iteration():
    r = decopt.run("algo=docom", *SMALL, "problem.batch_size=4", "run.iterations=10", "run.eval_every=5",
                   run_dir=False)
    # b0 = full local data (20 samples) once, then 2 x 4 samples per iteration, summed over 8 agents
    assert r.metrics["samples"] == [8 * 20, 8 * (20 + 2 * 4 * 5), 8 * (20 + 2 * 4 * 10)]
    d = decopt.run("algo=dsgd", *SMALL, "problem.batch_size=4", "run.iterations=10", "run.eval_every=5",
                   run_dir=False)
    assert d.metrics["samples"] == [0, 8 * 4 * 5, 8 * 4 * 10]


def test_two_compressed_rounds_per_docom_iteration_are_counted_in_bits():
    r = decopt.run("algo=docom", *SMALL, "run.iterations=3", "run.eval_every=3", run_dir=False)
    assert r.metrics["bits"][-1] == 3 * 2 * 8 * 5 * 64          # two fp64 broadcasts of d = 5 per agent


@pytest.mark.parametrize("name", ["docom", "beer"])
def test_static_only_methods_refuse_random_links(name):
    from decopt.errors import ConfigError
    with pytest.raises(ConfigError, match="static"):
        validate(compose([f"algo={name}", "graph.links=one_edge"]))


@pytest.mark.parametrize("name", ["docom", "beer", "choco", "diging", "gnsd", "gt_hsgd", "swarm_sgd"])
def test_default_hyper_parameters_converge_on_the_default_problem(name):
    links = ("graph.links=one_edge",) if name == "swarm_sgd" else ()
    r = decopt.run(f"algo={name}", *links, "run.iterations=3000", "run.eval_every=1000", *F64, run_dir=False)
    g = r.metrics["grad_norm_sq"]
    assert r.summary["status"] == "completed"
    assert g[-1] < 1e-2 * g[0]


def test_swarm_sgd_step_by_hand():
    net, problem, algo, grad = tiny("algo=swarm_sgd", "algo.lr=0.1", "algo.local_steps=2", "graph.links=one_edge",
                                    "graph.mixing=constant", "graph.weight=0.5")
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)) + np.arange(3)[:, None]
    state.x = torch.as_tensor(x)
    for t in range(4):
        net.begin(t)
        i, j = net.graph.edges[int(np.flatnonzero(net.active)[0])]
        state = algo.step(state, t)
        for _ in range(2):
            x = x - 0.1 * grad(x)                     # two local steps (full batch)
        x[[i, j]] = (x[i] + x[j]) / 2                 # the interacting pair averages
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13, err_msg=f"t={t}")


def test_swarm_sgd_needs_random_links_and_gossips_to_consensus():
    from decopt.errors import ConfigError
    with pytest.raises(ConfigError, match="random links"):
        validate(compose(["algo=swarm_sgd"]))
    net, problem, algo = setup("algo=swarm_sgd", "algo.lr=1e-300", *SMALL, "graph.links=one_edge",
                               "graph.mixing=constant", "graph.weight=0.5")
    x0 = torch.as_tensor(np.random.default_rng(0).normal(size=(8, 5)))
    errs, state = _consensus_errors(net, algo, x0, 600, 60)        # pairwise averaging never increases it
    assert all(b < a for a, b in zip(errs, errs[1:])) and errs[-1] < 1e-10, errs
    np.testing.assert_allclose(state["x"].mean(0), x0.mean(0), atol=1e-12)


# ----------------------------------------------------------------------------- official-code variants
MU = 0.9                                              # the authors' --momentum_factor default


def test_beer_pytorch_variant_with_momentum_step_by_hand():
    """The DoCoM code's ParallelBEER_V: iteration 0 only moves x; then the tracker takes the fresh
    gradient minus the previous one and gossips on the previous copies; heavy ball on the tracker."""
    net, problem, algo, grad = tiny("algo=beer", "algo.variant=pytorch", "algo.copy_init=x0", f"algo.momentum={MU}", "algo.lr=0.1",
                                    "algo.gamma=0.4", "compressor=topk", "compressor.ratio=0.5",
                                    "compressor.value_bits=64")
    eta, gamma, I = 0.1, 0.4, np.eye(3)
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); v = grad(x); h = x.copy(); gc = np.zeros_like(x); buf = np.zeros_like(x); g_prev = None
    for t in range(4):
        state = step(net, algo, state, t)
        if t > 0:
            v = v + grad(x) - g_prev + gamma * (W3 - I) @ gc
            gc = gc + top1(v - gc)
        g_prev = grad(x)
        buf = MU * buf + v
        x = x - eta * buf + gamma * (W3 - I) @ h
        h = h + top1(x - h)
        for key, want in (("x", x), ("v", v), ("h", h), ("g_hat", gc), ("momentum", buf)):
            np.testing.assert_allclose(state[key].numpy(), want, atol=1e-13, err_msg=f"{key} at t={t}")


def test_choco_pytorch_variant_with_momentum_step_by_hand():
    """The authors' ParallelCHOCO_V: heavy-ball SGD step, gossip on the previous copies (x_hat^0 = 0),
    then the post-gossip iterate is compressed."""
    net, problem, algo, grad = tiny("algo=choco", "algo.variant=pytorch", f"algo.momentum={MU}", "algo.lr=0.1",
                                    "algo.gamma=0.4", "compressor=topk", "compressor.ratio=0.5",
                                    "compressor.value_bits=64")
    eta, gamma, I = 0.1, 0.4, np.eye(3)
    state = algo.init(start(problem))
    x = np.tile(X0, (3, 1)); xh = np.zeros_like(x); buf = np.zeros_like(x)
    for t in range(4):
        state = step(net, algo, state, t)
        buf = MU * buf + grad(x)
        x = x - eta * buf + gamma * (W3 - I) @ xh
        xh = xh + top1(x - xh)
        np.testing.assert_allclose(state["x"].numpy(), x, atol=1e-13, err_msg=f"t={t}")
        np.testing.assert_allclose(state["x_hat"].numpy(), xh, atol=1e-13, err_msg=f"t={t}")


def test_docom_momentum_moves_theta_with_the_heavy_ball_of_the_tracker():
    net, problem, algo, grad = tiny("algo=docom", "algo.variant=pytorch", f"algo.momentum={MU}", "algo.lr=0.1",
                                    "algo.gamma=0.4", "algo.beta=0.3")
    state = algo.init(start(problem))
    buf = np.zeros((3, 2))
    for t in range(4):
        x = state["x"].numpy().copy()
        state = step(net, algo, state, t)
        buf = MU * buf + state["g"].numpy()            # the tracker this step moves theta with
        np.testing.assert_allclose(state["momentum"].numpy(), buf, atol=1e-13)
        # 1^T (W - I) = 0: the gossip term leaves the mean, which moves by -eta mean(buf)
        np.testing.assert_allclose(state["x"].numpy().mean(0), x.mean(0) - 0.1 * buf.mean(0), atol=1e-13)


def test_parallel_choco_with_exact_messages_and_unit_gamma_is_dgd():
    a = decopt.run("algo=choco", "algo.variant=pytorch", "algo.gamma=1", "algo.lr=0.05", *SMALL,
                   "run.iterations=50", "run.eval_every=10", run_dir=False)
    b = decopt.run("algo=dsgd", "algo.lr=0.05", *SMALL, "run.iterations=50", "run.eval_every=10", run_dir=False)
    for key in ("loss", "consensus_error", "dist_opt"):
        np.testing.assert_allclose(a.metrics[key], b.metrics[key], rtol=1e-10, atol=1e-15)


def test_parallel_choco_needs_static_links():
    from decopt.errors import ConfigError
    with pytest.raises(ConfigError, match="variant=pytorch needs a static graph"):
        validate(compose(["algo=choco", "algo.variant=pytorch", "graph.links=one_edge"]))
    validate(compose(["algo=choco", "graph.links=one_edge"]))        # the paper form runs on random links
