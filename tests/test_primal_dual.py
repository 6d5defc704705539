"""TiCoPD (P1, P2), FSPDA (SA, STORM, async) and CP-SGD: exactness, the dual's role, shared
masks, noisy channels, hand-computed steps and bit counts (specs/ticopd.md, specs/fspda.md)."""
import csv
import functools
import itertools
import math

import numpy as np
import pytest
import torch

import decopt
from decopt.algorithms.cpsgd import CPSGD, CPSGDConfig
from decopt.algorithms.fspda import FSPDA, FSPDAConfig
from decopt.algorithms.fspda_storm import FSPDAStorm, FSPDAStormConfig
from decopt.algorithms.masked_gossip import CoordinateMasks
from decopt.algorithms.ticopd import TiCoPD, TiCoPDConfig
from decopt.algorithms.ticopd_robust import TiCoPDRobust, TiCoPDRobustConfig
from decopt.comm import StackedNetwork
from decopt.compressors import SCHEMAS as COMPRESSORS, build_compressor
from decopt.errors import ConfigError
from decopt.graphs import Graph, Links


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is ~100x faster than two on a loaded 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def run(*overrides):
    return decopt.run(*overrides, "run.progress=none", run_dir=False)


def final(*overrides):
    return run(*overrides).summary["final"]


# TiCoPD (P1): top-k 10 % on a ring of 10, deterministic gradients, float64 (spec §2.1 / [SIM])
TICOPD_RING = ("algo=ticopd", "graph=ring", "graph.n=10", "run.dtype=float64", "run.iterations=5000",
               "run.eval_every=1000")
TICOPD = (*TICOPD_RING, "compressor=topk", "compressor.ratio=0.1")
# FSPDA-SA: one edge per iteration, 10 % shared masks, complete graph (spec §2.7, smaller)
FSPDA_RUN = ("algo=fspda", "graph=complete", "graph.n=6", "graph.links=one_edge", "problem.dim=10",
             "problem.samples=20", "algo.eta=0.02", "run.dtype=float64", "run.iterations=8000",
             "run.eval_every=1000")


# --- exact convergence, and the heterogeneity bias without the dual --------------------------

def test_ticopd_topk_ring_converges_exactly():
    f = final(*TICOPD)
    assert f["grad_norm_sq"] < 1e-20 and f["consensus_error"] < 1e-20
    assert f["dist_opt"] < 1e-20


def test_fspda_one_edge_shared_masks_converges_exactly():
    f = final(*FSPDA_RUN)
    assert f["grad_norm_sq"] < 1e-20 and f["consensus_error"] < 1e-20


@pytest.mark.parametrize("base", [TICOPD, FSPDA_RUN], ids=["ticopd", "fspda"])
def test_without_the_dual_the_run_stalls_at_the_heterogeneity_bias(base):
    f = final(*base, "algo.eta=0")
    assert f["grad_norm_sq"] > 1e-2              # floor: ~0.17 (TiCoPD), ~0.5 (FSPDA) on this problem
    assert f["consensus_error"] > 1e-2


def test_fspda_storm_and_cpsgd_and_robust_converge_exactly():
    storm = final(*FSPDA_RUN, "algo=fspda_storm")
    assert storm["grad_norm_sq"] < 1e-20 and storm["consensus_error"] < 1e-20
    cp = final(*TICOPD, "algo=cpsgd")
    assert cp["grad_norm_sq"] < 1e-20 and cp["consensus_error"] < 1e-20
    robust = final("algo=ticopd_robust", "graph=ring", "graph.n=6", "graph.links=bernoulli", "graph.link_p=0.5",
                   "problem.dim=10", "problem.samples=20", "compressor=topk", "compressor.ratio=0.2",
                   "run.dtype=float64", "run.iterations=6000", "run.eval_every=2000")
    assert robust["grad_norm_sq"] < 1e-20 and robust["consensus_error"] < 1e-20


# --- the dual sum ---------------------------------------------------------------------------

def test_dual_sum_stays_zero_in_the_paper_form_and_drifts_with_the_official_dual():
    for base in (TICOPD, FSPDA_RUN):
        assert max(run(*base).metrics["dual_sum"]) < 1e-10
    official = final(*FSPDA_RUN, "algo.dual_update=official")
    assert official["dual_sum"] > 1e-2                       # own x^{t+1}, neighbour x^t
    assert official["grad_norm_sq"] > 1e-8                  # ... and a persistent bias


# --- shared masks ---------------------------------------------------------------------------

