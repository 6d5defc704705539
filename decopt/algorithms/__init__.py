"""One module per algorithm; each registers ``name -> (config schema, class)`` here."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Algorithm, State, StepSize
from .dsgd import DSGD, DSGDConfig

REGISTRY = {"dsgd": (DSGDConfig, DSGD)}
SCHEMAS = {name: schema for name, (schema, _) in REGISTRY.items()}


def algorithm_class(name: str) -> type[Algorithm]:
    if name not in REGISTRY:
        raise ConfigError(f"algo={name}: choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name][1]


def build_algorithm(cfg, net, problem, compressor) -> Algorithm:
    return algorithm_class(cfg.name)(cfg, net, problem, compressor)


__all__ = ["Algorithm", "REGISTRY", "SCHEMAS", "State", "StepSize", "algorithm_class", "build_algorithm"]
