"""Gradient transforms, written once (optax's ``add_decayed_weights`` and ``trace``): each maps the
stochastic gradient g at X to the step direction; ``Chain`` composes them. A transform's buffer is
a state field (``momentum``) that the algorithm's ``init`` fills from ``init_fields``."""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import torch


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
    """buf = mu buf + g in ``state.momentum`` (the ChocoSGD code base's ``--momentum_factor``,
    default 0.9, inherited by the DoCoM/FSPDA codes); g itself when mu = 0."""

    momentum: float

    def init_fields(self, x0: torch.Tensor) -> dict:
        return {"momentum": torch.zeros_like(x0)} if self.momentum else {}

    def __call__(self, g, X, state):
        return state.momentum.mul_(self.momentum).add_(g) if self.momentum else g


class Chain:
    """Transforms applied in order (optax's ``chain``): ``Chain(WeightDecay(wd), HeavyBall(mu))``."""

    def __init__(self, *transforms):
        self.transforms = transforms

    def init_fields(self, x0: torch.Tensor) -> dict:
        return {k: v for t in self.transforms for k, v in t.init_fields(x0).items()}

    def __call__(self, g, X, state):
        for t in self.transforms:
            g = t(g, X, state)
        return g
