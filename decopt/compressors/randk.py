"""``randk``: k uniformly random entries (without replacement), per row and message.

Specs: fspda.md §2.1 (random-k per tensor, no rescale, both endpoints share the mask),
ticopd.md §4 (``compress_random_k``), docom.md §4. ``unbiased=false`` (default) keeps the raw
values: contractive with delta = k/d. ``unbiased=true`` rescales by d/k: unbiased with
variance omega = d/k - 1, so delta = 1 - omega = 2 - d/k (<= 0 unless k > d/2: not contractive).

The mask is drawn from the message key at the row id (agent for ``broadcast``, arc or, with
``exchange(shared=True)``, undirected edge), so both ends can derive it.
``shared_mask=true`` uses that: no indices go on the wire (bits = K * value_bits) and the
receiver rebuilds the mask from ``(key, row)``. Otherwise the wire is top-k's (values beyond
the wire float's range saturate at its largest finite value); with ``unbiased=true`` a
rescaled value beyond the run dtype's range saturates there too.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import rng
from ..registry import register
from .topk import TopKConfig, _Sparsifier


@dataclass
class RandKConfig(TopKConfig):
    """rand-k: k uniformly random entries; unbiased=true rescales by d/k; shared_mask=true sends no indices.

    The keys of topk, plus ``unbiased``: rescale by d/k; ``shared_mask``: derive the mask from
    the shared key, send no indices."""

    name: str = "randk"
    unbiased: bool = False          # rescale kept values by d/k (unbiased, not contractive unless k > d/2)
    shared_mask: bool = False       # derive the mask from the shared key: no indices on the wire


class RandK(_Sparsifier):
    name = "randk"

    def __init__(self, cfg, segments=None):
        super().__init__(cfg, segments)
        self.unbiased = bool(cfg.unbiased)
        self.send_indices = not cfg.shared_mask
        self.needs_key = bool(cfg.shared_mask)

    def delta(self, d: int) -> float:
        if not self.unbiased:
            return super().delta(d)
        return 1.0 - max(ds / k - 1.0 for _, ds, k in self.layout(d))

    def scale(self, ds: int, k: int) -> float:
        return ds / k if self.unbiased else 1.0

    def select(self, V, key, rows, lay):
        """Per segment s, a keyed uniform k-subset (``rng.sample``, call ``key.call + (s << 20)``)."""
        return [None if k >= ds else
                rng.sample(key.child(key.call + (s << 20)), rows, ds, k, device=V.device)
                for s, (_, ds, k) in enumerate(lay)]


register("compressor", "randk", RandKConfig, RandK)
