"""DSGD / DGD (Nedic & Ozdaglar 2009)::

    x_i <- sum_j W_ij x_j - gamma_t g_i

With a compressor neighbours receive Q(x_j) ("DGD 8-bit" in the TiCoPD figure), each agent its
own exact x_i. On random links W_t keeps only the active edges' weights.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Algorithm, StepSize


@dataclass
class DSGDConfig(StepSize):
    """DSGD / DGD (Nedic & Ozdaglar 2009): gossip the iterates, then an SGD step."""

    name: str = "dsgd"


class DSGD(Algorithm):
    name = "dsgd"
    config = DSGDConfig

    def step(self, state, t):
        g = self.problem.grad(state.x, t)
        state.x = self.mix(state.x).sub_(g, alpha=self.cfg.step_size(t))
        return state
