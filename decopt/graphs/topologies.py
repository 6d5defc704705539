"""Graph generators (networkx style: plain names, plain arguments). Each returns a :class:`Graph`;
a bad argument is a one-line ConfigError (a ValueError) naming the argument, not a config key."""
from __future__ import annotations

import math
import os
import stat

import numpy as np

from ..errors import ConfigError
from ..lazy import scipy
from .graph import Graph


def _edges(n: int, i, j, name: str, **meta) -> Graph:
    """The graph of the pairs (i[e], j[e]), from index arithmetic (no Python object per node or edge)."""
    return Graph.from_edges(n, np.stack([np.ravel(i), np.ravel(j)], axis=1), name=name, meta=meta)


def circulant_offsets(name: str, n: int) -> tuple[int, ...]:
    """The offsets s of the circulant topologies, i ~ i + s (mod n): ``ring`` 1, ``exponential`` 2^k < n."""
    return (1,) if name == "ring" else tuple(1 << k for k in range(max(1, (n - 1).bit_length())) if (1 << k) < n)


def _circulant(n: int, name: str) -> Graph:
    i, offsets = np.arange(n), circulant_offsets(name, n)
    return _edges(n, np.tile(i, len(offsets)), np.concatenate([(i + s) % n for s in offsets]), name)


def ring(n: int) -> Graph:
    return _circulant(n, "ring")


def path(n: int) -> Graph:
    i = np.arange(n - 1)
    return _edges(n, i, i + 1, "path")


def star(n: int) -> Graph:
    """Node 0 linked to every other."""
    return _edges(n, np.zeros(n - 1, dtype=np.int64), np.arange(1, n), "star")


def complete(n: int) -> Graph:
    return _edges(n, *np.triu_indices(n, 1), "complete")


def _near_square(n: int) -> tuple[int, int]:
    r = int(math.isqrt(n))
    while n % r:
        r -= 1
    return r, n // r


def _lattice(n: int, wrap: bool, name: str) -> Graph:
    """r x c nodes, node (a, b) numbered a c + b, linked to (a, b + 1) and (a + 1, b) (mod r, c with ``wrap``)."""
    r, c = _near_square(n)
    node = np.arange(n)
    a, b = np.divmod(node, c)
    if wrap:
        i, j = np.tile(node, 2), np.concatenate([a * c + (b + 1) % c, (a + 1) % r * c + b])
    else:
        right, down = node[b < c - 1], node[a < r - 1]
        i, j = np.concatenate([right, down]), np.concatenate([right + 1, down + c])
    return _edges(n, i, j, name, shape=[r, c])


def grid(n: int) -> Graph:
    """2-D grid of ``r x c = n`` nodes, r the largest divisor of n not above sqrt(n)."""
    return _lattice(n, False, "grid")


def torus(n: int) -> Graph:
    """2-D grid with wrap-around, ``r x c = n`` as in :func:`grid`."""
    return _lattice(n, True, "torus")


def hypercube(n: int) -> Graph:
    k = n.bit_length() - 1
    if n != 1 << k:
        raise ConfigError(f"n={n}: hypercube needs a power of two")
    i = np.arange(n)
    return _edges(n, np.tile(i, k), np.concatenate([i ^ (1 << b) for b in range(k)]), "hypercube")


def exponential(n: int) -> Graph:
    """Static exponential graph: i ~ i + 2^k (mod n) for every 2^k < n."""
    return _circulant(n, "exponential")


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


ISOLATED = 3          # erdos_renyi is refused where G(n, p) has more isolated agents than this on average


def erdos_renyi_threshold(n: int) -> float:
    """The p at which G(n, p) has ``ISOLATED`` isolated agents on average, n (1 - p)^(n - 1) = 3, so
    that it is connected with probability about e^-3 = 5% (just below ln(n) / n for large n)."""
    return max(0.0, 1 - (ISOLATED / n) ** (1 / (n - 1)))


def erdos_renyi(n: int, p: float, seed: int = 0) -> Graph:
    """G(n, p), redrawn (seeded) until connected: a Binomial(n(n-1)/2, p) number of edges, then
    that many distinct pairs, uniformly (the same law; O(edges) time and memory). Below
    :func:`erdos_renyi_threshold` a connected draw is rare (isolated agents): refused at once."""
    least = erdos_renyi_threshold(n)
    if p < least:
        raise ConfigError(f"p={p}: below {least:.4g}, where G(n={n}, p) has {ISOLATED} isolated agents on average "
                          f"and is connected with probability about 5% (ln(n)/n = {math.log(n) / n:.4g}); "
                          f"choose p >= {least:.4g}")
    pairs = n * (n - 1) // 2

    def draw(rng):
        q = rng.choice(pairs, size=rng.binomial(pairs, p), replace=False)
        return Graph.from_edges(n, _pair(q, n))
    return _resample(n, seed, draw, "erdos_renyi", p=p)


def random_regular(n: int, degree: int, seed: int = 0) -> Graph:
    """A random ``degree``-regular graph, redrawn (seeded) until connected (for degree >= 3 the
    first draw almost always is): the configuration model (n * degree stubs paired at random)
    with each self-loop or repeated pair switched with a random other pair, (a, b), (u, v) ->
    (a, u), (b, v), until none is left; every step is an array operation over the pairs."""
    if not (3 <= degree < n and n * degree % 2 == 0):
        raise ConfigError(f"degree={degree}: a connected random regular graph on n={n} agents needs "
                          f"3 <= degree < n and n * degree even")

    def draw(rng):
        pairs = rng.permutation(np.repeat(np.arange(n), degree)).reshape(-1, 2)
        for _ in range(1000):
            bad = _bad_pairs(pairs, n)
            if not bad.size:
                return Graph.from_edges(n, pairs)
            other = np.delete(np.arange(len(pairs)), bad)
            partner = other[rng.choice(other.size, size=min(bad.size, other.size), replace=False)]
            bad = bad[:partner.size]
            pairs[bad, 1], pairs[partner, 0] = pairs[partner, 0], pairs[bad, 1]
        raise ConfigError(f"degree={degree}: no simple random {degree}-regular pairing on n={n} agents found")
    return _resample(n, seed, draw, "random_regular", degree=degree)


def _bad_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Indices of the self-loops and of every repeat of an earlier pair."""
    keys = pairs.min(1) * n + pairs.max(1)
    order = np.argsort(keys)
    bad = pairs[:, 0] == pairs[:, 1]
    bad[order[1:][keys[order[1:]] == keys[order[:-1]]]] = True
    return np.flatnonzero(bad)


def random_geometric(n: int, radius: float, seed: int = 0) -> Graph:
    """Points uniform in the unit square, linked when closer than ``radius``; redrawn until connected.
    The candidate pairs come from a k-d tree (O(edges), not n^2 / 2)."""
    def draw(rng):
        pts = rng.random((n, 2))
        ij = scipy.spatial.KDTree(pts).query_pairs(radius * (1 + 1e-9), output_type="ndarray")
        keep = np.linalg.norm(pts[ij[:, 0]] - pts[ij[:, 1]], axis=1) < radius
        return Graph.from_edges(n, ij[keep])
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
