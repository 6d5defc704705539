"""The communication graph: an undirected, connected edge list and the matrices built from it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import ConfigError
from ..lazy import scipy


@dataclass(frozen=True, eq=False)
class Graph:
    """``n`` agents and ``m`` undirected edges ``edges[e] = (i, j)`` with ``i < j``, sorted.

    Directed arcs are numbered ``2e`` for ``i -> j`` and ``2e + 1`` for ``j -> i``, so the
    reverse of arc ``a`` is ``a ^ 1`` and its undirected edge is ``a >> 1``.
    """

    n: int
    edges: np.ndarray
    name: str = "graph"
    meta: dict = field(default_factory=dict)

    @staticmethod
    def from_edges(n: int, edges, name: str = "graph", meta: dict | None = None) -> "Graph":
        """The graph of ``edges`` (pairs in any order or orientation; self-loops and repeats
        dropped), sorted as documented above, in O(m log m) array operations."""
        e = np.asarray(edges if isinstance(edges, (np.ndarray, list, tuple)) else list(edges), dtype=np.int64)
        e = e.reshape(-1, 2)
        if e.size and (e.min() < 0 or e.max() >= n):
            raise ConfigError(f"edges: endpoint outside 0..{n - 1} (n={n})")
        lo, hi = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
        keys = np.sort(lo[lo != hi] * n + hi[lo != hi])           # i * n + j orders edges as (i, j)
        keys = keys[np.diff(keys, prepend=-1) != 0]              # (np.unique hashes: 30x slower here)
        return Graph(n=n, edges=np.stack(np.divmod(keys, n), axis=1), name=name, meta=dict(meta or {}))

    @property
    def m(self) -> int:
        return len(self.edges)

    @cached_property
    def arcs(self) -> tuple[np.ndarray, np.ndarray]:
        """(src, dst) of the 2m directed arcs, interleaved as documented above."""
        src = np.empty(2 * self.m, dtype=np.int64)
        dst = np.empty(2 * self.m, dtype=np.int64)
        src[0::2], dst[0::2] = self.edges[:, 0], self.edges[:, 1]
        src[1::2], dst[1::2] = self.edges[:, 1], self.edges[:, 0]
        return src, dst

    @cached_property
    def degree(self) -> np.ndarray:
        return np.bincount(self.edges.ravel(), minlength=self.n).astype(np.int64)

    @cached_property
    def adjacency(self) -> scipy.sparse.csr_matrix:
        src, dst = self.arcs
        return scipy.sparse.csr_matrix((np.ones(src.size), (dst, src)), shape=(self.n, self.n))

    @cached_property
    def incidence(self) -> scipy.sparse.csr_matrix:
        """A in R^{m x n}: row e has +1 at i and -1 at j; A^T A is the Laplacian."""
        rows = np.repeat(np.arange(self.m), 2)
        vals = np.tile([1.0, -1.0], self.m)
        return scipy.sparse.csr_matrix((vals, (rows, self.edges.ravel())), shape=(self.m, self.n))

    @cached_property
    def laplacian(self) -> scipy.sparse.csr_matrix:
        return (scipy.sparse.diags(self.degree.astype(float)) - self.adjacency).tocsr()

    @cached_property
    def edge_index(self) -> dict:
        return {(int(i), int(j)): e for e, (i, j) in enumerate(self.edges)}

    @cached_property
    def _keys(self) -> np.ndarray:
        return self.edges[:, 0] * self.n + self.edges[:, 1]                  # sorted

    def edge_id(self, i, j) -> np.ndarray:
        """The undirected edge ids of the pairs (i, j) (either orientation; each must be an edge)."""
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        return np.searchsorted(self._keys, np.minimum(i, j) * self.n + np.maximum(i, j))

    def is_connected(self) -> bool:
        if self.n == 1:
            return True
        ncomp, _ = scipy.sparse.csgraph.connected_components(self.adjacency, directed=False)
        return ncomp == 1
