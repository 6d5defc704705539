"""The problem contract: local objectives f_i and gradient oracles, vectorized over agents.

A problem is built from its config, the agents it serves (``AgentRows``) and the run's seed.
What callers may read of it is declared here, once:

required (abstract)
    ``d`` (set in ``__init__``), ``grad(X, t)``, ``loss_grad(X)``.
optional capabilities, with their defaults
    ``batch_size`` (None: full local gradient), ``m`` (samples per agent), ``replicas`` (1),
    ``performative`` (False), ``eval_grid`` ("linear"), ``descent_kernel`` (None), ``segments``
    ([d]), ``x0``, ``grads``, ``extra_metrics``, ``agent_metrics``, ``paper_metrics`` (no columns).

A config declares the same way (``ProblemConfig``): ``name``, ``batch_size``, ``check()`` and
``footprint(n, batch)``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

from ..lazy import torch
from ..rng import Key, Stream, integers


@runtime_checkable
class AgentRows(Protocol):
    """What a problem needs of the network: its agents and a sum over every process.

    ``n`` agents in all, ``rows`` (a range of global agent ids, ``n_local`` of them) on this
    process, the run's ``dtype`` and ``device``; ``allreduce(x)`` sums ``x`` over processes and
    ``sum(X)`` sums the per-agent rows of ``X`` over all agents (set-up and metrics only).
    ``comm.Network`` satisfies it."""

    n: int
    n_local: int
    rows: range
    dtype: torch.dtype
    device: torch.device

    def allreduce(self, x: torch.Tensor) -> torch.Tensor: ...

    def sum(self, x: torch.Tensor) -> torch.Tensor: ...


class ProblemConfig:
    """What every problem's config dataclass provides (subclasses declare their own fields)."""

    name: str
    batch_size: int | None = None   # samples per agent per iteration; None = full local data

    def check(self) -> None:
        """One-line ConfigErrors for values out of range (before anything is built)."""

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for
        ``config.check_memory`` (here: d unknown, one float a sample)."""
        return 1, n * batch


class Problem(ABC):
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

    d: int                          # unknowns per agent (the width of a row of X)
    batch_size: int | None = None   # samples per agent per gradient call; None = the full local gradient
    m: int = 1                      # samples per agent (a full batch counts m in the ``samples`` column)
    replicas: int = 1               # independent copies run as one (see above)
    performative: bool = False      # the data depend on the deployed iterate (``Performative``)
    eval_grid: str = "linear"       # the evaluation grid ``run.eval_grid=auto`` takes (linear | geometric)
    descent_kernel = None           # fused NumPy gradient steps (see above), or None

    def __init__(self, net: AgentRows, seed: int):
        self.net, self.seed = net, seed
        self.dtype, self.device = net.dtype, net.device

    @property
    def segments(self) -> list[int]:
        """Sizes of the parameter tensors that make up x (sum = d), for per-tensor compression."""
        return [self.d]

    def x0(self) -> torch.Tensor:
        """Initial iterates, the same for every agent (zeros unless the problem says otherwise)."""
        return torch.zeros(self.net.n_local, self.d, dtype=self.dtype, device=self.device)

    @abstractmethod
    def grad(self, X: torch.Tensor, t: int) -> torch.Tensor:
        """Stochastic gradients at iteration t, a fresh tensor the caller may overwrite: minibatch
        keyed (seed, BATCH, t, agent); the full local gradient when ``batch_size`` is None."""

    def grads(self, Xs, t: int) -> list[torch.Tensor]:
        """``[grad(X, t) for X in Xs]``: gradients at several points on iteration t's minibatch
        (DoCoM's STORM term needs two); a problem may draw and gather the batch once."""
        return [self.grad(X, t) for X in Xs]

    @abstractmethod
    def loss_grad(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full local losses f_i(x_i), shape (n_local,) (with replicas: (n_local, replicas)), and
        gradients grad f_i(x_i), (n_local, d)."""

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

    def batch_indices(self, t: int, sizes) -> torch.Tensor:
        """Keyed minibatch indices (n_local, batch_size) on the problem's device into each agent's
        ``sizes[i]`` samples (``sizes`` an int, an array or a tensor on that device)."""
        return integers(Key(self.seed, Stream.BATCH, t), self.net.rows, self.batch_size, sizes, device=self.device)
