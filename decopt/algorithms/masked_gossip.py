"""Masked gossip: FSPDA's message round (specs/fspda.md §2.1-2.2, P2, P4, P12).

On every active edge (i, j), each endpoint sends its vector on a random-k mask S_ij^t (k_l of
d_l per parameter tensor, no rescaling) keyed on (seed, t, edge), so both endpoints draw the same
mask and a message is the k kept values, no index (``shared=False``: one mask per arc, pitfall
P2). A round costs O(active edges x k) and gives back the sparse masked Laplacian::

    [L_t(V)]_i = sum_{(i,j) in E^t} S_ij^t ⊙ (v_i - v_j)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lazy import torch
from ..rng import Key, Stream, sample


MASK_CALL = 0x6D61736B          # "mask": call id of the shared-mask draw (seed, COMPRESS, t, MASK_CALL)


def keep_counts(segments, ratio: float, rule: str = "exact") -> list[int]:
    """k_l per parameter tensor: ``exact`` max(1, floor(d_l ratio)) (float error forgiven), or the
    official code's ``max(1, int(d_l * (1 - r)))`` in floats, r = 1 - ratio (P4)."""
    if ratio >= 1:
        return list(segments)
    if rule == "code":                                  # r = 1 - ratio, then 1 - r, as the code does
        return [max(1, int(d * (1.0 - (1.0 - ratio)))) for d in segments]
    return [max(1, int(d * ratio + 1e-9)) for d in segments]


class CoordinateMasks:
    """Random-k masks S^t keyed on (seed, t, id), id an edge (shared) or an arc, as sorted index rows."""

    def __init__(self, seed: int, segments, ratio: float, rule: str = "exact"):
        self.seed, self.segments = seed, list(segments)
        self.kept = keep_counts(self.segments, ratio, rule)
        self.d, self.k = sum(self.segments), sum(self.kept)

    def indices(self, t: int, ids, device="cpu") -> torch.Tensor:
        """Kept coordinates (len(ids), k) of iteration t for global ids, ascending per row, drawn on
        ``device``."""
        ids, inverse = np.unique(np.asarray(ids, dtype=np.int64).ravel(), return_inverse=True)
        parts, off = [], 0
        for s, (d_l, k_l) in enumerate(zip(self.segments, self.kept)):
            key = Key(self.seed, Stream.COMPRESS, t, MASK_CALL + s)
            parts.append(off + (torch.arange(d_l, device=device).expand(ids.size, d_l) if k_l == d_l
                                else sample(key, ids, d_l, k_l, device=device)))
            off += d_l
        return torch.cat(parts, dim=1)[torch.as_tensor(inverse, device=device)]

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


@dataclass
class Round:
    """One masked exchange on the active out-arcs: the flat positions sent and received (the same
    with shared masks) and, per vector, the values sent and received, each (active out-arcs, k)."""

    flat_out: torch.Tensor
    flat_in: torch.Tensor
    sent: list
    got: list
    shared: bool

    def laplacian(self, V: torch.Tensor, b: int = 0) -> SparseRows:
        """L_t(V) of the b-th vector sent. Shared masks: sent minus received (so the two endpoints'
        terms cancel exactly); unshared: ``received``."""
        if self.shared:
            return SparseRows(self.flat_out, self.sent[b] - self.got[b])
        return self.received(V, b)

    def received(self, V: torch.Tensor, b: int = 0) -> SparseRows:
        """sum over active arcs of (own V - the neighbour's values) on the coordinates received."""
        return SparseRows(self.flat_in, V.view(-1)[self.flat_in] - self.got[b])


class MaskedGossip:
    """Rounds of ``mask_ratio``-masked values: k values of the ``compressor``'s precision per vector
    per active arc (``run.bits_convention=paper`` adds the indices, P12)."""

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
