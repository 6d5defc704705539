"""Jobs under ``mpirun``: rank 0 runs Hydra, every rank runs each job (shared notes on Hydra + MPI,
Appendix A).

``python -m decopt run`` with more than one rank calls ``mpi_main``: rank 0 runs Hydra and
broadcasts each job it launches; the other ranks ``serve`` the jobs they receive until a ``None``
sentinel. Every rank runs a job through ``run_guarded``: a config error that every rank raised
alike is reported once and the world goes on to the next job; any other exception aborts the
world, so that a failed rank never leaves the others waiting in a collective.
"""
from __future__ import annotations

import logging
import sys
import time
import traceback

from .errors import ConfigError

ABORT_GRACE_S = 1.0


def abort(comm, exc: BaseException | None = None, out=None) -> None:
    """Print this rank's error and abort every rank (the job never hangs on a failed rank).

    A config error is one line, anything else a traceback. Ranks other than 0 wait a moment
    first: when every rank fails alike, rank 0's abort usually ends them before they print,
    so the error appears once."""
    rank, size = comm.Get_rank(), comm.Get_size()
    if isinstance(exc, ConfigError):
        text = f"decopt: error: {exc}\n"
    elif isinstance(exc, KeyboardInterrupt):
        text = f"[decopt rank {rank}] interrupted; aborting all {size} ranks\n"
    else:
        text = f"[decopt rank {rank}] job failed; aborting all {size} ranks:\n{traceback.format_exc()}"
    if out is not None:                          # best effort: the run directory says what happened
        try:
            from .results import RunDir

            RunDir(out).write_summary({"status": "failed", "error": f"rank {rank}: {text.strip().splitlines()[-1]}",
                                       "iterations": None, "final": {}, "backend": "mpi", "world_size": size})
        except Exception:
            pass
    if rank != 0:
        time.sleep(ABORT_GRACE_S)
    sys.stdout.flush()
    sys.stderr.write(text)
    sys.stderr.flush()
    comm.Abort(1)


def run_guarded(cfg, out, comm):
    """Run one job on this rank. A ConfigError that every rank raised alike (validation, or
    building the job: ``comm.mpi.agree_built``) is re-raised, so that the driver records it and
    goes on; any other exception aborts the world (rank 0 records ``failed`` first)."""
    from .config import validate
    from .runner import run_job

    validate(cfg)
    try:
        return run_job(cfg, out, comm)
    except ConfigError as exc:
        if getattr(exc, "all_ranks", False):
            raise
        abort(comm, exc, out)
    except BaseException as exc:
        abort(comm, exc, out)


def _worker_logging(rank: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[rank {rank}] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("decopt").setLevel(logging.ERROR)   # rank 0 reports the run's warnings


def serve(comm) -> None:
    """A rank other than 0: run each job rank 0 broadcasts, until the ``None`` sentinel."""
    _worker_logging(comm.Get_rank())
    try:
        while (job := comm.bcast(None, root=0)) is not None:
            try:
                run_guarded(job["cfg"], job["out"], comm)
            except ConfigError:
                pass                                       # rank 0 reports it and moves on
    except BaseException as exc:
        abort(comm, exc)


def mpi_main(hydra_main, argv: list[str]) -> int:
    """``python -m decopt run ...`` under ``mpirun`` with more than one rank: rank 0 runs
    ``hydra_main(argv, comm)`` (which broadcasts each job and runs it through ``run_guarded``),
    the others ``serve``."""
    import torch
    from mpi4py import MPI

    from .comm.mpi import private_comm

    torch.set_num_threads(1)
    comm = MPI.COMM_WORLD
    private_comm(comm), private_comm(comm, "agree")      # collective: made here, where every rank is
    if comm.Get_rank() == 0:
        try:
            return hydra_main(argv, comm)
        finally:
            comm.bcast(None, root=0)                      # release the workers (also after --help, errors)
    serve(comm)
    return 0
