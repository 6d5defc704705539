"""Topologies, mixing matrices, spectral gaps and random-link draws."""
import networkx as nx
import numpy as np
import pytest

from decopt.errors import ConfigError
from decopt.graphs import Graph, Links, edge_weights, expected_weights, mixing_gap, mixing_matrix, spectral_gap, topologies
from decopt.graphs.mixing import RULES
from decopt.graphs.spectrum import numerical_gap

GRAPHS = {
    "ring": lambda: topologies.ring(12),
    "path": lambda: topologies.path(7),
    "star": lambda: topologies.star(9),
    "complete": lambda: topologies.complete(6),
    "grid": lambda: topologies.grid(12),
    "torus": lambda: topologies.torus(16),
    "hypercube": lambda: topologies.hypercube(16),
    "exponential": lambda: topologies.exponential(10),
    "erdos_renyi": lambda: topologies.erdos_renyi(30, 0.1, seed=4),
    "random_geometric": lambda: topologies.random_geometric(25, 0.3, seed=2),
    "random_regular": lambda: topologies.random_regular(20, 3, seed=1),
}


def _networkx(n: int) -> dict:
    """The networkx constructions decopt used before its index arithmetic (nodes relabelled in sorted order)."""
    r, c = topologies._near_square(n)
    made = {"ring": nx.cycle_graph(n), "path": nx.path_graph(n), "star": nx.star_graph(n - 1),
            "complete": nx.complete_graph(n), "grid": nx.grid_2d_graph(r, c), "torus": nx.grid_2d_graph(r, c, periodic=True),
            "exponential": nx.Graph([(i, (i + (1 << k)) % n) for i in range(n) for k in range(n.bit_length())
                                     if (1 << k) < n])}
    if n & (n - 1) == 0:
        made["hypercube"] = nx.hypercube_graph(n.bit_length() - 1)
    return {name: nx.convert_node_labels_to_integers(g, ordering="sorted") for name, g in made.items()}


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 30, 32, 36])
def test_index_arithmetic_topologies_equal_the_networkx_ones(n):
    for name, g in _networkx(n).items():
        ours, ref = getattr(topologies, name)(n), Graph.from_edges(n, list(g.edges()))
        np.testing.assert_array_equal(ours.edges, ref.edges, err_msg=f"{name} n={n}")
        for rule in ("metropolis", "max_degree"):
            assert (mixing_matrix(ours, rule) != mixing_matrix(ref, rule)).nnz == 0, (name, n, rule)


def test_from_edges_sorts_orients_and_drops_loops_and_repeats():
    g = Graph.from_edges(5, np.array([[3, 1], [0, 4], [1, 3], [2, 2], [0, 1], [4, 0]]))
    assert g.edges.tolist() == [[0, 1], [0, 4], [1, 3]]
    assert g.edge_id([3, 0, 4], [1, 1, 0]).tolist() == [2, 0, 1]
    for n, edges in ((1, []), (3, [(2, 2)])):                   # no edge left: an edgeless graph
        assert Graph.from_edges(n, edges).m == 0


CLOSED = {"ring": [2, 3, 4, 7, 12], "path": [2, 3, 9], "star": [2, 3, 9], "complete": [2, 3, 6], "hypercube": [2, 8, 16],
          "torus": [4, 6, 9, 12, 16, 35], "grid": [6, 12, 16], "exponential": [3, 10, 16, 21]}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_closed_form_gap_equals_the_eigensolver(name):
    for n in CLOSED[name]:
        g = getattr(topologies, name)(n)
        for rule, links in [(r, None) for r in RULES if r != "constant"] + [
                ("constant", None), ("metropolis", Links(g, "bernoulli", 0.4)), ("max_degree", Links(g, "one_edge"))]:
            w = expected_weights(g, rule, 0.5 / g.degree.max(), links)
            gap = mixing_gap(g, w)
            assert gap.value == pytest.approx(numerical_gap(mixing_matrix(g, rule, 0.5 / g.degree.max(), links)).value,
                                              rel=1e-9, abs=1e-13), (name, n, rule, links and links.model)
            assert (gap.method == "closed form") == (w.min() == w.max())     # W = I - cL: every regular case


