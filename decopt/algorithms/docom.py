"""DoCoM (Yau & Wai, TMLR 2023): doubly compressed momentum-assisted gradient tracking.

Default ``variant=paper``, eqs. (9a)-(9g), per iteration t (two compressed rounds, in order)::

    Theta_half = Theta - eta G
    Theta_hat += Q(Theta_half - Theta_hat)                      # round 1
    Theta_new  = Theta_half + gamma (W - I) Theta_hat            # gossip on the UPDATED copies
    V_new      = grad(Theta_new; xi) + (1 - beta) (V - grad(Theta; xi))   # same minibatch xi
    G_half     = G + V_new - V
    G_hat     += Q(G_half - G_hat)                               # round 2
    G_new      = G_half + gamma (W - I) G_hat

with G^0 = V^0 = the b0-sample (default: full local) gradient and G_hat^0 = 0. Theta_hat^0 is
``copy_init``: 0 by default, as in the paper's experiments (the authors' notebook [NB], Exp. 1,
starts every copy at 0; specs/docom.md §2.1), or ``x0`` = theta^0 (the slides' (9a) and the
PyTorch code [PT], which copies the model).

``variant=pytorch`` is the official PyTorch code (``ParallelDoCoM_V``): the gossip terms use the
copies from the previous round, the tracker is compressed after its gossip, and the first step
only moves theta with g^0 (specs/docom.md §2.4). ``momentum`` (official code 0.9: the code base's
``--momentum_factor`` default, which its scripts leave on) puts heavy ball on the tracker step:
``buf = momentum buf + G; Theta -= eta buf``.

Each agent keeps its copies and their gossip directions, updated from the messages (local rows,
see ``copies``): e_x = (W - I) Theta_hat and e_g = (W - I) G_hat. Two stochastic gradients per
iteration on one minibatch (counted in ``samples``); with deterministic gradients the one at
Theta^t is reused from the previous iteration instead of being recomputed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Algorithm
from .copies import (batch_samples, check_copy_init, check_momentum, check_positive, check_unit, copy_start,
                     deterministic, heavy_ball, init_copy, large_batch_grad, push)

VARIANTS = ("paper", "pytorch")


@dataclass
class DoCoMConfig:
    """eta: step along the tracker; gamma: consensus step on the compressed copies; beta: STORM
    momentum weight (1 = plain stochastic gradient); b0: initial batch (null = full local data);
    variant: paper | pytorch; momentum: heavy ball on the tracker step (official code 0.9);
    copy_init: zero | x0, Theta_hat^0 (zero: [NB]; x0: the slides and [PT])."""

    name: str = "docom"
    eta: float = 0.01
    gamma: float = 0.2
    beta: float = 0.01
    b0: int | None = None
    variant: str = "paper"
    momentum: float = 0.0
    copy_init: str = "zero"

    def check(self) -> None:
        check_positive("algo", eta=self.eta, gamma=self.gamma)
        check_unit("algo", beta=self.beta)
        check_momentum(self.momentum)
        check_copy_init(self.copy_init)
        if self.b0 is not None and self.b0 < 1:
            raise ConfigError(f"algo.b0={self.b0}: must be >= 1 or null (full local data)")
        if self.variant not in VARIANTS:
            raise ConfigError(f"algo.variant={self.variant}: choose one of {', '.join(VARIANTS)}")


class DoCoM(Algorithm):
    name = "docom"
    config = DoCoMConfig
    links = "static"
    grads_per_step = 2

    def init(self, x0):
        g0 = large_batch_grad(self.problem, x0, self.cfg.b0)
        xh, ex = init_copy(x0, copy_start(self.cfg, x0))
        gh, eg = init_copy(x0)                                   # G_hat^0 = 0 ([NB], [PT])
        state = {"x": x0.clone(), "g": g0, "v": g0.clone(), "x_hat": xh, "e_x": ex, "g_hat": gh, "e_g": eg}
        if self.cfg.variant == "pytorch":
            state["x_prev"] = x0.clone()
        if deterministic(self.problem) and self.cfg.variant == "paper":
            state["grad_x"] = g0.clone()            # grad f(Theta^t), reused by the STORM term
        if self.cfg.momentum:
            state["momentum"] = torch.zeros_like(x0)
        return state

    def samples(self, t: int) -> float:
        b0 = self.cfg.b0 if self.cfg.b0 is not None else int(self.problem.m)
        steps = t if self.cfg.variant == "paper" else max(t - 1, 0)
        return float(self.net.n * (b0 + self.grads_per_step * steps * batch_samples(self.problem)))

    def step(self, state, t):
        return self._paper(state, t) if self.cfg.variant == "paper" else self._pytorch(state, t)

    def _storm(self, state, x_new, x_old, t):
        """V^{t+1} = grad(x_new; xi) + (1 - beta)(V^t - grad(x_old; xi)), same xi for both; the
        product and the sum as one fused multiply-add (``add(..., alpha=)``)."""
        p, beta = self.problem, self.cfg.beta
        if "grad_x" in state:                       # deterministic: grad f(Theta^t) from the last step
            g_new, g_old = p.grad(x_new, t), state["grad_x"]
            state["grad_x"] = g_new
        else:                                       # one minibatch draw (and gather) for both
            g_new, g_old = p.grads((x_new, x_old), t)
            # the same arithmetic in the two fresh gradient buffers: g_old <- V - g_old
            return g_new.add_(torch.sub(state["v"], g_old, out=g_old), alpha=1.0 - beta)
        return torch.add(g_new, state["v"] - g_old, alpha=1.0 - beta)

    def _paper(self, state, t):
        """(9c)-(9g) as written in the module docstring, with each product and the sum it enters
        as one fused multiply-add (eta G, gamma (W - I) hat, and STORM's (1 - beta) term), in place
        where an operand is not needed afterwards; ``tmp`` is one scratch (n_local, d) buffer."""
        net, Q, eta, gamma = self.net, self.compressor, self.cfg.eta, self.cfg.gamma
        x, g, v = state["x"], state["g"], state["v"]
        xh, ex, gh, eg = state["x_hat"], state["e_x"], state["g_hat"], state["e_g"]
        tmp = self._scratch(x)
        x_half = torch.sub(x, heavy_ball(state, g, self.cfg.momentum), alpha=eta)   # Theta - eta G
        push(net, Q, torch.sub(x_half, xh, out=tmp), xh, ex)           # round 1: theta-hat
        x_new = x_half.add_(ex, alpha=gamma)
        v_new = self._storm(state, x_new, x, t)
        g_half = g.add_(torch.sub(v_new, v, out=tmp))                  # G + (V_new - V), in G's buffer
        push(net, Q, torch.sub(g_half, gh, out=tmp), gh, eg)           # round 2: g-hat
        state["g"] = g_half.add_(eg, alpha=gamma)
        state["x"], state["v"] = x_new, v_new
        return state

    def _scratch(self, like):
        buf = getattr(self, "_tmp", None)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._tmp = torch.empty_like(like)
        return buf

    def _pytorch(self, state, t):
        net, Q, eta, gamma = self.net, self.compressor, self.cfg.eta, self.cfg.gamma
        x, xh, ex = state["x"], state["x_hat"], state["e_x"]
        if t > 0:
            v_new = self._storm(state, x, state["x_prev"], t)
            gh, eg = state["g_hat"], state["e_g"]
            g = state["g"] + (v_new - state["v"]) + gamma * eg           # gossip on the previous copies
            push(net, Q, g - gh, gh, eg)
            state["g"], state["v"] = g, v_new
        state["x_prev"] = x.clone()
        x = torch.sub(x, heavy_ball(state, state["g"], self.cfg.momentum), alpha=eta)
        x.add_(ex, alpha=gamma)                                       # previous theta-hat
        push(net, Q, x - xh, xh, ex)
        state["x"] = x
        return state

    def metrics(self, state):
        n = self.net.n
        g = state["g"]
        gbar = self.net.mean(g)
        dev = g - gbar
        return {"tracker_consensus": float(self.net.allreduce((dev * dev).sum())) / n}
