"""``qsgd``: stochastic quantization to s = 2^b - 1 levels of |x_j| / ||x|| (Alistarh et al. 2017).

Specs: ticopd.md §4 (``quantize``), docom.md §4 (scaled QSGD). Per row,
``q_j = ||x|| sign(x_j) xi_j / (s tau)`` with ``xi_j = floor(s |x_j| / ||x|| + u_j)``,
u_j ~ U[0, 1) keyed (key, row). ``unbiased=true``: tau = 1, E q = x, variance
omega = min(d/s^2, sqrt(d)/s) (delta = 1 - omega). ``unbiased=false`` (default, the papers'
``is_biased``): tau = 1 + omega, contractive with delta = 1/tau. ``per_tensor=true``
quantizes each parameter tensor with its own norm (the papers' code): omega and tau per
tensor, delta the worst tensor's.

Numerics: a norm beyond the wire float's range saturates at its largest finite value (+-65504
for ``value_bits=16``; the levels then clamp at s), and a decoded entry whose product
norm * level would overflow is formed as norm * (level / (s tau)) instead (saturated at the run
dtype's range), so finite input always decodes to finite values, with the same bits as the
product wherever that is finite.

Wire: the norm(s) (``value_bits`` each, rounded *up* to the wire float so every
|x_j| / ||x|| <= 1, unless saturated), then per entry b level bits and 1 sign bit, bit-packed and padded once
to a byte: bits = T * value_bits + 8 * ceil(d (b + 1) / 8), T = number of tensors (1 unless
per_tensor). No header.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import rng
from ..errors import ConfigError, PayloadError
from ..host import numpy_view
from ..lazy import torch
from ..registry import register
from . import wire
from .base import Compressor, check_value_bits, segments_of


@dataclass
class QSGDConfig:
    """QSGD: stochastic quantization to 2^bits - 1 levels; unbiased=false is the contractive (scaled) version;
    bits/row = T*value_bits (norms, T = tensors) + 8*ceil(d*(bits+1)/8).

    ``bits``: b in 1..16 (s = 2^b - 1 levels); ``unbiased``: no 1/tau shrink;
    ``per_tensor``: one norm per parameter tensor; ``value_bits``: width of a norm on the wire."""

    name: str = "qsgd"
    bits: int = 8                   # b in 1..16: s = 2^b - 1 levels, b + 1 bits per entry with the sign
    unbiased: bool = False          # tau = 1 (E q = x); false: scaled by 1/tau, contractive (the papers' is_biased)
    per_tensor: bool = False        # one norm (and tau) per parameter tensor, as in the papers' code
    value_bits: int = 32            # bits per norm on the wire: 16 | 32 | 64

    def check(self) -> None:
        if not 1 <= self.bits <= 16:
            raise ConfigError(f"compressor.bits={self.bits}: must be in 1..16 (bits per level)")
        check_value_bits(self.value_bits)


class QSGD(Compressor):
    name = "qsgd"
    float_fields = {"norm": "norm"}

    def __init__(self, cfg, segments=None):
        self.b = int(cfg.bits)
        self.s = 2 ** self.b - 1
        self.unbiased = bool(cfg.unbiased)
        self.per_tensor = bool(cfg.per_tensor)
        self.segments = list(segments) if segments else None
        self.value_bits = cfg.value_bits
        self.wire_torch = wire.float_torch(cfg.value_bits)
        self._maps = {}

    def layout(self, d: int) -> list[tuple[int, int]]:
        return segments_of(self.segments, d) if self.per_tensor else [(0, d)]

    def _omega(self, ds: int) -> float:
        return min(ds / self.s ** 2, math.sqrt(ds) / self.s)

    def omega(self, d: int) -> float:
        """Variance of the unbiased version: E||Q(x) - x||^2 <= omega ||x||^2 (worst tensor)."""
        return max(self._omega(ds) for _, ds in self.layout(d))

    def delta(self, d: int) -> float:
        if self.unbiased:
            return 1.0 - self.omega(d)
        return min(1.0 / (1.0 + self._omega(ds)) for _, ds in self.layout(d))

    def bits_for(self, d: int) -> int:
        return len(self.layout(d)) * self.value_bits + 8 * wire.nbytes(d * (self.b + 1))

    def _map(self, d: int, device):
        """Per entry: its tensor's index and the divisor s * tau of that tensor."""
        k = (d, str(device))
        if k not in self._maps:
            lay = self.layout(d)
            seg = torch.cat([torch.full((ds,), i, dtype=torch.int64) for i, (_, ds) in enumerate(lay)])
            tau = [1.0 if self.unbiased else 1.0 + self._omega(ds) for _, ds in lay]
            div = torch.tensor([self.s * t for t in tau], dtype=torch.float64)[seg]
            self._maps[k] = (seg.to(device), div.to(device))
        return self._maps[k]

    def plan(self, V, key, rows):
        n, d = V.shape
        X = V.detach().to(torch.float64)
        lay = self.layout(d)
        norm = torch.stack([torch.linalg.vector_norm(X[:, a:a + ds], dim=1) for a, ds in lay], 1)
        w = norm.to(self.wire_torch)
        up = w.to(torch.float64) < norm                       # round the wire norm up
        w = torch.where(up, torch.nextafter(w, torch.full_like(w, math.inf)), w)
        w = w.clamp_(max=torch.finfo(self.wire_torch).max)   # saturate a norm beyond the wire's range
        wn = w.to(torch.float64)
        if len(lay) > 1:                                      # one norm per tensor: spread over its entries
            wn = wn[:, self._map(d, X.device)[0]]
        pos = wn > 0                                          # (n, 1) for one norm: broadcast, no gather
        r = X.abs().div_(torch.where(pos, wn, math.inf))      # no positive norm (a NaN): level 0 below
        u = rng.uniform(key, rows, d, device=X.device)
        xi = r.mul_(self.s).add_(u).floor_().clamp_(0, self.s)        # in place: the same numbers
        xi = xi.nan_to_num_(nan=0.0).to(torch.int64)
        return {"norm": w, "level": xi, "neg": X < 0}

    def bits(self, plan):
        n, d = plan["level"].shape
        return np.full(n, self.bits_for(d), dtype=np.int64)

    def values(self, plan, d, dtype, device):
        """``norm * level / (s tau)``, signed. Where that overflows ``dtype`` from a finite norm
        (an fp32 norm above ~1e36, or a wider wire norm), ``norm * (level / (s tau))`` in float64
        instead, at most the norm in magnitude, saturated at ``dtype``'s largest finite value.
        Every other entry keeps the product's bits."""
        seg, div = self._map(d, device)
        wn = plan["norm"].to(device)
        if wn.shape[1] > 1:                                   # per tensor: each entry's own norm and divisor
            wn = wn[:, seg]
        else:                                                 # one norm, one divisor: broadcast
            div = div[:1]
        lev = plan["level"].to(device=device, dtype=dtype)
        signed = torch.where(plan["neg"].to(device), -lev, lev)   # = lev * (1 - 2 neg), exactly
        out = wn.to(dtype) * signed / div.to(dtype)
        top = torch.finfo(dtype).max
        if self._may_overflow(plan["norm"], top / (2 * self.s)):
            safe = (wn.double() * (signed.double() / div)).clamp_(-top, top).to(dtype)
            out = torch.where(torch.isfinite(out) | ~torch.isfinite(wn), out, safe)
        return out

    def _may_overflow(self, norm, bound: float) -> bool:
        """Whether a norm exceeds ``bound``: read where the norms are in host memory (no copy); on
        a device, whenever the wire's range allows one, so that a step never waits for the host."""
        if norm.device.type == "cpu":
            return float(numpy_view(norm).max(initial=-math.inf)) > bound
        return torch.finfo(self.wire_torch).max > bound

    def pack(self, plan, i):
        norm = plan["norm"][i].cpu().numpy().astype(wire.float_np(self.value_bits)).tobytes()
        code = plan["level"][i].cpu().numpy() | (plan["neg"][i].cpu().numpy().astype(np.int64) << self.b)
        return norm + wire.pack_uint(code, self.b + 1)

    def unpack(self, payload, d, key, row):
        if len(payload) * 8 != self.bits_for(d):
            raise PayloadError(f"qsgd: payload of {len(payload)} bytes, expected {self.bits_for(d) // 8}")
        r = wire.Reader(payload, self.name)
        norm = torch.from_numpy(r.floats(len(self.layout(d)), self.value_bits))[None]
        code = wire.unpack_uint(r.take(len(payload) - r.at), d, self.b + 1)
        r.done()
        level = torch.from_numpy(code & self.s)[None]
        if bool((norm < 0).any()):
            raise PayloadError(f"qsgd: payload norm {float(norm.min())} is negative (a finite norm >= 0 is allowed)")
        return {"norm": norm, "level": level, "neg": torch.from_numpy((code >> self.b) & 1 == 1)[None]}


register("compressor", "qsgd", QSGDConfig, QSGD)
