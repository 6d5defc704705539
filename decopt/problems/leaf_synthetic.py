"""DoCoM Exp. 1: non-convex linear classifier with the sigmoid loss on LEAF synthetic data.

Model (specs/docom.md §5): W in R^{C x (p+1)} (a bias feature 1 is appended to every sample),
flattened row-major, d = C (p + 1) = 5 x 1001 = 5005 on the paper's data. With one-hot labels
y_nk in {-1, +1}, agent i's objective is

    f_i(W) = (1/m_i) sum_n sum_k sig(y_nk <w_k, x_n>) + (reg / 2) ||W||^2,   sig(u) = 1/(1+e^-u),

with reg = 1e-4 (the regulariser of the notebook's gradient). Minimising sig(y z) drives the
true class's score down, so the prediction is **argmin_k** <w_k, x> (the paper's convention).
Initial point U(-sqrt(1/(p+1)), +sqrt(1/(p+1))) in every coordinate, the same at all agents.

Data: ``source: file`` reads the paper's exact split (``leaf_synthetic_25x5x1000.npz``: 25
users = 25 agents, per-user train/test sets) from ``data_dir`` (null = $DECOPT_DATA/leaf_synthetic).
``source: generate`` runs LEAF's generator with keyed randomness for ``graph.n`` users of
``num_classes`` x ``num_dim``: lognormal(3, 2) + 5 samples per user (capped at 1000),
x ~ N(loc_u, Sigma) with Sigma_jj = j^-1.2, labels = argmax of a noisy softmax of a per-user
linear model, then a per-user 60/40 train/test split (LEAF's ``-t sample --tf 0.6``).
``partition: users`` keeps LEAF's users as agents; iid / sorted / dirichlet re-split the pooled
training set over ``graph.n`` agents.

Paper metrics (``run.paper_metrics=true``), the authors' notebook's definitions ([NB]
``noncvx_sigmoidERM_loss`` / ``_grad`` / ``_acc`` on the pooled training set, N samples, at each
agent's own model; specs/docom.md §5 Exp. 1 and pitfall 10):

* ``worst_agent_loss_pooled`` = max_i (1/(N C)) sum_n sum_k sig(y_nk <w_k, x_n>) + ||x_i||^2 / (2N):
  the mean over samples *and classes* plus a 1/(2N) penalty, the notebook's "Worst Loss";
* ``worst_agent_grad_norm_pooled`` = max_i ||(1/N) sum_n grad sum_k sig(...) + reg x_i||
  (unsquared; the notebook's "Worst Train Gradient Norm");
* ``worst_agent_train_accuracy`` = min_i training accuracy on the pooled set ("Worst Train
  Accuracy"; the test counterpart is ``worst_agent_accuracy``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..lazy import torch
from ..registry import register
from ..rng import Key, Stream
from . import datasets
from .base import ProblemConfig
from .partition import partition
from .supervised import Supervised, check_common


SOURCES = ("file", "generate")


@dataclass
class LeafSyntheticConfig(ProblemConfig):
    """DoCoM Exp. 1: sigmoid-loss linear classifier (predict argmin_k <w_k, x>) on LEAF synthetic data."""

    name: str = "leaf_synthetic"
    source: str = "file"  # file: the paper's exact split (25 users) | generate: LEAF's generator, graph.n users
    data_dir: str | None = None  # folder with the npz; null = $DECOPT_DATA/leaf_synthetic
    file: str = datasets.LEAF_SYNTHETIC_FILE    # source=file: the npz in data_dir (the paper's 25-user split)
    num_classes: int = 5        # source=generate
    num_dim: int = 1000         # source=generate
    train_fraction: float = 0.6  # source=generate
    batch_size: int | None = 4  # minibatch per agent per iteration; null = full local data
    partition: str = "users"    # users (LEAF's users = agents) | iid | sorted | dirichlet
    alpha: float = 0.5          # Dirichlet concentration (partition=dirichlet)
    reg: float = 1e-4           # (reg / 2) ||W||^2 (the notebook's regulariser)
    agent_metrics: bool = True  # worst-agent loss / grad / accuracy, as in the DoCoM notebook

    def check(self) -> None:
        check_common(self.batch_size, self.partition, self.alpha, ("users", "iid", "sorted", "dirichlet"), reg=self.reg)
        if self.source not in SOURCES:
            raise ConfigError(f"problem.source={self.source}: choose one of {', '.join(SOURCES)}")
        if self.source == "file":
            datasets.check_leaf_synthetic(self.data_dir, filename=self.file)
        else:
            if self.num_classes < 2 or self.num_dim < 1:
                raise ConfigError(f"problem.num_classes={self.num_classes}, problem.num_dim={self.num_dim}: "
                                  "need num_classes >= 2 and num_dim >= 1")
            if not 0 < self.train_fraction < 1:
                raise ConfigError(f"problem.train_fraction={self.train_fraction}: must be in (0, 1)")

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)``, a lower bound for ``config.check_memory``: ``source=generate`` makes at
        least 5 samples of num_dim + 1 features per agent; a file's size is checked when it is read."""
        if self.source != "generate":
            return 1, 0
        return self.num_classes * (self.num_dim + 1), n * (5 + batch) * (self.num_dim + 1)


