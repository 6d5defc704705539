"""TiCoPD: Two-timescale Compressed Primal-Dual (Liu, Yau & Wai, ICASSP 2025; P1), specs/ticopd.md.

Static graph, **node-wise mirror** x̂_i (authors' slide eqs. (9a)-(9c), code [C1]). Per
iteration, with s_i = (L X̂)_i kept as a running aggregate::

    c_i      = Q(x_i - x̂_i)                               # the only message: one broadcast
    x_i     <- x_i - alpha_t (g_i + lambda_i + theta s_i)                 (9a)
    lambda_i <- lambda_i + eta s_i                                        (9b, dual on the mirror)
    x̂_i     <- x̂_i + gamma c_i ;  s_i <- s_i + gamma (deg_i c_i - sum_{j~i} c_j)   (9c)

Compression uses x^t before the primal step; the primal and dual steps use L X̂^t before the
mirror step ([C1] order). Lambda^0 = 0 (so sum_i lambda_i = 0 for ever); X̂^0 = 0 by default as
in [C1] (specs/ticopd.md pitfall 9), or x^0 with ``copy_init=x0`` (s^0 = 0).
Options: ``dual_on=x`` is the slide's literal (9b), lambda += eta L X^t; it needs the neighbours'
*exact* iterates, sent as one extra uncompressed broadcast (counted in bits). ``beta < 1`` is
[C1]'s pull x_i <- beta x_i + (1 - beta) x̂_i before the primal step (gradient still taken at
x_i^t). ``momentum``/``weight_decay`` reproduce the codebase's heavy ball and L2 on the gradient
(``transforms``; both off by default; never applied to lambda).

The edge-wise variant for random links (P2) is ``ticopd_robust``; CP-SGD, the baseline of the
paper's figure, is ``cpsgd``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..compressors.identity import Identity
from ..errors import ConfigError
from .base import StepSize
from .public_copy import check_copy_init
from .primal_dual import MirrorPrimalDual
from .transforms import HeavyBall, WeightDecay, chain, check_momentum, check_weight_decay

DUAL_ON = ("xhat", "x")


@dataclass
class TiCoPDKeys(StepSize):
    """The keys of both TiCoPD papers. ``lr`` = alpha (primal, slow), ``eta`` (dual ascent, slow),
    ``theta`` (augmented-Lagrangian penalty weight), ``gamma`` (mirror step, fast:
    alpha / gamma << 1), ``copy_init``: zero | x0, the mirrors' start (zero: [C1], [C2])."""

    lr: float = 0.05  # alpha: primal step (slow timescale); code flag --lr
    eta: float = 0.05  # eta: dual ascent step (slow); code --eta (code default 0 = dual off)
    theta: float = 1.0  # theta: augmented-Lagrangian penalty weight on L x̂; code --theta
    gamma: float = 1.0  # gamma: mirror step (fast; alpha / gamma << 1); hard-wired 1 in [C1]
    momentum: float = 0.0  # heavy ball on the gradient (codebase default 0.9); 0 = the paper
    weight_decay: float = 0.0  # L2 added to the gradient (codebase default 5e-4); 0 = the paper
    copy_init: str = "zero"  # x̂^0: zero = [C1] (spec pitfall 9) | x0 = the common starting point

    def check(self) -> None:
        self.check_step()
        check_copy_init(self.copy_init)
        if self.eta < 0:
            raise ConfigError(f"algo.eta={self.eta}: must be >= 0 (0 turns the dual off)")
        if self.theta < 0:
            raise ConfigError(f"algo.theta={self.theta}: must be >= 0")
        if not 0 < self.gamma <= 2:
            raise ConfigError(f"algo.gamma={self.gamma}: the mirror step must be in (0, 2]")
        check_momentum(self.momentum)
        check_weight_decay(self.weight_decay)


@dataclass
class TiCoPDConfig(TiCoPDKeys):
    """TiCoPD (P1, ICASSP 2025; slide eqs. 9a-9c): static graph, node-wise mirror x̂, one compressed broadcast
    Q(x_i - x̂_i) per agent per iteration (Q = the `compressor` group). x_i <- x_i - alpha (g_i + lambda_i
    + theta (L x̂)_i);  lambda_i <- lambda_i + eta (L x̂)_i;  x̂_i <- x̂_i + gamma Q(x_i - x̂_i) Random
    links need edge-wise mirrors: use algo=ticopd_robust (P2).

    P1. ``dual_on``: ``xhat`` (default, implementable; [C1]) or ``x`` (slide's literal (9b),
    one extra exact broadcast per iteration). ``beta``: [C1]'s pull toward the mirror (1 = off)."""

    name: str = "ticopd"
    dual_on: str = "xhat"  # xhat: lambda += eta L x̂ ([C1]) | x: slide's literal eta L x (one more exact broadcast)
    beta: float = 1.0  # beta: [C1] pull x <- beta x + (1 - beta) x̂ before the primal step; 1 = off

    def check(self) -> None:
        super().check()
        if self.dual_on not in DUAL_ON:
            raise ConfigError(f"algo.dual_on={self.dual_on}: choose one of {', '.join(DUAL_ON)}")
        if not 0 < self.beta <= 1:
            raise ConfigError(f"algo.beta={self.beta}: must be in (0, 1] (1 = no pull toward the mirror)")


class TiCoPD(MirrorPrimalDual):
    """P1: node-wise mirror on a static graph (state: ``MirrorState``)."""

    name = "ticopd"
    config = TiCoPDConfig
    links = "static"

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.direction = chain(WeightDecay(cfg.weight_decay), HeavyBall(cfg.momentum))
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
