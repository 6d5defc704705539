"""Bad input gets one line naming the key and what is allowed, exit code 2, before any work."""
import pytest

from decopt.cli import compose
from decopt.config import validate
from decopt.errors import ConfigError

from conftest import run_cli

CASES = [
    (["algo=no_such_algo"], "algo=no_such_algo: unknown choice; choose one of"),
    (["graph=moebius"], "graph=moebius: unknown choice"),
    (["graph.n=1"], "graph.n=1: a decentralized problem needs at least 2 agents"),
    (["graph=erdos_renyi", "graph.p=1.5"], "graph.p=1.5: must be in (0, 1]"),
    (["graph=erdos_renyi", "graph.p=0"], "graph.p=0.0: must be in (0, 1]"),
    (["algo.lr=-1"], "algo.lr=-1.0: must be > 0"),
    (["algo.lr=0"], "algo.lr=0.0: must be > 0"),
    (["algo.gama=3"], "algo.gama: Key 'gama' not in"),
    (["+algo.gama=3"], "algo.gama: unknown key for algo=dsgd"),
    (["run.iterations=abc"], "run.iterations: Value 'abc'"),
    (["run.dtype=float16"], "run.dtype=float16: choose one of float32, float64"),
    (["graph.links=sometimes"], "graph.links=sometimes: choose one of static, bernoulli, one_edge"),
    (["graph.links=bernoulli", "graph.link_p=2"], "graph.link_p=2.0: must be in (0, 1]"),
    (["graph=hypercube", "graph.n=12"], "graph.n=12: graph=hypercube needs a power of two"),
]


def _error(overrides):
    from decopt.runner import build

    with pytest.raises(ConfigError) as info:
        build(validate(compose(overrides)))
    return str(info.value)


@pytest.mark.parametrize("overrides,message", CASES)
def test_one_line_error(overrides, message):
    text = _error(overrides)
    assert message in text and "\n" not in text


def test_disconnected_edge_list(tmp_path):
    f = tmp_path / "two_parts.txt"
    f.write_text("0 1\n1 2\n3 4\n")
    text = _error(["graph=edge_list", f"graph.file={f}"])
    assert "disconnected" in text and "graph=edge_list" in text


@pytest.mark.parametrize("overrides,message", [CASES[0], CASES[2], CASES[3], CASES[8]])
def test_cli_exit_code_2_and_one_line(overrides, message, tmp_path):
    proc = run_cli("run", *overrides, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "metrics.csv").exists()
