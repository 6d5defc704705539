"""The common part of the primal-dual methods (TiCoPD, CP-SGD, FSPDA): an iterate X and a dual
Lambda per agent, Lambda^0 = 0 so that sum_i lambda_i = 0 for ever in the papers' forms (the
``dual_sum`` metric watches it), and the gradient direction g = grad F(X) passed through the
shared transforms (weight decay, heavy ball) that each method builds once in ``__init__``.

TiCoPD (P1) and CP-SGD also share the node-wise mirror: a public copy x̂_i of every iterate that
all neighbours hold, advanced by the compressed broadcast c_i = Q(x_i - x̂_i), with its Laplacian
aggregate s = L X̂ kept as a running sum (``MirrorState``). FSPDA-SA and FSPDA-STORM share the
masked gossip on the active edges (``MaskedPrimalDual``)."""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from ..errors import ConfigError
from .base import Algorithm, State, agent_rows
from .masked_gossip import MaskedGossip
from .public_copy import copy_start
from .transforms import HeavyBall, WeightDecay, chain

torch = lazy.load("torch")


def check_mirror_step(key: str, value: float) -> None:
    if not 0 < value <= 2:
        raise ConfigError(f"{key}={value}: the mirror step must be in (0, 2]")


@dataclass(eq=False)
class PrimalDualState(State):
    """X (``x``) and the dual Lambda (``lam``)."""

    lam: torch.Tensor = agent_rows()


@dataclass(eq=False)
class MirrorState(PrimalDualState):
    """+ the node-wise mirror X̂ (``xhat``), its aggregate L X̂ (``lxhat``) and the heavy-ball
    buffer (``momentum``, None when off)."""

    xhat: torch.Tensor = agent_rows()
    lxhat: torch.Tensor = agent_rows()
    momentum: torch.Tensor = agent_rows()


class PrimalDual(Algorithm):
    """A primal-dual method: ``direction`` (the ``transforms`` applied to the stochastic gradient),
    the gradient step's direction at X, and the dual-sum metric."""

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.direction = self.transforms(cfg)

    @staticmethod
    def transforms(cfg):
        """Weight decay, then heavy ball (the official codes' order); a method without momentum
        overrides this."""
        return chain(WeightDecay(cfg.weight_decay), HeavyBall(cfg.momentum))

    def init_state(self, x0: torch.Tensor, state: type[PrimalDualState], **fields) -> PrimalDualState:
        """x^0, Lambda^0 = 0 and the transforms' buffers, with the method's own ``fields``."""
        return state(x=x0.clone(), lam=torch.zeros_like(x0), **self.direction.init_fields(x0), **fields)

    def gradient(self, state: PrimalDualState, X: torch.Tensor, t: int) -> torch.Tensor:
        """grad F(X) through ``direction`` (e.g. g + wd X, then the heavy ball)."""
        return self.direction(self.problem.grad(X, t), X, state)

    def metrics(self, state):
        return {"dual_sum": float(self.net.sum(state.lam).norm())}


class MirrorPrimalDual(PrimalDual):
    """A primal-dual method with the node-wise mirror (TiCoPD P1, CP-SGD)."""

    def init(self, x0) -> MirrorState:
        """x^0; Lambda^0 = 0; X̂^0 at ``copy_init`` (0, or the common x^0, whose L X̂ is 0); L X̂^0 = 0."""
        start = copy_start(self.cfg, x0)
        return self.init_state(x0, MirrorState, xhat=torch.zeros_like(x0) if start is None else start.clone(),
                               lxhat=torch.zeros_like(x0))


class MaskedPrimalDual(PrimalDual):
    """A primal-dual method whose messages are random-k masked values on the active edges, drawn
    by the method itself (FSPDA-SA, FSPDA-STORM; ``masked_gossip``)."""

    links = "any"
    no_compressor = "sparsifies with its own shared mask (algo.mask_ratio)"

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.gossip = MaskedGossip(net, compressor, problem.segments, cfg.mask_ratio, cfg.k_rule, cfg.shared_mask)
