"""Keyed, counter-based randomness (DESIGN §3).

Every draw belongs to a key ``(seed, stream, t, call)`` and to a set of global *rows*
(agents, edges, ...). The numbers for row ``r`` are the slice ``[r*width, (r+1)*width)``
of one Philox stream whose 128-bit cipher key is derived from the draw key, so:

* both endpoints of an edge compute the same draw without talking;
* a rank that owns rows 8..15 gets exactly the numbers the single-process run gives them;
* a resumed run draws what the uninterrupted run would have drawn.

Draws made every iteration for a fixed set of rows can instead use the *iteration-major* layout
(``uniform_steps``, ``normal_steps``, ``integers_steps``): t moves from the cipher key into the
counter, so a block of iterations is one slice of one stream, drawn at once; still a function of
(seed, stream, t, row).

Every draw takes an optional ``device``: without one it returns a NumPy array; with one, a tensor on
that device, drawn there (``decopt.philox``, the same Philox4x64-10 words in torch) so a GPU run does
not wait for the host, except on the CPU, where NumPy draws them (the faster there:
benchmarks/bench_rng.py); ``_drawing_device`` is that rule. Integers and uniforms are bit-identical
either way; normals go through log1p, cos and sin, whose torch and NumPy versions may differ by an
ulp.
"""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:                   # torch is imported where a draw has a device, not at start-up
    import torch

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


class Key(NamedTuple):
    """Identifies one draw: ``(seed, stream, t, call)``; rows are chosen at draw time (a tuple:
    created once per message round, it must be cheap)."""

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


class _Philox:
    """One reusable Philox bit generator: re-keying it (a state assignment, ~1 us) gives exactly the
    stream of a fresh ``np.random.Philox(key=...)`` (~13 us to create). Not thread-safe."""

    def __init__(self):
        self.bg = np.random.Philox(0)
        self.gen = np.random.Generator(self.bg)
        self.state = self.bg.state

    def stream(self, cipher_key: int, skip: int) -> np.random.Generator:
        """The generator at the start of the stream keyed ``cipher_key``, advanced by ``skip`` blocks of 4."""
        s = self.state
        s["state"]["key"][:] = (cipher_key & _MASK64, cipher_key >> 64)
        s["state"]["counter"][:] = 0
        s["buffer_pos"], s["has_uint32"], s["uinteger"] = 4, 0, 0
        self.bg.state = s
        if skip:
            self.bg.advance(skip)
        return self.gen


_PHILOX = _Philox()


def _spans(rows):
    """``(spans, n, inverse)``: runs of consecutive row ids ``(first, count, at)``, the number of
    rows, and the index that restores the requested order (None when already in order)."""
    if isinstance(rows, range) and rows.step == 1:
        return [(rows.start, len(rows), 0)], len(rows), None
    rows = np.asarray(rows, dtype=np.int64).ravel()
    inverse = None
    if rows.size > 1 and np.any(np.diff(rows) != 1):
        rows, inverse = np.unique(rows, return_inverse=True)
    return list(_runs(rows)), rows.size, inverse


def _fill(out: np.ndarray, ck: int, spans, width: int) -> None:
    for first, count, at in spans:
        q, r = divmod(first * width, 4)
        gen = _PHILOX.stream(ck, q)
        if r == 0 and out.flags.c_contiguous:
            gen.random(out=out[at:at + count].reshape(-1))
        else:
            out[at:at + count] = gen.random(count * width + r)[r:].reshape(count, width)


def _drawing_device(device) -> torch.device | None:
    """The one rule for where a draw is made: None (NumPy, on the host) without a device or on the
    CPU, where NumPy is the faster (benchmarks/bench_rng.py); otherwise the tensor's own device,
    where ``decopt.philox`` draws the same numbers."""
    if device is None:
        return None
    import torch

    device = torch.device(device)
    return None if device.type == "cpu" else device


def _deliver(x, device):
    """A draw as the caller asked: a NumPy array without a device, else a tensor (zero-copy on the CPU)."""
    if device is None or not isinstance(x, np.ndarray):
        return x
    import torch

    return torch.from_numpy(x)


