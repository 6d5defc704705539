"""Graph generators (networkx style: plain names, plain arguments). Each returns a :class:`Graph`;
a bad argument is a one-line ConfigError (a ValueError) naming the argument, not a config key."""
from __future__ import annotations

import math
import os
import stat

import numpy as np

from ..errors import ConfigError
from .graph import Graph
from ..lazy import nx


def _from_nx(g: nx.Graph, name: str, **meta) -> Graph:
    g = nx.convert_node_labels_to_integers(g, ordering="sorted")
    return Graph.from_edges(g.number_of_nodes(), g.edges(), name=name, meta=meta)


def ring(n: int) -> Graph:
    return _from_nx(nx.cycle_graph(n), "ring")


def path(n: int) -> Graph:
    return _from_nx(nx.path_graph(n), "path")


def star(n: int) -> Graph:
    return _from_nx(nx.star_graph(n - 1), "star")


def complete(n: int) -> Graph:
    return _from_nx(nx.complete_graph(n), "complete")


def _near_square(n: int) -> tuple[int, int]:
    r = int(math.isqrt(n))
    while n % r:
        r -= 1
    return r, n // r


def grid(n: int) -> Graph:
    """2-D grid of ``r x c = n`` nodes, r the largest divisor of n not above sqrt(n)."""
    r, c = _near_square(n)
    return _from_nx(nx.grid_2d_graph(r, c), "grid", shape=[r, c])


def torus(n: int) -> Graph:
    """2-D grid with wrap-around, ``r x c = n`` as in :func:`grid`."""
    r, c = _near_square(n)
    return _from_nx(nx.grid_2d_graph(r, c, periodic=True), "torus", shape=[r, c])


def hypercube(n: int) -> Graph:
    k = n.bit_length() - 1
    if n != 1 << k:
        raise ConfigError(f"n={n}: hypercube needs a power of two")
    return _from_nx(nx.hypercube_graph(k), "hypercube")


def exponential(n: int) -> Graph:
    """Static exponential graph: i ~ i + 2^k (mod n) for every 2^k < n."""
    edges = [(i, (i + (1 << k)) % n) for i in range(n) for k in range(max(1, (n - 1).bit_length()))
             if (1 << k) < n]
    return Graph.from_edges(n, edges, name="exponential")


def _resample(n: int, seed: int, draw, name: str, **meta) -> Graph:
    for attempt in range(1000):
        g = draw(np.random.default_rng([seed, attempt]))
        if g.is_connected():
            return Graph(n=g.n, edges=g.edges, name=name, meta={**meta, "attempts": attempt + 1})
    args = ", ".join(f"{k}={v}" for k, v in meta.items())
    raise ConfigError(f"{args}: no connected {name} sample in 1000 draws; increase it")


def _pair(q: np.ndarray, n: int) -> np.ndarray:
    """The q-th pair (i < j) of the row-major upper triangle of an n x n matrix."""
    i = n - 2 - np.floor(np.sqrt(4.0 * n * (n - 1) - 8.0 * q - 7) / 2 - 0.5).astype(np.int64)
    j = q + i + 1 - n * (n - 1) // 2 + (n - i) * (n - i - 1) // 2
    return np.stack([i, j], 1)


def erdos_renyi(n: int, p: float, seed: int = 0) -> Graph:
    """G(n, p), redrawn (seeded) until connected: a Binomial(n(n-1)/2, p) number of edges, then
    that many distinct pairs, uniformly (the same law; O(edges) time and memory)."""
    pairs = n * (n - 1) // 2

    def draw(rng):
        q = rng.choice(pairs, size=rng.binomial(pairs, p), replace=False)
        return Graph.from_edges(n, _pair(q, n))
    return _resample(n, seed, draw, "erdos_renyi", p=p)


def random_geometric(n: int, radius: float, seed: int = 0) -> Graph:
    """Points uniform in the unit square, linked when closer than ``radius``; redrawn until connected."""
    iu = np.triu_indices(n, 1)

    def draw(rng):
        pts = rng.random((n, 2))
        dist = np.linalg.norm(pts[iu[0]] - pts[iu[1]], axis=1)
        keep = dist < radius
        return Graph.from_edges(n, np.stack([iu[0][keep], iu[1][keep]], 1))
    return _resample(n, seed, draw, "random_geometric", radius=radius)


MAX_EDGE_FILE_BYTES = 1 << 30     # an edge-list file larger than 1 GiB is refused before reading
MAX_NODES = 10 ** 7               # node ids in an edge-list file are in [0, MAX_NODES) (or [0, n))


def check_edge_file(file: str) -> None:
    """``file`` names a regular file of at most MAX_EDGE_FILE_BYTES (``/dev/zero`` is refused at once)."""
    try:
        st = os.stat(file)
    except OSError as exc:
        raise ConfigError(f"file={file}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"file={file}: not a regular file; give a text file of 'i j' lines")
    if st.st_size > MAX_EDGE_FILE_BYTES:
        raise ConfigError(f"file={file}: {st.st_size} bytes; an edge list may hold at most "
                          f"{MAX_EDGE_FILE_BYTES} bytes")


def edge_list(file: str, n: int | None = None) -> Graph:
    """Read links from a text file: one ``i j`` pair of integer node ids per line (whitespace or
    comma separated); blank lines and ``#`` comments are skipped; a link listed twice (``i j``
    and ``j i``) counts once. Refused, naming the line: anything but two ids, an id outside
    ``[0, n)`` (``[0, 10^7)`` when n is None), a self-loop ``i i`` (an agent always
    keeps its own value); and a file that yields fewer than 2 agents."""
    check_edge_file(file)
    limit = n or MAX_NODES
    pairs = []
    try:
        with open(file, encoding="utf-8") as fh:
            for no, line in enumerate(fh, 1):
                text = line.split("#", 1)[0].replace(",", " ").split()
                if not text:
                    continue
                where = f"file={file} line {no}"
                try:
                    i, j = (int(v) for v in text)
                except ValueError:
                    raise ConfigError(f"{where}: {' '.join(text)[:40]!r}; each line holds two integer node ids "
                                      f"'i j'") from None
                if not (0 <= i < limit and 0 <= j < limit):
                    raise ConfigError(f"{where}: node id out of range in '{i} {j}'; ids must be in [0, {limit})")
                if i == j:
                    raise ConfigError(f"{where}: self-loop '{i} {j}'; list links between two different agents")
                pairs.append((i, j))
    except OSError as exc:
        raise ConfigError(f"file={file}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"file={file}: not a text file; give 'i j' lines") from None
    size = n or (max(max(p) for p in pairs) + 1 if pairs else 0)
    if size < 2:
        raise ConfigError(f"file={file}: yields {size} agents; a decentralized problem needs at least 2")
    return Graph.from_edges(size, pairs, name="edge_list", meta={"file": file})
