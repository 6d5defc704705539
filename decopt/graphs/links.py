"""Random-link models: which undirected edges carry messages at iteration t (keyed on (seed, t, edge))."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..rng import Key, Stream, uniform
from .graph import Graph

MODELS = ("static", "bernoulli", "one_edge")


class Links:
    """``active(t)`` -> boolean mask over the m edges, or ``None`` when every edge is always on.

    * ``static``: all edges, every iteration.
    * ``bernoulli``: each edge on independently with probability ``p``; the draw for edge e at t
      depends only on (seed, t, e), so both endpoints compute it alone.
    * ``one_edge``: one initiator, uniform over agents, picks a uniform neighbour.
    """

    def __init__(self, graph: Graph, model: str = "static", p: float = 1.0, seed: int = 0):
        if model not in MODELS:
            raise ConfigError(f"model={model}: choose one of {', '.join(MODELS)}")
        if model == "bernoulli" and not 0 < p <= 1:
            raise ConfigError(f"p={p}: model=bernoulli needs 0 < p <= 1")
        self.graph, self.model, self.p, self.seed = graph, model, p, seed
        self._nbrs = graph.adjacency  # CSR, row i = neighbours of i

    @property
    def static(self) -> bool:
        return self.model == "static"

    @property
    def max_active_degree(self) -> int:
        """The most edges one agent can have active at once (1 with ``one_edge``)."""
        return 1 if self.model == "one_edge" else int(self.graph.degree.max(initial=0))

    def edge_probability(self) -> np.ndarray:
        """P(edge e is active) at any iteration: 1, p, or (1/n)(1/deg_i + 1/deg_j) for ``one_edge``."""
        if self.model == "static":
            return np.ones(self.graph.m)
        if self.model == "bernoulli":
            return np.full(self.graph.m, float(self.p))
        deg, (i, j) = self.graph.degree, self.graph.edges.T
        return (1.0 / deg[i] + 1.0 / deg[j]) / self.graph.n

    def active(self, t: int, edges=None) -> np.ndarray | None:
        """Mask over ``edges`` (global edge ids; all m edges when None)."""
        if self.model == "static":
            return None
        key = Key(self.seed, Stream.LINKS, t)
        ids = range(self.graph.m) if edges is None else np.asarray(edges)
        if self.model == "bernoulli":
            return uniform(key, ids, 1)[:, 0] < self.p
        e = self.one_edge(t)
        ids = np.arange(self.graph.m) if edges is None else np.asarray(edges)
        return ids == e

    def one_edge(self, t: int) -> int:
        u = uniform(Key(self.seed, Stream.LINKS, t), range(1), 2)[0]
        i = min(int(u[0] * self.graph.n), self.graph.n - 1)
        a = self._nbrs
        nb = np.sort(a.indices[a.indptr[i]:a.indptr[i + 1]])
        j = int(nb[min(int(u[1] * nb.size), nb.size - 1)])
        return int(self.graph.edge_id(i, j))
