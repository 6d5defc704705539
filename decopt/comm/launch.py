"""Detect an MPI launch without initialising MPI (importing mpi4py starts MPI)."""
from __future__ import annotations

import os

_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")


def world_size() -> int:
    """Number of ranks this process was launched with (1 outside mpirun)."""
    for var in _SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")


def world_rank() -> int:
    """This process's rank as the launcher set it (0 outside mpirun)."""
    for var in _RANK_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0
