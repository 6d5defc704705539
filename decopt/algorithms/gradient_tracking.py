"""Gradient tracking: DIGing (Nedic, Olshevsky, Shi, SIAM J. Optim. 2017) and GNSD (Lu, Zhang,
Sun, Hong, IEEE DSW 2019), the same recursion with exact or stochastic gradients::

    X_new = W_t X - lr Y                           # lr: DIGing's alpha
    Y_new = W_t Y + grad(X_new) - grad(X)          # grad(X) kept from the previous iteration

Y^0 = grad(X^0). W_t keeps only the active edges on random links (DIGing's time-varying
setting), so mean(Y) = mean(grad) always holds.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm, State, StepSize, agent_rows
from ..lazy import torch


@dataclass
class DIGingConfig(StepSize):
    """DIGing (Nedic, Olshevsky & Shi 2017): gradient tracking, also on time-varying graphs (W_t)."""

    name: str = "diging"
    lr: float = 0.05  # alpha: step along the tracker y


@dataclass
class GNSDConfig(DIGingConfig):
    """GNSD (Lu et al. 2019): DIGing's recursion with stochastic gradients."""

    name: str = "gnsd"


@dataclass(eq=False)
class TrackingState(State):
    """x: iterates; y: the gradient tracker; grad_x: grad(x), reused by the next tracker update."""

    y: torch.Tensor = agent_rows()
    grad_x: torch.Tensor = agent_rows()


class DIGing(Algorithm):
    name = "diging"
    config = DIGingConfig
    no_compressor = "exchanges exact vectors"

    def init(self, x0) -> TrackingState:
        g0 = self.problem.grad(x0, 0)
        return TrackingState(x=x0.clone(), y=g0, grad_x=g0.clone())

    def step(self, state, t):
        x_new = self.mix(state.x).sub_(state.y, alpha=self.cfg.step_size(t))
        g_new = self.problem.grad(x_new, t + 1)
        state.y = self.mix(state.y).add_(g_new - state.grad_x)
        state.x, state.grad_x = x_new, g_new
        return state

    def samples(self, t: int) -> float:
        return super().samples(t + 1)                 # grad(X^0) at init, then one per step


class GNSD(DIGing):
    name = "gnsd"
    config = GNSDConfig
