"""Objectives + data + per-agent batched gradients; each module registers its ``problem=`` choice."""
from __future__ import annotations

import importlib
import pkgutil

from .. import registry
from .base import Problem

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

REGISTRY = registry.View("problem", lambda e: (e.schema, e.build))     # name -> (config schema, class)
SCHEMAS = registry.schemas("problem")


def build_problem(cfg, net, seed: int) -> Problem:
    return registry.lookup("problem", cfg.name).build(cfg, net, seed)


__all__ = ["Problem", "REGISTRY", "SCHEMAS", "build_problem"]
