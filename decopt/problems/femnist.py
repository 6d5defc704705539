"""DoCoM Exp. 3: LeNet-5 on LEAF FEMNIST, one json shard per agent (specs/docom.md §5).

Data: LEAF's output folder in ``data_dir`` (null = $DECOPT_DATA/femnist) with ``train/*.json``
(agent i = the i-th shard in name order, all its writers pooled) and optional ``test/*.json``
(pooled into one test set for ``accuracy``). Each sample's 784 values are reshaped to 28x28
and zero-padded to 32x32, one channel, 62 classes. ``graph.n`` must equal the number of shards.

Model (66,126 parameters; row layout = ``segments`` in this order, PyTorch layer order):
conv1 6@5x5 (w, b) -> ReLU -> maxpool 2 -> conv2 16@5x5 -> ReLU -> maxpool 2 -> conv3 120@5x5
-> ReLU -> fc 84 -> ReLU -> fc 62; cross-entropy plus (weight_decay / 2) ||x||^2.
Per-agent gradients: ``torch.func.vmap(grad(...))`` over the agents' rows, one batched call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..lazy import torch
from ..registry import register
from . import datasets
from .base import ProblemConfig
from .supervised import Supervised, check_common


SHAPES = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 16, 5, 5), (120,), (84, 120), (84,), (62, 84), (62,)]
FAN_IN = [25, 25, 150, 150, 400, 400, 120, 120, 84, 84]
FEATURES, CLASSES = 784, 62                 # values per sample (28 x 28), classes


@dataclass
class FemnistLeNetConfig(ProblemConfig):
    """DoCoM Exp. 3: LeNet-5 (66,126 parameters) on LEAF FEMNIST json shards, one shard per agent."""

    name: str = "femnist_lenet"
    data_dir: str | None = None  # LEAF output folder with train/*.json [and test/*.json]; null = $DECOPT_DATA/femnist
    batch_size: int | None = 32         # minibatch per agent per iteration; null = full local data
    weight_decay: float = 1e-4          # L2 term (weight_decay / 2) ||x||^2 in every agent's loss
    agent_metrics: bool = False         # worst-agent loss / grad / accuracy (n extra full passes per evaluation)

    def check(self) -> None:
        check_common(self.batch_size, weight_decay=self.weight_decay)
        datasets.femnist_dirs(self.data_dir)


def _pad(x: np.ndarray) -> np.ndarray:
    return np.pad(x.reshape(-1, 1, 28, 28), ((0, 0), (0, 0), (2, 2), (2, 2)))


def lenet(params, a):
    """LeNet-5 logits for images ``a`` (b, 1, 32, 32) with parameters in ``SHAPES`` order."""
    c1w, c1b, c2w, c2b, c3w, c3b, f1w, f1b, f2w, f2b = params
    F = torch.nn.functional
    h = F.max_pool2d(F.relu(F.conv2d(a, c1w, c1b)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, c2w, c2b)), 2)
    h = F.relu(F.conv2d(h, c3w, c3b)).flatten(1)
    h = F.relu(F.linear(h, f1w, f1b))
    return F.linear(h, f2w, f2b)


def _unflatten(x):
    out, at = [], 0
    for s in SHAPES:
        k = math.prod(s)
        out.append(x[at:at + k].view(s))
        at += k
    return out


def _single(x, a, y, w):
    logits = lenet(_unflatten(x), a)
    return (torch.nn.functional.cross_entropy(logits, y, reduction="none") * w).sum(), logits.argmax(1)


class FemnistLeNet(Supervised):
    def __init__(self, cfg: FemnistLeNetConfig, net, seed):
        super().__init__(net, seed)
        self.batch_size, self.wd, self.agent_metrics_on = cfg.batch_size, cfg.weight_decay, cfg.agent_metrics
        train_files, test_files = datasets.femnist_dirs(cfg.data_dir)
        if len(train_files) != net.n:
            raise ConfigError(f"graph.n={net.n}: problem.data_dir holds {len(train_files)} FEMNIST training "
                              f"shards (one per agent); set graph.n={len(train_files)}")
        load = lambda f: datasets.load_leaf_json(f, features=FEATURES, classes=CLASSES)
        xs, ys, parts, at = [], [], [], 0
        for f in train_files:
            users = load(f)
            x = np.concatenate([u[1] for u in users]) if users else np.zeros((0, FEATURES), np.float32)
            y = np.concatenate([u[2] for u in users]) if users else np.zeros(0, np.int64)
            xs.append(_pad(x)); ys.append(y)
            parts.append(np.arange(at, at + len(y)))
            at += len(y)
        test = [u for f in test_files for u in load(f)]
        xte = _pad(np.concatenate([u[1] for u in test])) if test else np.zeros((0, 1, 32, 32), np.float32)
        yte = np.concatenate([u[2] for u in test]) if test else np.zeros(0, np.int64)
        self.num_classes = CLASSES
        self.shapes = SHAPES
        self.bounds = [1 / math.sqrt(f) for f in FAN_IN]
        self.setup_data(np.concatenate(xs), np.concatenate(ys), xte, yte, parts)

    def _batch(self, X, A, Y, w, need_grad=True, need_pred=True):
        if not need_grad:
            loss, pred = torch.func.vmap(_single)(X, A, Y, w)
            return loss, None, pred
        g, (loss, pred) = torch.func.vmap(torch.func.grad_and_value(_single, has_aux=True))(X, A, Y, w)
        return loss.detach(), g, pred

    def _predict(self, X, A):
        return torch.func.vmap(lambda x, a: lenet(_unflatten(x), a).argmax(1))(X, A)


register("problem", "femnist_lenet", FemnistLeNetConfig, FemnistLeNet)
