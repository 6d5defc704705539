"""``none``: the exact vector, sent as fp32 or fp64 values (d * precision bits); with fp32 values
in a float64 run, a value beyond fp32's range saturates at its largest finite value."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, PayloadError
from ..lazy import torch
from ..registry import register
from . import wire
from .base import Compressor


@dataclass
class IdentityConfig:
    """identity: the exact vector; precision 32 or 64 bits per value, null = run.dtype.

    ``precision``: bits per value on the wire (32 or 64); null follows ``run.dtype``."""

    name: str = "none"
    precision: int | None = None    # bits per value on the wire: 32 | 64; null = run.dtype's

    def check(self) -> None:
        if self.precision not in (None, 32, 64):
            raise ConfigError(f"compressor.precision={self.precision}: choose 32, 64 or null (= run.dtype)")


class Identity(Compressor):
    name = "none"
    unbiased = True
    float_fields = {"v": "value"}

    @classmethod
    def from_config(cls, cfg: IdentityConfig, dtype_bits: int, segments=None) -> "Identity":
        """``precision: null`` sends values at the run's own precision (``dtype_bits``)."""
        return cls(cfg.precision or dtype_bits)

    def __init__(self, precision: int = 64):
        self.precision = precision
        self.wire_torch, self.wire_np = wire.float_torch(precision), wire.float_np(precision)

    def delta(self, d: int) -> float:
        return 1.0

    def compress(self, V, key, rows):
        bits = self.fixed_bits(V.shape[0], V.shape[1] * self.precision)
        if V.dtype == self.wire_torch:
            return V, bits
        return wire.to_wire(V, self.precision).to(V.dtype), bits

    # plan API (used by encode/decode and by channels wrapped around it)
    def plan(self, V, key, rows):
        return {"v": wire.to_wire(V.detach(), self.precision)}

    def bits(self, plan):
        n, d = plan["v"].shape
        return self.fixed_bits(n, d * self.precision)

    def values(self, plan, d, dtype, device):
        return plan["v"].to(device=device, dtype=dtype)

    def pack(self, plan, i):
        return plan["v"][i].cpu().numpy().astype(self.wire_np).tobytes()

    def unpack(self, payload, d, key, row):
        if len(payload) != d * self.precision // 8:
            raise PayloadError(f"none: payload of {len(payload)} bytes, expected {d * self.precision // 8}")
        return {"v": torch.from_numpy(np.frombuffer(payload, dtype=self.wire_np).copy())[None]}


register("compressor", "none", IdentityConfig, Identity)
