"""What every problem provides: local objectives f_i and gradient oracles, vectorized over agents."""
from __future__ import annotations

import numpy as np
import torch

from ..comm import Network
from ..rng import Key, Stream, integers


class Problem:
    """Agent i minimizes its own f_i; the network minimizes f = (1/n) sum_i f_i.

    Every method takes local rows (one per agent of this process) and returns local rows, so
    a batch of agents costs one batched computation. ``net`` supplies the local agent ids and
    the reductions needed at set-up (e.g. for a closed-form optimum).

    ``replicas`` R > 1: R independent copies of the problem run as one, replica r in the columns
    r d/R .. (r + 1) d/R - 1 of the iterate (seeds as a batch dimension); ``loss_grad`` then gives
    one loss per replica and the metrics get a column ``<name>_r<k>`` per replica (``per_replica``).

    ``descent_kernel`` (optional, None here): fused multi-step paths (``DSGDGD.fused_steps``) call
    ``descent_kernel(t, count, scale, x, y) -> (k, step)`` with NumPy float64 arrays x (the
    iterate, updated in place) and y (scratch) of shape (n_local, d); ``step(j)``, for j = 0 .. k - 1
    in order (k <= count, e.g. the rest of t's block of samples), sets x <- y - scale[j] g where g
    is ``grad(x, t + j)`` to rounding and y holds the mixed iterate (and may be overwritten).
    """

    d: int
    batch_size: int | None = None
    replicas: int = 1
    descent_kernel = None

    @property
    def segments(self) -> list[int]:
        """Sizes of the parameter tensors that make up x (sum = d), for per-tensor compression."""
        return [self.d]

    def __init__(self, net: Network, seed: int):
        self.net, self.seed = net, seed
        self.dtype, self.device = net.dtype, net.device

    def x0(self) -> torch.Tensor:
        """Initial iterates, the same for every agent (zeros unless the problem says otherwise)."""
        return torch.zeros(self.net.n_local, self.d, dtype=self.dtype, device=self.device)

    def grad(self, X: torch.Tensor, t: int) -> torch.Tensor:
        """Stochastic gradients at iteration t: minibatch keyed (seed, BATCH, t, agent); the full
        local gradient when ``batch_size`` is None."""
        raise NotImplementedError

    def loss_grad(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full local losses f_i(x_i), shape (n_local,) (with replicas: (n_local, replicas)), and
        gradients grad f_i(x_i), (n_local, d)."""
        raise NotImplementedError

    def per_replica(self, name: str, values: torch.Tensor) -> dict:
        """``{name_r<k>: values[k]}``, one metrics column per replica (none for a single replica)."""
        return {f"{name}_r{k}": float(v) for k, v in enumerate(values)} if self.replicas > 1 else {}

    def extra_metrics(self, xbar: torch.Tensor, loss: float) -> dict:
        """Problem-specific metrics at the average iterate, given f(xbar) (accuracy, gap, ...)."""
        return {}

    def agent_metrics(self, X: torch.Tensor) -> dict:
        """Metrics of the agents' own iterates (worst-agent loss, accuracy, ...); none by default."""
        return {}

    def paper_metrics(self, X: torch.Tensor) -> dict:
        """Columns in a paper's own definition, with ``run.paper_metrics=true`` (decopt.metrics);
        none by default."""
        return {}

    def batch_indices(self, t: int, sizes: np.ndarray) -> torch.Tensor:
        """Keyed minibatch indices (n_local, batch_size) into each agent's ``sizes[i]`` samples."""
        idx = integers(Key(self.seed, Stream.BATCH, t), self.net.rows, self.batch_size, sizes)
        return torch.as_tensor(idx, device=self.device)
