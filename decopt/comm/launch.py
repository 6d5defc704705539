"""Detect an MPI launch without initialising MPI (importing mpi4py starts MPI)."""
from __future__ import annotations

import os

_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")


def _launcher_value(names: tuple[str, ...], default: int) -> int:
    """The first of the launchers' variables ``names`` that is set to a number, else ``default``."""
    for var in names:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return default


def world_size() -> int:
    """Number of ranks this process was launched with (1 outside mpirun)."""
    return _launcher_value(_SIZE_VARS, 1)


def world_rank() -> int:
    """This process's rank as the launcher set it (0 outside mpirun)."""
    return _launcher_value(_RANK_VARS, 0)
