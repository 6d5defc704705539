import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args, cwd=None, timeout=300, env=None):
    """Run ``python -m decopt ...`` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "decopt", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli
