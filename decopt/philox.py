"""Philox4x64-10 in torch: NumPy's ``np.random.Philox`` stream, word for word, on any device, and
``decopt.rng``'s draws from it (the same layouts, the same numbers).

Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011), Fig. 2 and Table 2: ten
rounds of ``(c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0))``,
the key bumped by the Weyl constants between rounds. Block q of the stream keyed ``k`` is the cipher
of the 256-bit counter ``q + 1`` (NumPy increments before it encrypts) and holds words 4q .. 4q+3.

Torch has no unsigned 64-bit arithmetic, so the words are int64 bit patterns: additions and the low
half of a product wrap the same way; the high half of the 64x64 -> 128-bit product is built from
32-bit halves, and every right shift is masked, since torch's is arithmetic. The two products of a
round are one op on a (2, N) tensor: a round is ~24 elementwise ops, a draw ~250 (kernel launches
on a GPU, unless fused).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)       # multipliers of c0 and c2
_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)       # Weyl key bumps
_ROUNDS = 10
_LO32 = 0xFFFFFFFF


def _signed(x: int) -> int:
    """The int64 with the bits of the uint64 ``x``."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >> 63 else x


def _shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns."""
    return (x >> s) & ((1 << (64 - s)) - 1)


@functools.cache
def _multipliers(device: torch.device) -> tuple[torch.Tensor, ...]:
    """(M0, M1) as a column, whole and as 32-bit halves, on ``device`` (made once per device)."""
    m = torch.tensor([[_signed(x)] for x in _M], device=device)
    return m, m & _LO32, _shr(m, 32)


def _mulhilo(a: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 64-bit words of the 128-bit products of the rows of ``a`` (2, N) with (M0, M1):
    the high word from 32-bit halves (Hacker's Delight, Fig. 8-2), each partial sum below 2^64."""
    m, m_lo, m_hi = _multipliers(device)
    a_lo, a_hi = a & _LO32, _shr(a, 32)
    t = a_hi * m_lo + _shr(a_lo * m_lo, 32)
    u = a_lo * m_hi + (t & _LO32)
    return a_hi * m_hi + _shr(t, 32) + _shr(u, 32), a * m


def blocks(key: int, counters: torch.Tensor) -> torch.Tensor:
    """The four words of each block (``counters`` int64 block indices, any shape) of the stream with
    128-bit cipher key ``key``: int64 bit patterns of shape ``counters.shape + (4,)``. The state is
    held as the pairs p = (c0, c2), the words multiplied, and q = (c1, c3)."""
    c = counters.reshape(1, -1) + 1
    p = torch.cat([c, torch.zeros_like(c)])
    q = torch.zeros_like(p)
    k0, k1 = key & ((1 << 64) - 1), key >> 64
    for _ in range(_ROUNDS):
        hi, lo = _mulhilo(p, c.device)
        p, q = hi.flip(0).bitwise_xor_(q), lo.flip(0)          # (hi1 ^ c1, hi0 ^ c3), (lo1, lo0)
        p[0].bitwise_xor_(_signed(k0))
        p[1].bitwise_xor_(_signed(k1))
        k0, k1 = k0 + _W[0], k1 + _W[1]
    return torch.stack((p[0], q[0], p[1], q[1]), dim=-1).view(*counters.shape, 4)


def words(key: int, positions: torch.Tensor) -> torch.Tensor:
    """Words at ``positions`` (int64, any shape) of the stream keyed ``key``."""
    quad = blocks(key, _shr(positions, 2))
    return quad.gather(-1, (positions & 3).unsqueeze(-1)).squeeze(-1)


