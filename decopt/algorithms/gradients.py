"""The gradient oracle as the tracking methods (DoCoM, BEER, GT-HSGD) use it: an initial tracker
from a large batch b0 (the papers' g^0 = v^0) and the samples one gradient call draws."""
from __future__ import annotations

import lazy_loader as lazy

from ..errors import ConfigError

torch = lazy.load("torch")

# Keyed iteration index of one-off large-batch draws (b0 at initialisation): far from any real t.
INIT_T = -1


def check_b0(b0) -> None:
    if b0 is not None and b0 < 1:
        raise ConfigError(f"algo.b0={b0}: must be >= 1 or null (full local data)")


def batch_samples(problem) -> int:
    """Samples one gradient call uses per agent: the minibatch, or the local data (full batch)."""
    return int(problem.batch_size) if problem.batch_size is not None else int(problem.m)


def tracker_samples(problem, n: int, b0, evaluations: int) -> float:
    """Samples drawn by n agents: the initial tracker's batch (``b0``, or the local data when null)
    and ``evaluations`` gradient calls each."""
    return float(n * ((b0 if b0 is not None else int(problem.m)) + evaluations * batch_samples(problem)))


def deterministic(problem) -> bool:
    """True when ``problem.grad`` does not depend on t (full local batch, no sampling)."""
    return problem.batch_size is None and not problem.performative


def large_batch_grad(problem, X: torch.Tensor, b0) -> torch.Tensor:
    """The initial tracker: the full local gradient (``b0`` None) or a b0-sample minibatch
    gradient keyed at ``INIT_T`` (never reused by the loop)."""
    if b0 is None:
        return problem.loss_grad(X)[1]
    old, problem.batch_size = problem.batch_size, int(b0)
    try:
        return problem.grad(X, INIT_T)
    finally:
        problem.batch_size = old
