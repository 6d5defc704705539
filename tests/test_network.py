"""The Network interface on the stacked backend: a compact exchange (rows for the active out-arcs
only) delivers and counts exactly what the full per-arc exchange does. The MPI backend runs the
same algorithms in tests/test_mpi.py (stacked-vs-MPI equivalence)."""
import numpy as np
import pytest
import torch

from decopt.comm import StackedNetwork
from decopt.compressors import SCHEMAS, build_compressor
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
