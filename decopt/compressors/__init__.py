"""Compressors as codecs with exact bit counts; one config choice each in ``conf/compressor/``.

``none`` | ``topk`` | ``randk`` | ``qsgd`` | ``sign`` | ``gossip`` | ``noisy`` (a channel
around any other, chosen in the nested group ``compressor/inner``). Error feedback is an
algorithm-level concern and is not done here.
"""
from __future__ import annotations

from ..errors import ConfigError
from .base import Compressor
from .gossip import Gossip, GossipConfig
from .identity import Identity, IdentityConfig
from .noisy import Noisy, NoisyConfig, typed_inner
from .qsgd import QSGD, QSGDConfig
from .randk import RandK, RandKConfig
from .sign import Sign, SignConfig
from .topk import TopK, TopKConfig

SCHEMAS = {
    "none": IdentityConfig,
    "topk": TopKConfig,
    "randk": RandKConfig,
    "qsgd": QSGDConfig,
    "sign": SignConfig,
    "gossip": GossipConfig,
    "noisy": NoisyConfig,
}


def build_compressor(cfg, dtype_bits: int, segments=None) -> Compressor:
    """The compressor a typed ``compressor`` config describes; ``dtype_bits`` is 32 or 64
    (run.dtype, for ``none`` with precision null); ``segments`` are the problem's parameter
    tensor sizes (for ``per_tensor``; ignored when they do not sum to the message length)."""
    name = cfg.name
    if name == "none":
        return Identity(cfg.precision or dtype_bits)
    if name == "topk":
        return TopK(cfg, segments)
    if name == "randk":
        return RandK(cfg, segments)
    if name == "qsgd":
        return QSGD(cfg, segments)
    if name == "sign":
        return Sign(cfg, segments)
    if name == "gossip":
        return Gossip(cfg)
    if name == "noisy":
        inner = typed_inner(cfg.inner)
        return Noisy(cfg, build_compressor(inner, dtype_bits, segments))
    raise ConfigError(f"compressor={name}: choose one of {', '.join(SCHEMAS)}")


__all__ = ["Compressor", "SCHEMAS", "build_compressor"]