def run(key: int, start: int, count: int, device) -> torch.Tensor:
    """Words ``[start, start + count)`` of the stream keyed ``key``: each block computed once."""
    first = start // 4
    q = torch.arange(first, (start + count + 3) // 4, device=device)
    return blocks(key, q).reshape(-1)[start - 4 * first:start - 4 * first + count]


def to_unit(w: torch.Tensor) -> torch.Tensor:
    """U[0,1) float64 from words as NumPy's ``Generator.random``: (w >> 11) * 2^-53."""
    return _shr(w, 11).to(torch.float64).mul_(2.0 ** -53)


# ---- rng's draws (decopt.rng: layouts and keys) from this stream, on a device -----------------------
def _rows(rows, device) -> range | torch.Tensor:
    """Row ids: a unit-step range (one run of the stream, nothing copied to the device) or an int64
    tensor on ``device``."""
    if isinstance(rows, range) and rows.step == 1:
        return rows
    rows = np.asarray(rows, dtype=np.int64).ravel()
    if rows.size and rows[-1] - rows[0] == rows.size - 1 and (np.diff(rows) == 1).all():
        return range(int(rows[0]), int(rows[-1]) + 1)
    return torch.as_tensor(rows, device=device)


def _unit_rows(key: int, rows, width: int, device) -> torch.Tensor:
    """Shape ``(*rows.shape, width)``: row r's numbers are words ``[r*width, (r+1)*width)``."""
    if isinstance(rows, range):
        return to_unit(run(key, rows.start * width, len(rows) * width, device)).view(len(rows), width)
    return to_unit(words(key, rows.unsqueeze(-1) * width + torch.arange(width, device=device)))


def uniform(key: int, rows, width: int, device) -> torch.Tensor:
    """``rng.uniform`` for the cipher key ``key``, drawn on ``device``."""
    return _unit_rows(key, _rows(rows, device), width, device)


def uniform_steps(key: int, steps: range, rows, width: int, total: int, device) -> torch.Tensor:
    """``rng.uniform_steps`` for the cipher key ``key``, drawn on ``device``."""
    rows = _rows(rows, device)
    if rows == range(total):                # every row in order: the block is one run of the stream
        flat = range(steps.start * total, steps.stop * total)
        return _unit_rows(key, flat, width, device).view(len(steps), total, width)
    if isinstance(rows, range):
        rows = torch.arange(rows.start, rows.stop, device=device)
    t = torch.arange(steps.start, steps.stop, device=device)
    return _unit_rows(key, t[:, None] * total + rows, width, device)


def floor_times(u: torch.Tensor, high, dtype) -> torch.Tensor:
    """``rng.integers`` from its uniforms: min(floor(u high), high - 1), ``high`` a scalar or one per
    row, as the NumPy ``dtype``."""
    high = torch.as_tensor(high, device=u.device)
    high = high[:, None] if high.ndim == 1 else high
    return torch.minimum((u * high).long(), high - 1).to(getattr(torch, np.dtype(dtype).name))


def k_smallest(u: torch.Tensor, k: int) -> torch.Tensor:
    """``rng.sample``'s large subsets: the positions of each row's k smallest uniforms, ascending."""
    if k == u.shape[1]:
        return torch.arange(k, device=u.device).expand(u.shape).clone()
    return torch.topk(u, k, dim=1, largest=False).indices.sort(dim=1).values


def first_distinct(key, rows, high: int, k: int, m: int, device) -> torch.Tensor:
    """``rng.sample``'s small subsets (``key`` a ``rng.Key``, ``m`` the candidate block length) on
    ``device``: the same subsets. Whether a row needs another block is read back from the device
    (a host synchronization per draw)."""
    block, c = 0, floor_times(uniform(key.cipher_key(), rows, m, device), high, np.int64)
    while True:
        n, w = c.shape
        order = (c * w + torch.arange(w, device=device)).sort(dim=1).values    # by value, then by position
        val, at = order // w, order % w
        new = torch.ones_like(order, dtype=torch.bool)                          # first occurrence of its value
        new[:, 1:] = val[:, 1:] != val[:, :-1]
        if n == 0 or bool(new.sum(1).min() >= k):
            break
        block += 1
        more = uniform(key.child(key.call + (block << 32)).cipher_key(), rows, m, device)
        c = torch.cat([c, floor_times(more, high, np.int64)], dim=1)
    cut = torch.where(new, at, w).kthvalue(k, dim=1, keepdim=True).values
    return torch.where(new & (at <= cut), val, high).sort(dim=1).values[:, :k]   # the k kept, in value order
