"""One module per algorithm; an ``Algorithm`` subclass with a ``name`` registers itself, and every
module here is imported, so a new file is a new ``algo=`` choice."""
from __future__ import annotations

import importlib
import pkgutil

from .. import registry
from .base import Algorithm, State, StepSize

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

REGISTRY = registry.View("algo", lambda e: (e.schema, e.build))     # name -> (config schema, class)
SCHEMAS = registry.schemas("algo")


def build_algorithm(cfg, net, problem, compressor) -> Algorithm:
    return registry.lookup("algo", cfg.name).build(cfg, net, problem, compressor)


__all__ = ["Algorithm", "REGISTRY", "SCHEMAS", "State", "StepSize", "build_algorithm"]
