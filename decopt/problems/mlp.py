"""One-hidden-layer sigmoid MLP with cross-entropy, batched over agents by hand-written bmm.

``mnist_mlp``: the papers' 784-100-10 network (d = 79,510) on MNIST read from the original IDX
files, inputs scaled to [0, 1] then normalised with mean 0.1307 / std 0.3081.
``digits_mlp``: the same code on scikit-learn's bundled 8x8 digits (64-100-10, d = 7,510), the
zero-setup demo (a keyed 75/25 train/test split of the 1,797 images).

Layout of a row x (= ``segments``, PyTorch ``nn.Linear`` order): W1 (hidden, inputs) row-major,
b1 (hidden), W2 (classes, hidden), b2 (classes). Loss of agent i on a batch: mean cross-entropy
of softmax(W2 sigmoid(W1 a + b1) + b2) plus (weight_decay / 2) ||x||^2; its gradient is the
analytic backward pass written with batched matmuls (one bmm per layer for all agents).
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


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def mlp_size(inputs: int, hidden: int, classes: int = 10) -> int:
    """Parameters of the one-hidden-layer MLP: W1, b1, W2, b2."""
    return (inputs + 1) * hidden + (hidden + 1) * classes


@dataclass
class MnistMLPConfig(ProblemConfig):
    """784-100-10 sigmoid MLP on MNIST (d = 79,510), cross-entropy, inputs normalised (0.1307, 0.3081).

    784-hidden-10 sigmoid MLP on MNIST. ``data_dir``: folder with the four IDX files
    (null = $DECOPT_DATA/mnist). ``partition``: iid | sorted (by label, the papers'
    heterogeneous split) | dirichlet (with ``alpha``). ``train_size``: use only the first N
    training images (null = all 60,000)."""

    name: str = "mnist_mlp"
    data_dir: str | None = None  # folder with the 4 original IDX files; null = $DECOPT_DATA/mnist
    batch_size: int | None = 256        # minibatch per agent per iteration; null = full local data
    partition: str = "iid"              # iid | sorted (by label: the papers' heterogeneous split) | dirichlet
    alpha: float = 0.5                  # Dirichlet concentration (partition=dirichlet)
    hidden: int = 100                   # hidden units of the sigmoid layer
    weight_decay: float = 1e-4          # L2 term (weight_decay / 2) ||x||^2 in every agent's loss
    train_size: int | None = None       # first N training images only; null = all 60,000
    agent_metrics: bool = False         # worst-agent loss / grad / accuracy (n extra full passes per evaluation)

    def check(self) -> None:
        check_common(self.batch_size, self.partition, self.alpha, weight_decay=self.weight_decay)
        if self.hidden < 1:
            raise ConfigError(f"problem.hidden={self.hidden}: must be >= 1")
        if self.train_size is not None and self.train_size < 1:
            raise ConfigError(f"problem.train_size={self.train_size}: must be >= 1 or null (all)")
        datasets.check_mnist(self.data_dir)

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for ``config.check_memory``."""
        return mlp_size(784, self.hidden), n * batch * (784 + self.hidden)      # one minibatch and its hidden layer


