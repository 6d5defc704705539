"""Sweeps on a Slurm cluster (``hydra/launcher=slurm``) and on every core of one machine
(``hydra/launcher=local_parallel``).

Each sweep point of ``hydra/launcher=slurm`` is one Slurm job (a job array, hydra-submitit-launcher).
The job runs the point once (submitit's ``use_srun=false``); a ``backend=mpi`` point with
``hydra.launcher.additional_parameters.ntasks_per_node=R`` starts its R ranks inside the allocation (``ranks_command``), and
rank 0 is the only Hydra driver, as under ``mpirun``. The sweep's exit code is the worst of its
points', read from their ``summary.json``, as with the basic launcher.

Pre-emption: Slurm's SIGTERM stops the point like a local interrupt (a checkpoint, ``status:
interrupted``). A job that Slurm requeued meanwhile (pre-emption with ``PreemptMode=REQUEUE``,
``scontrol requeue``; the launcher's ``additional_parameters.requeue``) leaves without a result, so
submitit waits for it, and its next run (``SLURM_RESTART_COUNT`` > 0) resumes from the checkpoint.
A job that was cancelled (``scancel``) ends ``interrupted``, resumable with ``python -m decopt resume``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from . import exit_codes

def sweep_results(argv: list[str]) -> tuple[str, list[int]]:
    """The sweep directory of ``argv`` and the exit code of every point in it, from the points'
    ``summary.json`` (a point without one failed): the launchers ran the points in other processes."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    conf = str(Path(__file__).resolve().parent / "conf")     # cli.CONF_DIR (cli imports this module)
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", [a for a in argv if a.startswith("hydra.sweep.dir=")], return_hydra_config=True)
    sweep = str(cfg.hydra.sweep.dir)
    codes = []
    for point in sorted(p.parent for p in Path(sweep).glob("*/.hydra")):
        summary = point / "summary.json"
        status = json.loads(summary.read_text()).get("status") if summary.exists() else "failed"
        codes.append(exit_codes.for_status(status))
    return sweep, codes


def job_ranks() -> int:
    """The number of tasks of the Slurm job this process runs in (1 outside Slurm or inside a step)."""
    if "SLURM_STEP_ID" in os.environ or "OMPI_COMM_WORLD_SIZE" in os.environ or "PMIX_RANK" in os.environ:
        return 1
    return int(os.environ.get("SLURM_NTASKS", "1"))


def restarted() -> bool:
    """Whether this process runs a Slurm job that was requeued (``SLURM_RESTART_COUNT`` > 0): its
    point continues from its checkpoint."""
    return _restart_count() > 0


def requeued() -> bool:
    """Whether Slurm requeued this job while it ran: ``scontrol show job`` counts more restarts than
    this run's ``SLURM_RESTART_COUNT`` (a cancelled job's count stays)."""
    job, scontrol = os.environ.get("SLURM_JOB_ID"), shutil.which("scontrol")
    if job is None or scontrol is None:
        return False
    shown = subprocess.run([scontrol, "show", "job", "-o", job], capture_output=True, text=True, timeout=30).stdout
    count = re.search(r"\bRestarts=(\d+)", shown)
    return count is not None and int(count[1]) > _restart_count()


def leave_if_requeued(code: int) -> None:
    """A stopped point whose job Slurm requeued ends here, without a result (SystemExit passes
    through Hydra and submitit): the driver's submitit waits for the requeued job's result."""
    if requeued():
        print("decopt: pre-empted; Slurm requeued the job, which resumes from the checkpoint", flush=True)
        raise SystemExit(code)


def _restart_count() -> int:
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0)


def srun_has_pmix() -> bool:
    """Whether this cluster's ``srun`` can start PMIx ranks (``srun --mpi=list`` names pmix)."""
    srun = shutil.which("srun")
    if srun is None:
        return False
    listed = subprocess.run([srun, "--mpi=list"], capture_output=True, text=True, timeout=30)
    return any(line.strip().startswith("pmix") for line in (listed.stdout + listed.stderr).splitlines())


def ranks_command(n: int) -> list[str]:
    """How to start ``n`` ranks inside this allocation: ``srun --mpi=pmix`` when the cluster's Slurm
    has PMIx, else the Open MPI wheel's ``mpirun`` (which reads the allocation itself)."""
    if srun_has_pmix():
        return ["srun", "--mpi=pmix", f"--ntasks={n}"]
    mpirun = shutil.which("mpirun") or os.path.join(os.path.dirname(sys.executable), "mpirun")
    return [mpirun, "-n", str(n)]


def _quoted(value: str) -> str:
    """``value`` as a quoted Hydra override value (run directories hold '=' and ',')."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_ranks(overrides: list[str], out: str, n: int) -> int:
    """Run one point on ``n`` MPI ranks in this allocation, in run directory ``out``; its exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PMIX_SIZE": str(n)}   # srun's PMIx sets no size variable
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = [*ranks_command(n), sys.executable, "-m", "decopt", "run", *overrides, "hydra.run.dir=" + _quoted(out)]
    print("decopt: " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env).returncode
