"""Multi-agent Gaussian mean estimation with performative data (Li, Yau, Wai 2022, Exp. A).

l(theta; z) = ||theta - z||^2 / 2 and D_i(theta_i) = N(zbar_i + eps_i theta_i, sigma^2 I):
Z = zbar_i + eps_i theta_i + sigma w. The sample gradient is theta_i - Z = (1 - eps_i) theta_i
- zbar_i - sigma w. Only the average sensitivity matters: theta_PS = sum_i zbar_i / (n (1 - eps_avg))
exists iff eps_avg < 1 (individual eps_i may exceed 1). f_i(theta; theta) =
||(1 - eps_i) theta - zbar_i||^2 / 2 + d sigma^2 / 2.

The instance: by default eps_i = eps_mean (1 + eps_spread u_i), u_i evenly spaced in [-1, 1], and
zbar_i ~ U(zbar_low, zbar_high) drawn once (keyed by the seed); the paper leaves both unstated
(specs/dsgd_gd.md §6, Exp. A: these are the spec's suggested defaults). A given heterogeneous
instance is posed with ``problem.eps=[eps_1, ..., eps_n]`` (finite, >= 0) and
``problem.zbar=[zbar_1, ..., zbar_n]`` (finite; with ``dim`` > 1 an entry is a number, the same in
every coordinate, or a list of ``dim`` numbers), one entry per agent of ``graph.n``; either
replaces its default, and theta_PS above (the ``ps_error`` column) is that of the given instance.

``replicas=R`` runs R independent copies side by side as the columns of one iterate (d = R dim,
replica r in columns r dim .. (r + 1) dim - 1): replica r draws its zbar and its samples with the
keys of ``run.seed + r`` (a given ``problem.zbar`` is every replica's), so it is the ``replicas=1``
run with that seed (up to rounding), i.e. R seeds for about the price of one. Per-replica metrics
are ``ps_error_r<k>``, ``risk_r<k>`` and the runner's ``loss_r<k>``, ``grad_norm_sq_r<k>``,
``consensus_error_r<k>`` (``Problem.replicas``); the unsuffixed columns are those of the whole
R dim-dimensional problem (sums over the replicas).
What the network draws (random links, compressor randomness) is keyed by ``run.seed`` alone and
shared by the replicas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..host import numpy_view
from ..lazy import torch
from ..registry import register
from ..rng import Key, Stream, normal_steps, uniform
from .base import ProblemConfig
from .performative import Performative, check_per_agent, per_agent, sensitivities


@dataclass
class GaussianMeanConfig(ProblemConfig):
    """Performative Gaussian mean estimation (Li, Yau & Wai 2022): l = (theta - z)^2/2, Z ~ N(zbar_i + eps_i
    theta_i, sigma^2); theta_PS = sum zbar_i / (n (1 - eps_avg)) exists iff eps_avg < 1 (some eps_i may
    exceed 1).

    eps_mean: eps_avg (the average sensitivity); eps_spread: eps_i = eps_mean (1 + spread u_i),
    u_i evenly spaced in [-1, 1]; eps: explicit per-agent list eps_i (overrides both); zbar_i ~
    U(zbar_low, zbar_high) fixed per agent; zbar: explicit per-agent list zbar_i (overrides the
    range; an entry may be a list of dim numbers); sigma: noise std; batch_size: samples Z per
    agent per iteration; dim: dimension of theta (1 in the paper); replicas: independent copies run as one
    (replica r = seed run.seed + r, see the module docstring)."""

    name: str = "gaussian_mean"
    eps_mean: float = 0.9  # eps_avg: average sensitivity
    eps_spread: float = 0.6  # eps_i = eps_avg (1 + spread u_i), u_i evenly in [-1, 1]: {0.4, ..., 1.6} eps_avg
    eps: list | None = None  # explicit list of eps_i >= 0 (one per agent of graph.n), overrides the two above
    zbar_low: float = 0.0  # zbar_i ~ U(zbar_low, zbar_high), drawn once
    zbar_high: float = 10.0     # upper end of the zbar_i ~ U(zbar_low, zbar_high) range
    zbar: list | None = None  # zbar_i per agent of graph.n (or dim numbers each); overrides the range
    sigma: float = 1.0  # sigma: response noise
    batch_size: int | None = 1  # samples Z_i per agent per iteration (null = the exact expected gradient)
    dim: int = 1  # d (scalar in the paper)
    replicas: int = 1  # R independent copies as one run (replica r: seed run.seed + r), metrics <name>_r<k>

    def check(self) -> None:
        if self.eps_mean < 0 or self.eps_spread < 0:
            raise ConfigError("problem.eps_mean and problem.eps_spread must be >= 0")
        if self.sigma < 0:
            raise ConfigError(f"problem.sigma={self.sigma}: must be >= 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"problem.batch_size={self.batch_size}: must be >= 1 "
                              f"(null = the exact expected gradient)")
        if self.dim < 1:
            raise ConfigError(f"problem.dim={self.dim}: must be >= 1")
        if self.replicas < 1:
            raise ConfigError(f"problem.replicas={self.replicas}: must be >= 1")
        if self.zbar_high < self.zbar_low:
            raise ConfigError("problem.zbar_high must be >= problem.zbar_low")
        check_per_agent("problem.eps", self.eps, low=0.0)
        check_per_agent("problem.zbar", self.zbar, width=self.dim)

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for ``config.check_memory``."""
        d = self.dim * self.replicas
        return d, n * max(batch, 1) * d                               # one iteration's noise


