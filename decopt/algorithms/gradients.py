"""The gradient oracle of the tracking methods (DoCoM, BEER, GT-HSGD): the initial tracker from a
large batch b0 (the papers' g^0 = v^0) and the samples drawn."""
from __future__ import annotations

from ..lazy import torch


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
    gradient keyed at t = -1 (never an iteration of the loop)."""
    if b0 is None:
        return problem.loss_grad(X)[1]
    old, problem.batch_size = problem.batch_size, int(b0)
    try:
        return problem.grad(X, -1)
    finally:
        problem.batch_size = old
