"""The problem contract (decopt.problems.base): what callers read of a problem is declared on the
base, every registered problem is a Problem whose config is a ProblemConfig, and the declared
capabilities hold for the problems that need no data files."""
import ast
import pathlib

import pytest
import torch

import decopt.problems.base as base
from decopt.comm import StackedNetwork
from decopt.graphs import Links
from decopt.graphs.topologies import ring
from decopt.problems import REGISTRY, Problem
from decopt.problems.base import AgentRows, ProblemConfig

NO_DATA = {"least_squares": {}, "logistic": {}, "gaussian_mean": {"batch_size": 2},
           "digits_mlp": {"hidden": 5, "batch_size": 3}}


def built(name: str, n: int = 4, **kw):
    schema, cls = REGISTRY[name]
    cfg = schema(**{**NO_DATA[name], **kw})
    cfg.check()
    g = ring(n)
    return cls(cfg, StackedNetwork(g, Links(g), dtype=torch.float64), 0)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_problem_declares_the_contract(name):
    schema, cls = REGISTRY[name]
    assert issubclass(cls, Problem) and issubclass(schema, ProblemConfig)
    assert not cls.__abstractmethods__, f"{name}: abstract {sorted(cls.__abstractmethods__)}"
    cfg = schema()
    d, floats = cfg.footprint(5, 3)
    assert d >= 1 and floats >= 0
    for key in ("batch_size", "m", "replicas", "performative", "eval_grid", "descent_kernel"):
        assert hasattr(cls, key), f"{name}: no declared {key}"
    assert cls.eval_grid in ("linear", "geometric")


def test_a_problem_without_its_oracles_cannot_be_built():
    class Half(Problem):
        def grad(self, X, t):
            return X

    with pytest.raises(TypeError, match="loss_grad"):
        Half(None, 0)


@pytest.mark.parametrize("name", sorted(NO_DATA))
def test_declared_capabilities_hold(name):
    p = built(name)
    net = p.net
    assert isinstance(net, AgentRows)
    X = p.x0() + 0.1 * torch.arange(p.d, dtype=torch.float64)
    assert X.shape == (net.n_local, p.d) and sum(p.segments) == p.d
    assert p.m >= 1 and (p.batch_size is None or p.batch_size >= 1)
    g1, g2 = p.grads((X, 2 * X), 3)
    assert torch.equal(g1, p.grad(X, 3)) and torch.equal(g2, p.grad(2 * X, 3))
    losses, G = p.loss_grad(X)
    assert losses.shape[0] == net.n_local and G.shape == X.shape
    assert p.performative == (name == "gaussian_mean")
    assert (p.descent_kernel is not None) == (name == "gaussian_mean")


def test_a_gradient_is_the_callers_to_overwrite():
    """DoCoM's STORM term writes into the two gradients ``grads`` returns: the problem keeps no alias."""
    p = built("least_squares", batch_size=3)
    X = p.x0() + 1.0
    g, _ = p.grads((X, X), 0)
    g.fill_(float("nan"))
    assert torch.isfinite(p.grad(X, 0)).all()


def test_problems_base_knows_no_transport():
    tree = ast.parse(pathlib.Path(base.__file__).read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in imported if "comm" in m.split(".")], imported
