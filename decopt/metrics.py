"""Metrics at evaluation times (DESIGN §7), all taken with network reductions.

* ``loss`` = f(xbar) = (1/n) sum_i f_i(xbar)
* ``grad_norm_sq`` = ||grad f(xbar)||^2
* ``consensus_error`` = (1/n) sum_i ||x_i - xbar||^2
plus whatever the problem (accuracy, optimality gap) and the algorithm (dual sum) add.
"""
from __future__ import annotations

import math

import torch


def evaluate(problem, algorithm, net, state) -> dict:
    X = algorithm.iterate(state)
    n = net.n
    xbar = net.mean(X)
    losses, grads = problem.loss_grad(xbar.expand_as(X))
    loss = float(net.allreduce(losses.sum()) / n)
    g = net.allreduce(grads.sum(0)) / n
    dev = X - xbar
    row = {
        "loss": loss,
        "grad_norm_sq": float(g @ g),
        "consensus_error": float(net.allreduce((dev * dev).sum())) / n,
    }
    row.update(problem.extra_metrics(xbar, loss))
    row.update(problem.agent_metrics(X))
    row.update(algorithm.metrics(state))
    return row


def finite(row: dict) -> bool:
    return all(math.isfinite(v) for v in row.values() if isinstance(v, float))


def state_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
