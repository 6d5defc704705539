"""Metrics at evaluation times (DESIGN §7), all taken with network reductions.

* ``loss`` = f(xbar) = (1/n) sum_i f_i(xbar)
* ``grad_norm_sq`` = ||grad f(xbar)||^2
* ``consensus_error`` = (1/n) sum_i ||x_i - xbar||^2
plus whatever the problem (accuracy, optimality gap) and the algorithm (dual sum) add. A problem
with replicas (``Problem.replicas``) also gets these three per replica (``loss_r<k>``, ...); the
unsuffixed columns are then those of the whole problem, i.e. sums over the replicas.

The papers' own definitions, where their figures plot something else, come as extra columns
with ``run.paper_metrics=true`` (off by default: a run's columns do not change otherwise):

* ``consensus_sum_norm`` = sum_i ||x_i - xbar||, unsquared: the DoCoM notebook's "Consensus Gap"
  (``consensus_gap`` in ``DecenAlgo.record``; specs/docom.md §5 Exp. 1 metrics);
* ``consensus_sum_sq`` = sum_i ||x_i - xbar||^2 = n consensus_error: TiCoPD's consensus error
  ||X||_K^2 with K = (I - 11^T/n) (x) I (specs/ticopd.md §1, [SL]);
* ``consensus_agent0_norm`` = ||x_1 - xbar|| (the first agent): what the FSPDA code logs as
  "consensus_error" (rank 0 only, unsquared; specs/fspda.md pitfall P9);
* ``grad_norm`` = ||grad f(xbar)||, unsquared: DSGD-GD's Spambase "train gradient" (specs/dsgd_gd.md §5);
* the problem's own (``Problem.paper_metrics``), e.g. the DoCoM notebook's worst-agent loss on
  the pooled data for ``leaf_synthetic``.

Already the papers' definitions, so no extra column: TiCoPD's and FSPDA's ||grad f(xbar)||^2
(``grad_norm_sq``; the FSPDA code's own "grad_norm" is a per-batch-scaled norm, spec P9, not
reproduced), DSGD-GD's PS error, consensus error (1/n) sum_i ||x_i - xbar||^2 and expected risk
(``ps_error``, ``consensus_error``, ``risk``), DoCoM's worst-agent test accuracy
(``worst_agent_accuracy``).
"""
from __future__ import annotations

import math

from .lazy import torch


def evaluate(problem, algorithm, net, state, paper: bool = False) -> dict:
    """One metrics row; ``paper``: add the papers' own columns (module docstring)."""
    X = algorithm.iterate(state)
    n, R = net.n, problem.replicas
    xbar = net.mean(X)
    losses, grads = problem.loss_grad(xbar.expand_as(X))
    loss = net.sum(losses.reshape(len(X), R)) / n                   # per replica
    g = (net.sum(grads) / n).view(R, -1)
    dev = (X - xbar).view(len(X), R, -1)
    dev_sq = (dev * dev).sum(2)                                     # ||x_i - xbar||^2, (n_local, R)
    grad_sq, cons = (g * g).sum(1), net.sum(dev_sq) / n
    row = {"loss": float(loss.sum()), "grad_norm_sq": float(grad_sq.sum()), "consensus_error": float(cons.sum()),
           **problem.per_replica("loss", loss), **problem.per_replica("grad_norm_sq", grad_sq),
           **problem.per_replica("consensus_error", cons)}
    row.update(problem.extra_metrics(xbar, row["loss"]))
    row.update(problem.agent_metrics(X))
    row.update(algorithm.metrics(state))
    if paper:
        row.update(paper_consensus(problem, net, dev_sq))
        norm = grad_sq.sqrt()
        row.update({"grad_norm": float(norm.sum()), **problem.per_replica("grad_norm", norm)})
        row.update(problem.paper_metrics(X))
    return row


def paper_consensus(problem, net, norms: torch.Tensor) -> dict:
    """The papers' consensus columns from ``norms`` = ||x_i - xbar||^2, shaped (n_local, replicas)."""
    first = torch.zeros_like(norms)                                   # agent 0's row, on its process
    if net.rows.start == 0:
        first[0] = norms[0]
    sums = net.sum(torch.cat([norms.sqrt(), norms, first.sqrt()], 1))  # (3 R,): over agents
    out = {}
    for name, v in zip(("consensus_sum_norm", "consensus_sum_sq", "consensus_agent0_norm"), sums.view(3, -1)):
        out.update({name: float(v.sum()), **problem.per_replica(name, v)})
    return out


def finite(row: dict) -> bool:
    return all(math.isfinite(v) for v in row.values() if isinstance(v, float))


def state_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
