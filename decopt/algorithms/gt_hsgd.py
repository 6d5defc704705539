"""GT-HSGD (Xin, Khan, Kar, ICML 2021): gradient tracking with the hybrid (STORM) estimator::

    X_new = W (X - lr Y)                                        # lr: the paper's alpha
    V_new = grad(X_new; xi) + (1 - beta) (V - grad(X; xi))      # same minibatch xi at both points
    Y_new = W (Y + V_new - V)

with V^0 = Y^0 = the b0-sample (default full local) gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import torch
from ..schema import check_range
from .base import Algorithm, State, StepSize, agent_rows
from .gradients import deterministic, large_batch_grad, tracker_samples


@dataclass
class GTHSGDConfig(StepSize):
    """GT-HSGD (Xin, Khan & Kar 2021): gradient tracking with the hybrid (STORM) estimator."""

    name: str = "gt_hsgd"
    lr: float = 0.01  # alpha: step along the tracker Y
    beta: float = 0.01  # beta: hybrid momentum weight (1 = plain SGD)
    b0: int | None = None  # b_0: batch of the initial V^0 = Y^0 (null = full local data)

    def check(self) -> None:
        super().check()
        check_range("algo", "in (0, 1]", beta=self.beta)
        check_range("algo", ">= 1", b0=self.b0)


@dataclass(eq=False)
class GTHSGDState(State):
    """The tracker ``y``, the hybrid estimator ``v``, and ``grad_x`` = grad(x) where gradients are
    deterministic (else the step draws it on the new minibatch)."""

    y: torch.Tensor = agent_rows()
    v: torch.Tensor = agent_rows()
    grad_x: torch.Tensor = agent_rows()


class GTHSGD(Algorithm):
    name = "gt_hsgd"
    config = GTHSGDConfig
    no_compressor = "exchanges exact vectors"
    grads_per_step = 2

    def init(self, x0) -> GTHSGDState:
        v0 = large_batch_grad(self.problem, x0, self.cfg.b0)
        return GTHSGDState(x=x0.clone(), y=v0.clone(), v=v0,
                           grad_x=v0.clone() if deterministic(self.problem) else None)

    def samples(self, t: int) -> float:
        return tracker_samples(self.problem, self.net.n, self.cfg.b0, self.grads_per_step * t)

    def step(self, state, t):
        x, v = state.x, state.v
        x_new = self.mix(x - self.cfg.step_size(t) * state.y)
        g_new = self.problem.grad(x_new, t)
        g_old = state.grad_x if state.grad_x is not None else self.problem.grad(x, t)
        if state.grad_x is not None:
            state.grad_x = g_new
        v_new = g_new + (1.0 - self.cfg.beta) * (v - g_old)
        state.y = self.mix(state.y + (v_new - v))
        state.x, state.v = x_new, v_new
        return state
