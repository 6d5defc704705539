"""Objectives + data + per-agent batched gradients; one config choice each in ``conf/problem/``."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Problem
from .least_squares import LeastSquares, LeastSquaresConfig
from .logistic import Logistic, LogisticConfig

REGISTRY = {"least_squares": (LeastSquaresConfig, LeastSquares), "logistic": (LogisticConfig, Logistic)}
SCHEMAS = {name: schema for name, (schema, _) in REGISTRY.items()}


def build_problem(cfg, net, seed: int) -> Problem:
    if cfg.name not in REGISTRY:
        raise ConfigError(f"problem={cfg.name}: choose one of {', '.join(REGISTRY)}")
    return REGISTRY[cfg.name][1](cfg, net, seed)


__all__ = ["Problem", "REGISTRY", "SCHEMAS", "build_problem"]
