"""Symmetric, doubly stochastic mixing matrices supported on the graph."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..lazy import scipy
from .graph import Graph

RULES = ("metropolis", "lazy_metropolis", "max_degree", "constant")


def edge_weights(graph: Graph, rule: str = "metropolis", weight: float | None = None,
                 max_active: int | None = None) -> np.ndarray:
    """Off-diagonal weight W_ij of every undirected edge (the diagonal is 1 - row sum).
    ``max_active``: the most edges one agent can have active at once (the base graph's max
    degree by default; 1 on ``one_edge`` links), which bounds a ``constant`` weight."""
    deg = graph.degree
    i, j = graph.edges[:, 0], graph.edges[:, 1]
    if rule in ("metropolis", "lazy_metropolis"):
        w = 1.0 / (1.0 + np.maximum(deg[i], deg[j]))
        return w / 2 if rule == "lazy_metropolis" else w
    if rule == "max_degree":
        return np.full(graph.m, 1.0 / (1.0 + deg.max(initial=0)))
    if rule == "constant":
        most = deg.max(initial=0) if max_active is None else max_active
        if weight is None or not 0 < weight * most <= 1:
            one = " (one active edge per agent)" if max_active == 1 else ""
            raise ConfigError(f"weight={weight}: rule=constant needs 0 < weight <= 1/max_degree"
                              f" = {1 / max(most, 1):.4g}{one}")
        return np.full(graph.m, float(weight))
    raise ConfigError(f"rule={rule}: choose one of {', '.join(RULES)}")


def expected_weights(graph: Graph, rule: str = "metropolis", weight: float | None = None,
                     links=None) -> np.ndarray:
    """The edge weights of W, or with random ``links`` of the expected E[W_t]: each edge's weight
    times its activation probability."""
    w = edge_weights(graph, rule, weight, None if links is None else links.max_active_degree)
    return w if links is None else w * links.edge_probability()


def weight_matrix(graph: Graph, w: np.ndarray) -> scipy.sparse.csr_matrix:
    """The symmetric n x n matrix with ``w[e]`` on both entries of edge e and 1 - (row sum) on the diagonal."""
    i, j = graph.edges[:, 0], graph.edges[:, 1]
    off = scipy.sparse.csr_matrix((np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                        shape=(graph.n, graph.n))
    diag = 1.0 - np.asarray(off.sum(axis=1)).ravel()
    return (off + scipy.sparse.diags(diag)).tocsr()


def mixing_matrix(graph: Graph, rule: str = "metropolis", weight: float | None = None,
                  links=None) -> scipy.sparse.csr_matrix:
    """W, or with random ``links`` the expected E[W_t]: the matrix whose spectral gap sets the mean
    consensus rate."""
    return weight_matrix(graph, expected_weights(graph, rule, weight, links))
