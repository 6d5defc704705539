import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real datasets: $DECOPT_DATA when set (the root runs read), else the shared folder next to the repo.
SHARED_DATA = Path(os.environ.get("DECOPT_DATA") or REPO.parent / "shared" / "data").expanduser()
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpirun")
HAVE_MPIRUN = Path(MPIRUN).exists()

# Open MPI 5 on one machine, as root, more ranks than cores, shared memory only (no TCP listener on
# the ranks: OMPI_MCA_btl=self,sm).
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe", "OMPI_MCA_btl": "self,sm",
           "OMP_NUM_THREADS": "1"}

# prterun's own control listener binds every interface (Open MPI 5.0.11 has no setting to keep it
# on 127.0.0.1), so every test mpirun runs in a private network namespace that holds only loopback,
# where the kernel allows one (the README's recipe); elsewhere it runs as it is.
LOOPBACK = ["unshare", "--net", "--map-root-user", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


def _loopback_works() -> bool:
    try:
        return subprocess.run([*LOOPBACK, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


LAUNCH = (LOOPBACK if HAVE_MPIRUN and _loopback_works() else []) + [MPIRUN]


def mpi_env() -> dict:
    """The environment every test that launches mpirun uses."""
    env = {**os.environ, **MPI_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def mpirun_cmd(n: int, *args: str) -> list[str]:
    """``mpirun -n <n> <python> <args>`` as every test launches it (see LAUNCH)."""
    return [*LAUNCH, "-n", str(n), sys.executable, *args]


def signal_after_rows(proc, out, sig, rows: int = 3, timeout: float = 60) -> None:
    """Send ``sig`` to ``proc`` once the run in ``out`` has written more than ``rows`` metrics lines
    (or after ``timeout`` s), then wait for it to end."""
    import time

    metrics, deadline = Path(out) / "metrics.csv", time.time() + timeout
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) > rows):
        time.sleep(0.1)
    proc.send_signal(sig)
    proc.communicate(timeout=timeout)


def run_cli(*args, cwd=None, timeout=300, env=None):
    """Run ``python -m decopt ...`` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "decopt", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli
