"""DSGD / DGD (Nedic & Ozdaglar 2009)::

    x_i <- sum_j W_ij x_j - gamma_t g_i

With a compressor other than ``none`` neighbours receive Q(x_j) ("DGD 8-bit" in the TiCoPD
figure) while each agent keeps its own exact x_i:
x_i <- x_i + sum_{j~i} W_ij (Q(x_j) - x_i) - gamma_t g_i. On random links W_t keeps only the
active edges' weights (the rest stays on the diagonal).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm, State, StepSize


@dataclass
class DSGDConfig(StepSize):
    """DSGD / DGD (Nedic & Ozdaglar 2009): gossip the iterates, then an SGD step."""

    name: str = "dsgd"


class DSGD(Algorithm):
    name = "dsgd"
    config = DSGDConfig
    links = "any"

    def init(self, x0) -> State:
        return State(x=x0.clone())

    def step(self, state, t):
        g = self.problem.grad(state.x, t)
        state.x = self.mix(state.x).sub_(g, alpha=self.cfg.step_size(t))
        return state
