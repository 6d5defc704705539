"""``topk``: keep the k largest-magnitude entries (contractive, delta = k/d; biased).

Specs: ticopd.md §4 (``compress_top_k``: per parameter tensor, at least one entry per
tensor), docom.md §4 (whole vector in the notebooks, per tensor in the PyTorch code).
``k`` is a count (whole vector) or ``ratio`` = fraction kept, ``floor(ratio * d_s)`` and at
least 1 per tensor with ``per_tensor=true``. NaN counts as the largest magnitude; of entries
tied at the k-th largest magnitude, those of lowest index are kept (CPU, fp32/fp64).

Wire: the kept values (``value_bits`` each, fp32 default), then their indices, bit-packed to
ceil(log2 d_s) bits each in one stream padded once to a byte (``index_bits=packed``) or each
in the smallest unsigned type holding d_s - 1 (``index_bits=uint``). A tensor kept whole
(k_s = d_s) is sent dense, without indices. Bits = 8 x payload bytes, no header:
``K * value_bits + 8 * ceil(sum_s k_s * ceil(log2 d_s) / 8)`` (packed) or
``K * value_bits + sum_s k_s * 8 * sizeof(uint_s)`` (uint). A kept value beyond the wire float's
range saturates at its largest finite value (+-65504 for ``value_bits=16``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import PayloadError
from ..host import numpy_view
from ..lazy import torch
from ..registry import register
from . import wire
from .base import Compressor, check_index_bits, check_kept, check_value_bits, kept_counts, segments_of
from .sparse import SparseRows


@dataclass
class TopKConfig:
    """top-k: keep the k largest-magnitude entries (ratio = fraction kept, or k = count); bits/row =
    K*value_bits + 8*ceil(K*ceil(log2 d)/8) (index_bits=packed) | K*(value_bits + 8*sizeof(uint)) (uint).

    ``ratio``: fraction kept in (0, 1]; ``k``: a count instead (whole vector only; wins over
    ratio when set); ``per_tensor``: per parameter tensor, >= 1 entry each; ``index_bits``:
    packed | uint; ``value_bits``: 16 | 32 | 64."""

    name: str = "topk"
    ratio: float | None = 0.1       # fraction of entries kept, in (0, 1]; floor(ratio * d_s), >= 1 per tensor
    k: int | None = None            # entries kept as a count (whole vector only); wins over ratio when set
    per_tensor: bool = False        # keep entries per parameter tensor (>= 1 each) instead of the whole vector
    index_bits: str = "packed"      # packed: ceil(log2 d_s) bits per index | uint: smallest unsigned type
    value_bits: int = 32            # bits per kept value on the wire: 16 | 32 | 64

    def check(self) -> None:
        check_kept(self.ratio, self.k, self.per_tensor)
        check_index_bits(self.index_bits)
        check_value_bits(self.value_bits)


class _Sparsifier(Compressor):
    """Shared codec of top-k and rand-k: per segment, k_s values and (unless derived from the
    shared key) their indices."""

    send_indices = True
    float_fields = {"vals": "value"}

    def __init__(self, cfg, segments=None):
        self.ratio, self.k = cfg.ratio, cfg.k
        self.per_tensor, self.index_mode = cfg.per_tensor, cfg.index_bits
        self.value_bits = cfg.value_bits
        self.segments = list(segments) if segments else None

    # --- layout ---------------------------------------------------------------------------
    def layout(self, d: int) -> list[tuple[int, int, int]]:
        """(start, size, kept) per segment."""
        segs = segments_of(self.segments, d) if self.per_tensor else [(0, d)]
        return [(a, ds, k) for (a, ds), k in zip(segs, kept_counts(segs, self.ratio, self.k))]

    def delta(self, d: int) -> float:
        return min(k / ds for _, ds, k in self.layout(d))

    def _index_groups(self, lay):
        return [(k, ds) for _, ds, k in lay if k < ds] if self.send_indices else []

    def bits_for(self, d: int) -> int:
        lay = self.layout(d)
        return sum(k for _, _, k in lay) * self.value_bits + wire.index_field_bits(self._index_groups(lay),
                                                                                  self.index_mode)

    # --- selection (subclasses) --------------------------------------------------------------
    def select(self, V, key, rows, lay) -> list[torch.Tensor | None]:
        """Local indices (n, k_s) per segment; None for a segment sent whole."""
        raise NotImplementedError

    def scale(self, ds: int, k: int) -> float:
        return 1.0

    # --- codec -------------------------------------------------------------------------------
    def plan(self, V, key, rows):
        lay = self.layout(V.shape[1])
        idx = self.select(V, key, rows, lay)
        vals = []
        for (a, ds, k), ix in zip(lay, idx):
            seg = V[:, a:a + ds]
            vals.append(wire.to_wire((seg if ix is None else torch.gather(seg, 1, ix)).detach(), self.value_bits))
        return {"n": V.shape[0], "lay": lay, "idx": idx, "vals": vals}

    def bits(self, plan):
        return self.fixed_bits(plan["n"], self.bits_for(sum(ds for _, ds, _ in plan["lay"])))

    def _indices(self, plan, device) -> torch.Tensor:
        """Column indices of the kept entries per row, the segments side by side."""
        idx = []
        for (a, ds, k), ix in zip(plan["lay"], plan["idx"]):
            if ix is None:
                idx.append(torch.arange(a, a + ds, device=device).expand(plan["n"], ds))
            else:
                idx.append(ix.to(device) + a if a else ix.to(device))
        return idx[0] if len(idx) == 1 else torch.cat(idx, 1)

    def sparse(self, plan, d, dtype, device) -> SparseRows:
        """The decoded rows as (index, value) pairs; a rescaled value beyond ``dtype``'s range
        saturates at its largest finite value."""
        vals, top = [], torch.finfo(dtype).max
        for (a, ds, k), v in zip(plan["lay"], plan["vals"]):
            v = v.to(device=device, dtype=dtype)
            s = self.scale(ds, k)
            vals.append((v * s).clamp_(-top, top) if s != 1.0 else v)
        return SparseRows(self._indices(plan, device), vals[0] if len(vals) == 1 else torch.cat(vals, 1), d)

    def values(self, plan, d, dtype, device):
        return self.sparse(plan, d, dtype, device).dense()

    def decoded(self, plan, d, dtype, device, sparse=False):
        return self.sparse(plan, d, dtype, device) if sparse else self.values(plan, d, dtype, device)

    def support(self, plan, d, device):
        out = torch.zeros(plan["n"], d, dtype=torch.bool, device=device)
        return out.scatter_(1, self._indices(plan, device), True)

    def compress_sparse(self, V, key, rows):
        p = self.plan(V, key, rows)
        return self.decoded(p, V.shape[1], V.dtype, V.device, sparse=True), self.bits(p)

    def decode_sparse(self, payload, d, dtype=None, key=None, row=None, check_finite=True):
        return self.sparse(self.received(payload, d, key, row, check_finite), d, dtype or torch.float64, "cpu")

    def pack(self, plan, i):
        np_dt = wire.float_np(self.value_bits)
        vals = b"".join(v[i].cpu().numpy().astype(np_dt).tobytes() for v in plan["vals"])
        if not self.send_indices:
            return vals
        groups = [(ix[i].cpu().numpy(), ds) for (a, ds, k), ix in zip(plan["lay"], plan["idx"]) if ix is not None]
        return vals + wire.pack_indices(groups, self.index_mode)

    def unpack(self, payload, d, key, row):
        lay = self.layout(d)
        r = wire.Reader(payload, self.name)
        if len(payload) * 8 != self.bits_for(d):
            raise PayloadError(f"{self.name}: payload of {len(payload)} bytes, expected {self.bits_for(d) // 8}")
        flat = torch.from_numpy(r.floats(sum(k for _, _, k in lay), self.value_bits))
        vals, at = [], 0
        for _, _, k in lay:
            vals.append(flat[at:at + k][None])
            at += k
        if self.send_indices:
            groups = self._index_groups(lay)
            got = iter(wire.unpack_indices(r.take(len(payload) - r.at), groups, self.index_mode))
            idx = [None if k == ds else torch.from_numpy(next(got))[None] for _, ds, k in lay]
        else:
            idx = self.select(torch.zeros(1, d), key, [row], lay)
        r.done()
        return {"n": 1, "lay": lay, "idx": idx, "vals": vals}


BLOCK_BYTES = 1 << 19   # top-k selects over blocks of rows of about this size (cache-sized)
NAN_KEY = np.uint64(0x7F800001 << 33)   # fp32 keys from here up hold a NaN (magnitude bits above inf)
LOW = np.uint64(0xFFFFFFFF)


def _canonical(a: np.ndarray, thr, k: int) -> np.ndarray:
    """The k largest entries of ``a`` whose k-th largest value is ``thr``: NaN first, then those
    above thr, then the lowest-index entries equal to thr."""
    nan = np.isnan(a)
    if thr != thr:
        return np.flatnonzero(nan)[:k]
    above = np.flatnonzero((a > thr) | nan)
    return np.concatenate([above, np.flatnonzero(a == thr)[:k - above.size]])


@functools.lru_cache(maxsize=16)
def _complements(ds: int) -> np.ndarray:
    """2^32 - 1 - j for j < ds: the low half of the fp32 keys (read-only, shared)."""
    out = LOW - np.arange(ds, dtype=np.uint64)
    out.flags.writeable = False
    return out


def _top_fp32(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest |v| per row of an fp32 block (the canonical set). Each entry becomes a
    64-bit key: the 31 bits of |v| (a monotone integer, NaN above inf), then 2^32 - 1 - index, so the
    k largest keys are the k largest magnitudes with ties resolved to the lowest indices; one in-place
    introselect of the keys (``np.partition``: direct integer compares) finds them. A row whose k-th
    largest key is a NaN (k or more NaN, whose payloads would order them) takes its lowest-index NaN."""
    ds = v.shape[1]
    keys = v.view(np.uint32).astype(np.uint64)
    keys <<= np.uint64(33)                       # drops the sign bit
    keys |= _complements(ds)
    keys.partition(ds - k, axis=1)
    top = keys[:, ds - k:]
    ix = (LOW - (top & LOW)).astype(np.int64)
    nan = top[:, 0] >= NAN_KEY
    if nan.any():
        for i in np.flatnonzero(nan):
            ix[i] = np.flatnonzero(np.isnan(v[i]))[:k]
    return ix


