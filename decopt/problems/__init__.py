"""Objectives + data + per-agent batched gradients; one config choice each in ``conf/problem/``."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Problem
from .least_squares import LeastSquares, LeastSquaresConfig
from .logistic import Logistic, LogisticConfig
from .femnist import FemnistLeNet, FemnistLeNetConfig
from .leaf_synthetic import LeafSynthetic, LeafSyntheticConfig
from .mlp import MLP, DigitsMLPConfig, MnistMLPConfig
from .spambase import SpambaseLogistic, SpambaseLogisticConfig
from .gaussian_mean import GaussianMean, GaussianMeanConfig
from .strategic_spam import StrategicSpam, StrategicSpamConfig

REGISTRY = {"least_squares": (LeastSquaresConfig, LeastSquares), "logistic": (LogisticConfig, Logistic)}
REGISTRY.update(mnist_mlp=(MnistMLPConfig, MLP), digits_mlp=(DigitsMLPConfig, MLP))
REGISTRY.update(leaf_synthetic=(LeafSyntheticConfig, LeafSynthetic), femnist_lenet=(FemnistLeNetConfig, FemnistLeNet))
REGISTRY.update(spambase_logistic=(SpambaseLogisticConfig, SpambaseLogistic))
REGISTRY.update(gaussian_mean=(GaussianMeanConfig, GaussianMean), strategic_spam=(StrategicSpamConfig, StrategicSpam))
SCHEMAS = {name: schema for name, (schema, _) in REGISTRY.items()}


def build_problem(cfg, net, seed: int) -> Problem:
    if cfg.name not in REGISTRY:
        raise ConfigError(f"problem={cfg.name}: choose one of {', '.join(REGISTRY)}")
    return REGISTRY[cfg.name][1](cfg, net, seed)


__all__ = ["Problem", "REGISTRY", "SCHEMAS", "build_problem"]
