"""Where a result came from: decopt version and commit, library versions, command line."""
from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

LIBRARIES = ("numpy", "scipy", "torch", "hydra-core", "omegaconf", "mpi4py")


@lru_cache(maxsize=1)
def _static() -> dict:
    from .version import __version__

    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return {"decopt_version": __version__, "git_commit": _git_commit(), "python": platform.python_version(),
            "libraries": versions}


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def collect() -> dict:
    return {**_static(), "command": " ".join(sys.argv)}