def _built(*overrides):
    from decopt.cli import compose
    from decopt.config import validate
    from decopt.runner import build

    return build(validate(compose(list(overrides))))


def test_both_endpoints_of_an_active_edge_use_the_same_keyed_mask():
    graph, net, problem, algo = _built(*FSPDA_RUN)
    X = torch.randn(net.n, problem.d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    k = max(1, int(problem.d * 0.1))
    fresh = CoordinateMasks(net.seed, [problem.d], 0.1)            # the receiver's own keyed draw
    seen = set()
    for t in range(20):
        net.begin(t)
        (e,) = np.flatnonzero(net.active)
        pos = net.active_out()
        assert list(net.out_arcs[pos]) == [2 * e, 2 * e + 1]
        rnd = algo.gossip.round(t, [X])
        flat_out, flat_in, sent, got = rnd.flat_out, rnd.flat_in, rnd.sent[0], rnd.got[0]
        mask = fresh.indices(t, [e])[0]
        i, j = graph.arcs[0][2 * e], graph.arcs[1][2 * e]
        assert mask.numel() == k and torch.equal(flat_out, flat_in)
        assert torch.equal(flat_out, torch.stack([i * problem.d + mask, j * problem.d + mask]))
        torch.testing.assert_close(sent, torch.stack([X[i, mask], X[j, mask]]), rtol=0, atol=0)
        torch.testing.assert_close(got, sent.flip(0), rtol=0, atol=0)   # i receives exactly what j sent
        seen.add(tuple(mask.tolist()))
    assert len(seen) > 5                                             # masks change with t


def test_coordinate_masks_per_tensor_keyed_and_uniform():
    draw = CoordinateMasks(seed=3, segments=[60, 4, 400], ratio=0.05)
    assert draw.kept == [3, 1, 20] and draw.k == 24
    idx = draw.indices(7, [4, 9, 11, 9])
    assert idx.shape == (4, 24) and torch.equal(idx[1], idx[3])
    for row in idx.tolist():                                         # k_l distinct coordinates per tensor
        parts = [row[:3], row[3:4], row[4:]]
        assert [len(set(p)) for p in parts] == [3, 1, 20]
        assert all(0 <= c < 60 for c in parts[0]) and 60 <= parts[1][0] < 64 and all(64 <= c < 464 for c in parts[2])
    assert torch.equal(draw.indices(7, [11])[0], idx[2])             # a row does not depend on the others
    assert not torch.equal(draw.indices(8, [11])[0], idx[2])
    hits = draw.masks(0, range(4000))[:, 64:].double().mean(0)       # each coordinate kept w.p. 20/400
    assert abs(float(hits.mean()) - 0.05) < 1e-12 and float(hits.std()) < 0.02


def test_unshared_masks_are_measurably_worse():
    shared, unshared = final(*FSPDA_RUN), final(*FSPDA_RUN, "algo.shared_mask=false")
    assert unshared["grad_norm_sq"] > 1e-4 > 1e12 * shared["grad_norm_sq"]
    assert unshared["dual_sum"] > 1.0


# --- noisy channel --------------------------------------------------------------------------

def test_noisy_channel_floor_grows_with_sigma():
    noisy = ("compressor=noisy", "compressor/inner=topk", "compressor.inner.ratio=0.1",
             "compressor.inner.value_bits=64")
    floors = [final(*TICOPD_RING, *noisy, f"compressor.sigma={s}")["grad_norm_sq"] for s in (0.0, 1e-3, 1e-2)]
    assert floors[0] < 1e-20
    assert 1e-12 < floors[1] < floors[2] / 10 and floors[2] < 1e-4


# --- asynchronous FSPDA ----------------------------------------------------------------------

def test_async_idle_agents_apply_the_deferred_drift_exactly():
    """With cbar = 1 every gradient is available, so async must equal the synchronous run; with
    cbar > 1 idle agents defer -eta*lambda, and the caught-up iterate is what metrics see."""
    sync = final(*FSPDA_RUN, "run.iterations=300")
    same = final(*FSPDA_RUN, "run.iterations=300", "algo.async_cbar=[1.0]")
    for key in ("grad_norm_sq", "consensus_error", "loss"):
        assert same[key] == pytest.approx(sync[key], rel=1e-10)
    graph, net, problem, algo = _built(*FSPDA_RUN, "algo.async_cbar=[3.0]")
    state = algo.init(problem.x0())
    idle_seen = False
    for t in range(200):
        net.begin(t)
        x_before, lam_before, drift_before = state["x"].clone(), state["lam"].clone(), state["drift"].clone()
        algo.step(state, t)
        idle = (state["drift"] > drift_before).squeeze(1)
        idle_seen |= bool(idle.any())
        assert torch.equal(state["x"][idle], x_before[idle])          # idle agents do not move
        assert torch.equal(state["lam"][idle], lam_before[idle])
    assert idle_seen
    with pytest.raises(ConfigError):
        _built(*FSPDA_RUN, "algo.async_cbar=[2.0]", "algo.momentum=0.9")


# --- hand-computed steps on 3 agents, d = 4 ---------------------------------------------------
# f_i(x) = ||x - b_i||^2 / 2, so grad f_i(x_i) = x_i - b_i. Triangle: edges (0,1), (0,2), (1,2).

X0 = np.array([[1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 3.0, 2.0], [2.0, -1.0, 1.5, 0.0]])
B = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 2.0], [-1.0, 1.0, 2.0, 1.0]])
LAM = np.array([[1.0, 0.0, -1.0, 0.5], [-0.5, 1.0, 0.0, 0.0], [-0.5, -1.0, 1.0, -0.5]])   # sums to 0
XHAT = np.array([[0.5, 0.75, 0.0, 0.0], [0.0, 0.5, 2.25, 1.0], [1.25, 0.0, 1.0, 0.5]])  # no top-1 ties in X0 - XHAT
EDGES = [(0, 1), (0, 2), (1, 2)]
INC = np.array([[1.0, -1.0, 0.0], [1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])         # A, rows = edges
LAP = INC.T @ INC                                                            # = 2I - (11^T - I)


class Quadratic:
    d, segments, batch_size = 4, [4], None

    def __init__(self):
        self.B = torch.tensor(B)

    def grad(self, X, t):
        return X - self.B


def _net(links="static", p=1.0):
    g = Graph.from_edges(3, EDGES, name="triangle")
    return StackedNetwork(g, Links(g, links, p, seed=5), seed=5, dtype=torch.float64)


def _topk1():
    cfg = COMPRESSORS["topk"](name="topk", ratio=0.25, value_bits=64)
    return build_compressor(cfg, 64)


def topk1(V):
    """Keep the largest-magnitude entry of each row (k = 1 of 4)."""
    out = np.zeros_like(V)
    j = np.abs(V).argmax(1)
    out[np.arange(len(V)), j] = V[np.arange(len(V)), j]
    return out


@pytest.mark.parametrize("dual_on,beta", [("xhat", 1.0), ("x", 1.0), ("xhat", 0.8)])
def test_ticopd_step_by_hand(dual_on, beta):
    alpha, eta, theta, gamma = 0.1, 0.2, 0.7, 0.9
    cfg = TiCoPDConfig(lr=alpha, eta=eta, theta=theta, gamma=gamma, dual_on=dual_on, beta=beta)
    net = _net()
    algo = TiCoPD(cfg, net, Quadratic(), _topk1())
    state = algo.init(torch.tensor(X0))
    state["lam"].copy_(torch.tensor(LAM))
    state["xhat"].copy_(torch.tensor(XHAT))
    state["lxhat"].copy_(torch.tensor(LAP @ XHAT))
    net.begin(0)
    algo.step(state, 0)
    C = topk1(X0 - XHAT)                                          # c_i = Q(x_i - x̂_i)
    G = X0 - B
    Xpull = beta * X0 + (1 - beta) * XHAT
    X1 = Xpull - alpha * (G + LAM + theta * LAP @ XHAT)           # (9a)
    L1 = LAM + eta * LAP @ (XHAT if dual_on == "xhat" else X0)    # (9b)
    H1 = XHAT + gamma * C                                         # (9c)
    np.testing.assert_allclose(state["x"], X1, atol=1e-14)
    np.testing.assert_allclose(state["lam"], L1, atol=1e-14)
    np.testing.assert_allclose(state["xhat"], H1, atol=1e-14)
    np.testing.assert_allclose(state["lxhat"], LAP @ H1, atol=1e-14)


def test_cpsgd_step_by_hand():
    lr, gamma, omega, alpha = 0.1, 0.6, 0.3, 0.8
    net = _net()
    algo = CPSGD(CPSGDConfig(lr=lr, gamma=gamma, omega=omega, alpha=alpha), net, Quadratic(), _topk1())
    state = algo.init(torch.tensor(X0))
    state["lam"].copy_(torch.tensor(LAM))
    state["xhat"].copy_(torch.tensor(XHAT))
    state["lxhat"].copy_(torch.tensor(LAP @ XHAT))
    net.begin(0)
    algo.step(state, 0)
    C = topk1(X0 - XHAT)
    LS = LAP @ (XHAT + C)
    np.testing.assert_allclose(state["x"], X0 - lr * (X0 - B) - lr * gamma * LS - lr * omega * LAM, atol=1e-14)
    np.testing.assert_allclose(state["lam"], LAM + lr * omega * LS, atol=1e-14)
    np.testing.assert_allclose(state["xhat"], XHAT + alpha * C, atol=1e-14)


@pytest.mark.parametrize("links,penalty_lr", [("static", "initial"), ("bernoulli", "scheduled")])
def test_ticopd_robust_step_by_hand(links, penalty_lr):
    alpha, eta, theta, gamma = 0.1, 0.2, 0.7, 0.9
    cfg = TiCoPDRobustConfig(lr=alpha, eta=eta, theta=theta, gamma=gamma, schedule="inverse", a1=2.0,
                             penalty_lr=penalty_lr)
    net = _net(links, 0.5)
    algo = TiCoPDRobust(cfg, net, Quadratic(), _topk1())
    state = algo.init(torch.tensor(X0))
    state["lam"].copy_(torch.tensor(LAM))
    rng = np.random.default_rng(0)
    Hs, Hd = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))     # mirrors of tail / head of each edge
    out, inn = np.empty((6, 4)), np.empty((6, 4))                  # arcs 2e = i->j, 2e+1 = j->i
    out[0::2], out[1::2], inn[0::2], inn[1::2] = Hs, Hd, Hd, Hs
    state["xhat_out"].copy_(torch.tensor(out))
    state["xhat_in"].copy_(torch.tensor(inn))
    t = 3
    net.begin(t)
    P = np.ones(3) if net.active is None else net.active.astype(float)
    algo.step(state, t)
    a_t = alpha / (2.0 + t)                                        # inverse schedule
    pen = (alpha if penalty_lr == "initial" else a_t) * theta
    S, Dm = (INC > 0).astype(float), (INC < 0).astype(float)       # tail / head pickers, A = S - Dm
    Z = P[:, None] * (Hs - Hd)
    X1 = X0 - a_t * ((X0 - B) + LAM) - pen * INC.T @ Z
    L1 = LAM + eta * INC.T @ Z
    Hs1 = Hs + gamma * P[:, None] * topk1(S @ X1 - Hs)
    Hd1 = Hd + gamma * P[:, None] * topk1(Dm @ X1 - Hd)
    np.testing.assert_allclose(state["x"], X1, atol=1e-14)
    np.testing.assert_allclose(state["lam"], L1, atol=1e-14)
    np.testing.assert_allclose(state["xhat_out"][0::2], Hs1, atol=1e-14)
    np.testing.assert_allclose(state["xhat_out"][1::2], Hd1, atol=1e-14)
    np.testing.assert_allclose(state["xhat_in"][0::2], Hd1, atol=1e-14)
    np.testing.assert_allclose(state["xhat_in"][1::2], Hs1, atol=1e-14)
    assert state.rows() == {"x": "agent", "lam": "agent", "xhat_out": "arc", "xhat_in": "arc"}


