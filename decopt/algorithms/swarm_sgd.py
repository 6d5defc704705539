"""SwarmSGD (Nadiradze, Sabour, Davies, Li, Alistarh, NeurIPS 2021), simulated synchronously:
every agent takes ``local_steps`` SGD steps between interactions, and the agents on each active
edge then average their (compressed, e.g. 8-bit) models::

    X_half = X - lr grad(X)   (local_steps times; lr: the paper's eta)
    X_new_i = X_half_i + sum_{j ~ i active} W_ij (Q(X_half_j) - X_half_i)

Built for random links (``graph.links=one_edge``: one pair per iteration, the population
protocol). The paper's pairwise average is ``graph.mixing=constant graph.weight=0.5`` on a ring.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .base import Algorithm, StepSize

@dataclass
class SwarmSGDConfig(StepSize):
    """SwarmSGD (Nadiradze et al. 2021): local SGD steps, then averaging on the active edges."""

    name: str = "swarm_sgd"
    lr: float = 0.05  # eta: local SGD step
    local_steps: int = 1  # H: local SGD steps per agent per iteration (between interactions)

    def check(self) -> None:
        super().check()
        if not 1 <= self.local_steps <= 10 ** 6:            # more is a typo (a run that never ends)
            raise ConfigError(f"algo.local_steps={self.local_steps}: must be in [1, 1000000]")


class SwarmSGD(Algorithm):
    name = "swarm_sgd"
    config = SwarmSGDConfig
    links = "random"

    @property
    def grads_per_step(self):
        return self.cfg.local_steps

    def step(self, state, t):
        H, x, lr = self.cfg.local_steps, state.x, self.cfg.step_size(t)
        for h in range(H):
            x = x - lr * self.problem.grad(x, t * H + h)
        state.x = self.mix(x)
        return state
