"""Single-process backend: every agent is local; neighbour exchange is a sparse product."""
from __future__ import annotations

import warnings

import numpy as np

from ..lazy import scipy, torch
from .network import Network


class StackedNetwork(Network):
    """All n agents in one process. Static graphs use a prebuilt sparse W and L; random links
    scatter over the active arcs only."""

    backend = "stacked"

    def __init__(self, graph, links, **kw):
        super().__init__(graph, links, range(graph.n), **kw)
        src, dst = graph.arcs
        dev, dt = self.device, self.dtype
        self._src = torch.as_tensor(src, device=dev)
        self._dst = torch.as_tensor(dst, device=dev)
        self._arc_w = torch.as_tensor(np.repeat(self.edge_w, 2), device=dev, dtype=dt)
        self._in_src, self._in_dst, self._in_w = self._src, self._dst, self._arc_w     # every arc is local
        self._deg = torch.as_tensor(graph.degree, device=dev, dtype=dt)[:, None]
        self._W = self._operator(self.edge_w, self.self_w)
        self._W_diag = torch.as_tensor(self.self_w, device=dev, dtype=dt)[:, None]
        self._A = self._operator(np.ones(graph.m))
        # a broadcast round repeated on static links with constant sizes: [bits, times, arc_bits, sent]
        self._round = [None, 0, None, None]

    def _operator(self, w: np.ndarray, diag: np.ndarray | None = None) -> torch.Tensor:
        """Sparse CSR (dense when small) n x n matrix with weight w_e on both arcs of edge e (and
        ``diag`` on the diagonal), its entries in row then column order (built by SciPy in O(nnz))."""
        n = self.n
        src, dst = self.graph.arcs
        rows, cols, vals = dst, src, np.repeat(w, 2)
        if diag is not None:
            rows = np.concatenate([rows, np.arange(n)])
            cols = np.concatenate([cols, np.arange(n)])
            vals = np.concatenate([vals, diag])
        M = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
        M.sort_indices()
        index = [torch.as_tensor(a, dtype=torch.int64) for a in (M.indptr, M.indices)]
        with warnings.catch_warnings():             # torch's "CSR support is in beta" notice, once per run
            warnings.simplefilter("ignore", UserWarning)
            M = torch.sparse_csr_tensor(*index, torch.as_tensor(M.data, dtype=self.dtype), (n, n),
                                        device=self.device, check_invariants=False)   # SciPy's CSR is valid
        return M.to_dense() if n <= 64 else M

    def _host_in_arcs(self):
        src, dst = self.graph.arcs
        return src, dst, np.arange(src.size) >> 1

    def _active_arcs(self):
        """The active arcs' ids, found on the host (``nonzero`` on a device waits for its count)."""
        return torch.as_tensor(np.flatnonzero(np.repeat(self.active, 2)), device=self.device)

    # --- messages --------------------------------------------------------------------------
    def broadcast(self, V, compressor, sparse=False):
        compress = compressor.compress_sparse if sparse else compressor.compress
        Vhat, bits = compress(V, self.next_key(), self.rows)
        if self.active is None and bits is self._round[0]:
            self._round[1] += 1           # the previous static round again: count it, account on read
            return Vhat
        self._settle()
        if self.active is None:
            arc_on = np.ones(2 * self.graph.m, dtype=bool)
        else:
            arc_on = np.repeat(self.active, 2)
        src, _ = self.graph.arcs
        arc_bits = np.where(arc_on, bits[src], 0)
        sent = np.bincount(src[arc_on], minlength=self.n) > 0
        if self.active is None and not bits.flags.writeable:      # sizes a compressor guarantees constant
            self._round = [bits, 1, arc_bits, sent]
        else:
            self.traffic.record(arc_bits, bits, sent)
        return Vhat

    def _settle(self):
        bits, times, arc_bits, sent = self._round
        if times:
            self.traffic.record(arc_bits, bits, sent, times)
            self._round[1] = 0

    def exchange(self, M, compressor, shared=False, compact=False, mask_entries=0):
        arcs = self.active_out() if compact else np.arange(2 * self.graph.m)
        keyrows = arcs >> 1 if shared else arcs
        Msent, Mhat, bits = compressor.compress_split(M, self.next_key(), keyrows)
        if compact:
            arc_bits = np.zeros(2 * self.graph.m, dtype=np.int64)
            arc_bits[arcs] = bits
        elif self.active is not None:
            arc_on = np.repeat(self.active, 2)
            arc_bits = np.where(arc_on, bits, 0)
            on = torch.as_tensor(arc_on, device=self.device, dtype=M.dtype)[:, None]
            Msent, Mhat = (Mhat * on,) * 2 if Msent is Mhat else (Msent * on, Mhat * on)
        else:
            arc_bits = bits
        arc_bits = self.traffic.with_mask_indices(arc_bits, mask_entries, shared)
        self.traffic.record(arc_bits, arc_bits, arc_bits > 0)
        M.copy_(Msent)
        # both arcs of an active edge are rows 2e, 2e + 1 (compact: adjacent rows): swap each pair
        return Mhat.view(-1, 2, Mhat.shape[1]).flip(1).reshape(Mhat.shape)

    # --- linear operators on halos ---------------------------------------------------------
    @staticmethod
    def _matmul(M, H):
        return M @ H

    def mix(self, H, own=None):
        if self.active is None:
            out = self._matmul(self._W, H)
            return out if own is None else out.add_(self._W_diag * (own - H))
        own = H if own is None else own
        a = self._active_arcs()
        src, dst = self._src[a], self._dst[a]
        return own.clone().index_add_(0, dst, self._arc_w[a, None] * (H[src] - own[dst]))

    def laplacian(self, H):
        if self.active is None:
            return self._deg * H - self._matmul(self._A, H)
        a = self._active_arcs()
        out = torch.zeros_like(H)
        out.index_add_(0, self._dst[a], H[self._dst[a]] - H[self._src[a]])
        return out

    # --- reductions ------------------------------------------------------------------------
    def allreduce(self, x):
        return x

    def gather(self, X, rows):
        if rows not in ("agent", "arc"):
            raise ValueError(f"rows={rows!r}: 'agent' or 'arc'")
        return X