def _masked_laplacian(V, masks, P):
    """[L_t(V)]_i = sum_{(i,j) active} S_ij ⊙ (v_i - v_j), written edge by edge."""
    out = np.zeros_like(V)
    for e, (i, j) in enumerate(EDGES):
        if P[e]:
            out[i] += masks[e] * (V[i] - V[j])
            out[j] += masks[e] * (V[j] - V[i])
    return out


@pytest.mark.parametrize("links,dual_update", [("static", "paper"), ("bernoulli", "paper"), ("static", "official")])
def test_fspda_step_by_hand(links, dual_update):
    alpha, eta, gamma, beta = 0.1, 0.05, 0.5, 0.8
    cfg = FSPDAConfig(lr=alpha, eta=eta, gamma=gamma, beta=beta, mask_ratio=0.5, dual_update=dual_update)
    net = _net(links, 0.5)
    algo = FSPDA(cfg, net, Quadratic(), build_compressor(COMPRESSORS["none"](), 64))
    state = algo.init(torch.tensor(X0))
    state["lam"].copy_(torch.tensor(LAM))
    t = 4
    net.begin(t)
    P = np.ones(3, bool) if net.active is None else net.active
    masks = CoordinateMasks(net.seed, [4], 0.5).masks(t, [0, 1, 2]).numpy().astype(float)   # keyed (seed, t, edge)
    assert (masks.sum(1) == 2).all()
    algo.step(state, t)
    Lt = _masked_laplacian(X0, masks, P)
    X1 = X0 - alpha * (X0 - B) - eta * LAM - gamma * Lt                                    # (4a)
    if dual_update == "paper":
        L1 = LAM + beta * Lt                                                               # (4b)
    else:                                                                                  # own new, neighbour old
        L1 = LAM.copy()
        for e, (i, j) in enumerate(EDGES):
            if P[e]:
                L1[i] += beta * masks[e] * (X1[i] - X0[j])
                L1[j] += beta * masks[e] * (X1[j] - X0[i])
    np.testing.assert_allclose(state["x"], X1, atol=1e-14)
    np.testing.assert_allclose(state["lam"], L1, atol=1e-14)


