"""Property-based test of the validation layer: whatever value any key of any group choice gets,
a tiny job ends ``completed`` or ``diverged``, or is refused with a one-line ConfigError. Never a
traceback, a hang or a MemoryError."""
from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from omegaconf import OmegaConf

from decopt import algorithms
from decopt.cli import compose
from decopt.config import GROUPS, RunConfig
from decopt.errors import ConfigError
from decopt.runner import run_job

from conftest import SHARED_DATA, run_cli

TINY = ["graph.n=3", "problem.dim=3", "problem.samples=4", "run.iterations=2", "run.eval_every=1",
        "run.progress=none"]
DATA = {"spambase_logistic": "spambase", "strategic_spam": "spambase", "leaf_synthetic": "leaf_synthetic",
        "mnist_mlp": "mnist", "femnist_lenet": "femnist"}
SMALL = {"digits_mlp": {"hidden": 2}, "mnist_mlp": {"hidden": 2, "train_size": 30},
         "least_squares": {"dim": 3, "samples": 4}, "logistic": {"dim": 3, "samples": 4},
         "leaf_synthetic": {"num_dim": 3}}
BAD = [math.nan, math.inf, -math.inf, -1, -1.5, 0, 0.0, 10 ** 30, 1e39, -1e39, 2 ** 64, 1e300,
       "abc", "", True, False, [1, 2], [], ["x"], {"a": 1}, None]
HOSTILE = [math.nan, math.inf, -math.inf, 1e39, 2 ** 62, 2 ** 64, "abc", [1, 2]]
VALUES = st.one_of(st.sampled_from(BAD), st.integers(-3, 6), st.floats(-10, 10, allow_nan=False),
                   st.lists(st.floats(-2, 3), max_size=3))
FUZZ = settings(max_examples=2, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))


def _keys(schema):
    return [f.name for f in fields(schema) if f.name not in ("name", "inner")]


CHOICES = [(group, choice) for group, schemas in GROUPS.items() for choice in schemas] + [("run", None)]


@pytest.fixture(scope="module")
def base():
    return OmegaConf.to_container(compose(TINY), resolve=True)


def _job(base, group, choice, edge_file):
    """The tiny base job with ``group=choice`` (the schema's defaults, small sizes, compatible links)."""
    cfg = {g: dict(v) if isinstance(v, dict) else v for g, v in base.items()}
    if choice is None:
        return cfg
    node = {f.name: getattr(GROUPS[group][choice](name=choice), f.name) for f in fields(GROUPS[group][choice])}
    node.update(SMALL.get(choice, {}))
    if choice in DATA:
        node["data_dir"] = str(SHARED_DATA / DATA[choice])
    if choice == "edge_list":
        node["file"] = str(edge_file)
    cfg[group] = node
    if group == "algo" and algorithms.REGISTRY[choice][1].links == "random":
        cfg["graph"]["links"] = "bernoulli"
    return cfg


def _outcome(cfg, case: str = "") -> str:
    """``refused`` (a one-line ConfigError), ``completed`` or ``diverged``; anything else fails naming ``case``."""
    try:
        status = run_job(cfg, None).summary["status"]
    except ConfigError as exc:
        text = str(exc)
        assert text and "\n" not in text, (case, text)
        return "refused"
    except Exception as exc:
        raise AssertionError(f"{case}: {type(exc).__name__}: {exc}") from exc
    assert status in ("completed", "diverged"), (case, status)
    return status


@pytest.mark.parametrize("group,choice", CHOICES, ids=[f"{g}={c}" for g, c in CHOICES])
def test_any_value_of_any_key_runs_or_is_refused_in_one_line(base, group, choice, tmp_path_factory):
    edge_file = tmp_path_factory.mktemp("graph") / "ring.txt"
    edge_file.write_text("0 1\n1 2\n2 0\n")
    job = _job(base, group, choice, edge_file)
    keys = _keys(RunConfig if group == "run" else GROUPS[group][choice])

    def set_and_run(key, value):
        cfg = {g: dict(v) if isinstance(v, dict) else v for g, v in job.items()}
        cfg[group][key] = value
        return _outcome(cfg, f"{group}.{key}={value!r}")

    @FUZZ
    @given(st.fixed_dictionaries({k: VALUES for k in keys}))
    def every_key(values):
        for key, value in values.items():
            set_and_run(key, value)

    every_key()
    for key in keys:                              # and every hostile value, for every key
        outcomes = {value if isinstance(value, (int, float, str)) else repr(value): set_and_run(key, value)
                    for value in HOSTILE}
        assert outcomes[math.nan] == outcomes[math.inf] == outcomes[1e39] == outcomes[2 ** 64] == "refused" \
            or not isinstance(getattr(job[group], key, None), (int, float)), (key, outcomes)


ALL_KEYS = sorted({f"{g}.{k}" for g, c in CHOICES for k in _keys(RunConfig if g == "run" else GROUPS[g][c])}
                  - {"graph.file", "problem.data_dir", "problem.file"})
STRINGS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e39", str(2 ** 64), "2e10", "abc", "true", "[1,2]",
                           "null", "''"])


@settings(max_examples=12, deadline=None, derandomize=True, database=None, phases=[Phase.generate])
@given(st.sampled_from(ALL_KEYS), STRINGS)
def test_cli_overrides_compose_validate_run(key, value):
    """The CLI's path: Hydra compose with a ``key=value`` string, validate, run."""
    try:
        cfg = compose([*TINY, f"{key}={value}"])
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    _outcome(cfg)


@pytest.mark.parametrize("override,message", [
    ("algo.lr=inf", "algo.lr=inf: must be a finite number"),
    ("run.seed=-1", "run.seed=-1: must be in [0, 2^63)"),
    ("graph.file=/dev/zero", "graph.file=/dev/zero: not a regular file"),
])
def test_cli_exit_2_and_one_error_line(override, message, tmp_path):
    extra = ["graph=edge_list"] if override.startswith("graph.file") else []
    proc = run_cli("run", *TINY, *extra, override, f"hydra.run.dir={tmp_path}")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("decopt: error:") and message in lines[0]
