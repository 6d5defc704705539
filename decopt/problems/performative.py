"""Performative problems (DSGD-GD): agent i's data follow D_i(theta_i), its own deployed model.

A performative problem splits the stochastic gradient oracle in two phases:

* ``sample(X, t)``: every agent deploys its row x_i and draws Z_i ~ D_i(x_i) with keyed randomness
  (``Stream.PROBLEM`` or ``Stream.BATCH`` at (t, agent)), so a resumed or MPI run draws the same;
* ``sample_grad(X, Z)``: grad_theta l(x_i; Z_i) with Z held fixed (never through the distribution).

``grad(X, t)`` composes the two. The metrics follow the paper (Li, Yau, Wai 2022):
``loss_grad(X)`` gives the decoupled risk f_i(x_i; x_i) = E_{Z~D_i(x_i)} l(x_i; Z) and its gradient
in the first argument, grad_1 f_i(x_i; x_i) (zero for all i at consensus at theta_PS). So the
runner's ``loss`` is the performative risk f(xbar; xbar) and ``grad_norm_sq`` is
||grad f(xbar; xbar)||^2: the gradient at xbar on data shifted by xbar. ``risk(X)`` is the
per-agent f_i(x_i; x_i) at each agent's own iterate (the ``risk`` column, via ``agent_metrics``).
"""
from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np

from ..errors import ConfigError
from .base import Problem
from ..lazy import torch


def check_per_agent(key: str, values, low: float | None = None, width: int | None = None) -> None:
    """A one-line ConfigError unless ``values`` (an explicit per-agent list such as ``problem.eps``)
    is null or a list of finite numbers (>= ``low`` when given); with ``width``, an entry may also
    be a list of ``width`` such numbers (one per coordinate). Its length against graph.n is checked
    where the problem is built (``per_agent``)."""
    if values is None:
        return
    allowed = "a finite number" + (f" >= {low:g}" if low is not None else "")
    if width:
        allowed += f" or a list of problem.dim={width} such numbers"
    number = lambda e: (isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e)
                        and (low is None or e >= low))
    for i, v in enumerate(values):
        entry = v if width and isinstance(v, (list, tuple)) and len(v) == width else [v]
        if not all(number(e) for e in entry):
            raise ConfigError(f"{key}[{i}]={v}: must be {allowed}")


def per_agent(key: str, values, n: int, rows, shape: tuple = ()) -> np.ndarray:
    """The entries of the explicit per-agent list ``values`` (checked by ``check_per_agent``) for
    global agent ids ``rows``, broadcast to ``shape`` each: float64 of shape (len(rows), *shape).
    A one-line ConfigError unless there is one entry per agent."""
    if len(values) != n:
        raise ConfigError(f"{key}: {len(values)} values for graph.n={n} agents; give one per agent or null")
    return np.asarray([np.broadcast_to(np.asarray(values[i], dtype=np.float64), shape) for i in rows]
                      ).reshape(len(rows), *shape)


def sensitivities(n: int, rows, eps_mean: float, eps_spread: float, eps=None) -> np.ndarray:
    """Per-agent epsilon_i for global agent ids ``rows``: eps_mean * (1 + eps_spread * u_i), u_i
    evenly spaced in [-1, 1] (the paper's {0.4, 0.45, ..., 1.6} x eps_mean for n = 25, spread 0.6),
    so the mean is exactly eps_mean; or the explicit list ``eps`` (``problem.eps``, one per agent)."""
    if eps is not None:
        return per_agent("problem.eps", eps, n, rows)
    u = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    return (eps_mean * (1.0 + eps_spread * u))[np.asarray(rows)]


class Performative(Problem):
    performative = True
    eval_grid = "geometric"        # runs span decades of iterations (run.eval_grid=auto follows this)

    @abstractmethod
    def sample(self, X: torch.Tensor, t: int):
        """Z_i ~ D_i(x_i) for every local agent, keyed by (t, agent)."""

    @abstractmethod
    def sample_grad(self, X: torch.Tensor, Z) -> torch.Tensor:
        """grad_theta l(x_i; Z_i) with Z held fixed."""

    def grad(self, X, t):
        return self.sample_grad(X, self.sample(X, t))

    def risk(self, X: torch.Tensor) -> torch.Tensor:
        """f_i(x_i; x_i) for each local agent and replica, shape (n_local, replicas)."""
        return self.loss_grad(X)[0].reshape(len(X), self.replicas)

    def agent_metrics(self, X):
        """``risk``: the expected (performative) risk (1/n) sum_i f_i(x_i; x_i) at the agents' own iterates
        (with replicas: ``risk_r<k>`` per replica, ``risk`` their sum)."""
        risk = self.net.sum(self.risk(X)) / self.net.n
        return {"risk": float(risk.sum()), **self.per_replica("risk", risk)}
