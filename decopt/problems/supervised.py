"""Shared machinery of the learning problems: a labelled training set split over agents, keyed
minibatches, chunked full-batch passes, and the evaluation metrics the papers plot.

A subclass supplies the model through three things:

* ``shapes``: the parameter tensors in the order they are laid out in a row of X (this is also
  ``segments``, for per-tensor compression), and ``bounds``: the half-width of each tensor's
  uniform initialisation (PyTorch's default 1/sqrt(fan_in) for layers);
* ``_batch(X, A, Y, w, need_grad)``: for every local agent i, the weighted loss
  sum_b w[i,b] * l(x_i; A[i,b], Y[i,b]), its gradient (n, d) and the predicted labels (n, b),
  all in one batched computation (no Python loop over agents);
* optionally ``_predict(X, A)`` (defaults to ``_batch(..., need_grad=False)``).

The base class adds the (weight-decay / ridge) regulariser ``(wd / 2) ||x||^2``.

Data layout: the whole training set ``train_x`` (N, *features) lives once per process, already
normalised, in the run's dtype; agent i owns the rows ``table[i, :sizes[i]]`` (a padded index
table, kept for all n agents so per-agent metrics can evaluate any model on the full training
set). Minibatches are drawn with replacement from each agent's rows with the keyed indices of
``Problem.batch_indices`` (same batch on every backend and any number of ranks).

Metrics (added to ``loss``, ``grad_norm_sq`` at xbar that the runner computes):

* ``accuracy``: test accuracy of xbar on the whole test set (each rank scores its share);
* ``train_accuracy``: training accuracy of xbar (from the same pass as ``loss``);
* with ``agent_metrics: true``: ``worst_agent_loss`` = max_i f(x_i),
  ``worst_agent_grad_norm_sq`` = max_i ||grad f(x_i)||^2 (f the network objective on the full
  training set) and ``worst_agent_accuracy`` = min_i test accuracy of x_i (DoCoM's worst-agent
  curves). These cost n full passes, so they are off by default for the neural nets.

``pooled_pass`` evaluates every local model on the pooled training set with given per-sample
weights (the worst-agent metrics above, a problem's ``paper_metrics``).
"""
from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np

from ..errors import ConfigError
from ..lazy import torch
from ..rng import Key, Stream, uniform
from .base import Problem


_CHUNK_ELEMS = 1 << 22  # feature elements gathered per chunk of a full pass


