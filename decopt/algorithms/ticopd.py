"""TiCoPD: Two-timescale Compressed Primal-Dual (Liu, Yau & Wai, ICASSP 2025; P1), specs/ticopd.md.

Static graph, **node-wise mirror** x̂_i (authors' slide eqs. (9a)-(9c), code [C1]). Per
iteration, with s_i = (L X̂)_i kept as a running aggregate::

    c_i      = Q(x_i - x̂_i)                               # the only message: one broadcast
    x_i     <- x_i - alpha_t (g_i + lambda_i + theta s_i)                 (9a)
    lambda_i <- lambda_i + eta s_i                                        (9b, dual on the mirror)
    x̂_i     <- x̂_i + gamma c_i ;  s_i <- s_i + gamma (deg_i c_i - sum_{j~i} c_j)   (9c)

Compression uses x^t; the primal and dual steps use L X̂^t before the mirror step ([C1] order).
X̂^0 = 0 as in [C1] (spec pitfall 9). ``dual_on=x`` is the slide's literal (9b), lambda += eta
L X^t, at the cost of one exact broadcast; ``beta < 1`` is [C1]'s pull toward x̂ before the
primal step. The edge-wise variant for random links (P2) is ``ticopd_robust``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..compressors.identity import Identity
from ..lazy import torch
from ..schema import check_choice, check_range
from .base import StepSize
from .primal_dual import MirrorPrimalDual
from .public_copy import check_copy_init


@dataclass
class TiCoPDKeys(StepSize):
    """The keys of both TiCoPD papers (P1 ``ticopd``, P2 ``ticopd_robust``)."""

    lr: float = 0.05  # alpha: primal step (slow timescale); code --lr
    eta: float = 0.05  # eta: dual ascent step (slow; 0 turns the dual off); code --eta (code default 0)
    theta: float = 1.0  # theta: augmented-Lagrangian penalty weight on L x̂; code --theta
    gamma: float = 1.0  # gamma: mirror step in (0, 2] (fast; alpha / gamma << 1); hard-wired 1 in [C1]
    momentum: float = 0.0  # heavy ball on the gradient (codebase default 0.9); 0 = the paper
    weight_decay: float = 0.0  # L2 weight added to the gradient (codebase default 5e-4); 0 = the paper
    copy_init: str = "zero"  # x̂^0: zero = [C1] (spec pitfall 9) | x0 = the common starting point

    def check(self) -> None:
        super().check()
        check_copy_init(self.copy_init)
        check_range("algo", ">= 0", eta=self.eta, theta=self.theta, weight_decay=self.weight_decay)
        check_range("algo", "in (0, 2]", gamma=self.gamma)
        check_range("algo", "in [0, 1)", momentum=self.momentum)


@dataclass
class TiCoPDConfig(TiCoPDKeys):
    """TiCoPD (Liu, Yau & Wai, ICASSP 2025; P1): two-timescale compressed primal-dual, node mirrors."""

    name: str = "ticopd"
    dual_on: str = "xhat"  # xhat: lambda += eta L x̂ ([C1]) | x: slide's literal eta L x (one more exact broadcast)
    beta: float = 1.0  # beta: [C1] pull x <- beta x + (1 - beta) x̂ before the primal step, in (0, 1]; 1 = off

    def check(self) -> None:
        super().check()
        check_choice("algo.dual_on", self.dual_on, ("xhat", "x"))
        check_range("algo", "in (0, 1]", beta=self.beta)


class TiCoPD(MirrorPrimalDual):
    """P1: node-wise mirror on a static graph (state: ``MirrorState``)."""

    name = "ticopd"
    config = TiCoPDConfig
    links = "static"

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        if cfg.dual_on == "x":                                 # the exact iterates, in the run's precision
            self.exact = Identity(64 if net.dtype == torch.float64 else 32)

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, xhat, lxhat = state.x, state.lam, state.xhat, state.lxhat
        halo = net.broadcast(X - xhat, self.compressor)        # c_j = Q(x_j - x̂_j), local rows first
        dual_dir = net.laplacian(net.broadcast(X, self.exact)) if cfg.dual_on == "x" else lxhat
        g = self.gradient(state, X, t)
        if cfg.beta != 1.0:
            X.mul_(cfg.beta).add_(xhat, alpha=1.0 - cfg.beta)
        X.sub_(g.add(lam).add_(lxhat, alpha=cfg.theta), alpha=cfg.step_size(t))      # (9a)
        lam.add_(dual_dir, alpha=cfg.eta)                                               # (9b)
        xhat.add_(halo[: net.n_local], alpha=cfg.gamma)                                # (9c)
        lxhat.add_(net.laplacian(halo), alpha=cfg.gamma)
        return state