def uniform(key: Key, rows, width: int, device=None):
    """U[0,1) float64 of shape ``(len(rows), width)``; row r's numbers depend only on (key, r)."""
    if (on := _drawing_device(device)) is not None:
        from . import philox
        return philox.uniform(key.cipher_key(), rows, width, on)
    spans, n, inverse = _spans(rows)
    out = np.empty((n, width), dtype=np.float64)
    if width and n:
        _fill(out, key.cipher_key(), spans, width)
    return _deliver(out if inverse is None else out[inverse], device)


def uniform_steps(key: Key, steps: range, rows, width: int, total: int, device=None):
    """U[0,1) draws for a range of iterations at once, shape ``(len(steps), len(rows), width)``,
    in the *iteration-major* layout: the numbers of (t, r) are the slice
    ``[(t * total + r) * width, (t * total + r + 1) * width)`` of the one stream keyed by ``key``
    (its ``t`` unused), ``total`` being the number of global rows. Still a function of
    (key, t, r) only, so any block of iterations or rows, on any rank or after a resume, draws the
    same numbers; but a block over all rows is one slice of one stream, drawn by one call instead
    of one Philox keying per iteration. A different stream from ``uniform`` with t in the key: a
    draw site uses one layout or the other."""
    if (on := _drawing_device(device)) is not None:
        from . import philox
        return philox.uniform_steps(key.cipher_key(), steps, rows, width, total, on)
    spans, n, inverse = _spans(rows)
    out = np.empty((len(steps), n, width), dtype=np.float64)
    if width and n and len(steps):
        if n == total:                      # every row: the block is one run of the stream
            runs = [(steps.start * total, len(steps) * total, 0)]
        else:
            runs = [(t * total + first, count, i * n + at) for i, t in enumerate(steps) for first, count, at in spans]
        _fill(out.reshape(-1, width), key.cipher_key(), runs, width)
    return _deliver(out if inverse is None else out[:, inverse], device)


def box_muller(u, width: int):
    """Standard normals from uniforms (a NumPy array or a tensor) whose last axis has
    2 * ceil(width / 2) entries, halves u1 and u2: r cos(2 pi u2), then r sin(2 pi u2) (the last sine
    is not computed for an odd width), r = sqrt(-2 log(1 - u1)). A tensor is transformed where the
    rule of ``_drawing_device`` draws: by NumPy on the CPU."""
    if isinstance(u, np.ndarray):
        xp = np
    elif _drawing_device(u.device) is None:
        return _deliver(box_muller(u.numpy(), width), u.device)
    else:
        import torch as xp
    half = u.shape[-1] // 2
    r = xp.sqrt(-2.0 * xp.log1p(-u[..., :half]))
    a = 2 * np.pi * u[..., half:]
    rest = width - half
    return xp.concatenate([r * xp.cos(a), r[..., :rest] * xp.sin(a[..., :rest])], axis=-1)


