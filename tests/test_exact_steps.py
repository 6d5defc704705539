"""Exact small cases for the bugs a refactor makes (issue 16), without MPI: each test recomputes
one operation by hand (numpy, from the paper's update or the documented contract of
``decopt.comm.Network``) on 3-6 agents and compares it with decopt's.

* FSPDA's steps (specs/fspda.md eqs. (4a)-(4b)) with shared and unshared coordinate masks, and
  CHOCO-SGD's on static links (the branch no golden case takes);
* the stacked backend's ``mix`` (with and without ``own``) and ``laplacian`` against a dense
  ``W_t`` built from ``graph.arcs`` and the edge weights, on static and random links;
* bernoulli links: both directions of an edge share its draw, different edges draw independently;
* the diagonal ``self_w`` and sender rows of a network holding a partial block of agents."""
import numpy as np
import pytest
import torch

from decopt.cli import compose
from decopt.comm import Network
from decopt.config import validate
from decopt.rng import Key, Stream, sample
from decopt.runner import build

SMALL = ["problem=least_squares", "problem.dim=7", "problem.samples=10", "problem.batch_size=null",
         "run.dtype=float64", "run.seed=4"]


def pieces(*overrides):
    """(graph, network, problem, algorithm) of a job, on the stacked backend."""
    return build(validate(compose([*SMALL, *overrides])))


# --- FSPDA, by hand ----------------------------------------------------------------------------
MASK_CALL = 0x6D61736B      # FSPDA's coordinate masks are keyed (seed, COMPRESS, t, MASK_CALL + tensor)


def fspda_masks(seed, t, ids, segments, ratio):
    """Boolean random-k masks (len(ids), d): per parameter tensor, k_l = max(1, floor(d_l ratio))."""
    parts = []
    for s, d_l in enumerate(segments):
        k_l = max(1, int(d_l * ratio + 1e-9))
        idx = sample(Key(seed, Stream.COMPRESS, t, MASK_CALL + s), np.asarray(ids), d_l, k_l)
        S = np.zeros((len(ids), d_l), dtype=bool)
        np.put_along_axis(S, idx, True, axis=1)
        parts.append(S)
    return np.concatenate(parts, axis=1)


@pytest.mark.parametrize("links", ["static", "bernoulli"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "unshared"])
def test_fspda_steps_by_hand(shared, links):
    """x_i -= alpha g_i + eta lambda_i + gamma [L_t(X)]_i (4a); lambda_i += beta [L_t(X)]_i (4b),
    [L_t(X)]_i = sum_{j active} S ⊙ (x_i - x_j), S the mask of the edge (shared) or, unshared,
    the mask of the arc j -> i that carried x_j (the receiver differences on what it received)."""
    alpha, eta, gamma, beta, ratio, seed = 0.1, 0.3, 0.4, 0.7, 0.5, 4
    graph, net, problem, algo = pieces(
        "algo=fspda", "graph=complete", "graph.n=4", f"graph.links={links}", "graph.link_p=0.6",
        f"algo.lr={alpha}", f"algo.eta={eta}", f"algo.gamma={gamma}", f"algo.beta={beta}",
        f"algo.mask_ratio={ratio}", f"algo.shared_mask={str(shared).lower()}")
    src, dst = graph.arcs
    x0 = problem.x0()
    X, lam = x0.numpy().copy(), np.zeros_like(x0.numpy())
    state = algo.init(x0.clone())
    active_seen = 0
    for t in range(4):
        net.begin(t)
        g = problem.grad(torch.as_tensor(X.copy()), t).numpy()          # full batch: deterministic
        on = np.ones(graph.m, bool) if links == "static" else net.links.active(t)
        arcs = np.flatnonzero(np.repeat(on, 2))
        S = fspda_masks(seed, t, arcs >> 1 if shared else arcs ^ 1, problem.segments, ratio)
        assert not S.all() and S.any()
        L = np.zeros_like(X)
        for a, mask in zip(arcs, S):                   # arc a: i -> j; i holds x_j on the mask
            i, j = src[a], dst[a]
            L[i] += mask * (X[i] - X[j])
        X = X - alpha * g - eta * lam - gamma * L
        lam = lam + beta * L
        active_seen += arcs.size
        state = algo.step(state, t)
        np.testing.assert_allclose(state["x"].numpy(), X, rtol=0, atol=1e-13, err_msg=f"x at t={t}")
        np.testing.assert_allclose(state["lam"].numpy(), lam, rtol=0, atol=1e-13, err_msg=f"lambda at t={t}")
    assert active_seen > 0


