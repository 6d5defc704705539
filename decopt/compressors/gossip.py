"""``gossip``: randomized gossip, Q(x) = x with probability p, else nothing (docom.md §4).

Biased, contractive with delta = p. The coin is keyed (key, row). Wire: the whole vector
(``value_bits`` per entry) or an empty payload: bits = d * value_bits or 0; an empty message
is not counted as a message in the traffic ledger. A value beyond the wire float's range
saturates at its largest finite value (+-65504 for ``value_bits=16``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rng
from ..errors import ConfigError, PayloadError
from ..lazy import torch
from ..registry import register
from . import wire
from .base import Compressor, check_value_bits


@dataclass
class GossipConfig:
    """randomized gossip: the whole vector with probability p, else nothing.

    ``p``: probability in (0, 1] that a message is sent; ``value_bits``: 16 | 32 | 64."""

    name: str = "gossip"
    p: float = 0.5                  # p: probability in (0, 1] that a message is sent (delta = p)
    value_bits: int = 32            # bits per entry on the wire: 16 | 32 | 64

    def check(self) -> None:
        if not 0 < self.p <= 1:
            raise ConfigError(f"compressor.p={self.p}: must be in (0, 1] (probability of sending)")
        check_value_bits(self.value_bits)


class Gossip(Compressor):
    name = "gossip"
    unbiased = False
    float_fields = {"v": "value"}

    @classmethod
    def from_config(cls, cfg: GossipConfig, dtype_bits: int, segments=None) -> "Gossip":
        return cls(cfg)                         # whole vectors: no per-tensor segments

    def __init__(self, cfg):
        self.p = float(cfg.p)
        self.value_bits = cfg.value_bits
        self.wire_torch = wire.float_torch(cfg.value_bits)

    def delta(self, d: int) -> float:
        return self.p

    def plan(self, V, key, rows):
        coin = rng.uniform(key, rows, 1)[:, 0] < self.p            # on the host: the sizes need no read-back
        return {"send": torch.from_numpy(coin).to(V.device), "coin": coin,
                "v": wire.to_wire(V.detach(), self.value_bits)}

    def bits(self, plan):
        d = plan["v"].shape[1]
        return plan["coin"].astype(np.int64) * (d * self.value_bits)

    def values(self, plan, d, dtype, device):
        v = plan["v"].to(device=device, dtype=dtype)
        return torch.where(plan["send"].to(device)[:, None], v, torch.zeros((), dtype=dtype, device=device))

    def support(self, plan, d, device):
        return plan["send"].to(device)[:, None].expand(-1, d)

    def pack(self, plan, i):
        if not bool(plan["send"][i]):
            return b""
        return plan["v"][i].cpu().numpy().astype(wire.float_np(self.value_bits)).tobytes()

    def unpack(self, payload, d, key, row):
        if len(payload) == 0:
            return {"send": torch.zeros(1, dtype=torch.bool), "v": torch.zeros(1, d, dtype=self.wire_torch)}
        if len(payload) * 8 != d * self.value_bits:
            raise PayloadError(f"gossip: payload of {len(payload)} bytes, expected 0 or {d * self.value_bits // 8}")
        v = torch.from_numpy(np.frombuffer(payload, dtype=wire.float_np(self.value_bits)).copy())
        return {"send": torch.ones(1, dtype=torch.bool), "v": v[None]}


register("compressor", "gossip", GossipConfig, Gossip)
