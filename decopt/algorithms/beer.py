"""BEER (Zhao, Li, Li, Richtarik, Chi, NeurIPS 2022): compressed gradient tracking with error
feedback on both the iterates and the trackers. Per iteration (two compressed rounds)::

    X_new = X - eta V + gamma (W - I) H          # H, G: public copies before this iteration
    H    += Q(X_new - H)                          # round 1
    V_new = V + gamma (W - I) G + grad(X_new) - grad(X)
    G    += Q(V_new - G)                          # round 2

with H^0 = X^0 (common start), G^0 = 0, V^0 = the b0-sample (default full local) gradient.
grad(X) is the stochastic gradient kept from the previous iteration (one evaluation per iteration,
on a fresh minibatch). Copies are kept as local rows plus e = (W - I) * copy (see ``copies``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .base import Algorithm
from .copies import check_positive, init_copy, large_batch_grad, push


@dataclass
class BEERConfig:
    """eta: step along the tracker V; gamma: consensus step on the compressed copies H and G;
    b0: batch of the initial tracker V^0 (null = full local data)."""

    name: str = "beer"
    eta: float = 0.01
    gamma: float = 0.2
    b0: int | None = None

    def check(self) -> None:
        check_positive("algo", eta=self.eta, gamma=self.gamma)
        if self.b0 is not None and self.b0 < 1:
            raise ConfigError(f"algo.b0={self.b0}: must be >= 1 or null (full local data)")


class BEER(Algorithm):
    name = "beer"
    links = "static"

    def init(self, x0):
        v0 = large_batch_grad(self.problem, x0, self.cfg.b0)
        h, eh = init_copy(self.net, x0)
        gc, eg = init_copy(self.net, None, like=x0)
        return {"x": x0.clone(), "v": v0, "grad_x": v0.clone(), "h": h, "e_h": eh, "g_hat": gc, "e_g": eg}

    def step(self, state, t):
        net, Q, eta, gamma = self.net, self.compressor, self.cfg.eta, self.cfg.gamma
        x, v, h, eh, gc, eg = (state[k] for k in ("x", "v", "h", "e_h", "g_hat", "e_g"))
        x_new = x - eta * v
        x_new.add_(eh, alpha=gamma)
        push(net, Q, x_new - h, h, eh)                              # round 1
        grad_new = self.problem.grad(x_new, t)
        v_new = v + gamma * eg + (grad_new - state["grad_x"])
        push(net, Q, v_new - gc, gc, eg)                            # round 2
        state.update(x=x_new, v=v_new, grad_x=grad_new)
        return state