@pytest.mark.parametrize("links", ["static", "bernoulli"])
def test_fspda_unshared_masks_step_by_hand(links):
    """shared_mask=false: each sender draws its own mask, keyed (seed, t, arc); agent i differences
    on the coordinates it received from j, S_{j->i} ⊙ (x_i - x_j), never on its own mask."""
    alpha, eta, gamma, beta = 0.1, 0.05, 0.5, 0.8
    cfg = FSPDAConfig(lr=alpha, eta=eta, gamma=gamma, beta=beta, mask_ratio=0.5, shared_mask=False)
    net = _net(links, 0.5)
    algo = FSPDA(cfg, net, Quadratic(), build_compressor(COMPRESSORS["none"](), 64))
    state = algo.init(torch.tensor(X0))
    state.lam.copy_(torch.tensor(LAM))
    t = 4
    net.begin(t)
    P = np.ones(3, bool) if net.active is None else net.active
    S = CoordinateMasks(net.seed, [4], 0.5).masks(t, range(6)).numpy().astype(float)   # arcs 2e = i->j, 2e+1 = j->i
    assert P.any() and (S[0::2] != S[1::2]).any()                  # the two directions' masks differ
    algo.step(state, t)
    Lt = np.zeros_like(X0)
    for e, (i, j) in enumerate(EDGES):
        if P[e]:
            Lt[i] += S[2 * e + 1] * (X0[i] - X0[j])                # i holds j's values on j's mask
            Lt[j] += S[2 * e] * (X0[j] - X0[i])
    np.testing.assert_allclose(state.x, X0 - alpha * (X0 - B) - eta * LAM - gamma * Lt, atol=1e-14)   # (4a)
    np.testing.assert_allclose(state.lam, LAM + beta * Lt, atol=1e-14)                                 # (4b)