def generate_leaf_synthetic(num_users: int, num_classes: int, num_dim: int, seed: int,
                            train_fraction: float = 0.6) -> dict:
    """LEAF's synthetic generator (TalwalkarLab/leaf ``data/synthetic/main.py``, one cluster)
    driven by keyed randomness; returns the same arrays as the paper's npz file."""
    rng = np.random.Generator(np.random.Philox(key=Key(seed, Stream.DATA, 0, 2000).cipher_key()))
    counts = np.minimum(rng.lognormal(3, 2, num_users).astype(np.int64) + 5, 1000)
    Q = rng.normal(0.0, 1.0, size=(num_dim + 1, num_classes, 1))
    sd = np.sqrt(np.arange(1, num_dim + 1, dtype=np.float64) ** -1.2)
    cluster_mean = rng.normal(rng.normal(0.0, 1.0), 1.0, size=1)
    xs_tr, ys_tr, xs_te, ys_te, c_tr, c_te = [], [], [], [], [], []
    for m in counts:
        B = rng.normal(0.0, 1.0)
        loc = rng.normal(B, 1.0, size=num_dim)
        x = loc + sd * rng.normal(size=(m, num_dim))
        w = Q @ rng.normal(cluster_mean, 0.1, size=1)                          # (p+1, C)
        logits = np.hstack([np.ones((m, 1)), x]) @ w + rng.normal(0.0, 0.1, size=(m, num_classes))
        y = logits.argmax(1)                                                   # argmax softmax = argmax logits
        perm = rng.permutation(m)
        k = max(1, min(m - 1, int(train_fraction * m)))
        tr, te = perm[:k], perm[k:]
        xs_tr.append(x[tr]); ys_tr.append(y[tr]); xs_te.append(x[te]); ys_te.append(y[te])
        c_tr.append(k); c_te.append(m - k)
    return {"x_train": np.concatenate(xs_tr), "y_train": np.concatenate(ys_tr), "counts_train": np.array(c_tr),
            "x_test": np.concatenate(xs_te), "y_test": np.concatenate(ys_te), "counts_test": np.array(c_te),
            "users": np.array([f"f_{u:05d}" for u in range(num_users)])}


class LeafSynthetic(Supervised):
    def __init__(self, cfg: LeafSyntheticConfig, net, seed):
        super().__init__(net, seed)
        self.batch_size, self.wd, self.agent_metrics_on = cfg.batch_size, cfg.reg, cfg.agent_metrics
        if cfg.source == "file":
            data = datasets.load_leaf_synthetic(cfg.data_dir, filename=cfg.file)
        else:
            data = generate_leaf_synthetic(net.n, cfg.num_classes, cfg.num_dim, seed, cfg.train_fraction)
        bias = lambda x: np.hstack([x, np.ones((len(x), 1))])
        xtr, ytr = bias(data["x_train"]), data["y_train"].astype(np.int64)
        xte, yte = bias(data["x_test"]), data["y_test"].astype(np.int64)
        self.num_classes = c = int(max(ytr.max(), yte.max() if len(yte) else 0)) + 1
        if cfg.source == "generate":
            c = self.num_classes = cfg.num_classes
        if cfg.partition == "users":
            cuts = np.cumsum(data["counts_train"])[:-1]
            parts = np.split(np.arange(len(ytr)), cuts)
            if len(parts) != net.n:
                raise ConfigError(f"graph.n={net.n}: problem=leaf_synthetic with partition=users has "
                                  f"{len(parts)} users; set graph.n={len(parts)} or problem.partition=iid")
        else:
            parts = partition(cfg.partition, ytr, net.n, seed, cfg.alpha)
        p = xtr.shape[1]
        self.shapes = [(c, p)]
        self.bounds = [math.sqrt(1.0 / p)]
        self.setup_data(xtr, ytr, xte, yte, parts)

    def _batch(self, X, A, Y, w, need_grad=True, need_pred=True):
        (Wm,) = self.views(X)                                                 # (n, C, p)
        Z = torch.bmm(A, Wm.transpose(1, 2))                                  # (n, b, C)
        S = 1.0 - 2.0 * torch.nn.functional.one_hot(Y, Z.shape[2]).to(Z.dtype)  # -y: +1 off-class, -1 true
        s = torch.sigmoid(-S * Z)                                             # sig(y z)
        loss = (s.sum(2) * w).sum(1)
        pred = Z.argmin(2)
        if not need_grad:
            return loss, None, pred
        dZ = (-S) * s * (1.0 - s) * w.unsqueeze(2)
        return loss, torch.bmm(dZ.transpose(1, 2), A).flatten(1), pred

    def paper_metrics(self, X):
        """The DoCoM notebook's worst-agent loss, gradient norm and train accuracy (module docstring)."""
        net, N = self.net, int(self.sizes_all.sum())
        loss, grad, correct = self.pooled_pass(X, np.full(N, 1.0 / N))
        loss = loss / self.num_classes + (X * X).sum(1) / (2 * N)
        grad = grad.add_(X, alpha=self.wd)
        vals = torch.zeros(3, net.n, dtype=torch.float64)
        vals[:, net.rows.start:net.rows.stop] = torch.stack([loss, grad.norm(dim=1), correct.to(loss.dtype) / N]).to(vals)
        vals = net.allreduce(vals)
        return {"worst_agent_loss_pooled": float(vals[0].max()), "worst_agent_grad_norm_pooled": float(vals[1].max()),
                "worst_agent_train_accuracy": float(vals[2].min())}

    def _predict(self, X, A):
        (Wm,) = self.views(X)
        return torch.bmm(A, Wm.transpose(1, 2)).argmin(2)


register("problem", "leaf_synthetic", LeafSyntheticConfig, LeafSynthetic)
