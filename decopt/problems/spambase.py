"""Logistic regression with a ridge term on UCI Spambase (the data of DSGD-GD's strategic experiment).

    l(theta; (x, y)) = log(1 + exp(<x, theta>)) - y <x, theta>,   y in {0, 1} (1 = spam),
    f_i(theta) = mean over agent i's samples + (reg / 2) ||theta||^2.

Preprocessing: ``features`` = 57 (all columns) or 48 (the ``word_freq_*`` columns, DSGD-GD's
d = 48); columns standardised with the training split's mean and std (``standardize``); a
constant 1 appended when ``bias``. A keyed ``test_fraction`` of the 4,601 e-mails is held out
(independent of run.seed); the rest is split over agents by ``partition``.
The reader ``load_spambase`` lives in :mod:`decopt.problems.datasets`.
"""
from __future__ import annotations

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


@dataclass
class SpambaseLogisticConfig(ProblemConfig):
    """logistic regression + ridge on UCI Spambase (DSGD-GD's real-data experiment without the strategic
    shift)."""

    name: str = "spambase_logistic"
    data_dir: str | None = None  # folder with spambase.data; null = $DECOPT_DATA/spambase
    batch_size: int | None = 32         # minibatch per agent per iteration; null = full local data
    partition: str = "iid"              # iid | sorted (by label) | dirichlet
    alpha: float = 0.5                  # Dirichlet concentration (partition=dirichlet)
    features: int = 57                  # 57 = all columns, 48 = word_freq_* only
    standardize: bool = True            # z-score columns with the training split's mean and std
    bias: bool = True                   # append a constant 1 feature
    reg: float = 1e-3                   # ridge weight: (reg / 2) ||theta||^2
    test_fraction: float = 0.2          # keyed held-out share of the 4,601 e-mails (independent of run.seed)
    agent_metrics: bool = True          # worst-agent loss / grad / accuracy (n extra full passes per evaluation)

    def check(self) -> None:
        check_common(self.batch_size, self.partition, self.alpha, reg=self.reg)
        if self.features not in (48, 57):
            raise ConfigError(f"problem.features={self.features}: choose 48 (word frequencies) or 57 (all)")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"problem.test_fraction={self.test_fraction}: must be in (0, 1) (the accuracy "
                              f"needs a test set)")
        datasets.check_spambase(self.data_dir)


def spambase_split(data_dir=None, features: int = 57, standardize: bool = True, bias: bool = True,
                   test_fraction: float = 0.2):
    """Preprocessed ``(x_train, y_train, x_test, y_test)`` as described in the module docstring."""
    x, y = datasets.load_spambase(data_dir)
    x = x[:, :features]
    gen = np.random.Generator(np.random.Philox(key=Key(0, Stream.DATA, 0, 998).cipher_key()))
    perm = gen.permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    if standardize:
        mean, std = x[tr].mean(0), x[tr].std(0)
        x = (x - mean) / np.where(std > 0, std, 1.0)
    if bias:
        x = np.hstack([x, np.ones((len(x), 1))])
    return x[tr], y[tr], x[te], y[te]


class SpambaseLogistic(Supervised):
    def __init__(self, cfg: SpambaseLogisticConfig, net, seed):
        super().__init__(net, seed)
        self.batch_size, self.wd, self.agent_metrics_on = cfg.batch_size, cfg.reg, cfg.agent_metrics
        xtr, ytr, xte, yte = spambase_split(cfg.data_dir, cfg.features, cfg.standardize, cfg.bias,
                                            cfg.test_fraction)
        self.num_classes = 2
        self.shapes, self.bounds = [(xtr.shape[1],)], [0.0]            # x0 = 0
        self.setup_data(xtr, ytr, xte, yte, partition(cfg.partition, ytr, net.n, seed, cfg.alpha))

    def _batch(self, X, A, Y, w, need_grad=True, need_pred=True):
        z = torch.bmm(A, X.unsqueeze(2)).squeeze(2)                    # (n, b)
        y = Y.to(z.dtype)
        loss = ((torch.nn.functional.softplus(z) - y * z) * w).sum(1)
        pred = (z > 0).long()
        if not need_grad:
            return loss, None, pred
        dz = (torch.sigmoid(z) - y) * w
        return loss, torch.bmm(dz.unsqueeze(1), A).squeeze(1), pred

    def _predict(self, X, A):
        return (torch.bmm(A, X.unsqueeze(2)).squeeze(2) > 0).long()


register("problem", "spambase_logistic", SpambaseLogisticConfig, SpambaseLogistic)
