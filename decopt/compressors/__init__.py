"""Compressors as codecs with exact bit counts; one config choice each in ``conf/compressor/``."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Compressor
from .identity import Identity, IdentityConfig

SCHEMAS = {"none": IdentityConfig}


def build_compressor(cfg, dtype_bits: int) -> Compressor:
    """The compressor a ``compressor`` config describes; ``dtype_bits`` is 32 or 64 (run.dtype)."""
    if cfg.name == "none":
        return Identity(cfg.precision or dtype_bits)
    raise ConfigError(f"compressor={cfg.name}: choose one of {', '.join(SCHEMAS)}")


__all__ = ["Compressor", "SCHEMAS", "build_compressor"]