def test_gap_without_closed_form_is_bounded_and_says_how():
    g = topologies.random_regular(1200, 3, seed=0)             # above DENSE_N: Lanczos
    gap = mixing_gap(g, expected_weights(g))
    exact = 1 - np.sort(np.abs(np.linalg.eigvalsh(mixing_matrix(g).toarray())))[-2]
    assert gap.method.startswith("Lanczos") and exact - 1e-9 <= gap.value <= exact * 1.01
    grid = topologies.grid(1600)                               # gap O(1/n): 100 steps do not converge
    gap = mixing_gap(grid, expected_weights(grid))
    assert gap.method == "Lanczos estimate (100 steps, an upper bound)" and gap.value > 0


def test_ring_gap_at_a_million_agents_is_the_closed_form():
    n = 10 ** 6
    gap = mixing_gap(topologies.ring(n), np.full(n, 1 / 3))
    assert gap.method == "closed form" and gap.value == pytest.approx(2 / 3 * (1 - np.cos(2 * np.pi / n)), rel=1e-6)


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("rule", [r for r in RULES if r != "constant"])
def test_mixing_matrix_is_symmetric_doubly_stochastic_on_the_graph(name, rule):
    g = GRAPHS[name]()
    assert g.is_connected()
    W = mixing_matrix(g, rule).toarray()
    np.testing.assert_allclose(W, W.T, atol=1e-15)
    np.testing.assert_allclose(W.sum(0), 1, atol=1e-12)
    np.testing.assert_allclose(W.sum(1), 1, atol=1e-12)
    assert (W >= -1e-15).all()
    off = (W != 0) & ~np.eye(g.n, dtype=bool)
    np.testing.assert_array_equal(off, g.adjacency.toarray() > 0)
    assert 0 < spectral_gap(mixing_matrix(g, rule)) <= 1 + 1e-12


def test_ring_spectral_gap_closed_form():
    # constant weight 1/3 on a ring: eigenvalues (1 + 2 cos(2 pi k / n)) / 3
    for n in (5, 8, 12, 31):
        g = topologies.ring(n)
        lam = (1 + 2 * np.cos(2 * np.pi * np.arange(1, n) / n)) / 3
        expected = 1 - np.abs(lam).max()
        assert spectral_gap(mixing_matrix(g, "constant", 1 / 3)) == pytest.approx(expected, abs=1e-12)
        assert spectral_gap(mixing_matrix(g, "max_degree")) == pytest.approx(expected, abs=1e-12)


def test_laplacian_is_incidence_gram():
    for g in (topologies.ring(9), topologies.erdos_renyi(20, 0.2, seed=1), topologies.star(6)):
        A = g.incidence
        np.testing.assert_array_equal((A.T @ A).toarray(), g.laplacian.toarray())
        np.testing.assert_array_equal(g.laplacian.toarray().sum(1), 0)


def test_generated_sizes_and_seeded_resampling():
    assert topologies.hypercube(8).m == 12
    assert topologies.torus(16).degree.tolist() == [4] * 16
    a, b = topologies.erdos_renyi(40, 0.08, seed=3), topologies.erdos_renyi(40, 0.08, seed=3)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert a.is_connected()
    with pytest.raises(ConfigError, match="n=12: hypercube needs a power of two"):
        topologies.hypercube(12)


def test_erdos_renyi_draws_every_pair_with_probability_p_in_linear_time():
    n = 2000                                                       # pair index -> (i, j): exact, exhaustively
    iu = np.triu_indices(n, 1)
    np.testing.assert_array_equal(topologies._pair(np.arange(iu[0].size), n), np.stack(iu, 1))
    p, hits, draws = 0.3, np.zeros((12, 12)), 400
    for seed in range(draws):
        g = topologies.erdos_renyi(12, p, seed=seed)
        hits[g.edges[:, 0], g.edges[:, 1]] += 1
    rate = hits[np.triu_indices(12, 1)] / draws                     # every pair on w.p. p (given connected:
    assert abs(rate.mean() - p) < 0.03 and rate.std() < 0.04        # slightly above p)
    g = topologies.erdos_renyi(10_000, 12 / 9_999, seed=1)           # average degree 12: no n^2 enumeration
    assert g.is_connected() and abs(2 * g.m / g.n - 12) < 0.3


