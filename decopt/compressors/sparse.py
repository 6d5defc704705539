"""Decoded messages as (index, value) rows: how sparsifying codecs (top-k, rand-k) hand their
messages to the network, so that applying them costs O(k) per row instead of a pass over d."""
from __future__ import annotations

from ..lazy import torch


class SparseRows:
    """n rows of width d: row i holds ``vals[i]`` at the distinct columns ``idx[i]`` and 0
    elsewhere (``idx`` int64 and ``vals`` both (n, K)). Indexing rows, ``new_empty`` and row
    assignment work as on a tensor, so a halo is assembled the same way for both kinds."""

    __slots__ = ("idx", "vals", "d")

    def __init__(self, idx: torch.Tensor, vals: torch.Tensor, d: int):
        self.idx, self.vals, self.d = idx, vals, d

    def __len__(self) -> int:
        return self.idx.shape[0]

    def __getitem__(self, rows: slice) -> SparseRows:
        return SparseRows(self.idx[rows], self.vals[rows], self.d)

    def __setitem__(self, rows, other) -> None:
        """Rows from another ``SparseRows`` with the same K, or 0 (empty rows)."""
        if isinstance(other, SparseRows):
            self.idx[rows], self.vals[rows] = other.idx, other.vals
        else:
            if other != 0:
                raise ValueError(f"SparseRows: rows can be set to SparseRows or 0, not {other!r}")
            self.idx[rows], self.vals[rows] = 0, 0

    def new_empty(self, size) -> SparseRows:
        n, d = size
        return SparseRows(self.idx.new_empty(n, self.idx.shape[1]), self.vals.new_empty(n, self.vals.shape[1]), d)

    def dense(self) -> torch.Tensor:
        out = torch.zeros(len(self), self.d, dtype=self.vals.dtype, device=self.vals.device)
        return out.scatter_(1, self.idx, self.vals)

    def add_to(self, X: torch.Tensor) -> torch.Tensor:
        """``X += self`` in place (X has as many rows): each entry of X as ``X + dense()`` rounds it."""
        return X.scatter_add_(1, self.idx, self.vals)

    def add_gathered(self, X: torch.Tensor, src: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``X[i] += sum_s w[i, s] * self[src[i, s]]`` in place (``src``, ``w``: (len(X), S)): one
        scatter of each row's S K terms, added in slot order."""
        n, rows = len(X), src.reshape(-1)
        terms = self.vals.index_select(0, rows).mul_(w.reshape(-1, 1))
        return X.scatter_add_(1, self.idx.index_select(0, rows).view(n, -1), terms.view(n, -1))


def add_(X: torch.Tensor, Q) -> torch.Tensor:
    """``X += Q`` in place, for a dense tensor or ``SparseRows`` Q with as many rows as X."""
    return Q.add_to(X) if isinstance(Q, SparseRows) else X.add_(Q)
