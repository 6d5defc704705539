"""CP-SGD: the compressed primal-dual SGD baseline of TiCoPD's figure (specs/ticopd.md §5, as
coded in the authors' ``pcode/optim/cp_sgd.py``; the code cites arXiv 2403.01322).

Same mirror machinery as TiCoPD (node-wise mirror x̂, one compressed broadcast
c_i = Q(x_i - x̂_i) per agent per iteration, s_i = (L X̂)_i kept as a running aggregate), but
the Laplacian term uses L(X̂ + C) and the mirror step ``alpha`` is not a separate fast
timescale; everything is scaled by the learning rate::

    C       = Q(X - X̂)
    X      <- X - lr g - lr gamma L(X̂ + C) - lr omega Lambda
    Lambda <- Lambda + lr omega L(X̂ + C)
    X̂      <- X̂ + alpha C

Keys follow the code's flags: ``lr``, ``gamma`` (penalty), ``omega`` (dual), ``alpha``
(mirror step). Lambda^0 = 0; X̂^0 = 0 as in the code (``copy_init=x0``: the common x^0). Static
graph. State: ``MirrorState`` (all agent rows).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import StepSize
from .checks import check_nonnegative
from .public_copy import check_copy_init
from .primal_dual import MirrorPrimalDual, check_mirror_step
from .transforms import check_momentum, check_weight_decay


@dataclass
class CPSGDConfig(StepSize):
    """CP-SGD: compressed primal-dual SGD with a node-wise mirror, the baseline of TiCoPD's figure.
    As the authors' cp_sgd.py codes it (citing arXiv 2403.01322); keys follow its flags."""

    name: str = "cpsgd"
    lr: float = 0.05  # lr: step size (scales every term but the mirror step); code --lr
    gamma: float = 1.0  # gamma: penalty weight on L(X̂ + C); code --gamma
    omega: float = 1.0  # omega: dual weight (primal term and dual ascent); code --omega
    alpha: float = 1.0  # alpha: mirror step X̂ += alpha C, in (0, 2]; code --alpha
    momentum: float = 0.0  # heavy ball on the gradient; 0 = plain
    weight_decay: float = 0.0  # L2 weight added to the gradient; 0 = plain
    copy_init: str = "zero"  # x̂^0: zero = the code (cp_sgd.py) | x0 = the common starting point

    def check(self) -> None:
        super().check()
        check_copy_init(self.copy_init)
        check_nonnegative("algo", gamma=self.gamma, omega=self.omega)
        check_mirror_step("algo.alpha", self.alpha)
        check_momentum(self.momentum)
        check_weight_decay(self.weight_decay)


class CPSGD(MirrorPrimalDual):
    name = "cpsgd"
    config = CPSGDConfig
    links = "static"

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, xhat, lxhat = state.x, state.lam, state.xhat, state.lxhat
        halo = net.broadcast(X - xhat, self.compressor)          # C = Q(X - X̂)
        lc = net.laplacian(halo)                                  # L C
        lsum = lxhat + lc                                         # L (X̂ + C)
        g = self.gradient(state, X, t)
        lr = cfg.step_size(t)
        X.sub_(g, alpha=lr).sub_(lsum, alpha=lr * cfg.gamma).sub_(lam, alpha=lr * cfg.omega)
        lam.add_(lsum, alpha=lr * cfg.omega)
        xhat.add_(halo[: net.n_local], alpha=cfg.alpha)
        lxhat.add_(lc, alpha=cfg.alpha)
        return state
