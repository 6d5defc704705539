"""DSGD / DGD (Nedic & Ozdaglar 2009): x_i <- sum_j W_ij x_j - gamma_t g_i."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm, State, StepSize


@dataclass
class DSGDConfig(StepSize):
    """DSGD / DGD: x_i <- sum_j W_ij x_j - gamma_t g_i;  gamma_t = lr (constant) or lr / (a1 + t) (inverse).

    Step ``lr`` (constant, or ``lr / (a1 + t)`` with ``schedule=inverse``).

    With a compressor other than ``none`` neighbours receive Q(x_j) ("DGD 8-bit" in the TiCoPD
    figure) while each agent keeps its own exact x_i:
    x_i <- x_i + sum_{j~i} W_ij (Q(x_j) - x_i) - gamma_t g_i. On random links W_t keeps only the
    active edges' weights (the rest stays on the diagonal).
    """

    name: str = "dsgd"

    def check(self) -> None:
        self.check_step()


@dataclass(eq=False)
class DSGDState(State):
    """x: the iterates (inherited from ``State``)."""


class DSGD(Algorithm):
    name = "dsgd"
    config = DSGDConfig
    links = "any"

    def init(self, x0):
        return DSGDState(x=x0.clone())

    def step(self, state, t):
        x = state.x
        g = self.problem.grad(x, t)
        sent = self.net.broadcast(x, self.compressor)
        mixed = self.net.mix(sent, own=None if sent is x else x)
        state.x = mixed.sub_(g, alpha=self.cfg.step_size(t))
        return state
