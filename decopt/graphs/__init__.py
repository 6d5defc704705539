"""Topologies, mixing matrices and random-link models.

``build_graph(cfg, seed)`` turns a ``graph`` config into a :class:`Graph`; each topology is one
``graph=`` choice, registered below with its schema and generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import registry
from ..errors import ConfigError
from ..registry import register
from . import topologies
from .graph import Graph
from .links import MODELS as LINK_MODELS, Links
from .mixing import RULES as MIXING_RULES, edge_weights, expected_weights, mixing_matrix
from .spectrum import SpectralGap, mixing_gap, spectral_gap

__all__ = ["Graph", "Links", "build_graph", "edge_count", "mixing_matrix", "edge_weights", "expected_weights",
           "spectral_gap", "mixing_gap", "SpectralGap", "SCHEMAS", "topologies"]


@dataclass
class GraphConfig:
    """Keys every topology has. ``n: null`` means one agent per MPI rank (or 10 alone).

    The topologies of this schema: ``ring``: a cycle; ``path``: a line; ``star``: one hub;
    ``complete``: every pair linked; ``grid``: a 2-D grid, as square as n allows; ``torus``: a grid
    with wrap-around; ``hypercube``: n a power of two, i ~ j when they differ in one bit;
    ``exponential``: i ~ i + 2^k (mod n). Built from index arrays: a million agents in seconds."""

    name: str = "ring"
    n: int | None = None                # agents; null: the number of MPI ranks under mpirun, else 10
    mixing: str = "metropolis"          # metropolis | lazy_metropolis | max_degree | constant (with graph.weight)
    weight: float | None = None         # mixing=constant: W_ij of every edge, 0 < weight <= 1/max_degree
    links: str = "static"               # static | bernoulli (graph.link_p) | one_edge
    link_p: float = 1.0                 # links=bernoulli: probability each edge is active per iteration

    def check(self) -> None:
        if self.n is not None and self.n < 2:
            raise ConfigError(f"graph.n={self.n}: a decentralized problem needs at least 2 agents")
        if self.name == "hypercube" and self.n is not None and self.n & (self.n - 1):
            raise ConfigError(f"graph.n={self.n}: graph=hypercube needs a power of two")
        if self.mixing not in MIXING_RULES:
            raise ConfigError(f"graph.mixing={self.mixing}: choose one of {', '.join(MIXING_RULES)}")
        if self.mixing == "constant" and not (self.weight is not None and self.weight > 0):
            raise ConfigError(f"graph.weight={self.weight}: graph.mixing=constant needs 0 < weight <= 1/max_degree")
        if self.links not in LINK_MODELS:
            raise ConfigError(f"graph.links={self.links}: choose one of {', '.join(LINK_MODELS)}")
        if not 0 < self.link_p <= 1:
            raise ConfigError(f"graph.link_p={self.link_p}: must be in (0, 1]")


@dataclass
class ErdosRenyiConfig(GraphConfig):
    """G(n, p): each pair linked with probability p, redrawn (seeded by run.seed) until connected.
    A p at which a connected draw is rare is refused at once, naming the least p: below
    1 - (3/n)^(1/(n-1)) (just under ln(n)/n), G(n, p) has over 3 isolated agents on average."""

    name: str = "erdos_renyi"
    p: float = 0.3  # edge probability; redrawn (seeded by run.seed) until connected; refused below ~ln(n)/n

    def check(self) -> None:
        super().check()
        if not 0 < self.p <= 1:
            raise ConfigError(f"graph.p={self.p}: must be in (0, 1]")


@dataclass
class RandomRegularConfig(GraphConfig):
    """A random graph in which every agent has ``degree`` neighbours (configuration model,
    repaired by switchings), redrawn (seeded by run.seed) until connected."""

    name: str = "random_regular"
    degree: int = 4  # neighbours of every agent: 3 <= degree < n, n * degree even

    def check(self) -> None:
        super().check()
        if self.degree < 3:
            raise ConfigError(f"graph.degree={self.degree}: must be >= 3 (degree 2 is a union of cycles, rarely "
                              f"connected: graph=ring is the connected one)")


@dataclass
class GeometricConfig(GraphConfig):
    """n uniform points of the unit square, linked when closer than ``radius``; redrawn until connected."""

    name: str = "random_geometric"
    radius: float = 0.4  # link two uniform points of the unit square closer than this; redrawn until connected

    def check(self) -> None:
        super().check()
        if not self.radius > 0:
            raise ConfigError(f"graph.radius={self.radius}: must be > 0")


@dataclass
class EdgeListConfig(GraphConfig):
    """The edges of a text file, one ``i j`` pair per line; n from the file unless graph.n is set."""

    name: str = "edge_list"
    file: str = "???"  # text file of "i j" pairs, one edge per line (# comments allowed)

    def check(self) -> None:
        super().check()
        try:
            topologies.check_edge_file(self.file)
        except ConfigError as exc:                  # "file=...: why" names the key graph.file
            raise ConfigError(f"graph.{exc}") from None


def _plain(generator):
    """A deterministic topology: ``generator(n)``."""
    return lambda cfg, n, seed: generator(n)


register("graph", "ring", GraphConfig, _plain(topologies.ring))
register("graph", "path", GraphConfig, _plain(topologies.path))
register("graph", "star", GraphConfig, _plain(topologies.star))
register("graph", "complete", GraphConfig, _plain(topologies.complete))
register("graph", "grid", GraphConfig, _plain(topologies.grid))
register("graph", "torus", GraphConfig, _plain(topologies.torus))
register("graph", "hypercube", GraphConfig, _plain(topologies.hypercube))
register("graph", "exponential", GraphConfig, _plain(topologies.exponential))
register("graph", "erdos_renyi", ErdosRenyiConfig, lambda cfg, n, seed: topologies.erdos_renyi(n, cfg.p, seed))
register("graph", "random_regular", RandomRegularConfig,
         lambda cfg, n, seed: topologies.random_regular(n, cfg.degree, seed))
register("graph", "random_geometric", GeometricConfig,
         lambda cfg, n, seed: topologies.random_geometric(n, cfg.radius, seed))
register("graph", "edge_list", EdgeListConfig, lambda cfg, n, seed: topologies.edge_list(cfg.file, n))
SCHEMAS = registry.schemas("graph")


DEFAULT_N = 10


def edge_count(cfg, n: int) -> int:
    """Edges (or candidate pairs) the generator of ``cfg`` holds for n nodes, for the memory
    check; an edge list is counted by the runner once read."""
    pairs = n * (n - 1) // 2
    disc = min(1.0, math.pi * getattr(cfg, "radius", 1.0) ** 2)     # P(two uniform points are linked) <= pi r^2
    counts = {"complete": pairs, "random_geometric": int(disc * pairs), "erdos_renyi": int(getattr(cfg, "p", 1.0) * pairs),
              "hypercube": n * max(1, n.bit_length() - 1) // 2, "exponential": n * max(1, (n - 1).bit_length()),
              "random_regular": n * getattr(cfg, "degree", 2) // 2}
    return counts.get(cfg.name, 2 * n)


def build_graph(cfg, seed: int = 0, n: int | None = None) -> Graph:
    """The connected :class:`Graph` a ``graph`` config describes.

    ``n`` overrides ``cfg.n``; when both are None an edge list sizes itself from its file and
    every other topology gets ``DEFAULT_N`` agents.
    """
    name = cfg.name
    generate = registry.lookup("graph", name).build
    n = n or cfg.n or (None if name == "edge_list" else DEFAULT_N)
    try:
        g = generate(cfg, n, seed)
    except ConfigError as exc:                      # "p=...: why" names the key graph.p
        raise ConfigError(f"graph.{exc}") from None
    n = n or g.n
    if g.n != n:
        raise ConfigError(f"graph.n={n}: graph={name} produced {g.n} nodes")
    if not g.is_connected():
        raise ConfigError(f"graph={name}: the graph is disconnected; decentralized consensus needs a connected graph")
    return g