def test_fspda_storm_two_steps_by_hand():
    alpha, eta, gamma, beta, a, b = 0.1, 0.05, 0.5, 0.8, 0.3, 0.6
    cfg = FSPDAStormConfig(lr=alpha, eta=eta, gamma=gamma, beta=beta, mask_ratio=0.5,
                           storm_momentum=a, storm_dual_momentum=b)
    net = _net()
    algo = FSPDAStorm(cfg, net, Quadratic(), build_compressor(COMPRESSORS["none"](), 64))
    state = algo.init(torch.tensor(X0))
    state["lam"].copy_(torch.tensor(LAM))
    draw = CoordinateMasks(net.seed, [4], 0.5)
    P = np.ones(3, bool)
    X, Xp, Lam, m, u = X0.copy(), X0.copy(), LAM.copy(), None, None
    for t in range(2):
        net.begin(t)
        algo.step(state, t)
        S = draw.masks(t, [0, 1, 2]).numpy().astype(float)
        q, qt = _masked_laplacian(X, S, P), _masked_laplacian(Xp, S, P)
        d = alpha * (X - B) + eta * Lam + gamma * q
        dt = alpha * (Xp - B) + eta * Lam + gamma * qt
        m = d if t == 0 else d + (1 - a) * (m - dt)
        u = q if t == 0 else q + (1 - b) * (u - qt)
        X, Xp = X - m, X
        Lam = Lam + beta * u
        np.testing.assert_allclose(state["x"], X, atol=1e-14)
        np.testing.assert_allclose(state["x_prev"], Xp, atol=1e-14)
        np.testing.assert_allclose(state["lam"], Lam, atol=1e-14)


