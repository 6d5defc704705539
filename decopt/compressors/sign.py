"""``sign``: scaled sign ``(||x||_1 / d) sign(x)`` (Karimireddy et al. 2019; ticopd.md §4).

Deterministic and biased. ``||Q(x) - x||^2 = ||x||^2 - ||x||_1^2 / d``, so it contracts with
delta(x) = ||x||_1^2 / (d ||x||^2) >= 1/d; the advertised (worst-case) delta is 1/d.
``per_tensor=true``: one scale per parameter tensor (the authors' class), delta = 1/max d_s.
Wire: the scale(s) (``value_bits`` each) then one bit per entry (1 = negative; zeros go as
+), padded to a byte: bits = T * value_bits + 8 * ceil(d / 8), T = number of tensors. A scale
beyond the wire float's range saturates at its largest finite value (+-65504 for 16 bits).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PayloadError
from ..lazy import torch
from ..registry import register
from . import wire
from .base import Compressor, check_value_bits, segments_of


@dataclass
class SignConfig:
    """scaled sign: (||x||_1/d) sign(x); bits/row = T*value_bits + 8*ceil(d/8) (T = tensors).

    ``per_tensor``: one scale per parameter tensor; ``value_bits``: width of a scale
    ||x||_1 / d on the wire (16 | 32 | 64)."""

    name: str = "sign"
    per_tensor: bool = False        # one scale ||x_s||_1 / d_s per parameter tensor (delta = 1/max d_s)
    value_bits: int = 32            # bits per scale on the wire: 16 | 32 | 64

    def check(self) -> None:
        check_value_bits(self.value_bits)


class Sign(Compressor):
    name = "sign"
    unbiased = False
    float_fields = {"scale": "scale"}

    def __init__(self, cfg, segments=None):
        self.per_tensor = bool(cfg.per_tensor)
        self.segments = list(segments) if segments else None
        self.value_bits = cfg.value_bits

    def layout(self, d: int) -> list[tuple[int, int]]:
        return segments_of(self.segments, d) if self.per_tensor else [(0, d)]

    def _seg(self, d: int, device) -> torch.Tensor:
        return torch.cat([torch.full((ds,), i, dtype=torch.int64, device=device)
                          for i, (_, ds) in enumerate(self.layout(d))])

    def delta(self, d: int) -> float:
        return 1.0 / max(ds for _, ds in self.layout(d))

    def bits_for(self, d: int) -> int:
        return len(self.layout(d)) * self.value_bits + 8 * wire.nbytes(d)

    def plan(self, V, key, rows):
        X = V.detach().to(torch.float64)
        scale = torch.stack([X[:, a:a + ds].abs().sum(1) / ds for a, ds in self.layout(X.shape[1])], 1)
        return {"scale": wire.to_wire(scale, self.value_bits), "neg": X < 0}

    def bits(self, plan):
        n, d = plan["neg"].shape
        return np.full(n, self.bits_for(d), dtype=np.int64)

    def values(self, plan, d, dtype, device):
        scale = plan["scale"].to(device=device, dtype=dtype)[:, self._seg(d, device)]
        return scale * (1.0 - 2.0 * plan["neg"].to(device=device, dtype=dtype))

    def pack(self, plan, i):
        scale = plan["scale"][i].cpu().numpy().astype(wire.float_np(self.value_bits)).tobytes()
        return scale + wire.pack_uint(plan["neg"][i].cpu().numpy(), 1)

    def unpack(self, payload, d, key, row):
        if len(payload) * 8 != self.bits_for(d):
            raise PayloadError(f"sign: payload of {len(payload)} bytes, expected {self.bits_for(d) // 8}")
        r = wire.Reader(payload, self.name)
        scale = torch.from_numpy(r.floats(len(self.layout(d)), self.value_bits))[None]
        neg = wire.unpack_uint(r.take(len(payload) - r.at), d, 1)
        r.done()
        return {"scale": scale, "neg": torch.from_numpy(neg == 1)[None]}


register("compressor", "sign", SignConfig, Sign)
