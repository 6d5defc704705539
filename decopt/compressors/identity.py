"""``none``: the exact vector, sent as fp32 or fp64 values."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, PayloadError
from .base import Compressor

_WIRE = {32: (torch.float32, np.float32), 64: (torch.float64, np.float64)}


@dataclass
class IdentityConfig:
    """``precision``: bits per value on the wire (32 or 64); null follows ``run.dtype``."""

    name: str = "none"
    precision: int | None = None

    def check(self) -> None:
        if self.precision not in (None, 32, 64):
            raise ConfigError(f"compressor.precision={self.precision}: choose 32, 64 or null (= run.dtype)")


class Identity(Compressor):
    name = "none"
    unbiased = True

    def __init__(self, precision: int = 64):
        self.precision = precision
        self.wire_torch, self.wire_np = _WIRE[precision]

    def delta(self, d: int) -> float:
        return 1.0

    def compress(self, V, key, rows):
        bits = np.full(V.shape[0], V.shape[1] * self.precision, dtype=np.int64)
        if V.dtype == self.wire_torch:
            return V, bits
        return V.to(self.wire_torch).to(V.dtype), bits

    def encode(self, V, key, rows):
        W = V.detach().to("cpu", self.wire_torch).numpy()
        return [row.tobytes() for row in W]

    def decode(self, payload, d, dtype=torch.float64):
        if len(payload) != d * self.precision // 8:
            raise PayloadError(f"none: payload of {len(payload)} bytes, expected {d * self.precision // 8}")
        return torch.from_numpy(np.frombuffer(payload, dtype=self.wire_np).copy()).to(dtype)