@dataclass
class DigitsMLPConfig(ProblemConfig):
    """64-100-10 sigmoid MLP on scikit-learn's bundled 8x8 digits: the zero-setup demo of mnist_mlp.

    64-hidden-10 sigmoid MLP on scikit-learn's bundled 8x8 digits: no data directory needed."""

    name: str = "digits_mlp"
    batch_size: int | None = 32         # minibatch per agent per iteration; null = full local data
    partition: str = "iid"              # iid | sorted (by label) | dirichlet
    alpha: float = 0.5                  # Dirichlet concentration (partition=dirichlet)
    hidden: int = 100                   # hidden units of the sigmoid layer
    weight_decay: float = 1e-4          # L2 term (weight_decay / 2) ||x||^2 in every agent's loss
    test_fraction: float = 0.25         # held-out share of the 1,797 images (fixed keyed split)
    agent_metrics: bool = True          # worst-agent loss / grad / accuracy (n extra full passes per evaluation)

    def check(self) -> None:
        check_common(self.batch_size, self.partition, self.alpha, weight_decay=self.weight_decay)
        if self.hidden < 1:
            raise ConfigError(f"problem.hidden={self.hidden}: must be >= 1")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"problem.test_fraction={self.test_fraction}: must be in (0, 1) (the accuracy "
                              f"needs a test set)")

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for ``config.check_memory``."""
        return mlp_size(64, self.hidden), n * batch * (64 + self.hidden)      # one minibatch and its hidden layer


class MLP(Supervised):
    """Sigmoid hidden layer, linear output, softmax cross-entropy; see the module docstring."""

    def __init__(self, cfg, net, seed):
        super().__init__(net, seed)
        self.batch_size, self.wd = cfg.batch_size, cfg.weight_decay
        self.agent_metrics_on = cfg.agent_metrics
        if cfg.name == "mnist_mlp":
            xtr, ytr, xte, yte = datasets.load_mnist(cfg.data_dir)
            if cfg.train_size is not None:
                xtr, ytr = xtr[:cfg.train_size], ytr[:cfg.train_size]
            norm = lambda x: ((x.reshape(len(x), -1).astype(np.float32) / 255.0) - MNIST_MEAN) / MNIST_STD
            xtr, xte = norm(xtr), norm(xte)
        else:
            x, y = datasets.load_digits()
            x = x / 16.0
            gen = np.random.Generator(np.random.Philox(key=Key(0, Stream.DATA, 0, 999).cipher_key()))
            perm = gen.permutation(len(y))                      # fixed split, independent of run.seed
            n_test = int(round(cfg.test_fraction * len(y)))
            te, tr = perm[:n_test], np.sort(perm[n_test:])
            mean, std = x[tr].mean(), x[tr].std()
            xtr, ytr, xte, yte = (x[tr] - mean) / std, y[tr], (x[te] - mean) / std, y[te]
        p, h, c = xtr.shape[1], cfg.hidden, 10
        self.num_classes = c
        self.shapes = [(h, p), (h,), (c, h), (c,)]
        self.bounds = [1 / math.sqrt(p), 1 / math.sqrt(p), 1 / math.sqrt(h), 1 / math.sqrt(h)]
        parts = partition(cfg.partition, ytr, net.n, seed, cfg.alpha)
        self.setup_data(xtr, ytr, xte, yte, parts)

    def _batch(self, X, A, Y, w, need_grad=True, need_pred=True):
        W1, b1, W2, b2 = self.views(X)
        H = torch.baddbmm(b1.unsqueeze(1), A, W1.transpose(1, 2)).sigmoid_()          # (n, b, h)
        Z = torch.baddbmm(b2.unsqueeze(1), H, W2.transpose(1, 2))                     # (n, b, c)
        lse = Z.logsumexp(2, keepdim=True)                  # (faster than log_softmax for c = 10)
        loss = ((lse - Z.gather(2, Y.unsqueeze(2))).squeeze(2) * w).sum(1)
        pred = Z.argmax(2) if need_pred else None
        if not need_grad:
            return loss, None, pred
        dZ = Z.sub_(lse).exp_()                                                       # softmax
        dZ.scatter_add_(2, Y.unsqueeze(2), torch.full_like(dZ[..., :1], -1.0))
        dZ.mul_(w.unsqueeze(2))                                                       # dloss/dZ
        G = torch.empty(X.shape[0], self.d, dtype=X.dtype, device=X.device)
        gW1, gb1, gW2, gb2 = self.views(G)                  # write each block in place: no concat
        torch.bmm(dZ.transpose(1, 2), H, out=gW2)
        torch.sum(dZ, 1, out=gb2)
        dH = torch.bmm(dZ, W2)
        # dloss/d(pre-act) = dH * (H (1 - H)); sigmoid_backward(1, H) = (1 - H) H in one pass, same bits
        dH.mul_(torch.ops.aten.sigmoid_backward(H.new_ones(()).expand_as(H), H))
        torch.bmm(dH.transpose(1, 2), A, out=gW1)
        torch.sum(dH, 1, out=gb1)
        return loss, G, pred

    def _predict(self, X, A):
        W1, b1, W2, b2 = self.views(X)
        H = torch.sigmoid(torch.baddbmm(b1.unsqueeze(1), A, W1.transpose(1, 2)))
        return torch.baddbmm(b2.unsqueeze(1), H, W2.transpose(1, 2)).argmax(2)


register("problem", "mnist_mlp", MnistMLPConfig, MLP)
register("problem", "digits_mlp", DigitsMLPConfig, MLP)
