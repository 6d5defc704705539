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
PyTorch code [PT], which copies the model). The paper's eta is ``lr`` (with ``schedule``: eta_t).

``variant=pytorch`` is the official PyTorch code (``ParallelDoCoM_V``): the gossip terms use the
copies from the previous round, the tracker is compressed after its gossip, and the first step
only moves theta with g^0 (specs/docom.md §2.4). ``momentum`` (official code 0.9: the code base's
``--momentum_factor`` default, which its scripts leave on) puts heavy ball on the tracker step:
``buf = momentum buf + G; Theta -= eta buf``.

Each agent keeps its copies and their gossip directions, updated from the messages (local rows,
see ``public_copy``): e_x = (W - I) Theta_hat and e_g = (W - I) G_hat. Two stochastic gradients
per iteration on one minibatch (counted in ``samples``); with deterministic gradients the one at
Theta^t is reused from the previous iteration instead of being recomputed.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import Algorithm, State, StepSize, agent_rows
from .checks import check_unit
from .gradients import check_b0, deterministic, large_batch_grad, tracker_samples
from .public_copy import check_copy_keys, copy_start, init_copy, push
from .transforms import HeavyBall

torch = lazy.load("torch")


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
        check_unit("algo", beta=self.beta)
        check_b0(self.b0)


@dataclass(eq=False)
class DoCoMState(State):
    """Theta (``x``), the tracker G, the STORM estimate V, the copies Theta_hat and G_hat with
    their gossip directions e_x = (W - I) Theta_hat and e_g = (W - I) G_hat; ``x_prev`` (pytorch
    variant): Theta^{t-1}; ``grad_x`` (paper variant, deterministic gradients): grad f(Theta^t);
    ``momentum``: the heavy-ball buffer."""

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
        """(9e): V^{t+1} = grad(x_new; xi) + (1 - beta)(V^t - grad(x_old; xi)), same xi for both;
        the product and the sum as one fused multiply-add (``add(..., alpha=)``)."""
        p, beta = self.problem, self.cfg.beta
        if state.grad_x is not None:                # deterministic: grad f(Theta^t) from the last step
            g_new, g_old = p.grad(x_new, t), state.grad_x
            state.grad_x = g_new
        else:                                       # one minibatch draw (and gather) for both
            g_new, g_old = p.grads((x_new, x_old), t)
            # the same arithmetic in the two fresh gradient buffers: g_old <- V - g_old
            return g_new.add_(torch.sub(state.v, g_old, out=g_old), alpha=1.0 - beta)
        return torch.add(g_new, state.v - g_old, alpha=1.0 - beta)

    def paper_step(self, state, t):
        """(9c)-(9g) as written in the module docstring, with each product and the sum it enters
        as one fused multiply-add (eta G, gamma (W - I) hat, and STORM's (1 - beta) term), in place
        where an operand is not needed afterwards; ``tmp`` is one scratch (n_local, d) buffer."""
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
        g = state.g
        dev = g - self.net.mean(g)
        return {"tracker_consensus": float(self.net.allreduce((dev * dev).sum())) / self.net.n}