def test_edge_list_file(tmp_path):
    f = tmp_path / "g.txt"
    f.write_text("# a path\n0 1\n1,2\n2 3\n")
    g = topologies.edge_list(str(f))
    assert g.n == 4 and g.m == 3 and g.is_connected()


def test_constant_weight_too_large_is_rejected():
    with pytest.raises(ConfigError, match="weight=0.5: rule=constant needs"):
        mixing_matrix(topologies.star(5), "constant", 0.5)


def test_constant_weight_bound_follows_the_link_model():
    g = topologies.complete(10)
    one, bern = Links(g, "one_edge", 1.0, seed=0), Links(g, "bernoulli", 0.1, seed=0)
    assert (edge_weights(g, "constant", 0.5, one.max_active_degree) == 0.5).all()   # a pair average
    with pytest.raises(ConfigError, match="1/max_degree = 0.1111"):
        edge_weights(g, "constant", 0.5, bern.max_active_degree)
    # the expected W_t of one_edge: every edge of the complete graph active w.p. 1/m
    EW = mixing_matrix(g, "constant", 0.5, one).toarray()
    np.testing.assert_allclose(EW, np.eye(10) + 0.5 / 45 * (np.ones((10, 10)) - 10 * np.eye(10)), atol=1e-15)
    hits = np.zeros(g.m)
    for t in range(9000):
        hits += one.active(t)
    np.testing.assert_allclose(hits / 9000, one.edge_probability(), atol=0.01)


def test_bernoulli_links_agree_at_both_endpoints_and_have_the_right_rate():
    g = topologies.erdos_renyi(30, 0.2, seed=0)
    p = 0.3
    links = Links(g, "bernoulli", p, seed=11)
    draws = np.array([links.active(t) for t in range(400)])
    assert abs(draws.mean() - p) < 0.01
    # each endpoint computes only its own edges, independently: same answer
    for i in (0, 5, 17):
        mine = np.flatnonzero((g.edges == i).any(1))
        other = Links(g, "bernoulli", p, seed=11)       # a separate process would build its own
        for t in (0, 1, 99):
            np.testing.assert_array_equal(other.active(t, mine), draws[t, mine])
    # draws differ across t and edges, and the seed matters
    assert (draws[1:] != draws[:-1]).any(1).mean() > 0.9
    assert not np.array_equal(Links(g, "bernoulli", p, seed=12).active(0), draws[0])


def test_one_edge_links():
    g = topologies.star(6)
    links = Links(g, "one_edge", seed=5)
    counts = np.zeros(g.m)
    for t in range(3000):
        act = links.active(t)
        assert act.sum() == 1
        counts += act
    # a uniform initiator on a star: the hub (prob 1/6) picks uniformly, each leaf (5/6 total)
    # picks the hub; every edge gets 1/6 * 1/5 + 1/6 = 0.2
    np.testing.assert_allclose(counts / 3000, 0.2, atol=0.03)
    np.testing.assert_array_equal(Links(g, "one_edge", seed=5).active(42), links.active(42))


EDGE_ERRORS = [
    ("0 0\n", "line 1: self-loop '0 0'"),                       # a self-loop alone used to run a 1-agent job
    ("0 1\n1 1\n", "line 2: self-loop '1 1'"),
    ("# only a comment\n\n", "yields 0 agents"),
    ("0 1\n2\n", "line 2: '2'; each line holds two integer node ids"),
    ("0 1 2\n", "line 1: '0 1 2'; each line holds two integer node ids"),
    ("0 x\n", "line 1: '0 x'"),
    ("0 1\n1 99999999999\n", "line 2: node id out of range in '1 99999999999'; ids must be in [0, 10000000)"),
    ("0 -1\n", "line 1: node id out of range in '0 -1'"),
]


@pytest.mark.parametrize("text,message", EDGE_ERRORS)
def test_edge_list_errors_name_the_file_and_line(tmp_path, text, message):
    f = tmp_path / "g.txt"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        topologies.edge_list(str(f))
    assert str(info.value).startswith(f"file={f}") and message in str(info.value) and "\n" not in str(info.value)