def _top_argpartition(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest |v| per row of a block (canonical set): NumPy's introselect
    (``argpartition``) of |v|; a row with several entries at its k-th magnitude (or a NaN there)
    is resolved by ``_canonical``."""
    A = np.abs(v)
    ds = A.shape[1]
    ix = np.argpartition(A, ds - k, axis=1)[:, ds - k:]
    thr = np.take_along_axis(A, ix[:, :1], 1)
    at = A == thr                                # >= 1 per row, 1 unless a tie; a NaN thr: none
    if np.count_nonzero(at) != len(A) or np.isnan(thr).any():
        for i in np.flatnonzero(at.sum(1) != 1):
            ix[i] = _canonical(A[i], thr[i, 0], k)
    return ix


class TopK(_Sparsifier):
    name = "topk"
    unbiased = False

    def select(self, V, key, rows, lay):
        """The k_s largest |v| per row and segment, in no particular order, NaN counting as the
        largest; on the CPU in fp32 / fp64, of several entries tied at the k-th largest magnitude
        those of lowest index (other devices and dtypes: ``torch.topk``, whose choice among such
        ties is unspecified). On the CPU, over blocks of rows of about ``BLOCK_BYTES`` (cache-sized):
        fp32 by an introselect of 64-bit (magnitude, index) keys (``_top_fp32``: 1.3-1.7x faster
        than ``argpartition``, 3-6x faster than ``torch.topk``; ``benchmarks/bench_topk.py``), fp64
        by NumPy's ``argpartition`` (``_top_argpartition``)."""
        if all(k >= ds for _, ds, k in lay):
            return [None] * len(lay)
        V = V.detach()
        host = numpy_view(V) if V.device.type == "cpu" and V.dtype in (torch.float32, torch.float64) else None
        out = []
        for a, ds, k in lay:
            if k >= ds:
                out.append(None)
            elif host is not None:
                top = _top_fp32 if host.dtype == np.float32 and ds <= 1 << 32 else _top_argpartition
                ix = np.empty((V.shape[0], k), dtype=np.int64)
                step = max(1, BLOCK_BYTES // (ds * host.itemsize))
                for r in range(0, V.shape[0], step):
                    ix[r:r + step] = top(host[r:r + step, a:a + ds], k)
                out.append(torch.from_numpy(ix))
            else:
                out.append(torch.topk(V[:, a:a + ds].abs(), k, dim=1, sorted=False).indices)
        return out


register("compressor", "topk", TopKConfig, TopK)
