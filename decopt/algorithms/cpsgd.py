"""CP-SGD: the compressed primal-dual SGD baseline of TiCoPD's figure (specs/ticopd.md §5, as
coded in the authors' ``pcode/optim/cp_sgd.py``, which cites arXiv 2403.01322). TiCoPD's node-wise
mirror, but the Laplacian term uses L(X̂ + C) and every term but the mirror step is scaled by lr::

    C       = Q(X - X̂)
    X      <- X - lr g - lr gamma L(X̂ + C) - lr omega Lambda
    Lambda <- Lambda + lr omega L(X̂ + C)
    X̂      <- X̂ + alpha C

Keys follow the code's flags; X̂^0 = 0 as in the code.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..schema import check_range
from .base import StepSize
from .primal_dual import MirrorPrimalDual
from .public_copy import check_copy_init


@dataclass
class CPSGDConfig(StepSize):
    """CP-SGD: compressed primal-dual SGD with a node-wise mirror, the baseline of TiCoPD's figure."""

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
        check_range("algo", ">= 0", gamma=self.gamma, omega=self.omega, weight_decay=self.weight_decay)
        check_range("algo", "in (0, 2]", alpha=self.alpha)
        check_range("algo", "in [0, 1)", momentum=self.momentum)


class CPSGD(MirrorPrimalDual):
    name = "cpsgd"
    config = CPSGDConfig
    links = "static"

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, xhat, lxhat = state.x, state.lam, state.xhat, state.lxhat
        halo = net.broadcast(X - xhat, self.compressor)          # C = Q(X - X̂)
        lc = net.laplacian(halo)
        lsum = lxhat + lc                                         # L (X̂ + C)
        g = self.gradient(state, X, t)
        lr = cfg.step_size(t)
        X.sub_(g, alpha=lr).sub_(lsum, alpha=lr * cfg.gamma).sub_(lam, alpha=lr * cfg.omega)
        lam.add_(lsum, alpha=lr * cfg.omega)
        xhat.add_(halo[: net.n_local], alpha=cfg.alpha)
        lxhat.add_(lc, alpha=cfg.alpha)
        return state
