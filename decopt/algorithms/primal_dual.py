"""The common part of the primal-dual methods (TiCoPD, CP-SGD, FSPDA): X and a dual Lambda per
agent, Lambda^0 = 0 so that sum_i lambda_i = 0 for ever in the papers' forms (``dual_sum``), and
the gradient through the transforms (weight decay, heavy ball). TiCoPD P1 and CP-SGD share the
node-wise mirror X̂ with its running aggregate L X̂ (``MirrorState``); FSPDA-SA and FSPDA-STORM
the masked gossip (``MaskedPrimalDual``)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm, State, agent_rows
from .masked_gossip import MaskedGossip
from .public_copy import copy_start, init_copy
from .transforms import Chain, HeavyBall, WeightDecay
from ..lazy import torch


@dataclass(eq=False)
class PrimalDualState(State):
    """X (``x``) and the dual Lambda (``lam``)."""

    lam: torch.Tensor = agent_rows()


@dataclass(eq=False)
class MirrorState(PrimalDualState):
    """+ the mirror X̂ (``xhat``), its aggregate L X̂ (``lxhat``) and the heavy-ball buffer."""

    xhat: torch.Tensor = agent_rows()
    lxhat: torch.Tensor = agent_rows()
    momentum: torch.Tensor = agent_rows()


class PrimalDual(Algorithm):
    """``direction``: the transforms, built once; ``gradient``: grad F(X) through them."""

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.direction = self.transforms(cfg)

    @staticmethod
    def transforms(cfg):
        """Weight decay, then heavy ball (the official codes' order)."""
        return Chain(WeightDecay(cfg.weight_decay), HeavyBall(cfg.momentum))

    def init_state(self, x0: torch.Tensor, state: type[PrimalDualState], **fields) -> PrimalDualState:
        """x^0, Lambda^0 = 0 and the transforms' buffers, with the method's own ``fields``."""
        return state(x=x0.clone(), lam=torch.zeros_like(x0), **self.direction.init_fields(x0), **fields)

    def gradient(self, state: PrimalDualState, X: torch.Tensor, t: int) -> torch.Tensor:
        return self.direction(self.problem.grad(X, t), X, state)

    def metrics(self, state):
        return {"dual_sum": float(self.net.sum(state.lam).norm())}


class MirrorPrimalDual(PrimalDual):
    """With the node-wise mirror (TiCoPD P1, CP-SGD)."""

    def init(self, x0) -> MirrorState:
        """X̂^0 at ``copy_init`` (0, or the common x^0, whose L X̂ is 0); L X̂^0 = 0."""
        xhat, lxhat = init_copy(x0, copy_start(self.cfg, x0))
        return self.init_state(x0, MirrorState, xhat=xhat, lxhat=lxhat)


class MaskedPrimalDual(PrimalDual):
    """Messages are random-k masked values on the active edges, drawn by the method itself."""

    no_compressor = "sparsifies with its own shared mask (algo.mask_ratio)"

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.gossip = MaskedGossip(net, compressor, problem.segments, cfg.mask_ratio, cfg.k_rule, cfg.shared_mask)