def normal(key: Key, rows, width: int, device=None):
    """Standard normal draws (Box-Muller over keyed uniforms), shape ``(len(rows), width)``."""
    u = uniform(key, rows, 2 * ((width + 1) // 2), _drawing_device(device))
    return _deliver(box_muller(u, width), device)


def normal_steps(key: Key, steps: range, rows, width: int, total: int, device=None):
    """Standard normals in the iteration-major layout of ``uniform_steps`` (Box-Muller as ``normal``)."""
    u = uniform_steps(key, steps, rows, 2 * ((width + 1) // 2), total, _drawing_device(device))
    return _deliver(box_muller(u, width), device)


def integers(key: Key, rows, width: int, high, dtype=np.int64, device=None):
    """Integers in ``[0, high)`` (``high`` scalar or one value per row: an array, or a tensor on the
    device), shape ``(len(rows), width)``: floor(u * high) of keyed uniforms u. ``dtype`` (NumPy's)
    of the result (int32 needs high <= 2^31)."""
    if (on := _drawing_device(device)) is not None:
        from . import philox
        return philox.floor_times(philox.uniform(key.cipher_key(), rows, width, on), high, dtype)
    high = np.asarray(high, dtype=np.int64)
    return _deliver(_floor_times(uniform(key, rows, width), high[:, None] if high.ndim == 1 else high, dtype), device)


def _floor_times(u: np.ndarray, high: np.ndarray, dtype) -> np.ndarray:
    """min(floor(u high), high - 1) as ``dtype``; float -> int32 conversion is vectorised where
    float -> int64 is not (10x faster), so it goes through int32 when high fits: the same values."""
    narrow = np.int32 if high.size and high.max() <= 2 ** 31 else np.int64
    out = np.minimum((u * high).astype(narrow), (high - 1).astype(narrow))
    return out if out.dtype == dtype else out.astype(dtype)


def integers_steps(key: Key, steps: range, rows, width: int, total: int, high: int, device=None):
    """Integers in ``[0, high)`` in the iteration-major layout of ``uniform_steps``, shape
    ``(len(steps), len(rows), width)`` (as ``integers``: floor(u high))."""
    if (on := _drawing_device(device)) is not None:
        from . import philox
        return philox.floor_times(philox.uniform_steps(key.cipher_key(), steps, rows, width, total, on), high, np.int64)
    u = uniform_steps(key, steps, rows, width, total)
    return _deliver(_floor_times(u, np.asarray(high, dtype=np.int64), np.int64), device)


def sample(key: Key, rows, high: int, k: int, device=None):
    """A uniformly random k-subset of ``[0, high)`` per row, sorted, shape ``(len(rows), k)``;
    row r's subset depends only on (key, r). Sequential rejection sampling, vectorized: the first
    k distinct values of a keyed i.i.d. sequence, of length m = high ln(high / (high - k)) plus a
    margin (extended by another keyed block, call ``call + (j << 32)``, in the rare row that
    needs it), so O(m) work instead of O(high). Subsets of more than a fifth (cheaper that way)
    are the k smallest of ``high`` keyed uniforms."""
    if not 0 < k <= high:
        raise ValueError(f"sample: k={k} must be in [1, high={high}]")
    on = _drawing_device(device)
    if on is not None:
        from . import philox
    if 5 * k > high:
        u = uniform(key, rows, high, on)
        if on is not None:
            return philox.k_smallest(u, k)
        return _deliver(np.sort(np.argpartition(u, k - 1, axis=1)[:, :k] if k < high else
                                np.broadcast_to(np.arange(high), u.shape), axis=1), device)
    m = _sequence_length(high, k)
    if on is not None:
        return philox.first_distinct(key, rows, high, k, m, on)
    narrow = np.int32 if high <= 2 ** 31 else np.int64
    c, block = integers(key, rows, m, high, narrow), 0
    while True:
        n, w = c.shape
        dt = np.int32 if high * w < 2 ** 31 else np.int64              # value * w + position fits
        order = c.astype(dt, copy=False) * dt(w) + np.arange(w, dtype=dt)
        order.sort(axis=1)                                              # by value, then by position
        val = order // dt(w)
        at = order - val * dt(w)
        new = np.empty((n, w), dtype=bool)                              # first occurrence of its value
        new[:, :1] = True
        np.not_equal(val[:, 1:], val[:, :-1], out=new[:, 1:])
        if n == 0 or new.sum(1).min() >= k:
            break
        block += 1
        c = np.concatenate([c, integers(key.child(key.call + (block << 32)), rows, m, high, narrow)], axis=1)
    # the k distinct values drawn first: those first seen at or before the k-th smallest first position
    first = np.where(new, at, dt(w))
    cut = np.partition(first, k - 1, axis=1)[:, k - 1:k]
    return _deliver(val[new & (at <= cut)].reshape(n, k).astype(np.int64), device)   # in value order: sorted


def _sequence_length(high: int, k: int) -> int:
    """m, the length of each keyed block of candidates ``sample`` draws."""
    return int(np.ceil(-high * np.log1p(-k / high) + 8 * np.sqrt(k) + 16))
