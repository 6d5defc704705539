"""Shared pieces of the compressed / tracking baselines: public copies, gradient helpers.

A *public copy* ``h_i`` (CHOCO's x-hat, BEER's H and G, DoCoM's theta-hat and g-hat) is held by
agent i and by every neighbour, and changes only by the compressed messages agent i sends, so all
holders stay bit-identical. The algorithms never need a neighbour's copy itself, only the gossip
direction ``e_i = sum_j W_ij (h_j - h_i)``, i.e. ``E = (W - I) H``, which each agent keeps up to
date from the decoded messages it receives: ``e_i += sum_j W_ij (q_j - q_i)``. The state therefore
holds local rows only (``h`` and ``e``), on every backend.
"""
from __future__ import annotations

import contextlib

import torch

from ..compressors.sparse import add_
from ..errors import ConfigError

# Keyed iteration index of one-off large-batch draws (b0 at initialisation): far from any real t.
INIT_T = -1


COPY_INIT = ("zero", "x0")


def check_copy_init(value) -> None:
    if value not in COPY_INIT:
        raise ConfigError(f"algo.copy_init={value}: choose one of {', '.join(COPY_INIT)} "
                          "(where the compressed copies start: 0 or the common starting point x0)")


def copy_start(cfg, x0: torch.Tensor) -> torch.Tensor | None:
    """The copies' initial value that ``algo.copy_init`` names: x0 (``x0``) or None for 0 (``zero``).
    ``x0`` must be the common starting point, the same row at every agent (``Problem.x0`` is), so
    that every holder knows the copy without talking; rows that differ raise ValueError (checked on
    this process's rows)."""
    if cfg.copy_init != "x0":
        return None
    if len(x0) > 1 and not bool((x0 == x0[:1]).all()):
        raise ValueError("algo.copy_init=x0 needs the same starting point at every agent")
    return x0


def init_copy(like: torch.Tensor, start: torch.Tensor | None = None):
    """A public copy ``(h, e = (W - I) h)`` that every holder can start without talking: h = ``start``
    (a common starting point, see ``copy_start``: identical rows, so e = 0 exactly) or 0. Which one
    is the algorithm's ``copy_init`` key, never the rounding of a network mean."""
    h = torch.zeros_like(like) if start is None else start.clone()
    return h, torch.zeros_like(like)


def push(net, compressor, delta: torch.Tensor, h: torch.Tensor, e: torch.Tensor) -> None:
    """One message round: every agent sends ``Q(delta_i)``; ``h += q``, ``e += (W - I) q``. The
    halo of decoded messages comes sparse where the codec keeps a few entries per row (top-k,
    rand-k), so both updates touch only those; remote senders' messages enter ``e`` exactly as
    decoded."""
    q = net.broadcast(delta, compressor, sparse=True)
    add_(h, q[: net.n_local])
    net.gossip_into(e, q)


def heavy_ball(state, g: torch.Tensor, mu: float) -> torch.Tensor:
    """The official codes' heavy-ball momentum on the step direction (the ChocoSGD code base the
    DoCoM/FSPDA repositories build on applies ``--momentum_factor``, default 0.9, in every
    optimizer): ``buf = mu buf + g`` in ``state["momentum"]`` (zeros at init); g itself when mu = 0."""
    if not mu:
        return g
    return state["momentum"].mul_(mu).add_(g)


def check_momentum(momentum: float) -> None:
    if not 0 <= momentum < 1:
        raise ConfigError(f"algo.momentum={momentum}: must be in [0, 1) (0 = off, the papers' form)")


def batch_samples(problem) -> int:
    """Samples one gradient call uses per agent: the minibatch, or the local data (full batch)."""
    b = problem.batch_size
    if b is not None:
        return int(b)
    return int(problem.m)


def deterministic(problem) -> bool:
    """True when ``problem.grad`` does not depend on t (full local batch, no sampling)."""
    return problem.batch_size is None and not problem.performative


@contextlib.contextmanager
def batch_size(problem, b):
    """Temporarily change the problem's minibatch size (b0 draws; None = full local data)."""
    old = problem.batch_size
    problem.batch_size = b
    try:
        yield
    finally:
        problem.batch_size = old


def large_batch_grad(problem, X: torch.Tensor, b0) -> torch.Tensor:
    """The initial tracker: the full local gradient (``b0`` None) or a b0-sample minibatch
    gradient keyed at ``INIT_T`` (never reused by the loop)."""
    if b0 is None:
        return problem.loss_grad(X)[1]
    with batch_size(problem, int(b0)):
        return problem.grad(X, INIT_T)


def check_positive(prefix: str, **values) -> None:
    for key, v in values.items():
        if v is None or not v > 0:
            raise ConfigError(f"{prefix}.{key}={v}: must be > 0")


def check_unit(prefix: str, **values) -> None:
    for key, v in values.items():
        if v is None or not 0 < v <= 1:
            raise ConfigError(f"{prefix}.{key}={v}: must be in (0, 1]")
