"""BEER (Zhao, Li, Li, Richtarik, Chi, NeurIPS 2022): compressed gradient tracking with error
feedback on both the iterates and the trackers.

Default ``variant=paper``, per iteration (two compressed rounds)::

    X_new = X - eta V + gamma (W - I) H          # H, G: public copies before this iteration
    H    += Q(X_new - H)                          # round 1
    V_new = V + gamma (W - I) G + grad(X_new) - grad(X)
    G    += Q(V_new - G)                          # round 2

with G^0 = 0, V^0 = the b0-sample (default full local) gradient and H^0 = ``copy_init``: 0 by
default, as the DoCoM authors' notebook [NB] runs BEER in the DoCoM paper's Exp. 1 (H = G = 0,
b0 = the 100-sample minibatch; specs/docom.md §5), or ``x0`` = X^0 (the DoCoM PyTorch code's
``ParallelBEER_V`` copies the model).
grad(X) is the stochastic gradient kept from the previous iteration (one evaluation per iteration,
on a fresh minibatch). Copies are kept as local rows plus e = (W - I) * copy (see ``copies``).

``variant=pytorch`` is the baseline as the DoCoM authors' code runs it (``ParallelBEER_V``,
specs/docom.md §2.4 style: CHOCO's "parallel" order). Iteration 0 only moves X; from t = 1::

    V    += grad(X; xi^t) - grad(X^{t-1}; xi^{t-1})   # tracking, the previous fresh gradient
    V    += gamma (W - I) G                            # the copies from the previous round
    G    += Q(V - G)                                   # round 1
    X    -= eta V;  X += gamma (W - I) H               # previous copies again
    H    += Q(X - H)                                   # round 2

``momentum`` (official code 0.9, ``--momentum_factor``'s default) puts heavy ball on the step
direction V: ``buf = momentum buf + V; X -= eta buf``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Algorithm
from .copies import (check_copy_init, check_momentum, check_positive, copy_start, heavy_ball, init_copy,
                     large_batch_grad, push)

VARIANTS = ("paper", "pytorch")


@dataclass
class BEERConfig:
    """BEER (Zhao et al. 2022): X += -eta V + gamma (W - I) H; H += Q(X - H); V += gamma (W - I) G +
    grad(X_new) - grad(X_old); G += Q(V - G).

    eta: step along the tracker V; gamma: consensus step on the compressed copies H and G;
    b0: batch of the initial tracker V^0 (null = full local data); variant: paper | pytorch
    (the DoCoM code's order); momentum: heavy ball on V (official code 0.9); copy_init: zero | x0,
    H^0 (zero: [NB]; x0: [PT])."""

    name: str = "beer"
    eta: float = 0.01  # eta: step along the tracker V
    gamma: float = 0.2  # gamma: consensus step on the compressed copies H, G (0.16-0.2 top-k 5%, 0.5 4-bit)
    b0: int | None = None  # batch of the initial tracker V^0 (null = full local data)
    variant: str = "paper"  # paper: the BEER paper's order | pytorch: the DoCoM code's ParallelBEER_V (previous copies)
    momentum: float = 0.0  # heavy ball on the tracker step (official code: 0.9, --momentum_factor's default)
    copy_init: str = "zero"  # H^0: zero = DoCoM notebook's BEER (Exp. 1) | x0 = DoCoM code's ParallelBEER_V

    def check(self) -> None:
        check_positive("algo", eta=self.eta, gamma=self.gamma)
        check_momentum(self.momentum)
        check_copy_init(self.copy_init)
        if self.b0 is not None and self.b0 < 1:
            raise ConfigError(f"algo.b0={self.b0}: must be >= 1 or null (full local data)")
        if self.variant not in VARIANTS:
            raise ConfigError(f"algo.variant={self.variant}: choose one of {', '.join(VARIANTS)}")


class BEER(Algorithm):
    name = "beer"
    config = BEERConfig
    links = "static"

    def init(self, x0):
        v0 = large_batch_grad(self.problem, x0, self.cfg.b0)
        h, eh = init_copy(x0, copy_start(self.cfg, x0))
        gc, eg = init_copy(x0)                                   # G^0 = 0 ([NB], [PT])
        state = {"x": x0.clone(), "v": v0, "grad_x": v0.clone(), "h": h, "e_h": eh, "g_hat": gc, "e_g": eg}
        if self.cfg.momentum:
            state["momentum"] = torch.zeros_like(x0)
        return state

    def step(self, state, t):
        return self._paper(state, t) if self.cfg.variant == "paper" else self._pytorch(state, t)

    def _paper(self, state, t):
        net, Q, eta, gamma = self.net, self.compressor, self.cfg.eta, self.cfg.gamma
        x, v, h, eh, gc, eg = (state[k] for k in ("x", "v", "h", "e_h", "g_hat", "e_g"))
        x_new = x - eta * heavy_ball(state, v, self.cfg.momentum)
        x_new.add_(eh, alpha=gamma)
        push(net, Q, x_new - h, h, eh)                              # round 1
        grad_new = self.problem.grad(x_new, t)
        v_new = v + gamma * eg + (grad_new - state["grad_x"])
        push(net, Q, v_new - gc, gc, eg)                            # round 2
        state.update(x=x_new, v=v_new, grad_x=grad_new)
        return state

    def _pytorch(self, state, t):
        net, Q, eta, gamma = self.net, self.compressor, self.cfg.eta, self.cfg.gamma
        x, v, h, eh, gc, eg = (state[k] for k in ("x", "v", "h", "e_h", "g_hat", "e_g"))
        grad_new = self.problem.grad(x, t)                          # the step's fresh minibatch gradient
        if t > 0:
            v = v + (grad_new - state["grad_x"]) + gamma * eg
            push(net, Q, v - gc, gc, eg)                            # the tracker round
        x = x - eta * heavy_ball(state, v, self.cfg.momentum)
        x.add_(eh, alpha=gamma)
        push(net, Q, x - h, h, eh)                                  # the iterate round
        state.update(x=x, v=v, grad_x=grad_new)
        return state
