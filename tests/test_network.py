"""The Network interface on the stacked backend: a compact exchange (rows for the active out-arcs
only) delivers and counts exactly what the full per-arc exchange does; sparse messages apply as
the dense ones. The MPI backend runs the same algorithms in tests/test_mpi.py (stacked-vs-MPI
equivalence, and sparse against dense application there)."""
import numpy as np
import pytest
import torch

from decopt.comm import StackedNetwork
from decopt.compressors import SCHEMAS, build_compressor
from decopt.compressors.sparse import SparseRows, add_
from decopt.graphs import SCHEMAS as GRAPH_SCHEMAS
from decopt.graphs import Links, build_graph


def _net(model, p=1.0):
    graph = build_graph(GRAPH_SCHEMAS["complete"](name="complete", n=6), seed=0)
    return graph, StackedNetwork(graph, Links(graph, model, p, seed=3), dtype=torch.float64, seed=5)


@pytest.mark.parametrize("model,p", [("static", 1.0), ("bernoulli", 0.3), ("one_edge", 1.0)])
@pytest.mark.parametrize("codec", [("none", {}), ("randk", {"ratio": 0.25})])
def test_compact_exchange_equals_the_full_exchange_on_the_active_arcs(model, p, codec):
    comp = build_compressor(SCHEMAS[codec[0]](**codec[1]), 64)
    graph, full = _net(model, p)
    _, compact = _net(model, p)
    M = torch.randn(2 * graph.m, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seen = 0
    for t in range(6):
        full.begin(t)
        compact.begin(t)
        pos = compact.active_out()
        on = np.ones(2 * graph.m, bool) if full.active is None else np.repeat(full.active, 2)
        assert np.array_equal(pos, np.flatnonzero(on))
        Mf, Mc = M.clone(), M[torch.as_tensor(pos)].clone()
        rf = full.exchange(Mf, comp, shared=True)
        rc = compact.exchange(Mc, comp, shared=True, compact=True)
        assert torch.equal(rc, rf[torch.as_tensor(pos)]) and torch.equal(Mc, Mf[torch.as_tensor(pos)])
        assert not rf[torch.as_tensor(np.flatnonzero(~on))].any()
        seen += pos.size
    assert seen > 0
    assert compact.total_bits() == full.total_bits() > 0
    assert np.array_equal(compact.ledger()["bits"], full.ledger()["bits"])


SPARSIFIERS = [("topk", {"ratio": 0.3}), ("topk", {"ratio": 0.2, "per_tensor": True}),
               ("randk", {"ratio": 0.25, "unbiased": True}), ("randk", {"ratio": 0.4, "shared_mask": True})]


@pytest.mark.parametrize("graph_name", ["ring", "star", "erdos_renyi"])
@pytest.mark.parametrize("codec", SPARSIFIERS, ids=lambda c: f"{c[0]}-{'-'.join(map(str, c[1].values()))}")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sparse_messages_apply_as_the_dense_ones(graph_name, codec, dtype):
    """A sparsifier's halo as SparseRows decodes to the dense halo exactly; h += q is exact entry by
    entry, and gossip_into (one scatter per row: own row, then in-arcs; irregular graphs padded)
    equals (W - I) q to rounding, on static links and (densely) on random links."""
    graph = build_graph(GRAPH_SCHEMAS[graph_name](name=graph_name, n=9), seed=1)
    n, d = graph.n, 40
    comp = build_compressor(SCHEMAS[codec[0]](**codec[1]), 64, segments=[25, 10, 5])
    g = torch.Generator().manual_seed(2)
    V = torch.randn(n, d, generator=g, dtype=dtype)
    h0, e0 = torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for model in ("static", "bernoulli"):
        net = StackedNetwork(graph, Links(graph, model, 0.5, seed=3), dtype=dtype, seed=5)
        net.begin(4)
        dense = net.broadcast(V, comp)
        net.begin(4)
        sparse = net.broadcast(V, comp, sparse=True)
        assert isinstance(sparse, SparseRows) and not isinstance(dense, SparseRows)
        assert sparse.idx.shape[1] < d and torch.equal(sparse.dense(), dense)
        h = add_(h0.clone(), sparse)
        assert torch.equal(h, h0 + dense)
        W = net.mix(torch.eye(n, dtype=torch.float64).to(dtype)).double()
        want = e0.double() + (W - torch.eye(n, dtype=torch.float64)) @ dense.double()
        for H in (dense, sparse):
            got = net.gossip_into(e0.clone(), H)
            torch.testing.assert_close(got.double(), want, **tol)


def test_local_rows_follow_the_declared_kind_not_the_shape():
    """A process's block of a global array: its agents' rows, or the rows of the arcs they send on
    (``State.rows()`` says which). On a 2-agent path n == 2m, so shapes cannot tell them apart."""
    from decopt.comm.network import Network

    for name, n, block in [("ring", 6, range(2, 5)), ("path", 2, range(1, 2))]:
        graph = build_graph(GRAPH_SCHEMAS[name](name=name, n=n), seed=0)
        net = Network(graph, Links(graph, "static", 1.0, seed=0), block)
        src, dst = graph.arcs
        mine = np.flatnonzero((src >= block.start) & (src < block.stop))
        agents = torch.arange(n, dtype=torch.float64)[:, None] * 10
        arcs = torch.as_tensor(src * 100 + dst, dtype=torch.float64)[:, None]
        assert torch.equal(net.local(agents, "agent")[:, 0], torch.arange(block.start, block.stop) * 10.0)
        assert np.array_equal(net.local(arcs, "arc")[:, 0].numpy(), src[mine] * 100.0 + dst[mine])
        assert set(src[mine]) == set(block) and len(mine) == graph.degree[block.start:block.stop].sum()
        with pytest.raises(ValueError, match="'agent' or 'arc'"):
            net.local(agents, "agents")
    stacked = StackedNetwork(graph, Links(graph, "static", 1.0, seed=0))
    assert stacked.gather(arcs, "arc") is arcs and stacked.gather(agents, "agent") is agents
    with pytest.raises(ValueError, match="'agent' or 'arc'"):
        stacked.gather(agents, "shape")
