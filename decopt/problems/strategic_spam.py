"""Strategic spam classification (Li, Yau, Wai 2022, Exp. B): logistic regression with a ridge
term on UCI Spambase where each agent's users respond to its deployed model.

    l(theta; (x, y)) = log(1 + exp(<x, theta>)) - y <x, theta> + (reg / 2) ||theta||^2,  y in {0, 1}

A user of population i with base sample (x, y) reports x + eps_i theta_i (best response of a
linear utility with quadratic cost; note the plus sign), y unchanged; a constant bias feature, when
used, is not shifted. DSGD-GD draws ``batch_size`` base samples uniformly from agent i's training
shard (keyed (seed, BATCH, t, agent)) and shifts them by eps_i theta_i.

Metrics: ``loss`` / ``grad_norm_sq`` are f(xbar; xbar) and ||grad f(xbar; xbar)||^2 on the training
data shifted by xbar itself; ``accuracy`` on the held-out set shifted by eps_avg xbar;
``ps_error`` = ||xbar - theta_PS||^2 when repeated risk minimisation (Newton, at set-up) converges.
Data: the ``data_dir`` key (null: ``$DECOPT_DATA/spambase``); preprocessing as in
``spambase_logistic`` (``features`` 48 word frequencies, standardised).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from ..rng import Key, Stream, integers
from . import datasets
from .partition import partition
from .performative import Performative, sensitivities
from .spambase import spambase_split


@dataclass
class StrategicSpamConfig:
    """eps_mean: eps_avg; eps_spread: eps_i = eps_mean (1 + spread u_i), u_i evenly in [-1, 1]
    ({0.4, ..., 1.6} eps_avg for 25 agents); reg: ridge weight (beta in the paper);
    batch_size: base samples per agent per iteration; test_fraction: held-out share (3:1 in the
    paper: 138 training e-mails per agent for 25 agents)."""

    name: str = "strategic_spam"
    data_dir: str | None = None
    eps_mean: float = 0.1
    eps_spread: float = 0.6
    eps: list | None = None
    reg: float = 0.01
    batch_size: int | None = 1
    features: int = 48
    standardize: bool = True
    bias: bool = False
    test_fraction: float = 0.25
    rrm_iterations: int = 100

    def check(self) -> None:
        if self.eps_mean < 0 or self.eps_spread < 0:
            raise ConfigError("problem.eps_mean and problem.eps_spread must be >= 0")
        if self.reg < 0:
            raise ConfigError(f"problem.reg={self.reg}: must be >= 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"problem.batch_size={self.batch_size}: must be >= 1 or null (full local data)")
        if self.features not in (48, 57):
            raise ConfigError(f"problem.features={self.features}: choose 48 (word frequencies) or 57 (all)")
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"problem.test_fraction={self.test_fraction}: must be in [0, 1)")
        datasets.check_spambase(self.data_dir)


class StrategicSpam(Performative):
    def __init__(self, cfg: StrategicSpamConfig, net, seed):
        super().__init__(net, seed)
        xtr, ytr, xte, yte = spambase_split(cfg.data_dir, cfg.features, cfg.standardize, cfg.bias,
                                            cfg.test_fraction)
        parts = partition("iid", ytr, net.n, seed)
        self.m = min(len(p) for p in parts)                              # equal shards (138 for n = 25)
        idx = np.stack([np.sort(parts[i])[: self.m] for i in net.rows])
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)
        self.A, self.y = as_t(xtr[idx]), as_t(ytr[idx])                  # (n_local, m, d), (n_local, m)
        self.A_test, self.y_test = as_t(xte), as_t(yte)
        self.d, self.batch_size, self.reg = self.A.shape[2], cfg.batch_size, cfg.reg
        shift = np.ones(self.d)
        if cfg.bias:
            shift[-1] = 0.0                                              # the constant is not strategic
        self.shift = as_t(shift)
        eps = sensitivities(net.n, net.rows, cfg.eps_mean, cfg.eps_spread, cfg.eps)
        self.eps = as_t(eps)[:, None]
        self.eps_avg = float(net.sum(torch.as_tensor(eps)[:, None])[0]) / net.n
        self.theta_ps = self._rrm(cfg.rrm_iterations)

    # --- the two phases -------------------------------------------------------------------
    def sample(self, X, t):
        """Base samples keyed (seed, BATCH, t, agent), shifted by eps_i x_i: (features, labels)."""
        if self.batch_size is None:
            A, y = self.A, self.y
        else:
            idx = torch.as_tensor(integers(Key(self.seed, Stream.BATCH, t), self.net.rows, self.batch_size, self.m),
                                  device=self.device)
            A = torch.take_along_dim(self.A, idx[:, :, None], dim=1)
            y = torch.take_along_dim(self.y, idx, dim=1)
        return A + (self.eps * X * self.shift)[:, None, :], y

    def sample_grad(self, X, Z):
        return self._terms(X, *Z)[1]

    def _terms(self, X, A, y):
        z = torch.einsum("nmd,nd->nm", A, X)
        loss = (torch.nn.functional.softplus(z) - y * z).mean(1) + 0.5 * self.reg * (X * X).sum(1)
        coef = (torch.sigmoid(z) - y) / A.shape[1]
        return loss, torch.einsum("nmd,nm->nd", A, coef) + self.reg * X

    def loss_grad(self, X):
        return self._terms(X, self.A + (self.eps * X * self.shift)[:, None, :], self.y)

    # --- theta_PS: repeated risk minimisation, then Newton on the stability condition -------
    def _rrm(self, iterations: int):
        """theta_PS solves G(theta) = grad_1 f(theta; theta) = 0. A few repeated-risk-minimisation
        steps theta^{k+1} = argmin_theta f(theta; theta^k) (each a Newton solve) bring theta near it
        (RRM alone contracts slowly when eps_avg L / mu is near 1), then Newton's method on G itself,
        whose Jacobian includes the data's dependence on theta. None when this does not converge
        (no unique stable point is guaranteed for large eps)."""
        net, n, m = self.net, self.net.n, self.m
        A0, y = self.A.double(), self.y.double()
        es = (self.eps * self.shift).double()                             # (n_local, d): eps_i s
        eye = torch.eye(self.d, dtype=torch.float64, device=self.device)
        mean = lambda v: net.allreduce(v) / (n * m)

        def newton(theta, data_at):
            """argmin_x f(x; data_at) (data_at = theta for RRM) or the root of G (data_at = None)."""
            x = theta.clone()
            for _ in range(60):
                at = x if data_at is None else data_at
                A = A0 + (es * at)[:, None, :]
                z = torch.einsum("nmd,d->nm", A, x)
                r, s = torch.sigmoid(z) - y, torch.sigmoid(z)
                g = mean(torch.einsum("nmd,nm->d", A, r)) + self.reg * x
                J = mean(torch.einsum("nmd,nm,nme->de", A, s * (1 - s), A)) + self.reg * eye
                if data_at is None:                                       # d/dtheta of the shifted data
                    J = J + mean(torch.einsum("nmd,nm,ne->de", A, s * (1 - s), es * x))
                    J = J + torch.diag(mean(torch.einsum("nm,nd->d", r, es)))
                step = torch.linalg.solve(J, g)
                x = x - step
                if not torch.isfinite(x).all() or float(x.norm()) > 1e6:
                    return None
                if float(step.norm()) < 1e-13 * (1 + float(x.norm())):
                    return x
            if data_at is not None or float(g.norm()) < 1e-10:         # RRM steps may stay inexact
                return x
            return None

        theta = torch.zeros(self.d, dtype=torch.float64, device=self.device)
        for _ in range(min(iterations, 10)):
            theta = newton(theta, theta)
            if theta is None:
                return None
        theta = newton(theta, None)
        return None if theta is None else theta.to(self.dtype)

    def extra_metrics(self, xbar, loss):
        z = (self.A_test + self.eps_avg * xbar * self.shift) @ xbar
        row = {"accuracy": float(((z > 0).to(self.dtype) == self.y_test).to(self.dtype).mean())}
        if self.theta_ps is not None:
            row["ps_error"] = float(((xbar - self.theta_ps) ** 2).sum())
        return row
