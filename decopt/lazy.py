"""The heavy libraries, bound on first use (SPEC 1's ``lazy_loader``): validating a config, refusing a
bad value or printing help imports none of them. A module writes ``from ..lazy import torch``."""
import lazy_loader

torch = lazy_loader.load("torch")
scipy = lazy_loader.load("scipy")
