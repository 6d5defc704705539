"""Compressors as codecs with exact bit counts; each module registers its ``compressor=`` choice.

``none`` | ``topk`` | ``randk`` | ``qsgd`` | ``sign`` | ``gossip`` | ``noisy`` (a channel
around any other, chosen in the nested group ``compressor/inner``). Error feedback is an
algorithm-level concern and is not done here.
"""
from __future__ import annotations

import importlib
import pkgutil

from .. import registry
from .base import Compressor
from .identity import Identity

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

SCHEMAS = registry.schemas("compressor")


def build_compressor(cfg, dtype_bits: int, segments=None) -> Compressor:
    """The compressor a typed ``compressor`` config describes; ``dtype_bits`` is 32 or 64
    (run.dtype, for ``none`` with precision null); ``segments`` are the problem's parameter
    tensor sizes (for ``per_tensor``; ignored when they do not sum to the message length).
    A class builds itself with ``from_config(cfg, dtype_bits, segments)`` where it has one,
    else as ``cls(cfg, segments)``."""
    cls = registry.lookup("compressor", cfg.name).build
    if hasattr(cls, "from_config"):
        return cls.from_config(cfg, dtype_bits, segments)
    return cls(cfg, segments)


__all__ = ["Compressor", "Identity", "SCHEMAS", "build_compressor"]
