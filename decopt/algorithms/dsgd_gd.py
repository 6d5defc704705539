"""DSGD with greedy deployment (Li, Yau, Wai, NeurIPS 2022) for multi-agent performative prediction.

At iteration t (paper eq. (5), runner index t = paper t)::

    Z_i ~ D_i(theta_i^t)                                   # deploy the own pre-mixing iterate, sample
    theta^{t+1} = W theta^t - gamma_{t+1} grad_theta l(theta^t; Z)   # Z held fixed: no dZ/dtheta
    gamma_t = a0 / (a1 + t)

The sample gradient is taken with the induced data fixed (``problem.sample`` then
``problem.sample_grad``), so the method targets the performatively stable point theta_PS, not the
performative optimum. On a problem whose data do not react to the model it is plain DSGD with
the diminishing step. Messages are the exact iterates (a compressor other than ``none`` gives
neighbours Q(theta_j), as in ``dsgd``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm
from .copies import check_positive


@dataclass
class DSGDGDConfig:
    """gamma_t = a0 / (a1 + t). Theory wants a0 * mu_tilde >= 2 with mu_tilde = mu - eps_avg L
    (1 - eps_avg for Gaussian mean estimation, so a0 >= 20 at eps_avg = 0.9) and gamma_1 <= 0.5."""

    name: str = "dsgd_gd"
    a0: float = 25.0
    a1: float = 50.0

    def check(self) -> None:
        check_positive("algo", a0=self.a0, a1=self.a1)

    def step_size(self, t: int) -> float:
        return self.a0 / (self.a1 + t)


class DSGDGD(Algorithm):
    name = "dsgd_gd"
    links = "any"

    def init(self, x0):
        return {"x": x0.clone()}

    def gradient(self, x, t):
        """Phase 1: deploy x_i, draw Z_i ~ D_i(x_i); the sample gradient at x with Z fixed
        (``Performative.grad``; a plain problem's stochastic gradient otherwise)."""
        return self.problem.grad(x, t)

    def step(self, state, t):
        x = state["x"]
        g = self.gradient(x, t)
        sent = self.net.broadcast(x, self.compressor)
        mixed = self.net.mix(sent, own=None if sent is x else x)
        state["x"] = mixed.sub_(g, alpha=self.cfg.step_size(t + 1))
        return state
