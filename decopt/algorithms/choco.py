"""CHOCO-SGD (Koloskova, Stich, Jaggi, ICML 2019): compressed gossip on public copies x-hat.

Three gossips after the SGD step X_half = X - eta grad(X). Static links, the paper (``choco_static``)::

    X_hat += Q(X_half - X_hat)                  # one compressed round
    X_new  = X_half + gamma (W - I) X_hat

Random links (the FSPDA paper's baseline; ``choco_random_links``): one copy per edge, as a copy
held by several neighbours cannot stay identical when some miss a message. h_out[i->j] is i's
copy as j knows it, h_in[i->j] j's copy as i knows it; both directions of an active edge carry
Q(x_half_i - h_out[i->j])::

    X_new_i = X_half_i + gamma sum_{j ~ i active} W_ij (h_in[i->j] - h_out[i->j])

``variant=pytorch`` (static links, ``choco_parallel``) is the DoCoM/FSPDA code's
``ParallelCHOCO_V`` (Koloskova et al. 2020's "parallel" order)::

    X      = X_half + gamma (W - I) X_hat
    X_hat += Q(X - X_hat)

``momentum``: the official code's heavy ball on the gradient (``--momentum_factor`` 0.9). The
copies start at 0 as in every source (``copy_init=x0``: at the common starting point).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm, State, StepSize, agent_rows, arc_rows
from .public_copy import check_copy_keys, copy_start, init_arc_copies, init_copy, push
from .transforms import HeavyBall
from ..lazy import torch


@dataclass
class CHOCOConfig(StepSize):
    """CHOCO-SGD (Koloskova, Stich & Jaggi 2019): compressed gossip on public copies (per edge on random links)."""

    name: str = "choco"
    lr: float = 0.01  # eta: SGD step (constant in the paper's runs)
    gamma: float = 0.5  # gamma: consensus step on the compressed copies (~0.5 top-10%, ~0.9 8-bit in DoCoM's runs)
    variant: str = "paper"  # paper: gossip on updated copies | pytorch: authors' ParallelCHOCO_V (old copies, static links)
    momentum: float = 0.0  # heavy ball on the gradient (official code: 0.9, --momentum_factor's default)
    copy_init: str = "zero"  # x_hat^0 (per-edge copies too): zero = Koloskova et al., DoCoM notebook and code | x0

    def check(self) -> None:
        super().check()
        check_copy_keys(self)


@dataclass(eq=False)
class CHOCOState(State):
    """Static links: X_hat and e_hat = (W - I) X_hat; random links: the per-edge copies h_out, h_in."""

    x_hat: torch.Tensor | None = agent_rows()
    e_hat: torch.Tensor | None = agent_rows()
    h_out: torch.Tensor | None = arc_rows()
    h_in: torch.Tensor | None = arc_rows()
    momentum: torch.Tensor | None = agent_rows()


class CHOCO(Algorithm):
    name = "choco"
    config = CHOCOConfig

    @classmethod
    def link_model(cls, cfg):
        return "static" if cfg.variant == "pytorch" else cls.links       # the authors' parallel CHOCO

    def init(self, x0) -> CHOCOState:
        self.heavy_ball = HeavyBall(self.cfg.momentum)
        state = CHOCOState(x=x0.clone(), **self.heavy_ball.init_fields(x0))
        start = copy_start(self.cfg, x0)
        if self.net.links.static:
            state.x_hat, state.e_hat = init_copy(x0, start)
            self.gossip = self.choco_parallel if self.cfg.variant == "pytorch" else self.choco_static
            return state
        net, self.gossip = self.net, self.choco_random_links
        self._arc_agent = torch.as_tensor(net.out_src, device=x0.device)
        self._arc_w = torch.as_tensor(net.edge_w[net.out_arcs >> 1], device=x0.device, dtype=x0.dtype)
        state.h_out, state.h_in = init_arc_copies(x0, start, self._arc_agent)
        return state

    def step(self, state, t):
        x = state.x
        x_half = x - self.cfg.step_size(t) * self.heavy_ball(self.problem.grad(x, t), x, state)
        state.x = self.gossip(state, x_half)
        return state

    def choco_static(self, state, x_half):
        """The paper: compress toward X_half, then gossip on the updated copies."""
        push(self.net, self.compressor, x_half - state.x_hat, state.x_hat, state.e_hat)
        return x_half.add_(state.e_hat, alpha=self.cfg.gamma)

    def choco_parallel(self, state, x_half):
        """``ParallelCHOCO_V``: gossip on the previous round's copies, then compress the result."""
        x = x_half.add_(state.e_hat, alpha=self.cfg.gamma)
        push(self.net, self.compressor, x - state.x_hat, state.x_hat, state.e_hat)
        return x

    def choco_random_links(self, state, x_half):
        """One copy per edge, exchanged on the active out-arcs only; both ends apply the same message."""
        h_out, h_in = state.h_out, state.h_in
        a = torch.as_tensor(self.net.active_out(), device=h_out.device)
        agent = self._arc_agent[a]
        M = x_half[agent] - h_out[a]
        recv = self.net.exchange(M, self.compressor, compact=True)          # M now holds what was sent
        h_out.index_add_(0, a, M)
        h_in.index_add_(0, a, recv)
        return x_half.index_add_(0, agent, self._arc_w[a, None] * (h_in[a] - h_out[a]), alpha=self.cfg.gamma)
