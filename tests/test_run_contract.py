"""The run-directory contract (DESIGN §7), the CLI and the Python API."""
import csv
import json

import pytest
import yaml

import decopt
from decopt.results import FIRST_COLUMNS

from conftest import run_cli


@pytest.fixture(scope="module")
def er_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "x"
    proc = run_cli("run", "algo=dsgd", "graph=erdos_renyi", "graph.n=50", "graph.p=0.2", "problem=logistic",
                   "run.iterations=2000", "run.seed=3", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_run_directory_files(er_run):
    out, proc = er_run
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["algo"]["name"] == "dsgd" and cfg["graph"]["n"] == 50 and cfg["graph"]["p"] == 0.2
    assert cfg["run"]["seed"] == 3 and cfg["problem"]["name"] == "logistic"
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert tuple(rows[0].keys())[:6] == FIRST_COLUMNS
    assert "accuracy" in rows[0] and "opt_gap" in rows[0]
    its = [int(r["iteration"]) for r in rows]
    assert its == list(range(0, 2001, 50))
    bits = [int(r["bits"]) for r in rows]
    assert bits == sorted(bits) and bits[0] == 0 and bits[-1] == 50 * 20 * 32 * 2000
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("status", "iterations", "final", "backend", "world_size", "n_agents"):
        assert key in summary
    assert summary["status"] == "completed" and summary["iterations"] == 2000
    assert summary["backend"] == "stacked" and summary["world_size"] == 1 and summary["n_agents"] == 50
    assert summary["final"]["iteration"] == 2000
    assert summary["final"]["loss"] == pytest.approx(float(rows[-1]["loss"]))
    assert 0 < summary["spectral_gap"] < 1
    prov = summary["provenance"]
    assert prov["decopt_version"] == decopt.__version__ and "torch" in prov["libraries"]
    assert "graph=erdos_renyi" in prov["command"]
    traffic = list(csv.DictReader(open(out / "traffic.csv")))
    assert len(traffic) == 2 * summary["edges"]
    assert sum(int(r["messages"]) for r in traffic) == 2 * summary["edges"] * 2000


def test_cli_prints_a_summary(er_run):
    out, proc = er_run
    text = proc.stdout
    for word in ("completed", "loss", "grad_norm_sq", "consensus_error", "bits", "wall time", str(out)):
        assert word in text


def test_help_lists_groups_and_choices():
    proc = run_cli("run", "--help")
    assert proc.returncode == 0
    for group in ("algo", "graph", "compressor", "problem", "backend"):
        assert f"== {group}=CHOICE (" in proc.stdout
    assert "erdos_renyi" in proc.stdout and "schema/" not in proc.stdout
    job = run_cli("run", "--cfg", "job", "graph=star")
    assert job.returncode == 0 and "name: star" in job.stdout


def test_python_api_returns_the_run(tmp_path):
    r = decopt.run("graph.n=4", "run.iterations=20", "run.eval_every=10", run_dir=tmp_path / "api")
    assert r.summary["status"] == "completed" and r.summary["n_agents"] == 4
    assert r.metrics["iteration"] == [0.0, 10.0, 20.0]
    assert (tmp_path / "api" / "summary.json").exists()
    assert r.state["x"].shape == (4, 20)
    d = decopt.run(overrides_dict={"graph.n": 4, "run.iterations": 20, "problem.batch_size": None}, run_dir=False)
    assert d.run_dir is None and d.metrics["loss"][-1] == pytest.approx(r.metrics["loss"][-1])


def test_divergence_stops_with_last_finite_metrics(tmp_path):
    r = decopt.run("algo.lr=50", "run.iterations=3000", "run.eval_every=10", run_dir=tmp_path / "div")
    s = r.summary
    assert s["status"] == "diverged"
    assert s["iterations"] < 3000
    assert all(isinstance(v, (int, float)) and v == v for v in s["final"].values())
    saved = json.loads((tmp_path / "div" / "summary.json").read_text())
    assert saved["status"] == "diverged" and saved["final"] == pytest.approx(s["final"])
