"""Keyed, counter-based randomness (DESIGN §3).

Every draw belongs to a key ``(seed, stream, t, call)`` and to a set of global *rows*
(agents, edges, ...). The numbers for row ``r`` are the slice ``[r*width, (r+1)*width)``
of one Philox stream whose 128-bit cipher key is derived from the draw key, so:

* both endpoints of an edge compute the same draw without talking;
* a rank that owns rows 8..15 gets exactly the numbers the single-process run gives them;
* a resumed run draws what the uninterrupted run would have drawn.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

_MASK64 = (1 << 64) - 1


class Stream(enum.IntEnum):
    """Independent purposes of randomness; each gets its own family of keys."""

    DATA = 1        # synthetic problem data (t = 0)
    INIT = 2        # initial iterates
    BATCH = 3       # minibatch indices, keyed (t, agent)
    COMPRESS = 4    # compressor randomness, keyed (t, call, agent or edge)
    LINKS = 5       # random-link activation, keyed (t, edge)
    NOISE = 6       # channel noise, keyed (t, call, agent or edge)
    PROBLEM = 7     # problem-specific sampling (performative distributions, ...)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@dataclass(frozen=True)
class Key:
    """Identifies one draw: ``(seed, stream, t, call)``; rows are chosen at draw time."""

    seed: int
    stream: int
    t: int = 0
    call: int = 0

    def cipher_key(self) -> int:
        h = _splitmix64(self.seed & _MASK64)
        h = _splitmix64(h ^ self.stream)
        lo = _splitmix64(h ^ (self.call & _MASK64))
        return (lo << 64) | (self.t & _MASK64)

    def child(self, call: int) -> "Key":
        return Key(self.seed, self.stream, self.t, call)


def _runs(rows: np.ndarray):
    """Split sorted-or-not row ids into maximal runs of consecutive ids."""
    if rows.size == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    start = 0
    for b in list(breaks) + [rows.size]:
        yield int(rows[start]), b - start, start
        start = b


def uniform(key: Key, rows, width: int) -> np.ndarray:
    """U[0,1) float64 array of shape ``(len(rows), width)``; row r's numbers depend only on (key, r)."""
    inverse = None
    if isinstance(rows, range) and rows.step == 1:
        spans = [(rows.start, len(rows), 0)]
        n = len(rows)
    else:
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if rows.size > 1 and np.any(np.diff(rows) != 1):
            rows, inverse = np.unique(rows, return_inverse=True)
        spans = list(_runs(rows))
        n = rows.size
    out = np.empty((n, width), dtype=np.float64)
    if width == 0 or n == 0:
        return out if inverse is None else out[inverse]
    ck = key.cipher_key()
    for first, count, at in spans:
        bg = np.random.Philox(key=ck)
        q, r = divmod(first * width, 4)
        if q:
            bg.advance(q)
        x = np.random.Generator(bg).random(count * width + r)
        out[at:at + count] = x[r:].reshape(count, width)
    return out if inverse is None else out[inverse]


def normal(key: Key, rows, width: int) -> np.ndarray:
    """Standard normal draws (Box-Muller over keyed uniforms), shape ``(len(rows), width)``."""
    half = (width + 1) // 2
    u = uniform(key, rows, 2 * half)
    u1, u2 = u[:, :half], u[:, half:]
    r = np.sqrt(-2.0 * np.log1p(-u1))
    z = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], axis=1)
    return z[:, :width]


def integers(key: Key, rows, width: int, high) -> np.ndarray:
    """Integers in ``[0, high)`` (``high`` scalar or one value per row), shape ``(len(rows), width)``."""
    u = uniform(key, rows, width)
    high = np.asarray(high, dtype=np.int64)
    if high.ndim == 1:
        high = high[:, None]
    return np.minimum((u * high).astype(np.int64), high - 1)
