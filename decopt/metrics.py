"""Metrics at evaluation times (DESIGN §7), all taken with network reductions.

* ``loss`` = f(xbar) = (1/n) sum_i f_i(xbar)
* ``grad_norm_sq`` = ||grad f(xbar)||^2
* ``consensus_error`` = (1/n) sum_i ||x_i - xbar||^2
plus whatever the problem (accuracy, optimality gap) and the algorithm (dual sum) add. A problem
with replicas (``Problem.replicas``) also gets these three per replica (``loss_r<k>``, ...); the
unsuffixed columns are then those of the whole problem, i.e. sums over the replicas.
"""
from __future__ import annotations

import math

import torch


def evaluate(problem, algorithm, net, state) -> dict:
    X = algorithm.iterate(state)
    n, R = net.n, problem.replicas
    xbar = net.mean(X)
    losses, grads = problem.loss_grad(xbar.expand_as(X))
    loss = net.sum(losses.reshape(len(X), R)) / n                   # per replica
    g = (net.sum(grads) / n).view(R, -1)
    dev = (X - xbar).view(len(X), R, -1)
    grad_sq, cons = (g * g).sum(1), net.sum((dev * dev).sum(2)) / n
    row = {"loss": float(loss.sum()), "grad_norm_sq": float(grad_sq.sum()), "consensus_error": float(cons.sum()),
           **problem.per_replica("loss", loss), **problem.per_replica("grad_norm_sq", grad_sq),
           **problem.per_replica("consensus_error", cons)}
    row.update(problem.extra_metrics(xbar, row["loss"]))
    row.update(problem.agent_metrics(X))
    row.update(algorithm.metrics(state))
    return row


def finite(row: dict) -> bool:
    return all(math.isfinite(v) for v in row.values() if isinstance(v, float))


def state_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
