"""Masked gossip: FSPDA's message round (specs/fspda.md §2.1-2.2, P2, P4, P12).

On every active edge (i, j) of iteration t, each endpoint sends the k coordinates of a random-k
mask S_ij^t of its vector, per parameter tensor (k_l of d_l, no rescaling). The mask is keyed on
(seed, t, edge) (``rng.sample``), so **both endpoints draw the same one** and a message is just the
k kept values, no index (``shared=False``, the ablation of pitfall P2: keyed on the arc, each
sender its own). A round gathers those values from the local rows, exchanges them on the active
out-arcs (``net.exchange(..., compact=True)``) and gives the masked Laplacian back as a sparse
matrix: beyond the gradient, a step costs O(active edges x k)::

    [L_t(V)]_i = sum_{(i,j) in E^t} S_ij^t ⊙ (v_i - v_j)
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from ..rng import Key, Stream, sample

torch = lazy.load("torch")

MASK_CALL = 0x6D61736B          # "mask": call id of the shared-mask draw (seed, COMPRESS, t, MASK_CALL)


def keep_counts(segments, ratio: float, rule: str = "exact") -> list[int]:
    """Coordinates kept per parameter tensor (d_l when ratio = 1). ``exact``: k_l =
    max(1, floor(d_l * ratio)), float error of the product forgiven; ``code``: the official code's
    ``max(1, int(d_l * (1 - r)))`` in floating point with r = 1 - ratio (its --compress_ratio)."""
    if ratio >= 1:
        return list(segments)
    if rule == "code":
        r = 1.0 - ratio
        return [max(1, int(d * (1.0 - r))) for d in segments]
    return [max(1, int(d * ratio + 1e-9)) for d in segments]


class CoordinateMasks:
    """Random-k coordinate masks S^t, per parameter tensor (k_l of d_l), keyed on (seed, t, id),
    id = the undirected edge (shared by both endpoints) or the arc: a receiver derives the sender's
    mask, so a message is just the k kept values (``k * precision`` bits, no indices). Held as
    sorted index rows ``(len(ids), k)`` (``indices``)."""

    def __init__(self, seed: int, segments, ratio: float, rule: str = "exact"):
        self.seed, self.segments = seed, list(segments)
        self.d = sum(self.segments)
        self.kept = keep_counts(self.segments, ratio, rule)
        self.k = sum(self.kept)

    def _draw(self, t: int, ids: np.ndarray) -> np.ndarray:
        parts, off = [], 0
        for s, (d_l, k_l) in enumerate(zip(self.segments, self.kept)):
            key = Key(self.seed, Stream.COMPRESS, t, MASK_CALL + s)
            parts.append(off + (np.broadcast_to(np.arange(d_l), (ids.size, d_l)) if k_l == d_l
                                else sample(key, ids, d_l, k_l)))
            off += d_l
        return np.concatenate(parts, axis=1)

    def indices(self, t: int, ids, device=None) -> torch.Tensor:
        """Kept coordinates (len(ids), k) of iteration t for global ids, ascending per row."""
        ids, inverse = np.unique(np.asarray(ids, dtype=np.int64).ravel(), return_inverse=True)
        return torch.as_tensor(self._draw(t, ids)[inverse], device=device)

    def masks(self, t: int, ids) -> torch.Tensor:
        """The same masks as booleans (len(ids), d)."""
        idx = self.indices(t, ids)
        return torch.zeros(idx.shape[0], self.d, dtype=torch.bool).scatter_(1, idx, True)


@dataclass
class SparseRows:
    """A sparse (n_local, d) matrix: flat positions ``i * d + c`` and their values (same shape)."""

    flat: torch.Tensor
    values: torch.Tensor

    def add_to(self, V: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """V += alpha * self, in place."""
        V.view(-1).index_add_(0, self.flat.reshape(-1), self.values.reshape(-1), alpha=alpha)
        return V

    def dense(self, like: torch.Tensor) -> torch.Tensor:
        return self.add_to(torch.zeros_like(like))


@dataclass
class Round:
    """One masked exchange on the active out-arcs: the flat positions of what each arc sent
    (``flat_out``) and of what it received (``flat_in``; the same with shared masks), and per
    vector sent, the values sent and received, each (active out-arcs, k)."""

    flat_out: torch.Tensor
    flat_in: torch.Tensor
    sent: list
    got: list
    shared: bool

    def laplacian(self, V: torch.Tensor, b: int = 0) -> SparseRows:
        """L_t(V) of the b-th vector sent (V). Shared masks: sent minus received values (the same
        pair at both ends, so the two endpoint terms cancel exactly); unshared: ``received``."""
        if self.shared:
            return SparseRows(self.flat_out, self.sent[b] - self.got[b])
        return self.received(V, b)

    def received(self, V: torch.Tensor, b: int = 0) -> SparseRows:
        """sum over active arcs of (own V - the neighbour's values) on the coordinates received."""
        return SparseRows(self.flat_in, V.view(-1)[self.flat_in] - self.got[b])


class MaskedGossip:
    """The round of ``mask_ratio``-masked values on the active edges (``shared``: one mask per
    edge; else one per arc). ``bits``: k values of the ``compressor``'s precision per vector sent
    per active arc (``net.exchange(..., mask_entries=k)`` adds the indices under
    ``run.bits_convention=paper``)."""

    def __init__(self, net, compressor, segments, ratio: float, rule: str, shared: bool):
        self.net, self.compressor, self.shared = net, compressor, shared
        self.masks = CoordinateMasks(net.seed, segments, ratio, rule)
        self._src = torch.as_tensor(net.out_src, device=net.device)

    def round(self, t: int, Vs) -> Round:
        """Each active out-arc i -> j carries v_i on its mask for each V in ``Vs`` (one message)."""
        net, k, d = self.net, self.masks.k, Vs[0].shape[1]
        pos = net.active_out()
        arcs = net.out_arcs[pos]
        src = self._src[torch.as_tensor(pos, device=net.device)][:, None] * d
        if self.shared:
            flat_out = flat_in = src + self.masks.indices(t, arcs >> 1, net.device)
        else:                                             # own mask per arc; the reverse arc's on receipt
            idx = self.masks.indices(t, np.concatenate([arcs, arcs ^ 1]), net.device)
            flat_out, flat_in = src + idx[:len(arcs)], src + idx[len(arcs):]
        take = lambda V: V.view(-1).index_select(0, flat_out.view(-1)).view(flat_out.shape)
        M = take(Vs[0]) if len(Vs) == 1 else torch.cat([take(V) for V in Vs], 1)
        got = net.exchange(M, self.compressor, shared=self.shared, compact=True, mask_entries=k)   # M <- as sent
        blocks = [slice(b * k, (b + 1) * k) for b in range(len(Vs))]
        return Round(flat_out, flat_in, [M[:, s] for s in blocks], [got[:, s] for s in blocks], self.shared)