# --- CHOCO-SGD on static links, by hand ----------------------------------------------------------
def test_choco_static_steps_by_hand():
    """Koloskova et al. 2019 with heavy ball and an exact codec: X_half = X - eta buf
    (buf = mu buf + g), X_hat += Q(X_half - X_hat) = X_half, X = X_half + gamma (W - I) X_hat."""
    eta, gamma, mu = 0.1, 0.6, 0.5
    graph, net, problem, algo = pieces("algo=choco", "graph=star", "graph.n=5", "compressor=none",
                                       f"algo.lr={eta}", f"algo.gamma={gamma}", f"algo.momentum={mu}")
    W = dense_W(graph, net.edge_w, np.ones(graph.m, bool))
    x0 = problem.x0()
    X, buf = x0.numpy().copy(), np.zeros_like(x0.numpy())
    state = algo.init(x0.clone())
    for t in range(4):
        net.begin(t)
        buf = mu * buf + problem.grad(torch.as_tensor(X.copy()), t).numpy()
        half = X - eta * buf
        X = half + gamma * (W - np.eye(graph.n)) @ half
        state = algo.step(state, t)
        np.testing.assert_allclose(state["x"].numpy(), X, rtol=0, atol=1e-13, err_msg=f"x at t={t}")
    assert np.ptp(X, axis=0).max() > 1e-3              # the agents disagree: the gossip term is tested


# --- the stacked network against a dense W_t ---------------------------------------------------
def dense_W(graph, edge_w, on):
    """W_t: W_ij = W_ji = w_e on the active edges e = (i, j), W_ii = 1 - sum_j W_ij."""
    W = np.zeros((graph.n, graph.n))
    src, dst = graph.arcs
    for a in np.flatnonzero(np.repeat(on, 2)):
        W[dst[a], src[a]] = edge_w[a >> 1]
    W[np.diag_indices(graph.n)] = 1.0 - W.sum(1)
    return W


def dense_L(graph, on):
    """L_t = D_t - A_t over the active edges, from networkx."""
    import networkx as nx

    G = nx.Graph()
    G.add_nodes_from(range(graph.n))
    G.add_edges_from(map(tuple, graph.edges[on]))
    return nx.laplacian_matrix(G, nodelist=range(graph.n)).toarray().astype(float)


