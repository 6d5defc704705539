"""Splitting a labelled training set across n agents, deterministically in the seed.

Every function returns a list of n integer index arrays (agent i's rows of the training set).

* ``iid``: a keyed random permutation cut into n nearly equal parts (the papers' "shuffled" /
  "random" split).
* ``sorted_by_label``: a stable sort by label cut into n equal contiguous chunks, the papers'
  heterogeneous split (10 agents on MNIST: each sees essentially one digit). Config name
  ``sorted``.
* ``dirichlet``: for every class, proportions over agents drawn from Dirichlet(alpha)
  (Hsu et al. 2019): small alpha gives skewed label histograms, large alpha nearly iid ones.
  Draws are repeated (with the next key) until every agent holds at least ``min_size`` samples.

``partition(kind, labels, n, seed, alpha)`` dispatches on the config name.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..rng import Key, Stream

KINDS = ("iid", "sorted", "dirichlet")
_CALL = 1000  # keys of Stream.DATA reserved for partitions: call = _CALL + attempt


def _generator(seed: int, call: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=Key(seed, Stream.DATA, 0, _CALL + call).cipher_key()))


def iid(labels: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    perm = _generator(seed, 0).permutation(len(labels))
    return [np.sort(p) for p in np.array_split(perm, n)]


def sorted_by_label(labels: np.ndarray, n: int) -> list[np.ndarray]:
    order = np.argsort(np.asarray(labels), kind="stable")
    return list(np.array_split(order, n))


def dirichlet(labels: np.ndarray, n: int, alpha: float, seed: int, min_size: int = 1,
              attempts: int = 100) -> list[np.ndarray]:
    labels = np.asarray(labels)
    classes = np.unique(labels)
    for attempt in range(attempts):
        rng = _generator(seed, 1 + attempt)
        parts: list[list[np.ndarray]] = [[] for _ in range(n)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(n, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * idx.size).astype(np.int64)
            for i, chunk in enumerate(np.split(idx, cuts)):
                parts[i].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(o.size for o in out) >= min_size:
            return out
    raise ConfigError(f"problem.alpha={alpha}: Dirichlet split left an agent with fewer than {min_size} "
                      f"samples after {attempts} draws; raise problem.alpha or lower graph.n")


def partition(kind: str, labels: np.ndarray, n: int, seed: int, alpha: float = 0.5) -> list[np.ndarray]:
    if len(labels) < n:
        raise ConfigError(f"graph.n={n}: more agents than training samples ({len(labels)})")
    if kind == "iid":
        return iid(labels, n, seed)
    if kind == "sorted":
        return sorted_by_label(labels, n)
    if kind == "dirichlet":
        return dirichlet(labels, n, alpha, seed)
    raise ConfigError(f"problem.partition={kind}: choose one of {', '.join(KINDS)}")


def label_histograms(parts: list[np.ndarray], labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(n, num_classes) counts of each label per agent, for checks and plots."""
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])