def test_edge_list_ids_bounded_by_graph_n(tmp_path):
    f = tmp_path / "g.txt"
    f.write_text("0 1\n1 2\n2 3\n")
    with pytest.raises(ConfigError, match=r"line 3: node id out of range in '2 3'; ids must be in \[0, 3\)"):
        topologies.edge_list(str(f), 3)


def test_edge_list_refuses_what_is_not_a_regular_file(tmp_path):
    for path in ("/dev/zero", str(tmp_path)):                 # /dev/zero used to be read forever
        with pytest.raises(ConfigError, match="not a regular file"):
            topologies.edge_list(path)


def test_edge_list_size_limit(tmp_path, monkeypatch):
    f = tmp_path / "g.txt"
    f.write_text("0 1\n" * 10)
    monkeypatch.setattr(topologies, "MAX_EDGE_FILE_BYTES", 8)
    with pytest.raises(ConfigError, match="40 bytes; an edge list may hold at most 8 bytes"):
        topologies.edge_list(str(f))


def test_edge_list_binary_file(tmp_path):
    f = tmp_path / "g.bin"
    f.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match="not a text file"):
        topologies.edge_list(str(f))


def test_edge_list_comments_blank_lines_duplicates(tmp_path):
    f = tmp_path / "g.txt"
    f.write_text("# ring\n\n0 1  # first\n1,2\n2 0\n1 0\n")
    g = topologies.edge_list(str(f))
    assert g.n == 3 and g.m == 3


def test_erdos_renyi_at_ten_thousand_agents_and_its_connectivity_rule():
    n = 10_000
    least = topologies.erdos_renyi_threshold(n)                        # n (1 - p)^(n - 1) = 3 isolated agents
    assert n * (1 - least) ** (n - 1) == pytest.approx(topologies.ISOLATED) and least < np.log(n) / n
    g = topologies.erdos_renyi(n, 2 * np.log(n) / n, seed=0)           # a draw well above the threshold
    assert g.n == n and g.is_connected() and abs(g.m / (n * (n - 1) / 2 * 2 * np.log(n) / n) - 1) < 0.02
    with pytest.raises(ConfigError) as info:
        topologies.erdos_renyi(n, 0.5 * least, seed=0)
    assert str(info.value).startswith(f"p={0.5 * least}: below {least:.4g}") and f"choose p >= {least:.4g}" in str(info.value)


def test_erdos_renyi_refusal_names_the_config_key():
    from decopt.graphs import SCHEMAS, build_graph

    with pytest.raises(ConfigError, match=r"^graph\.p=0\.0001: below 0\.000\d+, where G\(n=10000, p\)"):
        build_graph(SCHEMAS["erdos_renyi"](n=10_000, p=1e-4))


@pytest.mark.parametrize("n,degree", [(10, 3), (50, 4), (1000, 7), (5000, 10)])
def test_random_regular_is_simple_regular_connected_and_seeded(n, degree):
    g = topologies.random_regular(n, degree, seed=3)
    assert g.m * 2 == n * degree and (g.degree == degree).all() and g.is_connected()    # repeats would lower a degree
    np.testing.assert_array_equal(topologies.random_regular(n, degree, seed=3).edges, g.edges)
    assert not np.array_equal(topologies.random_regular(n, degree, seed=4).edges, g.edges)


def test_random_regular_errors():
    for n, degree in ((9, 3), (4, 4), (10, 2)):
        with pytest.raises(ConfigError, match=f"degree={degree}: a connected random regular graph on n={n} agents"):
            topologies.random_regular(n, degree)


def test_random_geometric_keeps_the_all_pairs_draw():
    for seed in range(3):
        pts = np.random.default_rng([seed, 0]).random((60, 2))
        iu = np.triu_indices(60, 1)
        keep = np.linalg.norm(pts[iu[0]] - pts[iu[1]], axis=1) < 0.3
        g = topologies.random_geometric(60, 0.3, seed=seed)
        assert g.meta["attempts"] == 1                                  # the first draw: the points above
        np.testing.assert_array_equal(g.edges, np.stack([iu[0][keep], iu[1][keep]], 1))