@pytest.mark.parametrize("links", ["static", "bernoulli", "one_edge"])
@pytest.mark.parametrize("topology", ["star", "erdos_renyi"])
def test_stacked_mix_and_laplacian_equal_the_dense_operators(topology, links):
    graph, net, *_ = pieces("algo=dsgd", f"graph={topology}", "graph.n=6", f"graph.links={links}",
                            "graph.link_p=0.5")
    gen = torch.Generator().manual_seed(0)
    H = torch.randn(graph.n, 5, dtype=torch.float64, generator=gen)
    own = torch.randn(graph.n, 5, dtype=torch.float64, generator=gen)
    partial = 0
    for t in range(6):
        net.begin(t)
        on = np.ones(graph.m, bool) if links == "static" else net.links.active(t)
        partial += 0 < on.sum() < graph.m
        W, L = dense_W(graph, net.edge_w, on), dense_L(graph, on)
        Hn, on_ = H.numpy(), own.numpy()
        np.testing.assert_allclose(net.mix(H.clone()).numpy(), W @ Hn, rtol=0, atol=1e-14)
        # own_i + sum_j W_ij (H_j - own_i) = W H + diag(W) (own - H)
        want = W @ Hn + np.diag(W)[:, None] * (on_ - Hn)
        np.testing.assert_allclose(net.mix(H.clone(), own.clone()).numpy(), want, rtol=0, atol=1e-14)
        np.testing.assert_allclose(net.laplacian(H.clone()).numpy(), L @ Hn, rtol=0, atol=1e-14)
        E = own.clone()
        net.gossip_into(E, H.clone())
        np.testing.assert_allclose(E.numpy(), on_ + (W - np.eye(graph.n)) @ Hn, rtol=0, atol=1e-14)
        # doubly stochastic W_t and L_t 1 = 0: mixing keeps the network average
        np.testing.assert_allclose(net.sum(net.mix(H.clone())).numpy(), H.sum(0).numpy(), rtol=0, atol=1e-13)
        np.testing.assert_allclose(net.sum(net.laplacian(H.clone())).numpy(), 0, atol=1e-13)
    assert links == "static" or partial > 0, "no iteration with some links off: the case tests nothing"


# --- random links: one draw per undirected edge -----------------------------------------------
def test_bernoulli_links_one_draw_per_edge_independent_across_edges():
    """Read from the network's W_t (mix of the identity): an edge is on in both directions or in
    neither (W_t symmetric), each edge is on with frequency p, and two edges jointly with p^2.
    Fixed seeds, so the frequencies are fixed numbers; the bound is 6 standard deviations."""
    p, T = 0.4, 400
    graph, net, *_ = pieces("algo=dsgd", "graph=complete", "graph.n=5", "graph.links=bernoulli", f"graph.link_p={p}")
    i, j = graph.edges.T
    eye = torch.eye(graph.n, dtype=torch.float64)
    on = np.zeros((T, graph.m), dtype=bool)
    for t in range(T):
        net.begin(t)
        W = net.mix(eye.clone()).numpy()
        np.testing.assert_array_equal(W, W.T, err_msg=f"t={t}: an edge is on in one direction only")
        on[t] = W[i, j] != 0
        np.testing.assert_array_equal(on[t], net.links.active(t))
    freq = on.mean(0)
    assert np.all(np.abs(freq - p) < 6 * np.sqrt(p * (1 - p) / T)), freq
    joint = (on[:, :, None] & on[:, None, :]).mean(0)[np.triu_indices(graph.m, 1)]
    q = p * p
    assert np.all(np.abs(joint - q) < 6 * np.sqrt(q * (1 - q) / T)), "edges do not draw independently"
    assert not np.array_equal(on[:-1], on[1:]), "the draw does not depend on t"


# --- a network holding a partial block of agents ------------------------------------------------
@pytest.mark.parametrize("topology", ["star", "erdos_renyi"])
def test_partial_block_has_the_full_networks_diagonal_and_sender_rows(topology):
    """A process holding agents 2..4 of 6 (as an MPI rank does) has W_ii of those agents, and the
    sender row (local numbering) of each of its out-arcs."""
    graph, full, *_ = pieces("algo=dsgd", f"graph={topology}", "graph.n=6")
    rows = range(2, 5)
    part = Network(graph, full.links, rows, dtype=torch.float64)
    W = dense_W(graph, full.edge_w, np.ones(graph.m, bool))
    np.testing.assert_allclose(full.self_w, np.diag(W), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(part.self_w, full.self_w[2:5])
    assert len(set(np.round(np.diag(W)[2:5], 12))) > 1 or topology == "star"
    src, _ = graph.arcs
    np.testing.assert_array_equal(part.out_arcs, np.flatnonzero((src >= 2) & (src < 5)))
    np.testing.assert_array_equal(part.out_src, src[part.out_arcs] - 2)
