"""DoCoM (Yau & Wai, TMLR 2023): doubly compressed momentum-assisted gradient tracking.

Default ``variant=paper``, eqs. (9a)-(9g), per iteration t (two compressed rounds, in order)::

    Theta_half = Theta - eta G
    Theta_hat += Q(Theta_half - Theta_hat)                      # round 1
    Theta_new  = Theta_half + gamma (W - I) Theta_hat            # gossip on the UPDATED copies
    V_new      = grad(Theta_new; xi) + (1 - beta) (V - grad(Theta; xi))   # same minibatch xi
    G_half     = G + V_new - V
    G_hat     += Q(G_half - G_hat)                               # round 2
    G_new      = G_half + gamma (W - I) G_hat

with G^0 = V^0 = the b0-sample (default: full local) gradient, G_hat^0 = 0 and Theta_hat^0 at
``copy_init``: 0 as in the authors' notebook [NB] (specs/docom.md §2.1), or theta^0 as in the
slides' (9a) and the PyTorch code [PT]. ``variant=pytorch`` is [PT]'s ``ParallelDoCoM_V`` (§2.4):
gossip on the previous round's copies, the tracker compressed after its gossip, the first step
moves theta only. ``momentum``: [PT]'s heavy ball on the tracker step (``--momentum_factor`` 0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import torch
from ..schema import check_range
from .base import Algorithm, State, StepSize, agent_rows
from .gradients import deterministic, large_batch_grad, tracker_samples
from .public_copy import check_copy_keys, copy_start, init_copy, push
from .transforms import HeavyBall


@dataclass
class DoCoMConfig(StepSize):
    """DoCoM (Yau & Wai 2023): doubly compressed momentum-assisted gradient tracking, eqs. (9a)-(9g)."""

    name: str = "docom"
    lr: float = 0.01  # eta: step along the tracker g, theta_half = theta - eta g
    gamma: float = 0.2  # gamma: consensus step on the compressed copies (~0.2 top-k 5%, ~0.6 4-bit)
    beta: float = 0.01  # beta: v^{t+1} = grad(theta^{t+1}) + (1-beta)(v^t - grad(theta^t)); 1 = plain SGD
    b0: int | None = None  # b_0: batch of the initial tracker g^0 = v^0 (null = full local data)
    variant: str = "paper"  # paper: (9a)-(9g), gossip on the updated copies | pytorch: official code, previous copies
    momentum: float = 0.0  # heavy ball on the tracker step (official code: 0.9, --momentum_factor's default)
    copy_init: str = "zero"  # theta-hat^0: zero = authors' notebook (Exp. 1) | x0 = slides' (9a), PyTorch code

    def check(self) -> None:
        super().check()
        check_copy_keys(self)
        check_range("algo", "in (0, 1]", beta=self.beta)
        check_range("algo", ">= 1", b0=self.b0)


@dataclass(eq=False)
class DoCoMState(State):
    """Theta (``x``), G, V, the copies with e_x = (W - I) Theta_hat, e_g = (W - I) G_hat; ``x_prev``
    (pytorch); ``grad_x`` = grad f(Theta^t) (paper, deterministic gradients)."""

    g: torch.Tensor = agent_rows()
    v: torch.Tensor = agent_rows()
    x_hat: torch.Tensor = agent_rows()
    e_x: torch.Tensor = agent_rows()
    g_hat: torch.Tensor = agent_rows()
    e_g: torch.Tensor = agent_rows()
    x_prev: torch.Tensor | None = agent_rows()
    grad_x: torch.Tensor | None = agent_rows()
    momentum: torch.Tensor | None = agent_rows()


class DoCoM(Algorithm):
    name = "docom"
    config = DoCoMConfig
    links = "static"
    grads_per_step = 2

    def init(self, x0) -> DoCoMState:
        cfg = self.cfg
        self.heavy_ball = HeavyBall(cfg.momentum)
        self._tmp = torch.empty_like(x0)                        # scratch (n_local, d) of the paper step
        g0 = large_batch_grad(self.problem, x0, cfg.b0)
        x_hat, e_x = init_copy(x0, copy_start(cfg, x0))
        g_hat, e_g = init_copy(x0)                                # G_hat^0 = 0 ([NB], [PT])
        paper = cfg.variant == "paper"
        return DoCoMState(x=x0.clone(), g=g0, v=g0.clone(), x_hat=x_hat, e_x=e_x, g_hat=g_hat, e_g=e_g,
                          x_prev=None if paper else x0.clone(),
                          grad_x=g0.clone() if paper and deterministic(self.problem) else None,
                          **self.heavy_ball.init_fields(x0))

    def samples(self, t: int) -> float:
        steps = t if self.cfg.variant == "paper" else max(t - 1, 0)     # pytorch: no gradient at t = 0
        return tracker_samples(self.problem, self.net.n, self.cfg.b0, self.grads_per_step * steps)

    def step(self, state, t):
        return self.paper_step(state, t) if self.cfg.variant == "paper" else self.pytorch_step(state, t)

    def storm(self, state, x_new, x_old, t):
        """(9e): V^{t+1} = grad(x_new; xi) + (1 - beta)(V^t - grad(x_old; xi)), same xi for both."""
        if state.grad_x is None:                    # one minibatch draw (and gather) for both
            g_new, g_old = self.problem.grads((x_new, x_old), t)          # fresh buffers: g_old <- V - g_old
            return g_new.add_(torch.sub(state.v, g_old, out=g_old), alpha=1.0 - self.cfg.beta)
        g_old, state.grad_x = state.grad_x, self.problem.grad(x_new, t)    # deterministic: kept from the last step
        return torch.add(state.grad_x, state.v - g_old, alpha=1.0 - self.cfg.beta)

    def paper_step(self, state, t):
        """(9a)-(9g), each product and its sum as one fused multiply-add, in place where an operand
        is not needed afterwards; ``tmp``: one scratch (n_local, d) buffer."""
        net, Q, gamma, tmp = self.net, self.compressor, self.cfg.gamma, self._tmp
        x, g, v = state.x, state.g, state.v
        x_half = torch.sub(x, self.heavy_ball(g, x, state), alpha=self.cfg.step_size(t))  # Theta - eta G
        push(net, Q, torch.sub(x_half, state.x_hat, out=tmp), state.x_hat, state.e_x)    # round 1
        x_new = x_half.add_(state.e_x, alpha=gamma)                                       # (9c)
        v_new = self.storm(state, x_new, x, t)                                            # (9e)
        g_half = g.add_(torch.sub(v_new, v, out=tmp))              # G + (V_new - V), in G's buffer
        push(net, Q, torch.sub(g_half, state.g_hat, out=tmp), state.g_hat, state.e_g)    # round 2
        state.g = g_half.add_(state.e_g, alpha=gamma)                                     # (9f)
        state.x, state.v = x_new, v_new
        return state

    def pytorch_step(self, state, t):
        """``ParallelDoCoM_V`` (specs/docom.md §2.4): tracker first, gossip on the previous copies."""
        net, Q, gamma = self.net, self.compressor, self.cfg.gamma
        x = state.x
        if t > 0:
            v_new = self.storm(state, x, state.x_prev, t)
            g = state.g + (v_new - state.v) + gamma * state.e_g       # gossip on the previous copies
            push(net, Q, g - state.g_hat, state.g_hat, state.e_g)
            state.g, state.v = g, v_new
        state.x_prev = x.clone()
        x = torch.sub(x, self.heavy_ball(state.g, x, state), alpha=self.cfg.step_size(t))
        x.add_(state.e_x, alpha=gamma)                                 # previous theta-hat
        push(net, Q, x - state.x_hat, state.x_hat, state.e_x)
        state.x = x
        return state

    def metrics(self, state):
        dev = state.g - self.net.mean(state.g)
        return {"tracker_consensus": float(self.net.allreduce((dev * dev).sum())) / self.net.n}
