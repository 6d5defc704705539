"""The spectral gap 1 - max(|lambda_2|, |lambda_n|) of a mixing matrix W, which sets the consensus rate.

Where every edge carries the same weight c (a regular graph under any rule; a path or a star under
metropolis), W = I - c L, so W's eigenvalues are 1 - c mu over the Laplacian's eigenvalues mu, and
the gap is min(c mu, 2 - c mu) at mu_2 (the algebraic connectivity) and mu_max. For decopt's
generated topologies these are known (Brouwer & Haemers, *Spectra of Graphs*, §1.4): a circulant
graph (``ring``, ``exponential``) has mu_m = sum_s 2 sin^2(pi m s / n) over its offsets +-s; a path
4 sin^2(pi k / 2n); a Cartesian product (``grid``, ``torus``, ``hypercube``) the sums of its
factors'; ``complete`` {0, n}; ``star`` {0, 1, n}. Otherwise: the dense eigensolver up to
``DENSE_N`` agents, and beyond, ``LANCZOS_STEPS`` steps of Lanczos (an estimate, and an upper
bound on the gap, unless it converged).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lazy import scipy
from .graph import Graph
from .mixing import weight_matrix
from .topologies import circulant_offsets

DENSE_N = 1000          # up to this many agents, every eigenvalue of the dense W
LANCZOS_STEPS = 100     # beyond DENSE_N: products W q, fewer than 100 iterations of one-column gossip cost
TOLERANCE = 1e-6        # Ritz residual below which the Lanczos gap is reported as converged


@dataclass(frozen=True)
class SpectralGap:
    """The gap and how it was obtained: ``closed form``, ``eigensolver``, ``Lanczos`` (converged), or
    ``Lanczos estimate`` (not converged in LANCZOS_STEPS: an upper bound on the gap)."""

    value: float
    method: str


def _circulant(n: int, offsets) -> np.ndarray:
    """Laplacian eigenvalues of the circulant graph i ~ i +- s (mod n), s in ``offsets``."""
    steps = {s % n for s in offsets} | {-s % n for s in offsets}
    m, mu = np.arange(n), np.zeros(n)
    for s in steps - {0}:
        mu += 2 * np.sin(np.pi * (m * s % n) / n) ** 2
    return mu


def _path(n: int) -> np.ndarray:
    return 4 * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2


def laplacian_factors(graph: Graph) -> list[np.ndarray] | None:
    """Laplacian eigenvalues of the factors whose Cartesian product is ``graph`` (its own, for one
    factor; multiplicities aside), for the topologies decopt generates (``graph.name`` names one) that
    have a closed form; else None."""
    n, name = graph.n, graph.name
    if name in ("ring", "exponential"):
        return [_circulant(n, circulant_offsets(name, n))]
    if name in ("grid", "torus"):
        return [_path(k) if name == "grid" else _circulant(k, (1,)) for k in graph.meta["shape"]]
    return {"path": lambda: [_path(n)],
            "hypercube": lambda: [np.array([0.0, 2.0])] * (n.bit_length() - 1),
            "complete": lambda: [np.array([0.0, n])],
            "star": lambda: [np.array([0.0, 1.0, n] if n > 2 else [0.0, n])]}.get(name, lambda: None)()


def mixing_gap(graph: Graph, edge_weights: np.ndarray) -> SpectralGap:
    """The gap of the W (or E[W_t]) with off-diagonal ``edge_weights`` on ``graph``'s edges: a closed
    form where it applies (module docstring), a bounded numerical computation otherwise."""
    factors = laplacian_factors(graph)
    if factors is not None and edge_weights.min() == edge_weights.max():
        mu_2 = min(f[f > 0].min() for f in factors if f.max() > 0)
        cmu = edge_weights[0] * np.array([mu_2, sum(f.max() for f in factors)])
        return SpectralGap(float(np.minimum(cmu, 2 - cmu).min()), "closed form")
    return numerical_gap(weight_matrix(graph, edge_weights))


def numerical_gap(W: scipy.sparse.spmatrix) -> SpectralGap:
    """The gap of a symmetric doubly stochastic W from its eigenvalues: all of them up to DENSE_N
    agents, else the extreme two on the complement of the constant vector by LANCZOS_STEPS steps
    of Lanczos (Golub & Van Loan §10.1): its Ritz values lie inside [lambda_n, lambda_2], so the
    gap is an upper bound, reported converged when the Ritz residuals are below TOLERANCE."""
    n = W.shape[0]
    if n <= DENSE_N:
        lam = np.linalg.eigvalsh(W.toarray())
        return SpectralGap(float(1.0 - max(abs(lam[0]), abs(lam[-2]))), "eigensolver")
    q = np.random.default_rng(0).standard_normal(n)
    q_prev, alpha, beta = np.zeros(n), [], [0.0]
    for _ in range(min(LANCZOS_STEPS, n - 1)):        # steps, not agents
        q = q - q.mean()                              # stay orthogonal to the constant vector
        q /= np.sqrt((q * q).sum())                   # (sums, not BLAS dot: steady under load)
        v = W @ q
        alpha.append((q * v).sum())
        v -= alpha[-1] * q + beta[-1] * q_prev
        beta.append(np.sqrt((v * v).sum()))
        q_prev, q = q, v
    theta, vec = scipy.linalg.eigh_tridiagonal(alpha, beta[1:-1])
    residual = beta[-1] * np.abs(vec[-1, [0, -1]])    # |W y - theta y| of the two extreme Ritz pairs
    gap = float(1.0 - max(abs(theta[0]), abs(theta[-1])))
    done = residual.max() <= TOLERANCE
    return SpectralGap(gap, "Lanczos" if done else f"Lanczos estimate ({len(alpha)} steps, an upper bound)")


def spectral_gap(W: scipy.sparse.spmatrix) -> float:
    """1 - max(|lambda_2|, |lambda_n|) of a symmetric doubly stochastic W (:func:`numerical_gap`)."""
    return numerical_gap(W).value if W.shape[0] > 1 else 1.0
