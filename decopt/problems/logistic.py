"""l2-regularized logistic regression on synthetic, heterogeneous data (labels in {-1, +1})."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..lazy import torch
from ..registry import register
from ..rng import Key, Stream, normal, uniform
from .base import Problem, ProblemConfig


@dataclass
class LogisticConfig(ProblemConfig):
    """l2-regularized logistic regression on synthetic data; agent features shifted per agent.

    Agent i's features are N(mu_i, I) with mu_i = heterogeneity * N(0, I); labels follow a
    planted logistic model. f_i(x) = mean log(1 + exp(-y a^T x)) + (reg / 2) ||x||^2."""

    name: str = "logistic"
    dim: int = 20                   # d: features (and unknowns)
    samples: int = 100              # m: samples per agent
    batch_size: int | None = None   # samples per agent per iteration; null = full local gradient (deterministic)
    heterogeneity: float = 1.0      # feature shift mu_i = heterogeneity * N(0, I) per agent
    reg: float = 0.01               # l2 weight: (reg / 2) ||x||^2

    def check(self) -> None:
        for key in ("dim", "samples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"problem.{key}={getattr(self, key)}: must be >= 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"problem.batch_size={self.batch_size}: must be >= 1 or null (full batch)")
        if self.reg < 0:
            raise ConfigError(f"problem.reg={self.reg}: must be >= 0")

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for ``config.check_memory``."""
        d = self.dim
        return d, n * (self.samples + batch) * (d + 1) + d * d       # A, y, a batch, Newton's d x d Hessian


class Logistic(Problem):
    def __init__(self, cfg: LogisticConfig, net, seed):
        super().__init__(net, seed)
        self.d, self.m, self.batch_size, self.reg = cfg.dim, cfg.samples, cfg.batch_size, cfg.reg
        rows, d, m = net.rows, cfg.dim, cfg.samples
        w_true = normal(Key(seed, Stream.DATA, 0, 0), range(1), d)[0]
        mu = cfg.heterogeneity * normal(Key(seed, Stream.DATA, 0, 1), rows, d)
        A = mu[:, None, :] + normal(Key(seed, Stream.DATA, 0, 2), rows, m * d).reshape(-1, m, d)
        p = 1.0 / (1.0 + np.exp(-A @ w_true))
        y = np.where(uniform(Key(seed, Stream.DATA, 0, 3), rows, m) < p, 1.0, -1.0)
        self.A = torch.as_tensor(A, dtype=self.dtype, device=self.device)
        self.y = torch.as_tensor(y, dtype=self.dtype, device=self.device)
        self.x_opt, self.f_opt = self._newton()

    def _terms(self, A, y, X):
        z = y * torch.einsum("nmd,nd->nm", A, X)
        loss = torch.nn.functional.softplus(-z).mean(1) + 0.5 * self.reg * (X * X).sum(1)
        coef = -y * torch.sigmoid(-z) / A.shape[1]
        return loss, torch.einsum("nmd,nm->nd", A, coef) + self.reg * X

    def grad(self, X, t):
        if self.batch_size is None:
            return self._terms(self.A, self.y, X)[1]
        idx = self.batch_indices(t, self.m)
        A = torch.take_along_dim(self.A, idx[:, :, None], dim=1)
        y = torch.take_along_dim(self.y, idx, dim=1)
        return self._terms(A, y, X)[1]

    def loss_grad(self, X):
        return self._terms(self.A, self.y, X)

    def _newton(self, iters: int = 50):
        """Minimizer of f = (1/n) sum_i f_i by Newton's method over the network's reductions."""
        net, n = self.net, self.net.n
        x = torch.zeros(self.d, dtype=torch.float64, device=self.device)
        A, y = self.A.double(), self.y.double()
        for _ in range(iters):
            X = x.expand(net.n_local, self.d)
            loss, g = self._terms(A, y, X)
            g = net.sum(g) / n
            s = torch.sigmoid(y * torch.einsum("nmd,d->nm", A, x))
            w = s * (1 - s) / self.m
            H = net.allreduce(torch.einsum("nmd,nm,nme->de", A, w, A)) / n
            H = H + self.reg * torch.eye(self.d, dtype=H.dtype, device=H.device)
            step = torch.linalg.solve(H, g)
            x = x - step
            if float(step.norm()) < 1e-13 * (1 + float(x.norm())):
                break
        loss = net.sum(self._terms(A, y, x.expand(net.n_local, self.d))[0]) / n
        return x.to(self.dtype), float(loss)

    def extra_metrics(self, xbar, loss):
        margin = self.y * torch.einsum("nmd,d->nm", self.A, xbar)
        correct = self.net.allreduce((margin > 0).sum().to(self.dtype))
        return {"accuracy": float(correct) / (self.net.n * self.m), "opt_gap": loss - self.f_opt,
                "dist_opt": float(((xbar - self.x_opt) ** 2).sum())}


register("problem", "logistic", LogisticConfig, Logistic)
