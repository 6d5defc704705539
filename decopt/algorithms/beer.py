"""BEER (Zhao, Li, Li, Richtarik, Chi, NeurIPS 2022): compressed gradient tracking with error feedback.

Default ``variant=paper``, per iteration (two compressed rounds)::

    X_new = X - eta V + gamma (W - I) H          # H, G: public copies before this iteration
    H    += Q(X_new - H)                          # round 1
    V_new = V + gamma (W - I) G + grad(X_new) - grad(X)
    G    += Q(V_new - G)                          # round 2

with G^0 = 0, V^0 = the b0-sample (default full local) gradient, grad(X) kept from the previous
iteration, and H^0 at ``copy_init``: 0 as the DoCoM notebook [NB] runs BEER (specs/docom.md §5),
or X^0 as the DoCoM code's ``ParallelBEER_V`` does.

``variant=pytorch`` is ``ParallelBEER_V`` (CHOCO's "parallel" order). Iteration 0 only moves X;
from t = 1::

    V    += grad(X; xi^t) - grad(X^{t-1}; xi^{t-1})   # tracking, the previous fresh gradient
    V    += gamma (W - I) G                            # the copies from the previous round
    G    += Q(V - G)                                   # round 1
    X    -= eta V;  X += gamma (W - I) H               # previous copies again
    H    += Q(X - H)                                   # round 2

``momentum``: the official code's heavy ball on V (``--momentum_factor`` 0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import torch
from ..schema import check_range
from .base import Algorithm, State, StepSize, agent_rows
from .gradients import large_batch_grad
from .public_copy import check_copy_keys, copy_start, init_copy, push
from .transforms import HeavyBall


@dataclass
class BEERConfig(StepSize):
    """BEER (Zhao, Li, Li, Richtarik & Chi 2022): compressed gradient tracking with error feedback."""

    name: str = "beer"
    lr: float = 0.01  # eta: step along the tracker V
    gamma: float = 0.2  # gamma: consensus step on the compressed copies H, G (~0.16-0.2 top-k 5%, ~0.5 4-bit)
    b0: int | None = None  # b_0: batch of the initial tracker V^0 (null = full local data)
    variant: str = "paper"  # paper: the BEER paper's order | pytorch: the DoCoM code's ParallelBEER_V (previous copies)
    momentum: float = 0.0  # heavy ball on the tracker step (official code: 0.9, --momentum_factor's default)
    copy_init: str = "zero"  # H^0: zero = DoCoM notebook's BEER (Exp. 1) | x0 = DoCoM code's ParallelBEER_V

    def check(self) -> None:
        super().check()
        check_copy_keys(self)
        check_range("algo", ">= 1", b0=self.b0)


@dataclass(eq=False)
class BEERState(State):
    """V, the last gradient ``grad_x``, the copies H, G (``g_hat``) with e_h = (W - I) H, e_g = (W - I) G."""

    v: torch.Tensor = agent_rows()
    grad_x: torch.Tensor = agent_rows()
    h: torch.Tensor = agent_rows()
    e_h: torch.Tensor = agent_rows()
    g_hat: torch.Tensor = agent_rows()
    e_g: torch.Tensor = agent_rows()
    momentum: torch.Tensor | None = agent_rows()


class BEER(Algorithm):
    name = "beer"
    config = BEERConfig
    links = "static"

    def init(self, x0) -> BEERState:
        self.heavy_ball = HeavyBall(self.cfg.momentum)
        v0 = large_batch_grad(self.problem, x0, self.cfg.b0)
        h, e_h = init_copy(x0, copy_start(self.cfg, x0))
        g_hat, e_g = init_copy(x0)                               # G^0 = 0 ([NB], [PT])
        return BEERState(x=x0.clone(), v=v0, grad_x=v0.clone(), h=h, e_h=e_h, g_hat=g_hat, e_g=e_g,
                         **self.heavy_ball.init_fields(x0))

    def step(self, state, t):
        return self.paper_step(state, t) if self.cfg.variant == "paper" else self.pytorch_step(state, t)

    def paper_step(self, state, t):
        net, Q, gamma = self.net, self.compressor, self.cfg.gamma
        x_new = state.x - self.cfg.step_size(t) * self.heavy_ball(state.v, state.x, state)
        x_new.add_(state.e_h, alpha=gamma)
        push(net, Q, x_new - state.h, state.h, state.e_h)                  # round 1
        grad_new = self.problem.grad(x_new, t)
        v_new = state.v + gamma * state.e_g + (grad_new - state.grad_x)
        push(net, Q, v_new - state.g_hat, state.g_hat, state.e_g)          # round 2
        state.x, state.v, state.grad_x = x_new, v_new, grad_new
        return state

    def pytorch_step(self, state, t):
        """``ParallelBEER_V``: tracker round on the previous copies, then the iterate round."""
        net, Q, gamma = self.net, self.compressor, self.cfg.gamma
        v = state.v
        grad_new = self.problem.grad(state.x, t)                          # the step's fresh minibatch gradient
        if t > 0:
            v = v + (grad_new - state.grad_x) + gamma * state.e_g
            push(net, Q, v - state.g_hat, state.g_hat, state.e_g)          # the tracker round
        x = state.x - self.cfg.step_size(t) * self.heavy_ball(v, state.x, state)
        x.add_(state.e_h, alpha=gamma)
        push(net, Q, x - state.h, state.h, state.e_h)                      # the iterate round
        state.x, state.v, state.grad_x = x, v, grad_new
        return state
