"""``(W - I)`` of the local rows as a slot table, for applying sparse messages (``gossip_into``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lazy import torch


@dataclass(frozen=True)
class SlotTable:
    """Halo rows ``src`` and weights ``w``, both (n_local, 1 + max in-degree): slot 0 is the row
    itself with ``-sum_j W_ij`` (of the weights as stored, summed in float64), then its in-arcs in
    arc order; rows with fewer in-arcs are padded with weight 0. Row i of ``(W - I) H`` is then
    ``sum_s w[i, s] H[src[i, s]]``."""

    src: torch.Tensor
    w: torch.Tensor

    @classmethod
    def of_in_arcs(cls, in_src: np.ndarray, dst: np.ndarray, w_in: np.ndarray, n_local: int,
                   dtype, device) -> "SlotTable":
        """From the in-arcs of the local agents (host arrays): sender halo row, receiver local row,
        weight (as stored in ``dtype``, held as float64)."""
        order = np.argsort(dst, kind="stable")
        deg = np.bincount(dst, minlength=n_local)
        slot = 1 + np.arange(dst.size) - np.repeat(np.cumsum(deg) - deg, deg)
        src = np.repeat(np.arange(n_local)[:, None], 1 + int(deg.max(initial=0)), 1)
        src[dst[order], slot] = in_src[order]
        w = np.zeros(src.shape)
        w[dst[order], slot] = w_in[order]
        w[:, 0] = -np.bincount(dst, weights=w_in, minlength=n_local)
        return cls(torch.as_tensor(src, device=device), torch.as_tensor(w, dtype=dtype, device=device))
