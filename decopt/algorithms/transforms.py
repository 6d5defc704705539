"""Gradient transforms shared by the algorithms, written once (in the spirit of optax's
``add_decayed_weights`` and ``trace``): each maps the stochastic gradient g at X to the step
direction, and ``chain`` composes them in order. A transform that keeps a buffer declares it
as a state field (``momentum``) that the algorithm's ``init`` fills from ``init_fields``."""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from ..errors import ConfigError

torch = lazy.load("torch")


def check_momentum(momentum: float) -> None:
    if not 0 <= momentum < 1:
        raise ConfigError(f"algo.momentum={momentum}: must be in [0, 1) (0 = off, the papers' form)")


def check_weight_decay(weight_decay: float) -> None:
    if weight_decay < 0:
        raise ConfigError(f"algo.weight_decay={weight_decay}: must be >= 0 (0 = off, the papers' form)")


@dataclass(frozen=True)
class WeightDecay:
    """g + wd X: the L2 term the official codes add to every gradient (``--weight_decay``)."""

    weight_decay: float

    def init_fields(self, x0: torch.Tensor) -> dict:
        return {}

    def __call__(self, g, X, state):
        return g.add(X, alpha=self.weight_decay) if self.weight_decay else g


@dataclass(frozen=True)
class HeavyBall:
    """buf = mu buf + g, kept in ``state.momentum`` (the ChocoSGD code base's ``--momentum_factor``,
    default 0.9, that the DoCoM/FSPDA repositories inherit); g itself when mu = 0."""

    momentum: float

    def init_fields(self, x0: torch.Tensor) -> dict:
        return {"momentum": torch.zeros_like(x0)} if self.momentum else {}

    def __call__(self, g, X, state):
        return state.momentum.mul_(self.momentum).add_(g) if self.momentum else g


@dataclass(frozen=True)
class Chain:
    """Transforms applied in order: ``chain(WeightDecay(wd), HeavyBall(mu))``."""

    transforms: tuple

    def init_fields(self, x0: torch.Tensor) -> dict:
        out = {}
        for t in self.transforms:
            out.update(t.init_fields(x0))
        return out

    def __call__(self, g, X, state):
        for t in self.transforms:
            g = t(g, X, state)
        return g


def chain(*transforms) -> Chain:
    return Chain(tuple(transforms))
