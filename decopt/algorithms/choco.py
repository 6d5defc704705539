"""CHOCO-SGD (Koloskova, Stich, Jaggi, ICML 2019): compressed gossip on public copies x-hat.

Static links (the paper)::

    X_half = X - eta grad(X)
    X_hat += Q(X_half - X_hat)                  # one compressed round
    X_new  = X_half + gamma (W - I) X_hat

Random links (``graph.links=bernoulli|one_edge``; the FSPDA paper's baseline, where only the
endpoints of active edges are active nodes): a copy held by several neighbours cannot stay
identical when some of them miss a message, so each agent keeps one copy per incident edge.
h_out[i->j] is agent i's copy as j knows it, h_in[i->j] is j's copy as i knows it; on an active
edge both directions carry Q(x_half_i - h_out[i->j]) and both ends apply the same message::

    X_new_i = X_half_i + gamma sum_{j ~ i active} W_ij (h_in[i->j] - h_out[i->j])

(on static links with an exact compressor both forms reduce to x <- W x - eta grad).

``variant=pytorch`` (static links) is CHOCO as the DoCoM/FSPDA authors' code runs it
(``ParallelCHOCO_V``, the "parallel" order of Koloskova et al. 2020): the gossip uses the copies
from the previous round and the post-gossip iterate is compressed::

    X  = X - eta grad(X) + gamma (W - I) X_hat
    X_hat += Q(X - X_hat)

``momentum`` (official code 0.9, ``--momentum_factor``'s default) puts heavy ball on the gradient:
``buf = momentum buf + grad; X -= eta buf``.

``copy_init``: where the copies start (every per-edge copy too), 0 by default as in every source:
Koloskova et al. 2019's Algorithm (x-hat^0 = 0), the DoCoM notebook [NB] and the PyTorch code
(``ParallelCHOCO_V`` zeroes its copies); ``x0`` starts them at the common starting point.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Algorithm
from .copies import check_copy_init, check_momentum, check_positive, copy_start, heavy_ball, init_copy, push

VARIANTS = ("paper", "pytorch")


@dataclass
class CHOCOConfig:
    """CHOCO-SGD (Koloskova, Stich & Jaggi 2019): x_half = x - eta grad; x_hat += Q(x_half - x_hat); x =
    x_half + gamma (W - I) x_hat. On random links: one copy per incident edge, active edges only.

    eta: SGD step (``lr / (a1 + t)`` style schedules are not used by the paper); gamma:
    consensus step on the compressed copies (tune per compressor: ~0.5 top-10%, ~0.9 8-bit);
    variant: paper | pytorch (the authors' code order, static links); momentum: heavy ball on the
    gradient (official code 0.9); copy_init: zero | x0 (zero: the paper, [NB], [PT])."""

    name: str = "choco"
    eta: float = 0.01  # eta: SGD step
    gamma: float = 0.5  # gamma: consensus step on the compressed copies (0.5 top-k 10%, 0.9 8-bit in DoCoM's runs)
    variant: str = "paper"  # paper: gossip on updated copies | pytorch: authors' ParallelCHOCO_V (previous copies)
    momentum: float = 0.0  # heavy ball on the gradient (official code: 0.9, --momentum_factor's default)
    copy_init: str = "zero"  # x_hat^0 (per-edge copies too): zero = Koloskova et al., DoCoM notebook and code | x0

    def check(self) -> None:
        check_positive("algo", eta=self.eta, gamma=self.gamma)
        check_momentum(self.momentum)
        check_copy_init(self.copy_init)
        if self.variant not in VARIANTS:
            raise ConfigError(f"algo.variant={self.variant}: choose one of {', '.join(VARIANTS)}")


class CHOCO(Algorithm):
    name = "choco"
    config = CHOCOConfig
    links = "any"

    @classmethod
    def link_model(cls, cfg):
        return "static" if cfg.variant == "pytorch" else cls.links       # the authors' parallel CHOCO

    def init(self, x0):
        extra = {"momentum": torch.zeros_like(x0)} if self.cfg.momentum else {}
        start = copy_start(self.cfg, x0)
        if self.net.links.static:
            h, e = init_copy(x0, start)
            return {"x": x0.clone(), "x_hat": h, "e_hat": e, **extra}
        net = self.net
        src = net.graph.arcs[0][net.out_arcs]
        self._arc_agent = torch.as_tensor(src - net.rows.start, device=x0.device)
        self._arc_w = torch.as_tensor(net.edge_w[net.out_arcs >> 1], device=x0.device, dtype=x0.dtype)
        self.arc_state = ("h_out", "h_in")                                 # rows = local out-arcs
        h0 = x0.new_zeros(len(net.out_arcs), x0.shape[1]) if start is None else start[self._arc_agent]
        return {"x": x0.clone(), "h_out": h0, "h_in": h0.clone(), **extra}   # common start: h_in = h_out

    def step(self, state, t):
        net, eta, gamma = self.net, self.cfg.eta, self.cfg.gamma
        x_half = state["x"] - eta * heavy_ball(state, self.problem.grad(state["x"], t), self.cfg.momentum)
        if self.cfg.variant == "pytorch":
            h, e = state["x_hat"], state["e_hat"]
            state["x"] = x_half.add_(e, alpha=gamma)                # the previous round's copies
            push(net, self.compressor, state["x"] - h, h, e)
            return state
        if net.links.static:
            h, e = state["x_hat"], state["e_hat"]
            push(net, self.compressor, x_half - h, h, e)
            state["x"] = x_half.add_(e, alpha=gamma)
            return state
        h_out, h_in = state["h_out"], state["h_in"]
        a = torch.as_tensor(net.active_out(), device=h_out.device)      # active out-arcs only
        agent = self._arc_agent[a]
        M = x_half[agent] - h_out[a]
        recv = net.exchange(M, self.compressor, compact=True)           # M now holds what was sent
        h_out.index_add_(0, a, M)
        h_in.index_add_(0, a, recv)
        state["x"] = x_half.index_add_(0, agent, self._arc_w[a, None] * (h_in[a] - h_out[a]), alpha=gamma)
        return state
