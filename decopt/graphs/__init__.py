"""Topologies, mixing matrices and random-link models.

``build_graph(cfg, seed)`` turns a ``graph`` config into a :class:`Graph`; each topology is one
config choice in ``conf/graph/`` with the schema below.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from . import topologies
from .graph import Graph
from .links import MODELS as LINK_MODELS, Links
from .mixing import RULES as MIXING_RULES, edge_weights, mixing_matrix, spectral_gap

__all__ = ["Graph", "Links", "build_graph", "edge_count", "mixing_matrix", "edge_weights", "spectral_gap",
           "SCHEMAS", "topologies"]


@dataclass
class GraphConfig:
    """Keys every topology has. ``n: null`` means one agent per MPI rank (or 10 alone)."""

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
    name: str = "erdos_renyi"
    p: float = 0.3

    def check(self) -> None:
        super().check()
        if not 0 < self.p <= 1:
            raise ConfigError(f"graph.p={self.p}: must be in (0, 1]")


@dataclass
class GeometricConfig(GraphConfig):
    name: str = "random_geometric"
    radius: float = 0.4

    def check(self) -> None:
        super().check()
        if not self.radius > 0:
            raise ConfigError(f"graph.radius={self.radius}: must be > 0")


@dataclass
class EdgeListConfig(GraphConfig):
    name: str = "edge_list"
    file: str = "???"

    def check(self) -> None:
        super().check()
        try:
            topologies.check_edge_file(self.file)
        except ConfigError as exc:                  # "file=...: why" names the key graph.file
            raise ConfigError(f"graph.{exc}") from None


_PLAIN = ("ring", "path", "star", "complete", "grid", "torus", "hypercube", "exponential")
SCHEMAS = {**{name: GraphConfig for name in _PLAIN}, "erdos_renyi": ErdosRenyiConfig,
           "random_geometric": GeometricConfig, "edge_list": EdgeListConfig}


DEFAULT_N = 10


def edge_count(cfg, n: int) -> int:
    """Edges (or candidate pairs) the generator of ``cfg`` holds for n nodes, for the memory
    check; an edge list is counted by the runner once read."""
    pairs = n * (n - 1) // 2
    counts = {"complete": pairs, "random_geometric": pairs, "erdos_renyi": int(getattr(cfg, "p", 1.0) * pairs),
              "hypercube": n * max(1, n.bit_length() - 1) // 2, "exponential": n * max(1, (n - 1).bit_length())}
    return counts.get(cfg.name, 2 * n)


def build_graph(cfg, seed: int = 0, n: int | None = None) -> Graph:
    """The connected :class:`Graph` a ``graph`` config describes.

    ``n`` overrides ``cfg.n``; when both are None an edge list sizes itself from its file and
    every other topology gets ``DEFAULT_N`` agents.
    """
    name = cfg.name
    n = n or cfg.n
    if name == "edge_list":
        g = topologies.edge_list(cfg.file, n)
        n = n or g.n
    n = n or DEFAULT_N
    if name in _PLAIN:
        g = getattr(topologies, name)(n)
    elif name == "erdos_renyi":
        g = topologies.erdos_renyi(n, cfg.p, seed)
    elif name == "random_geometric":
        g = topologies.random_geometric(n, cfg.radius, seed)
    elif name == "edge_list":
        pass
    else:
        raise ConfigError(f"graph={name}: choose one of {', '.join(SCHEMAS)}")
    if g.n != n:
        raise ConfigError(f"graph.n={n}: graph={name} produced {g.n} nodes")
    if not g.is_connected():
        raise ConfigError(f"graph={name}: the graph is disconnected; decentralized consensus needs a connected graph")
    return g