class Supervised(Problem):
    shapes: list[tuple[int, ...]]
    bounds: list[float]
    wd: float = 0.0
    agent_metrics_on: bool = False
    m = 1                   # agents hold different numbers of samples: a full batch counts one in ``samples``

    # ------------------------------------------------------------------ set-up
    def setup_data(self, train_x, train_y, test_x, test_y, parts: list[np.ndarray]) -> None:
        """Store the data (numpy or torch) and the per-agent index lists (all n agents)."""
        net = self.net
        if len(parts) != net.n:
            raise ConfigError(f"graph.n={net.n}: the data gives {len(parts)} agents (shards/users); "
                              f"set graph.n={len(parts)} or choose another problem.partition")
        if min(len(p) for p in parts) < 1:
            raise ConfigError("problem.partition: an agent received no training samples; use fewer agents")
        fdt = self.dtype
        self.train_x = torch.as_tensor(np.ascontiguousarray(train_x), device=self.device).to(fdt)
        self.train_y = torch.as_tensor(np.asarray(train_y, dtype=np.int64), device=self.device)
        self.test_x = torch.as_tensor(np.ascontiguousarray(test_x), device=self.device).to(fdt)
        self.test_y = torch.as_tensor(np.asarray(test_y, dtype=np.int64), device=self.device)
        self.sizes_all = np.array([len(p) for p in parts], dtype=np.int64)
        m_max = int(self.sizes_all.max())
        table = np.zeros((net.n, m_max), dtype=np.int64)
        for i, p in enumerate(parts):
            table[i, :len(p)] = p
        self.table_all = torch.as_tensor(table, device=self.device)
        rows = list(net.rows)
        self.table = self.table_all[rows]
        self.sizes = self.sizes_all[rows]
        self._sizes_here = torch.as_tensor(self.sizes, device=self.device)   # minibatch bounds where drawn
        self.parts = parts
        self.d = int(sum(math.prod(s) for s in self.shapes))
        self._cache = self._gather_buf = self._pool_rows = None      # filled on first use

    @property
    def segments(self) -> list[int]:
        return [int(math.prod(s)) for s in self.shapes]

    def views(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Per-tensor views (n, *shape) of the rows of X, no copies."""
        out, at = [], 0
        for shape in self.shapes:
            size = int(math.prod(shape))
            out.append(X[:, at:at + size].unflatten(1, shape))
            at += size
        return out

    def x0(self) -> torch.Tensor:
        """PyTorch-default-like uniform init U(-b, b) per tensor, keyed (seed, INIT); same for all agents."""
        u = uniform(Key(self.seed, Stream.INIT, 0, 0), range(1), self.d)[0]
        bound = np.concatenate([np.full(s, b) for s, b in zip(self.segments, self.bounds)])
        x = torch.as_tensor((2.0 * u - 1.0) * bound, dtype=self.dtype, device=self.device)
        return x.expand(self.net.n_local, self.d).clone()

    # ------------------------------------------------------------------ model hooks
    @abstractmethod
    def _batch(self, X, A, Y, w, need_grad: bool = True, need_pred: bool = True):
        """``(loss (n,), grad (n, d) | None, predicted labels (n, b) | None)`` (module docstring)."""

    def _predict(self, X, A):
        return self._batch(X, A, torch.zeros(A.shape[:2], dtype=torch.long, device=A.device),
                           torch.zeros(A.shape[:2], dtype=A.dtype, device=A.device), need_grad=False)[2]

    # ------------------------------------------------------------------ oracles
    def _regularize(self, X, loss, grad):
        if self.wd:
            loss = loss + 0.5 * self.wd * (X * X).sum(1)
            if grad is not None:
                grad.add_(X, alpha=self.wd)        # grad is always a fresh tensor here
        return loss, grad

    def grad(self, X, t):
        return self.grads((X,), t)[0]

    def grads(self, Xs, t) -> list[torch.Tensor]:
        """Stochastic gradients at several points on the same keyed minibatch of iteration t,
        drawn and gathered once (DoCoM's STORM term needs two); each equals ``grad(X, t)``. Only
        the gradient is formed: the loss's regulariser (wd/2)||x||^2 is not computed here."""
        if self.batch_size is None:
            return [self.loss_grad(X)[1] for X in Xs]
        pos = self.batch_indices(t, self._sizes_here)                   # (n_local, B) in [0, m_i)
        rows = torch.gather(self.table, 1, pos)
        A, Y = self._take(rows, reuse=True)
        w = torch.full(rows.shape, 1.0 / rows.shape[1], dtype=self.dtype, device=self.device)
        out = []
        for X in Xs:
            g = self._batch(X, A, Y, w, need_pred=False)[1]
            if self.wd:
                g.add_(X, alpha=self.wd)            # g is a fresh tensor
            out.append(g)
        return out

    def _take(self, rows, reuse: bool = False):
        """Training samples and labels at the index array ``rows`` (any shape), one gather each.
        ``reuse``: gather the samples into a buffer kept between calls (the minibatch of ``grad``,
        which no caller keeps), saving a large allocation per iteration."""
        flat = rows.reshape(-1)
        if reuse:
            buf = self._gather_buf
            if buf is None or buf.shape[0] != flat.numel():
                buf = self._gather_buf = torch.empty((flat.numel(), *self.train_x.shape[1:]),
                                                     dtype=self.train_x.dtype, device=self.device)
            A = torch.index_select(self.train_x, 0, flat, out=buf)
        else:
            A = self.train_x.index_select(0, flat)
        A = A.view(*rows.shape, *self.train_x.shape[1:])
        return A, self.train_y.index_select(0, flat).view(rows.shape)

    def _full(self, X, table, sizes, need_grad=True):
        """Exact local objectives over the agents' whole data: (loss (n,), grad (n, d) | None,
        correct (n,) counts), in chunks of sample positions."""
        n, m_max = table.shape
        feat = max(1, self.train_x[0].numel())
        chunk = max(1, _CHUNK_ELEMS // (n * feat))
        sz = torch.as_tensor(sizes, device=self.device)
        loss = torch.zeros(n, dtype=self.dtype, device=self.device)
        grad = torch.zeros(n, self.d, dtype=self.dtype, device=self.device) if need_grad else None
        correct = torch.zeros(n, dtype=torch.long, device=self.device)
        inv = (1.0 / sz.to(self.dtype))[:, None]
        for s in range(0, int(sizes.max()), chunk):
            pos = torch.arange(s, min(s + chunk, m_max), device=self.device)
            valid = pos[None, :] < sz[:, None]
            rows = table[:, s:s + len(pos)]
            A, Y = self._take(rows)
            w = valid.to(self.dtype) * inv
            l, g, pred = self._batch(X, A, Y, w, need_grad)
            loss += l
            if need_grad:
                grad += g
            correct += ((pred == Y) & valid).sum(1)
        loss, grad = self._regularize(X, loss, grad)
        return loss, grad, correct

    def loss_grad(self, X):
        with torch.no_grad():
            loss, grad, correct = self._full(X, self.table, self.sizes)
        self._cache = (X[0].detach().clone(), correct)
        return loss, grad

    # ------------------------------------------------------------------ metrics
    def _test_correct(self, x: torch.Tensor, lo: int = 0, hi: int | None = None) -> int:
        """Number of test samples in [lo, hi) that model x classifies correctly."""
        hi = len(self.test_y) if hi is None else hi
        feat = max(1, self.test_x[0].numel())
        chunk = max(1, _CHUNK_ELEMS // feat)
        total = 0
        with torch.no_grad():
            for s in range(lo, hi, chunk):
                e = min(s + chunk, hi)
                pred = self._predict(x[None], self.test_x[s:e][None])[0]
                total += int((pred == self.test_y[s:e]).sum())
        return total

    def extra_metrics(self, xbar, loss):
        net = self.net
        n_test = len(self.test_y)
        lo, hi = n_test * net.rows.start // net.n, n_test * net.rows.stop // net.n
        out = {}
        if n_test:
            corr = net.allreduce(torch.tensor([float(self._test_correct(xbar, lo, hi))], dtype=torch.float64))
            out["accuracy"] = float(corr[0]) / n_test
        if self._cache is not None and torch.equal(self._cache[0], xbar):
            c = torch.tensor([float(self._cache[1].sum()), float(self.sizes.sum())], dtype=torch.float64)
            c = net.allreduce(c)
            out["train_accuracy"] = float(c[0] / c[1])
        return out

    def agent_metrics(self, X) -> dict:
        """Worst-agent metrics: each local model on the full training set (the network objective
        f = (1/n) sum_j f_j, evaluated on the pooled data with weights 1/(n m_j)) and the test set."""
        if not self.agent_metrics_on:
            return {}
        net, n = self.net, self.net.n
        loss, grad, _ = self.pooled_pass(X, np.concatenate([np.full(len(p), 1.0 / (n * len(p))) for p in self.parts]))
        loss, grad = self._regularize(X, loss, grad)
        vals = torch.zeros(3, n, dtype=torch.float64)
        for k, i in enumerate(net.rows):
            vals[0, i] = float(loss[k])
            vals[1, i] = float(grad[k] @ grad[k])
            vals[2, i] = self._test_correct(X[k]) / max(1, len(self.test_y))
        vals = net.allreduce(vals)
        out = {"worst_agent_loss": float(vals[0].max()), "worst_agent_grad_norm_sq": float(vals[1].max())}
        if len(self.test_y):
            out["worst_agent_accuracy"] = float(vals[2].min())
        return out

    def pooled_pass(self, X, weights: np.ndarray):
        """Each local model x_i on the whole pooled training set (all agents' samples, in agent order)
        with per-sample ``weights``: (sum_b w_b l(x_i; b) (n_local,), its gradient (n_local, d),
        correct predictions (n_local,)), no regulariser. One model at a time, in chunks of samples
        (metrics only)."""
        if self._pool_rows is None:
            self._pool_rows = torch.as_tensor(np.concatenate(self.parts), device=self.device)
        rows, w = self._pool_rows, torch.as_tensor(weights, dtype=self.dtype, device=self.device)
        chunk = max(1, _CHUNK_ELEMS // max(1, self.train_x[0].numel()))
        loss = torch.zeros(len(X), dtype=self.dtype, device=self.device)
        grad = torch.zeros(len(X), self.d, dtype=self.dtype, device=self.device)
        correct = torch.zeros(len(X), dtype=torch.long, device=self.device)
        with torch.no_grad():
            for k in range(len(X)):
                for s in range(0, len(rows), chunk):
                    A, Y = self._take(rows[s:s + chunk][None])
                    l, g, pred = self._batch(X[k:k + 1], A, Y, w[s:s + chunk][None])
                    loss[k] += l[0]
                    grad[k] += g[0]
                    correct[k] += int((pred == Y).sum())
        return loss, grad, correct


def check_common(batch_size: int | None, partition: str | None = None, alpha: float | None = None,
                 partitions=("iid", "sorted", "dirichlet"), **l2: float) -> None:
    """Checks shared by the learning problems' configs (one-line ConfigErrors): the minibatch, the
    split over agents and its Dirichlet ``alpha`` (where the problem has them), and the l2 weight
    (``weight_decay=`` or ``reg=``)."""
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"problem.batch_size={batch_size}: must be >= 1 or null (full batch)")
    if partition is not None and partition not in partitions:
        raise ConfigError(f"problem.partition={partition}: choose one of {', '.join(partitions)}")
    if alpha is not None and not alpha > 0:
        raise ConfigError(f"problem.alpha={alpha}: must be > 0")
    for key, value in l2.items():
        if value < 0:
            raise ConfigError(f"problem.{key}={value}: must be >= 0")
