import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpirun")

# Open MPI 5 on one machine, as root, more ranks than cores, shared memory only (no TCP listener on
# the ranks: OMPI_MCA_btl=self,sm). prterun's own out-of-band listener stays on 0.0.0.0 (Open MPI
# 5.0.11 drops loopback from its interface list and has no setting to keep it).
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe", "OMPI_MCA_btl": "self,sm",
           "OMP_NUM_THREADS": "1"}


def mpi_env() -> dict:
    """The environment every test that launches mpirun uses."""
    env = {**os.environ, **MPI_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_cli(*args, cwd=None, timeout=300, env=None):
    """Run ``python -m decopt ...`` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "decopt", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli
