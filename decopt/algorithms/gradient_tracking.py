"""Gradient tracking: DIGing (Nedic, Olshevsky, Shi, SIAM J. Optim. 2017) and GNSD (Lu, Zhang,
Sun, Hong, IEEE DSW 2019), the same recursion with exact or stochastic gradients::

    X_new = W_t X - eta Y
    Y_new = W_t Y + grad(X_new) - grad(X)          # grad(X) kept from the previous iteration

Y^0 = grad(X^0) (the first minibatch, or the full local gradient). W_t keeps only the active
edges on random / time-varying links (DIGing's setting), so mean(Y) = mean(grad) always holds.
Two exact broadcasts per iteration (X, then Y).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm
from .checks import check_positive


@dataclass
class DIGingConfig:
    """DIGing (Nedic, Olshevsky & Shi 2017), gradient tracking, also on time-varying graphs (W_t): x = W_t x -
    eta y;  y = W_t y + grad(x_new) - grad(x_old).

    eta: step along the tracker y (alpha in DIGing)."""

    name: str = "diging"
    eta: float = 0.05  # alpha: step along the tracker y

    def check(self) -> None:
        check_positive("algo", eta=self.eta)


@dataclass
class GNSDConfig(DIGingConfig):
    """GNSD (Lu et al. 2019): stochastic gradient tracking, Theta = W Theta - eta Y; Y = W Y + grad(new) -
    grad(old).

    eta: step along the tracker (GNSD's alpha); the [NB] synthetic run uses 0.005."""

    name: str = "gnsd"


class DIGing(Algorithm):
    name = "diging"
    config = DIGingConfig
    links = "any"
    no_compressor = "exchanges exact vectors"

    def init(self, x0):
        g0 = self.problem.grad(x0, 0)
        return {"x": x0.clone(), "y": g0, "grad_x": g0.clone()}

    def _mix(self, X):
        sent = self.net.broadcast(X, self.compressor)
        return self.net.mix(sent, own=None if sent is X else X)

    def step(self, state, t):
        x_new = self._mix(state["x"]).sub_(state["y"], alpha=self.cfg.eta)
        g_new = self.problem.grad(x_new, t + 1)
        y_new = self._mix(state["y"]).add_(g_new - state["grad_x"])
        state.update(x=x_new, y=y_new, grad_x=g_new)
        return state

    def samples(self, t: int) -> float:
        return super().samples(t + 1)                 # grad(X^0) at init, then one per step


class GNSD(DIGing):
    name = "gnsd"
    config = GNSDConfig
