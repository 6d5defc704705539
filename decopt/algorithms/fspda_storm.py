"""FSPDA-STORM: FSPDA with STORM variance reduction on the primal and the dual (Yau, Liu & Wai,
arXiv 2410.18774 v2; [C2] ``pcode/optim/fspda_storm.py``, specs/fspda.md §2.5). Two gradients on
one minibatch, at x^t and x^{t-1}; one masked exchange carries both vectors on the same mask::

    q    = L_t(X^t),  qtil = L_t(X^{t-1})                              (same S^t, E^t)
    d    = alpha g(x^t)     + eta lambda + gamma q
    dtil = alpha g(x^{t-1}) + eta lambda + gamma qtil
    m    = d (t = 0) | d + (1 - a)(m - dtil);   x^{t+1} = x^t - m
    u    = q (t = 0) | q + (1 - b)(u - qtil);   lambda += beta u

a = ``storm_momentum``, b = ``storm_dual_momentum`` (1 = plain SGDA). The keys are FSPDA-SA's;
``weight_decay`` is added to both gradients; no heavy ball (the code has none here).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import torch
from ..schema import check_range
from .base import agent_rows
from .fspda import FSPDAKeys
from .primal_dual import MaskedPrimalDual, PrimalDualState
from .transforms import WeightDecay


@dataclass
class FSPDAStormConfig(FSPDAKeys):
    """FSPDA-STORM (Yau, Liu & Wai, arXiv 2410.18774 v2): FSPDA with STORM variance reduction."""

    name: str = "fspda_storm"
    storm_momentum: float = 0.1  # a: primal STORM weight in (0, 1] (1 = no variance reduction); code --storm_momentum
    storm_dual_momentum: float = 0.1  # b: dual STORM weight in (0, 1] (1 = off); code --storm_dual_momentum

    def check(self) -> None:
        super().check()
        check_range("algo", "in (0, 1]", storm_momentum=self.storm_momentum,
                    storm_dual_momentum=self.storm_dual_momentum)


@dataclass(eq=False)
class FSPDAStormState(PrimalDualState):
    """+ x^{t-1} (``x_prev``) and the STORM estimators ``m`` (primal) and ``u`` (dual)."""

    x_prev: torch.Tensor = agent_rows()
    m: torch.Tensor = agent_rows()
    u: torch.Tensor = agent_rows()


class FSPDAStorm(MaskedPrimalDual):
    name = "fspda_storm"
    config = FSPDAStormConfig

    @staticmethod
    def transforms(cfg):
        """Weight decay only: the STORM estimators take the place of momentum."""
        return WeightDecay(cfg.weight_decay)

    def init(self, x0) -> FSPDAStormState:
        """x^0 = x^{-1}; Lambda^0 = 0; m, u start at 0 (set to d, q at t = 0)."""
        return self.init_state(x0, FSPDAStormState, x_prev=x0.clone(), m=torch.zeros_like(x0), u=torch.zeros_like(x0))

    def step(self, state, t):
        cfg = self.cfg
        X, Xp, lam, m, u = state.x, state.x_prev, state.lam, state.m, state.u
        alpha = cfg.step_size(t)
        g = self.gradient(state, X, t)                  # same minibatch (keyed on t) ...
        rnd = self.gossip.round(t, [X, Xp])
        q = rnd.laplacian(X, 0).add_to(torch.zeros_like(X))        # L_t(X^t)
        qt = rnd.laplacian(Xp, 1).add_to(torch.zeros_like(Xp))     # L_t(X^{t-1}), same masks
        d = g.mul(alpha).add_(lam, alpha=cfg.eta).add_(q, alpha=cfg.gamma)
        if t == 0:
            m.copy_(d)
            u.copy_(q)
        else:
            gp = self.gradient(state, Xp, t)            # ... at x^{t-1} (not needed at t = 0)
            dt = gp.mul(alpha).add_(lam, alpha=cfg.eta).add_(qt, alpha=cfg.gamma)
            m.sub_(dt).mul_(1 - cfg.storm_momentum).add_(d)
            u.sub_(qt).mul_(1 - cfg.storm_dual_momentum).add_(q)
        Xp.copy_(X)
        X.sub_(m)                                       # x^{t+1} = x^t - m
        lam.add_(u, alpha=cfg.beta)                     # lambda += beta u
        return state
