"""Robust TiCoPD (Liu, Yau & Wai, IEEE TSP 2025; P2, code [C2]), specs/ticopd.md.

Random links, **edge-wise mirrors** (one pair per directed edge), noisy compression through the
``compressor`` (e.g. ``noisy`` around ``topk``). Agent i keeps, per out-arc i -> j,
``xhat_out`` = x̂_{i->j} (its own mirror as j holds it) and ``xhat_in`` = x̂_{j->i} (j's mirror)::

    D_i      = sum_{j in N_i^t} (x̂_{i->j} - x̂_{j->i})          # active edges (random_lap)
    x_i     <- x_i - alpha_t (g_i + lambda_i) - alpha_0 theta D_i
    lambda_i <- lambda_i + eta D_i
    m_{i->j} = Q(x_i^{t+1} - x̂_{i->j})  on every active edge, both directions
    x̂_{i->j} <- x̂_{i->j} + gamma m_{i->j} ;  x̂_{j->i} <- x̂_{j->i} + gamma m_{j->i}

The compressed message is of the post-update iterate ([C2] order). Sender and receiver apply
the same (noisy) decoded message, so both copies of every mirror stay identical. Mirrors start
at 0 ([C2]; ``copy_init=x0``: at the common x^0). ``random_lap=false`` sums D_i over all
neighbours (stale mirrors on inactive edges). ``penalty_lr=initial`` is [C2]'s theta * lr_0 (the
penalty does not follow the schedule); ``scheduled`` uses alpha_t. On a static graph every edge
is active every iteration. The keys are P1's (``ticopd.TiCoPDKeys``) but ``dual_on``/``beta``.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import agent_rows, arc_rows
from .checks import check_choice
from .public_copy import copy_start, init_arc_copies
from .primal_dual import PrimalDual, PrimalDualState
from .ticopd import TiCoPDKeys

torch = lazy.load("torch")

PENALTY_LR = ("initial", "scheduled")


@dataclass
class TiCoPDRobustConfig(TiCoPDKeys):
    """Robust TiCoPD (Liu, Yau & Wai, IEEE TSP 2025; P2): edge-wise mirrors for random links.
    graph.links=bernoulli|one_edge; noisy compression via compressor=noisy; code [C2]."""

    name: str = "ticopd_robust"
    random_lap: bool = True  # D_i over active edges only (code --random_lap); false: all neighbours, stale mirrors
    penalty_lr: str = "initial"  # initial: theta * lr_0 as in [C2] | scheduled: theta * alpha_t

    def check(self) -> None:
        super().check()
        check_choice("algo.penalty_lr", self.penalty_lr, PENALTY_LR)


@dataclass(eq=False)
class TiCoPDRobustState(PrimalDualState):
    """+ the edge-wise mirrors, one row per local out-arc i -> j (``net.out_arcs`` order):
    ``xhat_out`` = x̂_{i->j}, ``xhat_in`` = x̂_{j->i}; the heavy-ball buffer (``momentum``, None when off)."""

    xhat_out: torch.Tensor = arc_rows()
    xhat_in: torch.Tensor = arc_rows()
    momentum: torch.Tensor = agent_rows()


def scatter_rows(like, idx, vals):
    """``out[idx[a]] += vals[a]`` into a zero tensor shaped like ``like`` (arcs -> agent rows).
    ``index_put_(accumulate=True)``: ``index_add_`` opens an OpenMP region per call, which is
    orders of magnitude slower on tiny tensors when the cores are shared."""
    return torch.zeros_like(like).index_put_((idx,), vals, accumulate=True)


class TiCoPDRobust(PrimalDual):
    """P2: edge-wise mirrors, random links, (noisy) compressed messages per active arc."""

    name = "ticopd_robust"
    config = TiCoPDRobustConfig
    links = "any"

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self._src = torch.as_tensor(net.out_src, device=net.device)      # local sender row per out-arc
        self._edge = net.out_arcs >> 1

    def init(self, x0) -> TiCoPDRobustState:
        """x^0; Lambda^0 = 0; both mirrors of every arc at ``copy_init`` (0, or the common x^0)."""
        xhat_out, xhat_in = init_arc_copies(x0, copy_start(self.cfg, x0), self._src)
        return self.init_state(x0, TiCoPDRobustState, xhat_out=xhat_out, xhat_in=xhat_in)

    def _arc_mask(self):
        """0/1 column over local out-arcs: active this iteration (None on static links: all on)."""
        act = self.net.active
        if act is None:
            return None
        return torch.as_tensor(act[self._edge], device=self.net.device, dtype=self.net.dtype)[:, None]

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, a, b = state.x, state.lam, state.xhat_out, state.xhat_in
        on = self._arc_mask()
        diff = a - b
        if on is not None and cfg.random_lap:
            diff.mul_(on)
        D = scatter_rows(X, self._src, diff)                              # D_i ~ sum_j (x_i - x_j)
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
