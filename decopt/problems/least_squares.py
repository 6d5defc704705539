"""Heterogeneous least squares: f_i(x) = ||A_i x - b_i||^2 / (2 m), with a closed-form optimum."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..lazy import torch
from ..registry import register
from ..rng import Key, Stream, normal
from .base import Problem, ProblemConfig


@dataclass
class LeastSquaresConfig(ProblemConfig):
    """f_i(x) = ||A_i x - b_i||^2 / (2 samples); agents' planted solutions differ (heterogeneity).

    ``dim`` unknowns, ``samples`` rows per agent; agent i's data come from its own planted
    x_i* = x_c + heterogeneity * N(0, I), so the local minimizers differ."""

    name: str = "least_squares"
    dim: int = 20                   # d: unknowns
    samples: int = 50               # m: rows of A_i per agent
    batch_size: int | None = None   # rows per agent per iteration; null = full local gradient (deterministic)
    heterogeneity: float = 1.0      # spread of the planted x_i* = x_c + heterogeneity * N(0, I)
    noise: float = 0.1              # std of the Gaussian noise in b_i = A_i x_i* + noise

    def check(self) -> None:
        for key in ("dim", "samples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"problem.{key}={getattr(self, key)}: must be >= 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"problem.batch_size={self.batch_size}: must be >= 1 or null (full batch)")
        if self.heterogeneity < 0 or self.noise < 0:
            raise ConfigError("problem.heterogeneity and problem.noise must be >= 0")

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for ``config.check_memory``."""
        d = self.dim
        return d, n * (self.samples + batch) * (d + 1) + d * d       # A, b, a batch, the d x d normal matrix


DRAW_BLOCK = 1 << 15      # agents drawn at once: keyed per agent, so blocks change no number, only the peak memory


class LeastSquares(Problem):
    def __init__(self, cfg: LeastSquaresConfig, net, seed):
        super().__init__(net, seed)
        self.d, self.m, self.batch_size = cfg.dim, cfg.samples, cfg.batch_size
        rows, d, m = net.rows, cfg.dim, cfg.samples
        common = normal(Key(seed, Stream.DATA, 0, 0), range(1), d)            # x_c, shared
        self.A = torch.empty((len(rows), m, d), dtype=self.dtype, device=self.device)
        self.b = torch.empty((len(rows), m), dtype=self.dtype, device=self.device)
        for lo in range(0, len(rows), DRAW_BLOCK):    # float64 draws for one block of agents at a time
            block = rows[lo:lo + DRAW_BLOCK]
            data = lambda call, width: normal(Key(seed, Stream.DATA, 0, call), block, width)
            x_star_i = common + cfg.heterogeneity * data(1, d)
            A = data(2, m * d).reshape(len(block), m, d)
            self.A[lo:lo + len(block)] = torch.as_tensor(A)
            self.b[lo:lo + len(block)] = torch.as_tensor(np.einsum("nmd,nd->nm", A, x_star_i) + cfg.noise * data(3, m))
        # closed-form optimum of f = (1/n) sum_i f_i: (sum_i A_i^T A_i) x = sum_i A_i^T b_i
        H = net.allreduce(torch.einsum("nmd,nme->de", self.A, self.A))
        g = net.allreduce(torch.einsum("nmd,nm->d", self.A, self.b))
        self.x_opt = torch.linalg.solve(H.double(), g.double()).to(self.dtype)
        self.f_opt = float(net.sum(self.loss_grad(self.x_opt.expand(net.n_local, d))[0]) / net.n)

    def _residual_grad(self, A, b, X):
        r = torch.einsum("nmd,nd->nm", A, X) - b
        return torch.einsum("nmd,nm->nd", A, r) / A.shape[1]

    def grad(self, X, t):
        if self.batch_size is None:
            return self._residual_grad(self.A, self.b, X)
        idx = self.batch_indices(t, self.m)
        A = torch.take_along_dim(self.A, idx[:, :, None], dim=1)
        b = torch.take_along_dim(self.b, idx, dim=1)
        return self._residual_grad(A, b, X)

    def loss_grad(self, X):
        r = torch.einsum("nmd,nd->nm", self.A, X) - self.b
        return 0.5 * (r * r).mean(1), torch.einsum("nmd,nm->nd", self.A, r) / self.m

    def extra_metrics(self, xbar, loss):
        return {"opt_gap": loss - self.f_opt, "dist_opt": float(((xbar - self.x_opt) ** 2).sum())}


register("problem", "least_squares", LeastSquaresConfig, LeastSquares)