class GaussianMean(Performative):
    NOISE_VALUES = 1 << 16
    m = 1                       # one sample distribution per agent (``samples`` counts batch_size draws)

    def __init__(self, cfg: GaussianMeanConfig, net, seed):
        super().__init__(net, seed)
        self.dim, self.replicas, self.d = cfg.dim, cfg.replicas, cfg.dim * cfg.replicas
        self.batch_size, self.sigma = cfg.batch_size, cfg.sigma
        rows = net.rows
        eps = sensitivities(net.n, rows, cfg.eps_mean, cfg.eps_spread, cfg.eps)
        if cfg.zbar is None:
            zbar = cfg.zbar_low + (cfg.zbar_high - cfg.zbar_low) * np.concatenate(
                [uniform(Key(seed + r, Stream.DATA, 0, 0), rows, cfg.dim) for r in range(cfg.replicas)], axis=1)
        else:                                  # the given instance, the same in every replica
            zbar = np.tile(per_agent("problem.zbar", cfg.zbar, net.n, rows, (cfg.dim,)), cfg.replicas)
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)
        self.eps, self.zbar = as_t(eps)[:, None], as_t(zbar)
        self._one_minus_eps = 1.0 - self.eps
        # noise is drawn for a block of iterations at a time, about NOISE_VALUES numbers
        self._block_len = max(1, self.NOISE_VALUES // (net.n_local * (self.batch_size or 1) * self.d))
        self._block_index = None
        self.eps_avg = float(net.sum(torch.as_tensor(eps)[:, None])[0]) / net.n
        zsum = net.sum(torch.as_tensor(zbar, dtype=torch.float64))
        self.theta_ps = None
        if self.eps_avg < 1.0:
            self.theta_ps = (zsum / (net.n * (1.0 - self.eps_avg))).to(self.dtype)

    def _block(self, t):
        """``(w, c, at)``: the block of iterations holding t, with its standard normals w keyed
        (seed + r, PROBLEM, t, agent) for replica r in the iteration-major layout (``rng.normal_steps``),
        shape (block, n_local, b, d), the constant part of each gradient ``c = -(zbar_i + sigma mean_b w_i)``,
        and t's place in the block. Blocks start at multiples of their length (any resume or
        rank draws the same numbers; drawing a block is one Philox call per replica)."""
        i, at = divmod(t, self._block_len)
        if i != self._block_index:
            steps, b = range(i * self._block_len, (i + 1) * self._block_len), self.batch_size
            w = torch.cat([normal_steps(Key(self.seed + r, Stream.PROBLEM), steps, self.net.rows, b * self.dim,
                                        self.net.n, device=self.device).reshape(len(steps), -1, b, self.dim)
                           for r in range(self.replicas)], dim=3).to(self.dtype)
            self._block_index, self._w, self._c = i, w, torch.add(self.zbar, w.mean(2), alpha=self.sigma).neg_()
        return self._w, self._c, at

    def sample(self, X, t):
        """Z_i = zbar_i + eps_i x_i + sigma w_i: (n_local, b, d)."""
        mean = torch.addcmul(self.zbar, self.eps, X)[:, None, :]
        if self.batch_size is None:
            return mean
        w, _, at = self._block(t)
        return mean + self.sigma * w[at]

    def sample_grad(self, X, Z):
        return X - Z.mean(1)

    def grad(self, X, t):
        """The sample gradient x_i - mean_b Z_i = (1 - eps_i) x_i - zbar_i - sigma mean_b w_i, in one op."""
        if self.batch_size is None:
            return torch.addcmul(-self.zbar, self._one_minus_eps, X)
        _, c, at = self._block(t)
        return torch.addcmul(c[at], self._one_minus_eps, X)

    def descent_kernel(self, t: int, count: int, scale, x, y):
        """``Problem.descent_kernel``: the sample gradient is affine in x, a x + c_s with a = 1 - eps_i
        and c_s = -(zbar_i + sigma mean_b w_i) (``grad``), so x <- y - scale_j (a x + c_{t+j}) is three
        NumPy ops on scale a and scale c precomputed for the iterations left in t's noise block."""
        if self.batch_size is None:
            k, c = count, (-self.zbar).expand(count, *self.zbar.shape)
        else:
            _, c, at = self._block(t)
            c = c[at:at + count]
            k = len(c)
        s = scale[:k, None, None]
        sa, sc = s * numpy_view(self._one_minus_eps), s * numpy_view(c)
        mul, sub = np.multiply, np.subtract

        def step(j):
            mul(sa[j], x, out=x)
            sub(y, x, out=x)
            sub(x, sc[j], out=x)

        return k, step

    def loss_grad(self, X):
        """Per agent and replica f_i(x_i; x_i), shape (n_local, replicas), and its gradient."""
        r = (1.0 - self.eps) * X - self.zbar
        rr = (r * r).view(len(X), self.replicas, self.dim).sum(2)
        return 0.5 * rr + 0.5 * self.dim * self.sigma ** 2, r

    def extra_metrics(self, xbar, loss):
        if self.theta_ps is None:
            return {}
        ps = ((xbar - self.theta_ps) ** 2).view(self.replicas, self.dim).sum(1)
        return {"ps_error": float(ps.sum()), **self.per_replica("ps_error", ps)}


register("problem", "gaussian_mean", GaussianMeanConfig, GaussianMean)