def test_states_declare_their_rows_and_optional_fields():
    """Each method's typed state: agent rows, TiCoPD-robust's arc rows, and the optional fields
    (heavy-ball buffer, deferred drift) set exactly when their option is on."""
    net, x0, plain = _net(), torch.tensor(X0), build_compressor(COMPRESSORS["none"](), 64)
    agent = lambda *keys: dict.fromkeys(keys, "agent")
    mirror = agent("x", "lam", "xhat", "lxhat")
    for cls, cfg in [(TiCoPD, TiCoPDConfig), (CPSGD, CPSGDConfig)]:
        assert cls(cfg(), net, Quadratic(), _topk1()).init(x0).rows() == mirror
        on = cls(cfg(momentum=0.5), net, Quadratic(), _topk1()).init(x0)
        assert on.rows() == {**mirror, "momentum": "agent"} and not on.momentum.any()
    robust = TiCoPDRobust(TiCoPDRobustConfig(momentum=0.5), net, Quadratic(), _topk1()).init(x0)
    assert robust.rows() == {**agent("x", "lam", "momentum"), "xhat_out": "arc", "xhat_in": "arc"}
    assert robust.xhat_out.shape == (len(net.out_arcs), 4)
    assert FSPDA(FSPDAConfig(), net, Quadratic(), plain).init(x0).rows() == agent("x", "lam")
    lazy = FSPDA(FSPDAConfig(async_cbar=[2.0]), net, Quadratic(), plain).init(x0)
    assert lazy.rows() == agent("x", "lam", "drift") and lazy.drift.shape == (3, 1)
    storm = FSPDAStorm(FSPDAStormConfig(weight_decay=0.1), net, Quadratic(), plain).init(x0)
    assert storm.rows() == agent("x", "lam", "x_prev", "m", "u")


# --- bits in metrics.csv --------------------------------------------------------------------

def _bits_column(tmp_path, *overrides):
    decopt.run(*overrides, "run.progress=none", run_dir=tmp_path)
    with open(tmp_path / "metrics.csv") as fh:
        return [(int(r["iteration"]), int(float(r["bits"]))) for r in csv.DictReader(fh)]


def test_ticopd_bits_one_compressed_broadcast_per_agent_per_iteration(tmp_path):
    # top-k of d = 20 at 10 %: K = 2 fp32 values + 2 packed indices of ceil(log2 20) = 5 bits
    per_msg = 2 * 32 + 8 * math.ceil(2 * 5 / 8)
    rows = _bits_column(tmp_path / "b", *TICOPD, "run.iterations=200", "run.eval_every=50")
    assert rows == [(t, t * 10 * per_msg) for t in (0, 50, 100, 150, 200)]
    rows = _bits_column(tmp_path / "e", *TICOPD, "run.iterations=200", "run.eval_every=50",
                        "run.bits_convention=edge")
    assert rows[-1] == (200, 200 * 10 * 2 * per_msg)                 # ring: each broadcast on 2 links


@pytest.mark.parametrize("algo,vectors", [("fspda", 1), ("fspda_storm", 2)])
def test_fspda_bits_k_values_per_direction_per_active_edge(tmp_path, algo, vectors):
    k = 1                                                            # 10 % of d = 10, fp64 values
    rows = _bits_column(tmp_path / "one", *FSPDA_RUN, f"algo={algo}", "run.iterations=100", "run.eval_every=25")
    assert rows == [(t, t * 2 * vectors * k * 64) for t in (0, 25, 50, 75, 100)]
    rows = _bits_column(tmp_path / "bern", *FSPDA_RUN, f"algo={algo}", "graph.links=bernoulli",
                        "graph.link_p=0.3", "run.iterations=100", "run.eval_every=100")
    g = Graph.from_edges(6, itertools.combinations(range(6), 2))
    links = Links(g, "bernoulli", 0.3, seed=0)
    active = sum(int(links.active(t).sum()) for t in range(100))
    assert active > 0 and rows[-1] == (100, active * 2 * vectors * k * 64)


# --- configuration ----------------------------------------------------------------------------

def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="graph.links"):
        _built("algo=ticopd", "graph.links=one_edge")
    with pytest.raises(ConfigError, match="compressor=topk"):
        _built("algo=fspda", "compressor=topk")
    with pytest.raises(ConfigError, match="algo.mask_ratio"):
        _built("algo=fspda", "algo.mask_ratio=0")
    with pytest.raises(ConfigError, match="algo.dual_on"):
        _built("algo=ticopd", "algo.dual_on=z")
