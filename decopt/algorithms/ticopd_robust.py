"""Robust TiCoPD (Liu, Yau & Wai, IEEE TSP 2025; P2, code [C2]), specs/ticopd.md §2.2.

Random links, **edge-wise mirrors** per out-arc i -> j (``xhat_out`` = x̂_{i->j}, ``xhat_in`` =
x̂_{j->i}), (noisy) compression through the ``compressor``::

    D_i      = sum_{j in N_i^t} (x̂_{i->j} - x̂_{j->i})          # active edges (random_lap)
    x_i     <- x_i - alpha_t (g_i + lambda_i) - alpha_0 theta D_i
    lambda_i <- lambda_i + eta D_i
    m_{i->j} = Q(x_i^{t+1} - x̂_{i->j})  on every active edge, both directions
    x̂_{i->j} <- x̂_{i->j} + gamma m_{i->j} ;  x̂_{j->i} <- x̂_{j->i} + gamma m_{j->i}

Sender and receiver apply the same decoded message, so both copies of a mirror stay identical.
``penalty_lr=scheduled`` uses alpha_t for [C2]'s alpha_0. The keys are P1's but ``dual_on``/``beta``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import torch
from ..schema import check_choice
from .base import agent_rows, arc_rows
from .primal_dual import PrimalDual, PrimalDualState
from .public_copy import copy_start, init_arc_copies
from .ticopd import TiCoPDKeys


@dataclass
class TiCoPDRobustConfig(TiCoPDKeys):
    """Robust TiCoPD (Liu, Yau & Wai, IEEE TSP 2025; P2): edge-wise mirrors for random links."""

    name: str = "ticopd_robust"
    random_lap: bool = True  # D_i over active edges only (code --random_lap); false: all neighbours, stale mirrors
    penalty_lr: str = "initial"  # initial: theta * lr_0 as in [C2] | scheduled: theta * alpha_t

    def check(self) -> None:
        super().check()
        check_choice("algo.penalty_lr", self.penalty_lr, ("initial", "scheduled"))


@dataclass(eq=False)
class TiCoPDRobustState(PrimalDualState):
    """+ the mirrors per local out-arc, ``xhat_out`` and ``xhat_in``; the heavy-ball buffer."""

    xhat_out: torch.Tensor = arc_rows()
    xhat_in: torch.Tensor = arc_rows()
    momentum: torch.Tensor = agent_rows()


class TiCoPDRobust(PrimalDual):
    name = "ticopd_robust"
    config = TiCoPDRobustConfig

    def init(self, x0) -> TiCoPDRobustState:
        self._src = torch.as_tensor(self.net.out_src, device=x0.device)  # local sender row per out-arc
        self._edge = self.net.out_arcs >> 1
        xhat_out, xhat_in = init_arc_copies(x0, copy_start(self.cfg, x0), self._src)
        return self.init_state(x0, TiCoPDRobustState, xhat_out=xhat_out, xhat_in=xhat_in)

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, a, b = state.x, state.lam, state.xhat_out, state.xhat_in
        diff = a - b
        if cfg.random_lap and net.active is not None:                    # static links: every edge active
            diff.mul_(torch.as_tensor(net.active[self._edge], device=net.device, dtype=net.dtype)[:, None])
        # D_i ~ sum_j (x_i - x_j); index_put_, as index_add_ opens an OpenMP region per call (slow on tiny tensors)
        D = torch.zeros_like(X).index_put_((self._src,), diff, accumulate=True)
        g = self.gradient(state, X, t)
        alpha = cfg.step_size(t)
        pen = (cfg.lr if cfg.penalty_lr == "initial" else alpha) * cfg.theta
        X.sub_(g.add(lam), alpha=alpha).sub_(D, alpha=pen)                # primal step
        lam.add_(D, alpha=cfg.eta)                                        # dual step
        M = X[self._src] - a                                              # x_i^{t+1} - x̂_{i->j}
        recv = net.exchange(M, self.compressor)                          # M <- what was sent
        a.add_(M, alpha=cfg.gamma)                                        # both copies of each mirror
        b.add_(recv, alpha=cfg.gamma)
        return state
